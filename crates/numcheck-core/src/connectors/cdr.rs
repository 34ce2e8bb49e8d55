//! Call detail records from PBXs: FreeSWITCH `mod_cdr_csv` and Asterisk `cdr_csv` (plus
//! header-named CSV exports of either), one record a line, turned into [`Event`]s of kind
//! [`EvidenceKind::Call`].
//!
//! How a record becomes codes (the first code a table knows decides the class):
//!
//! * **Answered calls** (billable seconds above zero, or an answer time; for Asterisk also a
//!   disposition `ANSWERED` or a `DIALSTATUS` of `ANSWER`) are strong evidence that the number
//!   is in use, whatever cause ended the call afterwards: FreeSWITCH records get the single
//!   code `sip` `200` (the final response that answers an INVITE, RFC 3261 §21.2.1), Asterisk
//!   records `asterisk_disposition` `ANSWERED`. A carrier that answers to play an announcement
//!   looks the same as a person answering; import the legs you placed (B legs / outbound
//!   calls), not inbound calls your own IVR answered.
//! * **Unanswered FreeSWITCH calls**: a Q.850 cause carried in a SIP `Reason` header
//!   (`Q.850;cause=N`, RFC 3326 / RFC 6432) first, as `q850` `N`, because it says more about
//!   the far end than the SIP status does; then the SIP final status (`sip_term_status`,
//!   `sip:NNN` in `proto_specific_hangup_cause` or `last_bridge_proto_specific_hangup_cause`,
//!   `sip_invite_failure_status`) as `sip` `NNN`; then the FreeSWITCH hangup cause by name
//!   (`hangup_cause`, `hangup_cause_q850`, `sip_term_cause`, `bridge_hangup_cause`,
//!   `last_bridge_hangup_cause`) in the `q850` table, which holds numeric causes and
//!   FreeSWITCH's names alike. FreeSWITCH derives `hangup_cause` from the SIP status when no
//!   Reason header came (`sofia.c`: `sip_term_cause` is the Reason's cause when present, else
//!   `sofia_glue_sip_cause_to_freeswitch(status)`), so the status is asked before the name:
//!   a `403` from a trunk is not a `CALL_REJECTED` by a person.
//! * **Unanswered Asterisk calls**: `HANGUPCAUSE` (numeric, `q850`), then `DIALSTATUS`
//!   (`asterisk_dialstatus`), then `disposition` (`asterisk_disposition`).
//! * **Normal clearing without answer** (cause 16 / `NORMAL_CLEARING` on a call nobody
//!   answered) means the caller gave up or the call was torn down before answer: it says
//!   nothing about the callee. Such causes are skipped so that a SIP status or a dial status
//!   can decide; a FreeSWITCH record with nothing else ends with `q850`
//!   `NORMAL_CLEARING_UNANSWERED` (neutral), an Asterisk record falls through to its dial
//!   status and disposition.
//!
//! Times are `YYYY-MM-DD HH:MM:SS` in the switch's local time (FreeSWITCH `*_stamp`
//! variables; Asterisk `cdr_csv` writes local time unless `usegmtime`): the reader takes a
//! fixed UTC offset. RFC 3339 times with their own offset are read as written. The event's
//! time is the answer time, else the end time, else the start time.

use std::marker::PhantomData;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone};

use super::record::{excerpt, split_record};
use super::{Code, Event, LineFormat, MAX_FIELD, ParseError, bounded};
use crate::evidence::EvidenceKind;

/// Column order of FreeSWITCH's shipped `cdr_csv.conf.xml` template `example`, the
/// `default-template` (FreeSWITCH `conf/vanilla/autoload_configs/cdr_csv.conf.xml`).
pub const FREESWITCH_DEFAULT_COLUMNS: &[&str] = &[
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
];

/// Column order of Asterisk `cdr_csv`'s `Master.csv` (Asterisk `cdr/cdr_csv.c`,
/// `build_csv_record`). `uniqueid` is written with `loguniqueid`, `userfield` with
/// `loguserfield`, the last three with `newcdrcolumns`; the reader assumes the earlier
/// optional columns are on when a later one is present.
pub const ASTERISK_DEFAULT_COLUMNS: &[&str] = &[
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
];

/// FreeSWITCH default-template lines need the columns up to `hangup_cause` (the 10th).
const FREESWITCH_MIN_FIELDS: usize = 10;
/// Asterisk `Master.csv` lines need the columns up to `disposition` (the 15th).
const ASTERISK_MIN_FIELDS: usize = 15;

/// Reads a UTC offset: `Z`, `UTC`, `+02:00`, `-0530`, `+2`. Offsets of a day or more are
/// refused.
pub fn parse_utc_offset(text: &str) -> Result<FixedOffset, ParseError> {
    let bad = || {
        ParseError::new(
            "invalid_offset",
            format!(
                "{:?} is not a UTC offset like +02:00, -0500 or Z",
                excerpt(text)
            ),
        )
    };
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(utc());
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.as_str(), "0")
    } else {
        digits.split_at(digits.len() - 2)
    };
    let hours: i32 = h.parse().map_err(|_| bad())?;
    let minutes: i32 = m.parse().map_err(|_| bad())?;
    if minutes >= 60 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

fn utc() -> FixedOffset {
    chrono::Utc.fix()
}

/// A switch timestamp: `YYYY-MM-DD HH:MM:SS[.f]` (also with `T`) in local time at `offset`,
/// or RFC 3339 with its own offset. Blank and `0000-00-00 …` (an unset SQL datetime) are
/// `None`.
pub(crate) fn parse_stamp(text: &str, offset: FixedOffset) -> Result<Option<i64>, ParseError> {
    let t = text.trim();
    if t.is_empty() || t.starts_with("0000-00-00") {
        return Ok(None);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(Some(dt.timestamp_millis()));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format)
            && let Some(dt) = offset.from_local_datetime(&naive).single()
        {
            return Ok(Some(dt.timestamp_millis()));
        }
    }
    Err(ParseError::new(
        "invalid_date",
        format!(
            "{:?} is not a time like 2026-03-01 14:05:09 or RFC 3339",
            excerpt(t)
        ),
    ))
}

