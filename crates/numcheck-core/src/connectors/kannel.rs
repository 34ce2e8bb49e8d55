//! Kannel: the delivery-report callback (`dlr-url`) and the bearerbox access log.
//!
//! # The `dlr-url` callback
//!
//! Kannel's smsbox fetches the `dlr-url` given with each message (or on the `sendsms-user`
//! group) for every delivery report the `dlr-mask` asked for, after expanding escape codes
//! in it. numcheck documents the template
//!
//! ```text
//! https://numcheck.example/v1/webhooks/kannel/<source>?token=<token>&type=%d&to=%p&id=%F&smsc=%i&at=%t&receipt=%A
//! ```
//!
//! and [`callback_event`] reads its query fields. What the escapes expand to (Kannel
//! `gw/urltrans.c`, `urltrans_fill_escape_codes`; Kannel user guide, "Parameters (Escape
//! Codes)"):
//!
//! * `%d` — the DLR type: 1 delivered to phone, 2 not delivered to phone, 4 queued on SMSC,
//!   8 delivered to SMSC, 16 not delivered to SMSC (`gw/dlr.h`; user guide, "Delivery
//!   Reports"). 4 and 8 are intermediate (`DLR_IS_NOT_FINAL` in `gw/dlr.h`).
//! * `%A` — the report's text: for SMPP the receipt (`id:… stat:… err:…`), for an SMSC
//!   ack/nack Kannel's own `ACK/…` / `NACK/…` text.
//! * `%F` — the foreign (SMSC-given) message id; `%I` — Kannel's internal UUID.
//! * `%i` — the smsc-id of the connection.
//! * `%t` — the message time as `YYYY-MM-DD+HH:MM:SS` in UTC (`gw_gmtime`; the `+` is a
//!   URL-encoded space); older user guides say `YYYY-MM-DD HH:MM`. `%T` is the same time as
//!   a Unix timestamp. For a report, the time is when Kannel created it (`dlr_find` sets
//!   `sms.time` to now).
//! * `%p` / `%P` — **caution**: in a report message Kannel keeps the original MT's sender in
//!   `sms.sender` and its destination in `sms.receiver` (`gw/dlr.c`, `dlr_find`), smsbox does
//!   not swap them for reports (`gw/smsbox.c`, `obey_request_thread`), and `%P` expands
//!   `sms.sender` while `%p` expands `sms.receiver` (`gw/urltrans.c`). So in a dlr-url the
//!   handset number is `%p`, and `%P` is the sender id the message was sent from. The
//!   gateway test (`numcheck-server/tests/gateways`) confirms it with Kannel 1.4.5: `%p`
//!   arrives as `+14155550105` for a message sent `to=+14155550105`, `%P` as its `from`.
//!   This parser reads whatever arrives in `to`.
//!
//! `at` is also accepted as `YYYY-MM-DD HH:MM` or as Unix seconds (`%T`).
//!
//! # The access log
//!
//! bearerbox writes one access-log line per message. Its default format (Kannel
//! `gw/bb_alog.c`, `bb_alog_sms`) is
//!
//! ```text
//! 2024-05-01 10:00:02 Receive DLR [SMSC:smsc1] [SVC:web] [ACT:] [BINF:] [FID:4f2a9c] [META:?smpp?] [from:MyBrand] [to:+14155552671] [flags:-1:0:-1:0:1] [msg:102:id:4f2a9c sub:001 …] [udh:0:]
//! ```
//!
//! Delivery reports are the lines labelled `Receive DLR` (Kannel 1.4.4 and later; earlier
//! releases wrote `DLR SMS`, and a report dropped on a full queue is `DROPPED Received
//! DLR`). `[META:…]` exists only in newer releases, `[FID:…]` since 1.4.x. The last number
//! of `flags` is the DLR type; `to` is the original destination; `msg` is the report text.
//! [`KannelLogLines`] reads those lines and returns `Ok(None)` for every other line. A
//! custom `access-log-format` is not supported. The log's time stamp is read as UTC: set
//! bearerbox to log in GMT, or the times are off by the gateway's UTC offset.

use chrono::NaiveDateTime;

use super::smpp::{parse_receipt, receipt_event};
use super::{Code, Event, LineFormat, ParseError, bounded, field};
use crate::evidence::EvidenceKind;

/// The code table of Kannel DLR types (`codes/kannel_dlr.csv`).
pub const DLR_TABLE: &str = "kannel_dlr";

const DLR_SUCCESS: u32 = 1;
const DLR_FAIL: u32 = 2;
const DLR_BUFFERED: u32 = 4;
const DLR_SMSC_SUCCESS: u32 = 8;
const DLR_SMSC_FAIL: u32 = 16;

