//! The connector formats by name, as `--format` and config spell them.

use chrono::FixedOffset;

use super::{LineFormat, cdr, infobip, jasmin, kannel, lists, smpp, twilio, vonage};

/// Every format a source can send or a file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorFormat {
    /// One SMPP delivery receipt a line, after the number (`number<TAB>receipt`).
    Smpp,
    /// Kannel: the `dlr-url` callback; as a file, bearerbox access-log lines.
    Kannel,
    /// Jasmin: the DLR callback; as a file, `messages.log` lines.
    Jasmin,
    /// Twilio Messaging status callbacks (a file: one form-encoded callback a line).
    Twilio,
    /// Vonage SMS delivery receipts (a file: one JSON object or query string a line).
    Vonage,
    /// Infobip delivery reports (a file: one JSON result a line).
    Infobip,
    /// FreeSWITCH `mod_cdr_csv` records.
    Freeswitch,
    /// Asterisk `cdr_csv` records (`Master.csv`) or a CSV export with a header.
    Asterisk,
    /// Carrier deactivation lists: `number,date`.
    Deactivation,
    /// Reassigned-number answers: `number,date,yes|no|no_data`.
    Reassigned,
    /// HLR lookup results (CSV with a header, or NDJSON in the providers' shapes).
    Hlr,
}

impl ConnectorFormat {
    pub const ALL: [ConnectorFormat; 11] = [
        ConnectorFormat::Smpp,
        ConnectorFormat::Kannel,
        ConnectorFormat::Jasmin,
        ConnectorFormat::Twilio,
        ConnectorFormat::Vonage,
        ConnectorFormat::Infobip,
        ConnectorFormat::Freeswitch,
        ConnectorFormat::Asterisk,
        ConnectorFormat::Deactivation,
        ConnectorFormat::Reassigned,
        ConnectorFormat::Hlr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorFormat::Smpp => "smpp",
            ConnectorFormat::Kannel => "kannel",
            ConnectorFormat::Jasmin => "jasmin",
            ConnectorFormat::Twilio => "twilio",
            ConnectorFormat::Vonage => "vonage",
            ConnectorFormat::Infobip => "infobip",
            ConnectorFormat::Freeswitch => "freeswitch",
            ConnectorFormat::Asterisk => "asterisk",
            ConnectorFormat::Deactivation => "deactivation",
            ConnectorFormat::Reassigned => "reassigned",
            ConnectorFormat::Hlr => "hlr",
        }
    }

    /// Whether the format has a webhook under `/v1/webhooks/<format>/<source>`.
    pub fn is_webhook(self) -> bool {
        matches!(
            self,
            ConnectorFormat::Kannel
                | ConnectorFormat::Jasmin
                | ConnectorFormat::Twilio
                | ConnectorFormat::Vonage
                | ConnectorFormat::Infobip
        )
    }
}

/// How to read a file's times: the offset of local CDR dates, and the time to give records
/// that carry none (Twilio status records), when the import names one.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    pub utc_offset: FixedOffset,
    pub assume_time_ms: Option<i64>,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            utc_offset: chrono::Offset::fix(&chrono::Utc),
            assume_time_ms: None,
        }
    }
}

impl ConnectorFormat {
    /// A reader of this format's files, with times of CDRs in UTC.
    pub fn reader(self) -> Box<dyn LineFormat> {
        self.reader_with(FileOptions::default())
    }

    /// A reader of this format's files; `offset` is the switch's local time for CDR dates
    /// (other formats carry their own zone or are UTC).
    pub fn reader_with_offset(self, offset: FixedOffset) -> Box<dyn LineFormat> {
        self.reader_with(FileOptions {
            utc_offset: offset,
            ..FileOptions::default()
        })
    }

    /// A reader of this format's files, read with `options`.
    pub fn reader_with(self, options: FileOptions) -> Box<dyn LineFormat> {
        let offset = options.utc_offset;
        match self {
            ConnectorFormat::Smpp => Box::new(smpp::SmppReceiptLines::new()),
            ConnectorFormat::Kannel => Box::new(kannel::KannelLogLines::new()),
            ConnectorFormat::Jasmin => Box::new(jasmin::JasminLogLines::new()),
            ConnectorFormat::Twilio => {
                Box::new(twilio::TwilioLines::assuming(options.assume_time_ms))
            }
            ConnectorFormat::Vonage => Box::new(vonage::VonageLines::new()),
            ConnectorFormat::Infobip => Box::new(infobip::InfobipLines::new()),
            ConnectorFormat::Freeswitch => Box::new(cdr::FreeswitchCdr::new(offset)),
            ConnectorFormat::Asterisk => Box::new(cdr::AsteriskCdr::new(offset)),
            ConnectorFormat::Deactivation => Box::new(lists::DeactivationList::new()),
            ConnectorFormat::Reassigned => Box::new(lists::ReassignedAnswers::new()),
            ConnectorFormat::Hlr => Box::new(lists::HlrLines::new()),
        }
    }
}

impl std::fmt::Display for ConnectorFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectorFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        let wanted = match wanted.as_str() {
            "kannel-log" => "kannel",
            "jasmin-log" => "jasmin",
            "smpp-receipt" | "smpp-receipts" => "smpp",
            other => other,
        };
        ConnectorFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = ConnectorFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown format {s:?}; use one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for f in ConnectorFormat::ALL {
            assert_eq!(f.as_str().parse::<ConnectorFormat>(), Ok(f));
        }
        assert_eq!("Kannel_Log".parse(), Ok(ConnectorFormat::Kannel));
        assert!(
            "fax"
                .parse::<ConnectorFormat>()
                .unwrap_err()
                .contains("freeswitch")
        );
        assert_eq!(
            ConnectorFormat::ALL
                .iter()
                .filter(|f| f.is_webhook())
                .count(),
            5
        );
    }
}