/// Where a CSV's fields are: a fixed default order, or the names of a header line.
#[derive(Debug, Clone)]
enum Columns {
    Default(&'static [&'static str]),
    /// Lower-cased header names.
    Named(Vec<String>),
}

impl Columns {
    fn index(&self, name: &str) -> Option<usize> {
        match self {
            Columns::Default(names) => names.iter().position(|n| n.eq_ignore_ascii_case(name)),
            Columns::Named(names) => names.iter().position(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// One record's fields with their column names.
struct Record<'a> {
    columns: &'a Columns,
    fields: Vec<String>,
}

impl Record<'_> {
    /// The trimmed value of `name`; `None` when the column is absent or blank.
    fn get(&self, name: &str) -> Option<&str> {
        let i = self.columns.index(name)?;
        self.fields
            .get(i)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The first present value among `names`.
    fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }
}

/// Reads a header line: lower-cased, trimmed names (a UTF-8 byte-order mark dropped).
fn header_names(fields: &[String]) -> Vec<String> {
    fields
        .iter()
        .map(|f| f.trim().trim_start_matches('\u{FEFF}').to_ascii_lowercase())
        .collect()
}

fn is_header(fields: &[String], key: &str) -> bool {
    fields.iter().any(|f| {
        f.trim()
            .trim_start_matches('\u{FEFF}')
            .eq_ignore_ascii_case(key)
    })
}

fn missing(name: &str) -> ParseError {
    ParseError::new("missing_field", format!("the record has no {name}"))
}

/// Billable seconds: blank is `None`; a fraction (some exports write `12.0`) is accepted.
fn parse_billsec(text: Option<&str>) -> Result<Option<f64>, ParseError> {
    let Some(t) = text else { return Ok(None) };
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(ParseError::new(
            "invalid_field",
            format!("billsec {:?} is not a number of seconds", excerpt(t)),
        )),
    }
}

/// The answer time, else the end time, else the start time, each read only when present.
fn event_time(
    answer: Option<i64>,
    end: Option<&str>,
    start: Option<&str>,
    offset: FixedOffset,
) -> Result<Option<i64>, ParseError> {
    if answer.is_some() {
        return Ok(answer);
    }
    if let Some(t) = parse_stamp(end.unwrap_or(""), offset)? {
        return Ok(Some(t));
    }
    parse_stamp(start.unwrap_or(""), offset)
}

fn optional_id(value: Option<&str>, name: &str) -> Result<Option<String>, ParseError> {
    value.map(|v| bounded(name, v)).transpose()
}

/// A Q.850 cause from a SIP `Reason` header value (`Q.850;cause=17;text="User busy"`, RFC
/// 3326), or from FreeSWITCH-style `q850:17`.
fn reason_cause(value: &str) -> Option<u16> {
    let v = value.trim();
    if let Some(rest) = v
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("q850:"))
        .and_then(|_| v.get(5..))
    {
        return rest.trim().parse().ok().filter(|c| *c <= 127);
    }
    let lower = v.to_ascii_lowercase();
    if !lower.starts_with("q.850") {
        return None;
    }
    let at = lower.find("cause=")?;
    let digits: String = lower[at + 6..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok().filter(|c| *c <= 127)
}

/// A SIP final status from `486` or `sip:486`.
fn sip_status(value: &str) -> Option<u16> {
    let v = value.trim();
    let digits = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => v.get(4..)?.trim(),
        _ => v,
    };
    if digits.len() != 3 {
        return None;
    }
    digits.parse().ok().filter(|s| (200..700).contains(s))
}

/// Whether a cause (name or number) is normal call clearing (Q.850 cause 16).
fn is_normal_clearing(cause: &str) -> bool {
    let c = cause.trim();
    c.eq_ignore_ascii_case("NORMAL_CLEARING") || c == "16"
}

fn push_unique(codes: &mut Vec<Code>, code: Code) {
    if !codes.contains(&code) {
        codes.push(code);
    }
}

fn bounded_raw(raw: String) -> Result<String, ParseError> {
    if raw.len() > MAX_FIELD {
        return Err(ParseError::new(
            "field_too_long",
            format!("the record's codes are longer than {MAX_FIELD} bytes"),
        ));
    }
    Ok(raw)
}

/// How one switch writes its CSV call records: the default columns, what a header needs,
/// and how a record becomes an event.
#[derive(Debug)]
pub struct Layout {
    /// The columns of a line when no header came.
    default_columns: &'static [&'static str],
    /// A line naming this column is a header.
    header_key: &'static str,
    /// Lines read by the default columns need at least this many fields.
    min_fields: usize,
    /// Says which column `min_fields` reaches: "{template} in field {min_fields}".
    template: &'static str,
    /// Refuses a header (lower-cased names) that lacks the columns a record needs.
    check_header: fn(&[String]) -> Result<(), ParseError>,
    /// Reads one record; times are local at the offset.
    event: fn(&Record<'_>, FixedOffset) -> Result<Event, ParseError>,
}

/// A PBX whose CSV call records [`CdrLines`] reads: [`Freeswitch`] or [`Asterisk`].
pub trait Switch: std::fmt::Debug + Clone + Send {
    /// Where this switch's columns are and how one of its records reads.
    const LAYOUT: Layout;
}