/// Whether a Kannel DLR type is final: it has a final bit (1, 2, 16) and no intermediate
/// bit (4, 8), as `DLR_IS_NOT_FINAL` in Kannel `gw/dlr.h` decides.
pub fn is_final_type(dlr_type: u32) -> bool {
    dlr_type & (DLR_SUCCESS | DLR_FAIL | DLR_SMSC_FAIL) != 0
        && dlr_type & (DLR_BUFFERED | DLR_SMSC_SUCCESS) == 0
}

fn parse_type(value: &str) -> Result<u32, ParseError> {
    value.trim().parse::<u32>().map_err(|_| {
        ParseError::new(
            "invalid_field",
            format!("DLR type {value:?} is not a number"),
        )
    })
}

/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD HH:MM` (also with `T` or `+` for the space) or Unix
/// seconds, as UTC, to milliseconds since the epoch.
pub fn parse_time(value: &str) -> Result<i64, ParseError> {
    let v = value.trim();
    if !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .map(|s| s * 1000)
            .map_err(|_| ParseError::new("invalid_date", format!("{v:?} is not a time")));
    }
    let norm: String = v
        .chars()
        .map(|c| if c == 'T' || c == '+' { ' ' } else { c })
        .collect();
    NaiveDateTime::parse_from_str(&norm, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&norm, "%Y-%m-%d %H:%M"))
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|_| {
            ParseError::new(
                "invalid_date",
                format!("{v:?} is not YYYY-MM-DD HH:MM[:SS]"),
            )
        })
}

/// Builds the event of one Kannel report: from the receipt text when it holds an SMPP
/// receipt with `stat:`, else from the DLR type through [`DLR_TABLE`].
fn report_event(
    number: &str,
    dlr_type: u32,
    message_id: Option<String>,
    at_ms: Option<i64>,
    report_text: Option<&str>,
) -> Event {
    if let Some(receipt) = report_text.and_then(|t| parse_receipt(t).ok()) {
        let mut event = receipt_event(number, &receipt, None);
        // Kannel's own id (%F, FID) is the same for the SMSC ack and the final report, so
        // it keys the observation; the receipt's id (often in another base) is the fallback.
        if message_id.is_some() {
            event.message_id = message_id;
        }
        event.observed_at_ms = event.observed_at_ms.or(at_ms);
        event.final_state = event.final_state && is_final_type(dlr_type);
        return event;
    }
    Event {
        number: number.to_owned(),
        observed_at_ms: at_ms,
        kind: EvidenceKind::SmsDlr,
        raw_code: dlr_type.to_string(),
        codes: vec![Code::Table(DLR_TABLE, dlr_type.to_string())],
        message_id,
        final_state: is_final_type(dlr_type),
    }
}

/// Reads a Kannel `dlr-url` callback's query fields: `type` (required, the `%d` DLR type),
/// `to` (required, the number), `id` (the SMSC message id, `%F`), `smsc` (not used),
/// `at` (time, see [`parse_time`]) and `receipt` (`%A`). See the module documentation.
pub fn callback_event(pairs: &[(String, String)]) -> Result<Event, ParseError> {
    let dlr_type = parse_type(
        field(pairs, "type").ok_or_else(|| ParseError::new("missing_field", "no type"))?,
    )?;
    let number = bounded(
        "to",
        field(pairs, "to").ok_or_else(|| ParseError::new("missing_field", "no to"))?,
    )?;
    let message_id = field(pairs, "id").map(|v| bounded("id", v)).transpose()?;
    let at_ms = field(pairs, "at").map(parse_time).transpose()?;
    let receipt = field(pairs, "receipt");
    Ok(report_event(&number, dlr_type, message_id, at_ms, receipt))
}

/// The value of `[key:…]` in the head of an access-log line (the part before `[msg:`):
/// from after `key:` to the `]` that closes the bracket.
fn bracket<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let marker = format!("[{key}:");
    let start = head.find(&marker)? + marker.len();
    let rest = &head[start..];
    let end = rest
        .find("] [")
        .or_else(|| rest.rfind(']'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Kannel bearerbox access-log lines (default format); see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct KannelLogLines;

impl KannelLogLines {
    pub fn new() -> Self {
        KannelLogLines
    }
}

impl LineFormat for KannelLogLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let Some(smsc_at) = line.find(" [SMSC:") else {
            return Ok(None);
        };
        let head_all = &line[..smsc_at];
        // "YYYY-MM-DD HH:MM:SS <label>"
        let (stamp, label) = match (head_all.get(..19), head_all.get(19..)) {
            (Some(s), Some(l)) => (s, l.trim()),
            _ => return Ok(None),
        };
        let is_dlr = matches!(label, "Receive DLR" | "DLR SMS" | "DROPPED Received DLR");
        if !is_dlr {
            return Ok(None);
        }
        let at_ms = parse_time(stamp)?;
        let rest = &line[smsc_at..];
        let (head, msg) = match rest.find(" [msg:") {
            Some(m) => {
                let body = &rest[m + " [msg:".len()..];
                let body = match body.rfind(" [udh:") {
                    Some(u) => &body[..u],
                    None => body,
                };
                let body = body.strip_suffix(']').unwrap_or(body);
                // "<length>:<text>"
                let text = body.split_once(':').map_or(body, |(_, t)| t);
                (&rest[..m], Some(text))
            }
            None => (rest, None),
        };
        let number = bracket(head, "to")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ParseError::new("missing_field", "the DLR line has no to:"))?;
        let number = bounded("to", number)?;
        let flags = bracket(head, "flags")
            .ok_or_else(|| ParseError::new("missing_field", "the DLR line has no flags:"))?;
        let dlr_type = parse_type(flags.rsplit(':').next().unwrap_or(""))?;
        let message_id = bracket(head, "FID")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| bounded("FID", v))
            .transpose()?;
        Ok(Some(report_event(
            &number,
            dlr_type,
            message_id,
            Some(at_ms),
            msg,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{CodeBook, SourceSpec, observe};
    use crate::connectors::event::read_one;
    use crate::connectors::form_pairs;
    use crate::evidence::EvidenceClass;
    use crate::evidence_rows::Row;

    const T0: i64 = 1_714_557_600_000; // 2024-05-01 10:00:00 UTC

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_pairs(q.as_bytes())
    }

    #[test]
    fn types_and_finality() {
        assert!(is_final_type(1) && is_final_type(2) && is_final_type(16));
        assert!(!is_final_type(4) && !is_final_type(8) && !is_final_type(0));
        assert!(!is_final_type(1 | 4));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("2024-05-01 10:00:00").unwrap(), T0);
        assert_eq!(parse_time("2024-05-01+10:00:00").unwrap(), T0);
        assert_eq!(parse_time("2024-05-01 10:00").unwrap(), T0);
        assert_eq!(parse_time("1714557600").unwrap(), T0);
        assert_eq!(
            parse_time("2024-13-01 10:00").unwrap_err().code,
            "invalid_date"
        );
        assert_eq!(parse_time("yesterday").unwrap_err().code, "invalid_date");
    }

    #[test]
    fn callback_with_an_smpp_receipt_classifies_from_it() {
        // As smsbox would expand the documented template: %t has '+' for the space and %A
        // is URL-encoded.
        let q = "token=t&type=2&to=%2B14155552671&id=4f2a9c&smsc=smsc1&at=2024-05-01+10:00:03\
                 &receipt=id%3A4f2a9c+sub%3A001+dlvrd%3A000+submit+date%3A2405010959\
                 +done+date%3A2405011000+stat%3AUNDELIV+err%3A001+text%3AHello";
        let e = callback_event(&pairs(q)).unwrap();
        assert_eq!(e.number, "+14155552671");
        crate::connectors::smpp::assert_undeliv_001(&e);
        assert_eq!(e.observed_at_ms, Some(T0));
        assert_eq!(e.message_id.as_deref(), Some("4f2a9c"));
        assert!(e.final_state);
    }

    #[test]
    fn callback_without_a_receipt_uses_the_type() {
        let q = "type=8&to=14155552671&id=77&smsc=smsc1&at=2024-05-01+10:00:00&receipt=ACK%2F";
        let e = callback_event(&pairs(q)).unwrap();
        assert_eq!(e.raw_code, "8");
        assert_eq!(e.codes, vec![Code::Table(DLR_TABLE, "8".into())]);
        assert!(!e.final_state);
        assert_eq!(e.observed_at_ms, Some(T0));
        let q = "type=16&to=14155552671&receipt=NACK%2F0x0000000b%2FInvalid+Destination+Address";
        let e = callback_event(&pairs(q)).unwrap();
        assert_eq!(e.raw_code, "16");
        assert!(e.final_state);
        assert_eq!(e.observed_at_ms, None);
        // A receipt on an intermediate type is not final either.
        let q = "type=4&to=1&receipt=id%3A1+stat%3AUNDELIV";
        assert!(!callback_event(&pairs(q)).unwrap().final_state);
    }

    #[test]
    fn callback_errors() {
        assert_eq!(
            callback_event(&pairs("to=1")).unwrap_err().code,
            "missing_field"
        );
        assert_eq!(
            callback_event(&pairs("type=1")).unwrap_err().code,
            "missing_field"
        );
        assert_eq!(
            callback_event(&pairs("type=x&to=1")).unwrap_err().code,
            "invalid_field"
        );
        assert_eq!(
            callback_event(&pairs("type=1&to=1&at=soon"))
                .unwrap_err()
                .code,
            "invalid_date"
        );
        let long = "1".repeat(300);
        assert_eq!(
            callback_event(&pairs(&format!("type=1&to={long}")))
                .unwrap_err()
                .code,
            "field_too_long"
        );
    }

    #[test]
    fn kannel_dlr_table_rows_map_as_documented() {
        use EvidenceClass::*;
        let book = CodeBook::shipped();
        let src = SourceSpec::new("kannel-a");
        for (t, class) in [(1, StrongActive), (2, WeakInactive), (16, Neutral)] {
            let e = callback_event(&pairs(&format!("type={t}&to=%2B14155552671"))).unwrap();
            match observe(&book, &src, e, T0).unwrap() {
                Row::Observation(o) => assert_eq!(o.class, class, "type {t}"),
                other => panic!("type {t}: {other:?}"),
            }
        }
        for t in [4, 8] {
            assert_eq!(book.lookup(DLR_TABLE, &t.to_string()), Some(Neutral));
            let e = callback_event(&pairs(&format!("type={t}&to=%2B14155552671"))).unwrap();
            assert_eq!(observe(&book, &src, e, T0).unwrap(), Row::NotFinal);
        }
    }

    const DLR_LINE: &str = "2024-05-01 10:00:00 Receive DLR [SMSC:smsc1] [SVC:web] [ACT:] \
        [BINF:] [FID:4f2a9c] [META:?smpp?] [from:MyBrand] [to:+14155552671] \
        [flags:-1:0:-1:0:2] [msg:107:id:4f2a9c sub:001 dlvrd:000 submit date:2405010958 \
        done date:2405010959 stat:EXPIRED err:027 text:Your code [x] is 1] [udh:0:]";

    #[test]
    fn access_log_dlr_lines() {
        let mut f = KannelLogLines::new();
        let e = read_one(&mut f, DLR_LINE.as_bytes());
        assert_eq!(e.number, "+14155552671");
        assert_eq!(e.raw_code, "EXPIRED:027");
        assert_eq!(e.message_id.as_deref(), Some("4f2a9c"));
        assert_eq!(e.observed_at_ms, Some(T0 - 60_000));
        assert!(e.final_state);
        // Older releases: "DLR SMS" label, no META, no FID; the type alone decides.
        let old = "2009-02-11 08:00:00 DLR SMS [SMSC:old] [SVC:] [ACT:] [BINF:] \
                   [from:1234] [to:0447700900123] [flags:-1:0:-1:0:1] [msg:0:] [udh:0:]";
        let e = read_one(&mut f, old.as_bytes());
        assert_eq!(e.number, "0447700900123");
        assert_eq!(e.raw_code, "1");
        assert_eq!(e.message_id, None);
        assert_eq!(
            e.observed_at_ms,
            Some(parse_time("2009-02-11 08:00:00").unwrap())
        );
    }

    #[test]
    fn access_log_other_lines_are_skipped_and_bad_dlr_lines_refused() {
        let mut f = KannelLogLines::new();
        let mt = "2024-05-01 09:59:58 Sent SMS [SMSC:smsc1] [SVC:web] [ACT:] [BINF:] \
                  [FID:4f2a9c] [META:] [from:MyBrand] [to:+14155552671] [flags:-1:0:-1:0:19] \
                  [msg:5:Hello] [udh:0:]";
        assert_eq!(f.line(mt.as_bytes()).unwrap(), None);
        assert_eq!(f.line(b"2024-05-01 10:00:00 Log begins").unwrap(), None);
        assert_eq!(f.line(b"").unwrap(), None);
        let no_to = DLR_LINE.replace("[to:+14155552671]", "[to:]");
        assert_eq!(f.line(no_to.as_bytes()).unwrap_err().code, "missing_field");
        let bad_time = DLR_LINE.replace("2024-05-01 10:00:00", "2024-05-01 25:00:00");
        assert_eq!(
            f.line(bad_time.as_bytes()).unwrap_err().code,
            "invalid_date"
        );
    }

    #[test]
    fn access_log_line_observes_through_the_map_table() {
        let book = CodeBook::shipped();
        let e = KannelLogLines::new()
            .line(DLR_LINE.as_bytes())
            .unwrap()
            .unwrap();
        let Row::Observation(o) = observe(&book, &SourceSpec::new("k"), e, T0).unwrap() else {
            panic!("not an observation")
        };
        assert_eq!(o.class, EvidenceClass::WeakInactive); // MAP 27 absentSubscriber
        assert_eq!(o.raw_code, "EXPIRED:027");
    }
}