/// Call detail record lines of one switch. FreeSWITCH and Asterisk share the reading: the
/// switch's UTC offset, and where the columns are (the default order until a header line
/// names them); [`Switch::LAYOUT`] holds what differs.
#[derive(Debug, Clone)]
pub struct CdrLines<S: Switch> {
    offset: FixedOffset,
    columns: Columns,
    switch: PhantomData<S>,
}

impl<S: Switch> Default for CdrLines<S> {
    fn default() -> Self {
        CdrLines::new(utc())
    }
}

impl<S: Switch> CdrLines<S> {
    /// A reader whose times are local times at `offset` east of UTC, the switch's time zone:
    /// FreeSWITCH writes local `*_stamp` times, and so does Asterisk's `cdr_csv` unless
    /// `usegmtime=yes` (then pass UTC).
    pub fn new(offset: FixedOffset) -> Self {
        CdrLines {
            offset,
            columns: Columns::Default(S::LAYOUT.default_columns),
            switch: PhantomData,
        }
    }
}

impl<S: Switch> LineFormat for CdrLines<S> {
    /// A header line is checked and taken, and gives `None`.
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let layout = &S::LAYOUT;
        let fields = split_record(line, ',')?;
        if is_header(&fields, layout.header_key) {
            let names = header_names(&fields);
            (layout.check_header)(&names)?;
            self.columns = Columns::Named(names);
            return Ok(None);
        }
        let min = layout.min_fields;
        if matches!(self.columns, Columns::Default(_)) && fields.len() < min {
            return Err(ParseError::new(
                "missing_field",
                format!(
                    "the line has {} fields; {} in field {min}",
                    fields.len(),
                    layout.template
                ),
            ));
        }
        let record = Record {
            columns: &self.columns,
            fields,
        };
        (layout.event)(&record, self.offset).map(Some)
    }
}

fn require_any(
    names: &[String],
    any_of: &[&str],
    message: impl Into<String>,
) -> Result<(), ParseError> {
    if any_of.iter().any(|c| names.iter().any(|h| h == c)) {
        Ok(())
    } else {
        Err(ParseError::new("invalid_header", message))
    }
}

/// Refuses a record that gave no codes: a final event without codes would reach the code
/// book as an `unknown_code` that no table can ever know.
fn some_codes(codes: Vec<Code>, why: &'static str) -> Result<Vec<Code>, ParseError> {
    if codes.is_empty() {
        return Err(ParseError::new("missing_field", why));
    }
    Ok(codes)
}

fn call_event(
    number: String,
    observed_at_ms: Option<i64>,
    raw_code: String,
    codes: Vec<Code>,
    message_id: Option<String>,
) -> Event {
    Event {
        number,
        observed_at_ms,
        kind: EvidenceKind::Call,
        raw_code,
        codes,
        message_id,
        final_state: true,
    }
}

/// FreeSWITCH `mod_cdr_csv` lines. Without a header the columns are those of the shipped
/// `example` template ([`FREESWITCH_DEFAULT_COLUMNS`]); a line naming `destination_number`
/// is a header and names the columns of the lines after it.
pub type FreeswitchCdr = CdrLines<Freeswitch>;

/// FreeSWITCH, as a [`Switch`].
#[derive(Debug, Clone, Copy)]
pub struct Freeswitch;

impl Switch for Freeswitch {
    const LAYOUT: Layout = Layout {
        default_columns: FREESWITCH_DEFAULT_COLUMNS,
        header_key: "destination_number",
        min_fields: FREESWITCH_MIN_FIELDS,
        template: "the default template has hangup_cause",
        event: freeswitch_event,
        check_header: |names| {
            require_any(
                names,
                &["destination_number"],
                "the header needs a destination_number column",
            )?;
            let causes = [
                "hangup_cause",
                "hangup_cause_q850",
                "sip_term_status",
                "sip_term_cause",
                "proto_specific_hangup_cause",
                "last_bridge_proto_specific_hangup_cause",
            ];
            require_any(
                names,
                &causes,
                format!("the header needs one of the columns {}", causes.join(", ")),
            )
        },
    };
}

fn freeswitch_event(r: &Record<'_>, offset: FixedOffset) -> Result<Event, ParseError> {
    let number = bounded(
        "destination_number",
        r.get("destination_number")
            .ok_or_else(|| missing("destination_number"))?,
    )?;
    let answer = parse_stamp(r.get("answer_stamp").unwrap_or(""), offset)?;
    let billsec = parse_billsec(r.get("billsec"))?;
    let answered = answer.is_some() || billsec.is_some_and(|b| b > 0.0);
    let observed_at_ms = event_time(answer, r.get("end_stamp"), r.get("start_stamp"), offset)?;

    let reason = r
        .first(&["sip_reason", "reason"])
        .and_then(reason_cause)
        .or_else(|| {
            [
                "proto_specific_hangup_cause",
                "last_bridge_proto_specific_hangup_cause",
            ]
            .iter()
            .find_map(|n| r.get(n).and_then(reason_cause))
        });
    let sips: Vec<u16> = [
        "sip_term_status",
        "proto_specific_hangup_cause",
        "last_bridge_proto_specific_hangup_cause",
        "sip_invite_failure_status",
    ]
    .iter()
    .filter_map(|n| r.get(n).and_then(sip_status))
    .collect();
    let causes: Vec<&str> = [
        "hangup_cause",
        "hangup_cause_q850",
        "sip_term_cause",
        "bridge_hangup_cause",
        "last_bridge_hangup_cause",
    ]
    .iter()
    .filter_map(|n| r.get(n))
    .collect();
    if causes.is_empty() && sips.is_empty() && reason.is_none() {
        return Err(missing("hangup_cause"));
    }

    let mut raw = causes
        .first()
        .copied()
        .unwrap_or("NONE")
        .to_ascii_uppercase();
    if let Some(s) = sips.first() {
        raw.push_str(&format!(";sip={s}"));
    }
    if let Some(c) = reason {
        raw.push_str(&format!(";q850={c}"));
    }
    let raw_code = bounded_raw(raw)?;

    let mut codes = Vec::new();
    if answered {
        codes.push(Code::Table("sip", "200".into()));
    } else {
        let mut cleared_unanswered = false;
        if let Some(c) = reason {
            if c == 16 {
                cleared_unanswered = true;
            } else {
                push_unique(&mut codes, Code::Table("q850", c.to_string()));
            }
        }
        for s in &sips {
            // A 200 on a call with no answer time and no billable seconds is a
            // contradiction; it is not taken as an answer.
            if *s != 200 {
                push_unique(&mut codes, Code::Table("sip", s.to_string()));
            }
        }
        for c in &causes {
            if is_normal_clearing(c) {
                cleared_unanswered = true;
            } else {
                push_unique(
                    &mut codes,
                    Code::Table("q850", bounded("hangup_cause", c)?.to_ascii_uppercase()),
                );
            }
        }
        if cleared_unanswered {
            codes.push(Code::Table("q850", "NORMAL_CLEARING_UNANSWERED".into()));
        }
    }
    // Only a SIP 200 with no answer time and no billable seconds: the contradiction is
    // not taken as an answer, and nothing else says how the call ended.
    let codes = some_codes(
        codes,
        "the record has no hangup cause: a SIP 200 without an answer time or billable \
             seconds is not an answer",
    )?;
    let message_id = optional_id(r.get("uuid"), "uuid")?;
    Ok(call_event(
        number,
        observed_at_ms,
        raw_code,
        codes,
        message_id,
    ))
}

/// Asterisk CDR lines: `cdr_csv`'s `Master.csv` (no header; [`ASTERISK_DEFAULT_COLUMNS`]), or
/// a CSV export with a header naming `dst` (`cdr_adaptive_odbc` tables, `cdr_custom`
/// mappings) with any of `disposition`, `HANGUPCAUSE`, `DIALSTATUS`, `uniqueid`, `linkedid`,
/// `start` (or `calldate`), `answer`, `end`, `billsec`; names compare case-insensitively.
pub type AsteriskCdr = CdrLines<Asterisk>;

/// Asterisk, as a [`Switch`].
#[derive(Debug, Clone, Copy)]
pub struct Asterisk;

impl Switch for Asterisk {
    const LAYOUT: Layout = Layout {
        default_columns: ASTERISK_DEFAULT_COLUMNS,
        header_key: "dst",
        min_fields: ASTERISK_MIN_FIELDS,
        template: "Master.csv has disposition",
        event: asterisk_event,
        check_header: |names| {
            require_any(
                names,
                &["disposition", "hangupcause", "dialstatus"],
                "the header needs one of the columns disposition, HANGUPCAUSE, DIALSTATUS",
            )
        },
    };
}

fn asterisk_event(r: &Record<'_>, offset: FixedOffset) -> Result<Event, ParseError> {
    let number = bounded("dst", r.get("dst").ok_or_else(|| missing("dst"))?)?;
    let disposition = r.get("disposition").map(str::to_ascii_uppercase);
    let dialstatus = r.get("dialstatus").map(str::to_ascii_uppercase);
    let cause = r.get("hangupcause").map(str::to_ascii_uppercase);
    if disposition.is_none() && dialstatus.is_none() && cause.is_none() {
        return Err(missing("disposition"));
    }
    let answer = parse_stamp(r.get("answer").unwrap_or(""), offset)?;
    let billsec = parse_billsec(r.get("billsec"))?;
    let answered = billsec.is_some_and(|b| b > 0.0)
        || disposition.as_deref() == Some("ANSWERED")
        || dialstatus.as_deref() == Some("ANSWER");
    // Asterisk's answer column is only trusted as the time of an answered call: some
    // versions fill it with the start time (AMI `Cdr` event: "the earliest of either the
    // time when Party A answered, or the start time").
    let observed_at_ms = event_time(
        answer.filter(|_| answered),
        r.get("end"),
        r.first(&["start", "calldate"]),
        offset,
    )?;

    let mut parts: Vec<String> = Vec::new();
    if let Some(d) = &disposition {
        parts.push(d.clone());
    }
    if let Some(d) = &dialstatus {
        parts.push(format!("dialstatus={d}"));
    }
    if let Some(c) = &cause {
        parts.push(format!("cause={c}"));
    }
    let raw_code = bounded_raw(parts.join(";"))?;

    let mut codes = Vec::new();
    if answered {
        codes.push(Code::Table("asterisk_disposition", "ANSWERED".into()));
    } else {
        // Cause 0 is "not defined"; cause 16 without answer is the caller's clearing.
        if let Some(c) = cause
            .as_deref()
            .filter(|c| *c != "0" && !is_normal_clearing(c))
        {
            codes.push(Code::Table("q850", bounded("HANGUPCAUSE", c)?));
        }
        if let Some(d) = dialstatus {
            codes.push(Code::Table(
                "asterisk_dialstatus",
                bounded("DIALSTATUS", &d)?,
            ));
        }
        if let Some(d) = disposition {
            codes.push(Code::Table(
                "asterisk_disposition",
                bounded("disposition", &d)?,
            ));
        }
    }
    // Unanswered with only HANGUPCAUSE 0 ("not defined") or 16 (the caller's own
    // clearing), which are skipped above: nothing says how the call ended.
    let codes = some_codes(
        codes,
        "the record has no disposition or DIALSTATUS, and its HANGUPCAUSE says nothing \
             about the number",
    )?;
    let message_id = optional_id(r.first(&["uniqueid", "linkedid"]), "uniqueid")?;
    Ok(call_event(
        number,
        observed_at_ms,
        raw_code,
        codes,
        message_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{CodeBook, shipped_class};
    use crate::connectors::event::{arbitrary_line, assert_codes, read_one};
    use crate::evidence::EvidenceClass;
    use proptest::prelude::*;

    fn class_of(event: Event) -> EvidenceClass {
        shipped_class("pbx", event)
    }

    fn fs_line(cause: &str, answer: &str, billsec: &str) -> String {
        format!(
            "\"Alice\",\"1001\",\"+14155552671\",\"default\",\"2026-03-01 14:05:09\",\"{answer}\",\"2026-03-01 14:05:31\",\"22\",\"{billsec}\",\"{cause}\",\"3f1c2a9e-55b1-4a8e-9d2c-1b7e2f0a6c11\",\"\",\"\",\"PCMU\",\"PCMU\""
        )
    }

    /// Milliseconds of a UTC wall-clock time.
    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        chrono::Utc
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
    }

    /// The event a fresh reader makes of one line.
    fn read<F: LineFormat + Default>(line: &str) -> Event {
        F::default().line(line.as_bytes()).unwrap().unwrap()
    }

    fn fs(line: &str) -> Event {
        read::<FreeswitchCdr>(line)
    }

    #[test]
    fn freeswitch_default_template_lines_read_by_position() {
        let e = fs(&fs_line("USER_BUSY", "", "0"));
        assert_eq!(e.number, "+14155552671");
        assert_eq!(e.kind, EvidenceKind::Call);
        assert_eq!(e.raw_code, "USER_BUSY");
        assert_eq!(e.codes, vec![Code::Table("q850", "USER_BUSY".into())]);
        assert_eq!(
            e.message_id.as_deref(),
            Some("3f1c2a9e-55b1-4a8e-9d2c-1b7e2f0a6c11")
        );
        // Unanswered: the end time, read as UTC by default.
        assert_eq!(e.observed_at_ms, Some(utc_ms(2026, 3, 1, 14, 5, 31)));
        assert!(e.final_state);
        assert_eq!(class_of(e), EvidenceClass::WeakActive);
    }

    #[test]
    fn answered_calls_are_strong_active_and_dated_at_answer() {
        let e = fs(&fs_line("NORMAL_CLEARING", "2026-03-01 14:05:15", "16"));
        assert_eq!(e.codes, vec![Code::Table("sip", "200".into())]);
        assert_eq!(e.observed_at_ms, Some(utc_ms(2026, 3, 1, 14, 5, 15)));
        assert_eq!(class_of(e), EvidenceClass::StrongActive);
        // Billable seconds alone mark an answer, whatever the cause says.
        let e = fs(&fs_line("USER_BUSY", "", "3"));
        assert_eq!(class_of(e), EvidenceClass::StrongActive);
    }

    #[test]
    fn normal_clearing_without_answer_is_neutral() {
        let e = fs(&fs_line("NORMAL_CLEARING", "", "0"));
        assert_eq!(
            e.codes,
            vec![Code::Table("q850", "NORMAL_CLEARING_UNANSWERED".into())]
        );
        assert_eq!(class_of(e), EvidenceClass::Neutral);
        let e = fs(&fs_line("ORIGINATOR_CANCEL", "", "0"));
        assert_eq!(class_of(e), EvidenceClass::Neutral);
    }

    #[test]
    fn documented_hangup_causes_map_through_the_shipped_tables() {
        for (cause, class) in [
            ("UNALLOCATED_NUMBER", EvidenceClass::StrongInactive),
            ("NUMBER_CHANGED", EvidenceClass::StrongInactive),
            ("USER_BUSY", EvidenceClass::WeakActive),
            ("NO_ANSWER", EvidenceClass::WeakActive),
            ("CALL_REJECTED", EvidenceClass::WeakActive),
            ("NO_USER_RESPONSE", EvidenceClass::WeakInactive),
            ("SUBSCRIBER_ABSENT", EvidenceClass::WeakInactive),
            ("DESTINATION_OUT_OF_ORDER", EvidenceClass::WeakInactive),
            ("NORMAL_CIRCUIT_CONGESTION", EvidenceClass::Neutral),
            ("NORMAL_TEMPORARY_FAILURE", EvidenceClass::Neutral),
            ("INVALID_NUMBER_FORMAT", EvidenceClass::Neutral),
            ("GATEWAY_DOWN", EvidenceClass::Neutral),
        ] {
            assert_eq!(class_of(fs(&fs_line(cause, "", "0"))), class, "{cause}");
        }
    }

    const FS_HEADER: &str = "uuid,destination_number,start_stamp,answer_stamp,end_stamp,billsec,hangup_cause,sip_term_status,sip_reason,proto_specific_hangup_cause,sip_hangup_disposition";

    fn fs_named(lines: &[&str]) -> Vec<Result<Option<Event>, ParseError>> {
        let mut r = FreeswitchCdr::default();
        std::iter::once(FS_HEADER)
            .chain(lines.iter().copied())
            .map(|l| r.line(l.as_bytes()))
            .collect()
    }

    fn fs_named_one(line: &str) -> Event {
        let mut out = fs_named(&[line]);
        assert_eq!(out[0], Ok(None), "the header carries no event");
        out.pop().unwrap().unwrap().unwrap()
    }

    #[test]
    fn a_reason_header_cause_beats_the_sip_status() {
        // 486 Busy Here, but the Reason header says cause 1 (unallocated).
        let e = fs_named_one(
            "a1,0015551230001,2026-03-01 09:00:00,,2026-03-01 09:00:04,0,USER_BUSY,486,\"Q.850;cause=1;text=\"\"Unallocated (unassigned) number\"\"\",sip:486,recv_refuse",
        );
        assert_codes(
            &e,
            "USER_BUSY;sip=486;q850=1",
            &[("q850", "1"), ("sip", "486"), ("q850", "USER_BUSY")],
        );
        assert_eq!(class_of(e), EvidenceClass::StrongInactive);
        // Without the Reason, the SIP status decides.
        let e = fs_named_one(
            "a2,0015551230001,2026-03-01 09:00:00,,2026-03-01 09:00:04,0,USER_BUSY,486,,sip:486,recv_refuse",
        );
        assert_eq!(class_of(e), EvidenceClass::WeakActive);
    }

    #[test]
    fn the_sip_status_is_asked_before_the_derived_cause_name() {
        // A 403 from a trunk: FreeSWITCH names it CALL_REJECTED, but 403 is no person's answer.
        let e = fs_named_one(
            "a3,+442071838750,2026-03-01 09:00:00,,2026-03-01 09:00:01,0,CALL_REJECTED,403,,sip:403,send_refuse",
        );
        assert_eq!(e.codes[0], Code::Table("sip", "403".into()));
        assert_eq!(class_of(e), EvidenceClass::Neutral);
        // 404 alone in proto_specific_hangup_cause.
        let e = fs_named_one(
            "a4,+442071838750,2026-03-01 09:00:00,,2026-03-01 09:00:01,0,UNALLOCATED_NUMBER,,,sip:404,recv_refuse",
        );
        assert_eq!(e.codes[0], Code::Table("sip", "404".into()));
        assert_eq!(class_of(e), EvidenceClass::StrongInactive);
    }

    #[test]
    fn header_lines_are_checked() {
        let mut r = FreeswitchCdr::default();
        let e = r.line(b"uuid,destination_number,start_stamp").unwrap_err();
        assert_eq!(e.code, "invalid_header");
        let mut a = AsteriskCdr::default();
        assert_eq!(a.line(b"dst,start,end").unwrap_err().code, "invalid_header");
    }

    #[test]
    fn malformed_freeswitch_lines_get_stable_codes() {
        let mut r = FreeswitchCdr::default();
        for (line, code) in [
            ("\"Alice\",\"1001\",\"+1415", "invalid_csv"),
            ("\"Alice\",\"1001\",\"+14155552671\"", "missing_field"),
            (
                "\"\",\"\",\"\",\"default\",\"2026-03-01 14:05:09\",\"\",\"2026-03-01 14:05:31\",\"22\",\"0\",\"USER_BUSY\"",
                "missing_field",
            ),
            (
                "\"A\",\"1\",\"+14155552671\",\"default\",\"2026-03-01 14:05:09\",\"\",\"yesterday\",\"22\",\"0\",\"USER_BUSY\"",
                "invalid_date",
            ),
            (
                "\"A\",\"1\",\"+14155552671\",\"default\",\"2026-03-01 14:05:09\",\"\",\"\",\"22\",\"lots\",\"USER_BUSY\"",
                "invalid_field",
            ),
            (
                "\"A\",\"1\",\"+14155552671\",\"default\",\"2026-03-01 14:05:09\",\"\",\"\",\"22\",\"0\",\"\"",
                "missing_field",
            ),
        ] {
            assert_eq!(r.line(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
        let long = fs_line("USER_BUSY", "", "0").replace("+14155552671", &"9".repeat(300));
        assert_eq!(r.line(long.as_bytes()).unwrap_err().code, "field_too_long");
    }

    #[test]
    fn the_utc_offset_moves_local_stamps() {
        let off = parse_utc_offset("+02:00").unwrap();
        let mut r = FreeswitchCdr::new(off);
        let e = read_one(&mut r, fs_line("USER_BUSY", "", "0").as_bytes());
        assert_eq!(e.observed_at_ms, Some(utc_ms(2026, 3, 1, 12, 5, 31)));
        assert_eq!(
            parse_utc_offset("-0530").unwrap().local_minus_utc(),
            -19_800
        );
        assert_eq!(parse_utc_offset("Z").unwrap().local_minus_utc(), 0);
        assert_eq!(parse_utc_offset("+3").unwrap().local_minus_utc(), 10_800);
        for bad in ["0200", "+25:00", "+02:75", "+abc", "++1"] {
            assert_eq!(
                parse_utc_offset(bad).unwrap_err().code,
                "invalid_offset",
                "{bad}"
            );
        }
    }

    fn master(dst: &str, answer: &str, billsec: &str, disposition: &str) -> String {
        format!(
            "\"\",\"1001\",\"{dst}\",\"from-internal\",\"\"\"Alice\"\" <1001>\",\"PJSIP/1001-00000004\",\"PJSIP/trunk-00000005\",\"Dial\",\"PJSIP/{dst}@trunk,30\",\"2026-03-02 10:00:00\",{answer},\"2026-03-02 10:00:30\",30,{billsec},\"{disposition}\",\"DOCUMENTATION\",\"1772445600.4\",\"\""
        )
    }

    fn ast(line: &str) -> Event {
        read::<AsteriskCdr>(line)
    }

    #[test]
    fn asterisk_master_csv_lines_read_by_position() {
        let e = ast(&master("+14155552671", "", "0", "BUSY"));
        assert_eq!(e.number, "+14155552671");
        assert_eq!(e.raw_code, "BUSY");
        assert_eq!(
            e.codes,
            vec![Code::Table("asterisk_disposition", "BUSY".into())]
        );
        assert_eq!(e.message_id.as_deref(), Some("1772445600.4"));
        assert_eq!(class_of(e), EvidenceClass::WeakActive);

        let e = ast(&master(
            "+14155552671",
            "\"2026-03-02 10:00:06\"",
            "24",
            "ANSWERED",
        ));
        assert_eq!(e.observed_at_ms, Some(utc_ms(2026, 3, 2, 10, 0, 6)));
        assert_eq!(class_of(e), EvidenceClass::StrongActive);

        for (disposition, class) in [
            ("NO ANSWER", EvidenceClass::Neutral),
            ("FAILED", EvidenceClass::Neutral),
            ("CONGESTION", EvidenceClass::Neutral),
        ] {
            let e = ast(&master("+14155552671", "", "0", disposition));
            assert_eq!(class_of(e), class, "{disposition}");
        }
        // Without uniqueid (loguniqueid off) there is no message id.
        let short = master("+14155552671", "", "0", "BUSY");
        let cut: Vec<&str> = short.split(',').take(17).collect();
        let e = ast(&cut.join(","));
        assert_eq!(e.message_id, None);
    }

    const AST_HEADER: &str =
        "calldate,src,dst,disposition,billsec,uniqueid,linkedid,HANGUPCAUSE,DIALSTATUS";

    fn ast_named(line: &str) -> Event {
        let mut r = AsteriskCdr::default();
        assert_eq!(r.line(AST_HEADER.as_bytes()), Ok(None));
        read_one(&mut r, line.as_bytes())
    }

    #[test]
    fn asterisk_header_exports_order_cause_dialstatus_disposition() {
        let e = ast_named(
            "2026-03-02 10:00:00,1001,+442071838750,NO ANSWER,0,1772445600.9,1772445600.8,20,CHANUNAVAIL",
        );
        assert_codes(
            &e,
            "NO ANSWER;dialstatus=CHANUNAVAIL;cause=20",
            &[
                ("q850", "20"),
                ("asterisk_dialstatus", "CHANUNAVAIL"),
                ("asterisk_disposition", "NO ANSWER"),
            ],
        );
        assert_eq!(class_of(e), EvidenceClass::WeakInactive);

        // No cause: the dial status decides.
        let e = ast_named("2026-03-02 10:00:00,1001,+442071838750,FAILED,0,u1,l1,,CHANUNAVAIL");
        assert_eq!(class_of(e), EvidenceClass::WeakInactive);
        // Cause 1 beats the dial status.
        let e = ast_named("2026-03-02 10:00:00,1001,+442071838750,FAILED,0,u1,l1,1,CONGESTION");
        assert_eq!(class_of(e), EvidenceClass::StrongInactive);
        // Cause 16 without answer (the caller hung up) is skipped: CANCEL decides.
        let e = ast_named("2026-03-02 10:00:00,1001,+442071838750,NO ANSWER,0,u1,l1,16,CANCEL");
        assert_eq!(
            e.codes[0],
            Code::Table("asterisk_dialstatus", "CANCEL".into())
        );
        assert_eq!(class_of(e), EvidenceClass::Neutral);
        // DIALSTATUS ANSWER is an answer.
        let e = ast_named("2026-03-02 10:00:00,1001,+442071838750,ANSWERED,12,u1,l1,16,ANSWER");
        assert_eq!(class_of(e), EvidenceClass::StrongActive);
        // linkedid stands in for a missing uniqueid.
        let e = ast_named("2026-03-02 10:00:00,1001,+442071838750,BUSY,0,,l7,17,BUSY");
        assert_eq!(e.message_id.as_deref(), Some("l7"));
        assert_eq!(class_of(e), EvidenceClass::WeakActive);
    }

    /// Checks the class of each `(code, class)` row in a shipped table.
    fn assert_rows(book: &CodeBook, table: &str, rows: &[(&str, EvidenceClass)]) {
        for (code, class) in rows {
            assert_eq!(book.lookup(table, code), Some(*class), "{table} {code}");
        }
    }

    #[test]
    fn every_dialstatus_has_a_class_and_none_temporary_is_strong_inactive() {
        use EvidenceClass::*;
        let book = CodeBook::shipped();
        assert_rows(
            &book,
            "asterisk_dialstatus",
            &[
                ("ANSWER", StrongActive),
                ("BUSY", WeakActive),
                ("NOANSWER", WeakActive),
                ("CANCEL", Neutral),
                ("CONGESTION", Neutral),
                ("CHANUNAVAIL", WeakInactive),
                ("DONTCALL", WeakActive),
                ("TORTURE", WeakActive),
                ("INVALIDARGS", Neutral),
            ],
        );
        // Temporary states are never hard disconnects.
        for (table, code) in [
            ("q850", "17"),
            ("q850", "USER_BUSY"),
            ("q850", "20"),
            ("q850", "SUBSCRIBER_ABSENT"),
            ("q850", "34"),
            ("q850", "42"),
            ("q850", "SWITCH_CONGESTION"),
            ("sip", "486"),
            ("sip", "480"),
            ("sip", "503"),
            ("asterisk_dialstatus", "CONGESTION"),
            ("asterisk_disposition", "BUSY"),
            ("asterisk_disposition", "CONGESTION"),
        ] {
            assert_ne!(
                book.lookup(table, code),
                Some(EvidenceClass::StrongInactive),
                "{table} {code}"
            );
            assert!(book.lookup(table, code).is_some(), "{table} {code}");
        }
    }

    #[test]
    fn sip_and_q850_tables_hold_the_documented_rows() {
        use EvidenceClass::*;
        let book = CodeBook::shipped();
        assert_rows(
            &book,
            "sip",
            &[
                ("200", StrongActive),
                ("404", StrongInactive),
                ("410", StrongInactive),
                ("604", StrongInactive),
                ("486", WeakActive),
                ("600", WeakActive),
                ("603", WeakActive),
                ("480", WeakInactive),
                ("484", Neutral),
                ("408", Neutral),
                ("403", Neutral),
                ("500", Neutral),
            ],
        );
        assert_rows(
            &book,
            "q850",
            &[
                ("1", StrongInactive),
                ("UNALLOCATED_NUMBER", StrongInactive),
                ("16", StrongActive),
                ("NORMAL_CLEARING", StrongActive),
                ("22", StrongInactive),
                ("487", Neutral),
                ("ORIGINATOR_CANCEL", Neutral),
            ],
        );
        // No default rows: an unknown code must fall through to the next table in order.
        for table in ["sip", "q850", "asterisk_dialstatus", "asterisk_disposition"] {
            assert_eq!(book.lookup(table, "NO_SUCH_CODE"), None, "{table}");
        }
    }

    #[test]
    fn reason_values_are_read() {
        assert_eq!(reason_cause("Q.850;cause=17;text=\"User busy\""), Some(17));
        assert_eq!(reason_cause("q.850 ; cause=1"), Some(1));
        assert_eq!(reason_cause("q850:34"), Some(34));
        assert_eq!(reason_cause("SIP;cause=486"), None);
        assert_eq!(reason_cause("Q.850;cause=900"), None);
        assert_eq!(sip_status("sip:486"), Some(486));
        assert_eq!(sip_status("486"), Some(486));
        assert_eq!(sip_status("sip:4860"), None);
        assert_eq!(sip_status("180"), None);
    }

    /// Found by `fuzz/fuzz_targets/connector_files.rs`: a record whose only cause was a SIP
    /// 200 without an answer gave a final event with no codes.
    #[test]
    fn a_record_without_any_classifiable_cause_is_refused() {
        let header =
            "uuid,destination_number,start_stamp,end_stamp,sip_term_status,sip_hangup_disposition";
        let mut r = FreeswitchCdr::default();
        assert_eq!(r.line(header.as_bytes()), Ok(None));
        let err = r
            .line(b"a4,+442071838750,2026-03-01 09:00:00,2026-03-01 09:00:31,200,send_bye")
            .unwrap_err();
        assert_eq!(err.code, "missing_field");
        // With a cause beside it the record still reads.
        let mut r = FreeswitchCdr::default();
        let _ = r.line(FS_HEADER.as_bytes());
        let e = read_one(
            &mut r,
            b"a5,+442071838750,2026-03-01 09:00:00,,2026-03-01 09:00:31,0,USER_BUSY,200,,,",
        );
        assert_eq!(e.codes, vec![Code::Table("q850", "USER_BUSY".into())]);

        // Asterisk: unanswered, with nothing but HANGUPCAUSE 0 or 16.
        let header = "calldate,dst,billsec,uniqueid,HANGUPCAUSE";
        for cause in ["0", "16", "normal_clearing"] {
            let mut a = AsteriskCdr::default();
            assert_eq!(a.line(header.as_bytes()), Ok(None));
            let line = format!("2026-03-02 10:00:00,+442071838750,0,u1,{cause}");
            let err = a.line(line.as_bytes()).unwrap_err();
            assert_eq!(err.code, "missing_field", "{cause}");
        }
        let mut a = AsteriskCdr::default();
        let _ = a.line(header.as_bytes());
        let e = read_one(&mut a, b"2026-03-02 10:00:00,+442071838750,0,u1,17");
        assert_eq!(e.codes, vec![Code::Table("q850", "17".into())]);
    }

    proptest! {
        #[test]
        fn random_lines_never_panic(bytes in arbitrary_line(300)) {
            let _ = FreeswitchCdr::default().line(&bytes);
            let _ = AsteriskCdr::default().line(&bytes);
            let mut f = FreeswitchCdr::default();
            let _ = f.line(FS_HEADER.as_bytes());
            let _ = f.line(&bytes);
            let mut a = AsteriskCdr::default();
            let _ = a.line(AST_HEADER.as_bytes());
            let _ = a.line(&bytes);
        }

        #[test]
        fn generated_freeswitch_lines_round_trip(
            number in "\\+[1-9][0-9]{6,14}",
            cause in prop::sample::select(vec!["USER_BUSY", "UNALLOCATED_NUMBER", "NO_ANSWER", "SUBSCRIBER_ABSENT", "CALL_REJECTED"]),
            uuid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            secs in 0i64..4_000_000_000,
            name in "[ -~]{0,20}",
        ) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let stamp = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let quoted = name.replace('"', "\"\"");
            let line = format!(
                "\"{quoted}\",\"1001\",\"{number}\",\"default\",\"{stamp}\",\"\",\"{stamp}\",\"0\",\"0\",\"{cause}\",\"{uuid}\",\"\",\"\",\"PCMU\",\"PCMU\""
            );
            let e = FreeswitchCdr::default().line(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(&e.number, &number);
            prop_assert_eq!(e.observed_at_ms, Some(secs * 1000));
            prop_assert_eq!(&e.raw_code, cause);
            prop_assert_eq!(e.codes, vec![Code::Table("q850", cause.to_string())]);
            prop_assert_eq!(e.message_id, Some(uuid));
        }

        #[test]
        fn generated_asterisk_lines_round_trip(
            number in "[1-9][0-9]{6,14}",
            disposition in prop::sample::select(vec!["NO ANSWER", "BUSY", "FAILED", "CONGESTION"]),
            secs in 0i64..4_000_000_000,
            id in "[0-9]{10}\\.[0-9]{1,4}",
        ) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let stamp = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let line = format!(
                "\"\",\"1001\",\"{number}\",\"ctx\",\"\",\"SIP/a-1\",\"\",\"Dial\",\"\",\"{stamp}\",,\"{stamp}\",0,0,\"{disposition}\",\"DOCUMENTATION\",\"{id}\",\"\""
            );
            let e = AsteriskCdr::default().line(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(&e.number, &number);
            prop_assert_eq!(e.observed_at_ms, Some(secs * 1000));
            prop_assert_eq!(&e.raw_code, disposition);
            prop_assert_eq!(e.codes, vec![Code::Table("asterisk_disposition", disposition.to_string())]);
            prop_assert_eq!(e.message_id, Some(id));
        }
    }
}
