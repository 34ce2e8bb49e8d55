//! Lists about numbers from carriers and lookup services: carrier deactivation lists,
//! reassigned-number database answers, and HLR lookup results (CSV or NDJSON).
//!
//! Deactivation and reassigned lines are `number,date[,…]`, separated by commas, tabs or
//! semicolons (the first of them that appears outside quotes, tabs first), with an optional
//! header. Each event's message id is made from the date (and the answer), so importing the
//! same list again adds nothing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use super::record::{excerpt, split_record};
use super::{Code, Event, LineFormat, MAX_FIELD, ParseError, bounded};
use crate::evidence::EvidenceKind;

/// The separator of a list line: a tab when there is one, else whichever of `,` and `;`
/// comes first outside double quotes (a comma when neither).
fn separator(line: &[u8]) -> char {
    if line.contains(&b'\t') {
        return '\t';
    }
    let mut quoted = false;
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => return ',',
            b';' if !quoted => return ';',
            _ => {}
        }
    }
    ','
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// A header line: number and date fields that hold no digit (and are not both blank).
fn looks_like_header(first: &str, second: &str) -> bool {
    !has_digit(first) && !has_digit(second) && (!first.is_empty() || !second.is_empty())
}

fn field(fields: &[String], i: usize, name: &str) -> Result<String, ParseError> {
    fields
        .get(i)
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ParseError::new("missing_field", format!("the line has no {name}")))
}

/// A list date: `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339.
/// Returns the instant and the UTC calendar date (`YYYY-MM-DD`).
fn parse_day(text: &str) -> Result<(i64, String), ParseError> {
    let t = text.trim();
    let instant = if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).map(|n| n.and_utc())
    } else if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        Some(dt.with_timezone(&Utc))
    } else {
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
            .map(|n| n.and_utc())
    };
    let instant = instant.ok_or_else(|| {
        ParseError::new(
            "invalid_date",
            format!("{:?} is not a date like 2026-03-01 or RFC 3339", excerpt(t)),
        )
    })?;
    Ok((
        instant.timestamp_millis(),
        instant.format("%Y-%m-%d").to_string(),
    ))
}

/// Carrier deactivation lists: `number,date` (more columns are ignored). A line whose number
/// and date fields both hold no digit is a header.
///
/// Each line is a [`EvidenceKind::Deactivation`] event, raw code `DEACTIVATED`, codes
/// `deactivation` `DEACTIVATED`, dated at the date (midnight UTC for a bare date), message id
/// `deactivated:<UTC date>`.
#[derive(Debug, Clone, Default)]
pub struct DeactivationList;

impl DeactivationList {
    /// A reader; it keeps no state between lines.
    pub fn new() -> Self {
        DeactivationList
    }
}

impl LineFormat for DeactivationList {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let Some(l) = DatedLine::read(line, |_| false)? else {
            return Ok(None);
        };
        let message_id = format!("deactivated:{}", l.day);
        Ok(Some(l.event(
            EvidenceKind::Deactivation,
            "deactivation",
            "DEACTIVATED",
            message_id,
        )))
    }
}

/// A `number,date,…` line of a list, read up to its date.
struct DatedLine {
    fields: Vec<String>,
    number: String,
    at: i64,
    /// The UTC calendar date of `at`.
    day: String,
}

impl DatedLine {
    /// `None` for a header: a line `is_header` says is one, or whose number and date fields
    /// hold no digit.
    fn read(line: &[u8], is_header: fn(&[String]) -> bool) -> Result<Option<Self>, ParseError> {
        let fields = split_record(line, separator(line))?;
        let first = fields.first().map(|f| f.trim()).unwrap_or("");
        let second = fields.get(1).map(|f| f.trim()).unwrap_or("");
        if is_header(&fields) || looks_like_header(first, second) {
            return Ok(None);
        }
        let number = bounded("number", &field(&fields, 0, "number")?)?;
        let (at, day) = parse_day(&field(&fields, 1, "date")?)?;
        Ok(Some(DatedLine {
            fields,
            number,
            at,
            day,
        }))
    }

    /// The line's final event, dated at its date, with one code.
    fn event(
        self,
        kind: EvidenceKind,
        table: &'static str,
        code: &str,
        message_id: String,
    ) -> Event {
        Event {
            number: self.number,
            observed_at_ms: Some(self.at),
            kind,
            raw_code: code.into(),
            codes: vec![Code::Table(table, code.into())],
            message_id: Some(message_id),
            final_state: true,
        }
    }
}

/// An answer of a reassigned-numbers database. The US Reassigned Numbers Database answers
/// Yes, No or No Data (FCC DA 20-423) for a number and a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReassignedAnswer {
    /// Permanently disconnected since the date.
    Yes,
    /// No permanent disconnection reported since the date.
    No,
    /// No data for the number over the period.
    NoData,
}

impl ReassignedAnswer {
    /// The code in the `reassigned` table.
    pub fn as_str(self) -> &'static str {
        match self {
            ReassignedAnswer::Yes => "YES",
            ReassignedAnswer::No => "NO",
            ReassignedAnswer::NoData => "NO_DATA",
        }
    }

    /// Reads `yes`/`y`/`true`, `no`/`n`/`false`, `no_data`/`no data`/`no-data`/`nodata`,
    /// in any case.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let t = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        match t.as_str() {
            "yes" | "y" | "true" => Ok(ReassignedAnswer::Yes),
            "no" | "n" | "false" => Ok(ReassignedAnswer::No),
            "no_data" | "nodata" => Ok(ReassignedAnswer::NoData),
            _ => Err(ParseError::new(
                "invalid_answer",
                format!(
                    "{:?} is not a reassigned-number answer: yes, no or no_data",
                    excerpt(text)
                ),
            )),
        }
    }
}

/// Reassigned-number database answers: `number,date,answer`. A line whose answer field is
/// `answer`, `result`, `response` or `status`, or whose number and date hold no digit, is a
/// header.
///
/// Each line is a [`EvidenceKind::Reassigned`] event with raw code `YES`/`NO`/`NO_DATA`,
/// codes `reassigned` <that>, dated at the queried date, message id
/// `reassigned:<UTC date>:<answer>`. The date is the one the query asked about; a `YES` means
/// the disconnection happened on or after it, so the evidence is dated no later than the fact.
#[derive(Debug, Clone, Default)]
pub struct ReassignedAnswers;

impl ReassignedAnswers {
    /// A reader; it keeps no state between lines.
    pub fn new() -> Self {
        ReassignedAnswers
    }
}

impl LineFormat for ReassignedAnswers {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let header_answer = |fields: &[String]| {
            fields.get(2).is_some_and(|f| {
                let third = f.trim().to_ascii_lowercase();
                matches!(third.as_str(), "answer" | "result" | "response" | "status")
            })
        };
        let Some(l) = DatedLine::read(line, header_answer)? else {
            return Ok(None);
        };
        let answer = ReassignedAnswer::parse(&field(&l.fields, 2, "answer")?)?.as_str();
        let message_id = format!("reassigned:{}:{answer}", l.day);
        Ok(Some(l.event(
            EvidenceKind::Reassigned,
            "reassigned",
            answer,
            message_id,
        )))
    }
}

/// Values of hlr-lookups.com's `connectivity_status`.
const CONNECTIVITY: &[&str] = &["CONNECTED", "ABSENT", "INVALID_MSISDN", "UNDETERMINED"];
/// Values of hlrlookup.com's `live_status`.
const LIVE: &[&str] = &[
    "LIVE",
    "DEAD",
    "ABSENT_SUBSCRIBER",
    "NO_TELESERVICE_PROVISIONED",
    "INCONCLUSIVE",
    "NO_COVERAGE",
    "NOT_AVAILABLE_NETWORK_ONLY",
    "NOT_APPLICABLE",
];

/// Whether an HLR result's `data_source` names a live HLR query (`LIVE_HLR`, `live`, …)
/// rather than a cache or a portability database (`HLR_CACHE`, `MNP_DB`, …).
pub fn is_live_source(data_source: Option<&str>) -> bool {
    data_source.is_some_and(|s| {
        let s = s.to_ascii_uppercase();
        s.contains("LIVE") && !s.contains("CACHE")
    })
}

fn hlr_message_id(
    id: Option<&str>,
    status: &str,
    observed_at_ms: Option<i64>,
) -> Result<Option<String>, ParseError> {
    match (id.map(str::trim).filter(|s| !s.is_empty()), observed_at_ms) {
        (Some(id), _) => Ok(Some(bounded("id", id)?)),
        (None, Some(at)) => Ok(Some(format!("hlr:{status}:{at}"))),
        (None, None) => Ok(None),
    }
}

fn hlr_status(status: &str) -> Result<String, ParseError> {
    let s = status.trim();
    if s.is_empty() {
        return Err(ParseError::new("missing_field", "the result has no status"));
    }
    Ok(bounded("status", s)?.to_ascii_uppercase())
}

/// The event of an hlr-lookups.com-style result: `connectivity_status` `CONNECTED`,
/// `ABSENT`, `INVALID_MSISDN` or `UNDETERMINED`, with the result's `data_source`.
///
/// `CONNECTED` and `INVALID_MSISDN` are only taken at full strength from a live HLR query
/// ([`is_live_source`]); from a cache, a portability database, or with no data source they
/// become `CONNECTED_CACHED` / `INVALID_MSISDN_CACHED` (weaker rows of `hlr_connectivity`).
/// hlr-lookups.com documents that portability-only routes report every number `CONNECTED`.
/// The raw code keeps the data source: `CONNECTED;MNP_DB`. Without an `id`, a dated result
/// gets the message id `hlr:<status>:<ms>`.
pub fn connectivity_event(
    number: &str,
    connectivity_status: &str,
    data_source: Option<&str>,
    observed_at_ms: Option<i64>,
    id: Option<&str>,
) -> Result<Event, ParseError> {
    let status = hlr_status(connectivity_status)?;
    let source = data_source.map(str::trim).filter(|s| !s.is_empty());
    let code = match status.as_str() {
        "CONNECTED" | "INVALID_MSISDN" if !is_live_source(source) => format!("{status}_CACHED"),
        _ => status.clone(),
    };
    let raw_code = match source {
        Some(s) => format!("{status};{s}"),
        None => status.clone(),
    };
    // Bounded as a whole, like every other connector's raw code: status and source are each
    // at most MAX_FIELD, but the two together must fit one field too.
    if raw_code.len() > MAX_FIELD {
        return Err(ParseError::new(
            "field_too_long",
            format!(
                "connectivity_status and data_source together are longer than {MAX_FIELD} bytes"
            ),
        ));
    }
    Ok(Event {
        number: hlr_number(number)?,
        observed_at_ms,
        kind: EvidenceKind::Hlr,
        raw_code,
        codes: vec![Code::Table("hlr_connectivity", code)],
        message_id: hlr_message_id(id, &status, observed_at_ms)?,
        final_state: true,
    })
}

/// The event of an hlrlookup.com-style result: `live_status` `LIVE`, `DEAD`,
/// `ABSENT_SUBSCRIBER`, `NO_TELESERVICE_PROVISIONED`, `INCONCLUSIVE`, `NO_COVERAGE`,
/// `NOT_AVAILABLE_NETWORK_ONLY` or `NOT_APPLICABLE`; codes `hlr_live` <status>.
pub fn live_event(
    number: &str,
    live_status: &str,
    observed_at_ms: Option<i64>,
    id: Option<&str>,
) -> Result<Event, ParseError> {
    let status = hlr_status(live_status)?;
    Ok(Event {
        number: hlr_number(number)?,
        observed_at_ms,
        kind: EvidenceKind::Hlr,
        raw_code: status.clone(),
        codes: vec![Code::Table("hlr_live", status.clone())],
        message_id: hlr_message_id(id, &status, observed_at_ms)?,
        final_state: true,
    })
}

/// A status whose family is not named: a connectivity value goes to
/// [`connectivity_event`], a live value to [`live_event`], anything else is looked up in
/// both tables (and refused by the code book until a table knows it).
pub fn status_event(
    number: &str,
    status: &str,
    data_source: Option<&str>,
    observed_at_ms: Option<i64>,
    id: Option<&str>,
) -> Result<Event, ParseError> {
    let upper = hlr_status(status)?;
    if CONNECTIVITY.contains(&upper.as_str()) {
        return connectivity_event(number, &upper, data_source, observed_at_ms, id);
    }
    if LIVE.contains(&upper.as_str()) {
        return live_event(number, &upper, observed_at_ms, id);
    }
    let mut e = live_event(number, &upper, observed_at_ms, id)?;
    e.codes = vec![
        Code::Table("hlr_connectivity", upper.clone()),
        Code::Table("hlr_live", upper),
    ];
    Ok(e)
}

fn hlr_number(number: &str) -> Result<String, ParseError> {
    let n = number.trim();
    if n.is_empty() {
        return Err(ParseError::new("missing_field", "the result has no number"));
    }
    bounded("number", n)
}

/// An HLR result's time in a file: see [`result_time`]; an offset needs its minutes.
fn parse_checked_at(text: &str) -> Result<i64, ParseError> {
    result_time(text, false).ok_or_else(|| bad_time(text.trim()))
}

/// Unix time as HLR providers write it: seconds below 10^11, milliseconds above.
pub fn unix_ms(n: i64) -> Option<i64> {
    if n < 100_000_000_000 {
        n.checked_mul(1000)
    } else {
        Some(n)
    }
}

/// An HLR result's time in Unix milliseconds: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (also with
/// `T`) followed by an offset (`+0300`, `+03:00`; UTC without one), or Unix seconds /
/// milliseconds ([`unix_ms`]). `hours_only_offset` also takes an offset of hours alone
/// (`+03`), as live lookup answers may carry. `None` when it is none of these.
pub fn result_time(text: &str, hours_only_offset: bool) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok().and_then(unix_ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    let with_offset = if hours_only_offset {
        ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
    } else {
        ["%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"]
    };
    for f in with_offset {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt.timestamp_millis());
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Some(Utc.from_utc_datetime(&n).timestamp_millis());
        }
    }
    None
}

fn bad_time(t: &str) -> ParseError {
    ParseError::new(
        "invalid_date",
        format!(
            "{:?} is not RFC 3339 time, YYYY-MM-DD HH:MM:SS or Unix time",
            excerpt(t)
        ),
    )
}

/// The columns of an HLR CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HlrCol {
    Number,
    Status,
    DataSource,
    CheckedAt,
    Id,
    Other,
}

fn hlr_col(name: &str) -> HlrCol {
    match name
        .trim()
        .trim_start_matches('\u{FEFF}')
        .to_ascii_lowercase()
        .as_str()
    {
        "number" | "msisdn" | "phone" | "telephone_number" | "detected_telephone_number" => {
            HlrCol::Number
        }
        "status" | "connectivity_status" | "live_status" => HlrCol::Status,
        "data_source" | "source" => HlrCol::DataSource,
        "checked_at" | "timestamp" | "time" | "observed_at" | "created_at" => HlrCol::CheckedAt,
        "id" | "uuid" | "message_id" => HlrCol::Id,
        _ => HlrCol::Other,
    }
}

/// HLR provider results, one a line: NDJSON objects (a line starting with `{`) or CSV.
///
/// CSV has a header naming `number` (or `msisdn`) and `status` and optionally `data_source`,
/// `checked_at` (or `timestamp`) and `id`; before any header the columns are
/// `number,status,data_source,checked_at,id`. A status is read by its value
/// ([`status_event`]).
///
/// NDJSON objects are single results of the common provider shapes: hlr-lookups.com
/// (`msisdn`, `connectivity_status`, `data_source`, `id`) and hlrlookup.com
/// (`detected_telephone_number` — international digits without `+`, which the reader adds —
/// or `request_parameters.telephone_number`, `live_status`, `uuid`, `timestamp`). A whole
/// batch response (`results` array) is refused: write one result a line.
#[derive(Debug, Clone, Default)]
pub struct HlrLines {
    columns: Option<Vec<HlrCol>>,
}

impl HlrLines {
    /// A reader expecting an optional CSV header, or NDJSON.
    pub fn new() -> Self {
        HlrLines::default()
    }

    fn csv(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let fields = split_record(line, separator(line))?;
        let cols: Vec<HlrCol> = fields.iter().map(|f| hlr_col(f)).collect();
        if cols.contains(&HlrCol::Status) && cols.contains(&HlrCol::Number) {
            self.columns = Some(cols);
            return Ok(None);
        }
        const DEFAULT: [HlrCol; 5] = [
            HlrCol::Number,
            HlrCol::Status,
            HlrCol::DataSource,
            HlrCol::CheckedAt,
            HlrCol::Id,
        ];
        let columns: &[HlrCol] = self.columns.as_deref().unwrap_or(&DEFAULT);
        let get = |want: HlrCol| {
            columns
                .iter()
                .position(|c| *c == want)
                .and_then(|i| fields.get(i))
                .map(|f| f.trim())
                .filter(|f| !f.is_empty())
        };
        let number = get(HlrCol::Number)
            .ok_or_else(|| ParseError::new("missing_field", "the line has no number"))?;
        let status = get(HlrCol::Status)
            .ok_or_else(|| ParseError::new("missing_field", "the line has no status"))?;
        let at = get(HlrCol::CheckedAt).map(parse_checked_at).transpose()?;
        status_event(number, status, get(HlrCol::DataSource), at, get(HlrCol::Id)).map(Some)
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_time(v: Option<&Value>) -> Result<Option<i64>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|n| parse_checked_at(&n.to_string()))
            .transpose()?
            .map(Some)
            .ok_or_else(|| bad_time(&n.to_string())),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse_checked_at(s).map(Some),
        Some(_) => Err(bad_time("a non-scalar value")),
    }
}

impl LineFormat for HlrLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let trimmed = line.trim_ascii_start();
        if !trimmed.starts_with(b"{") {
            return self.csv(line);
        }
        let v: Value = serde_json::from_slice(trimmed)
            .map_err(|e| ParseError::new("invalid_json", format!("not a JSON object: {e}")))?;
        let Value::Object(o) = &v else {
            return Err(ParseError::new("invalid_json", "not a JSON object"));
        };
        if o.contains_key("results") || o.contains_key("body") {
            return Err(ParseError::new(
                "unsupported_shape",
                "a batch response; write one result object a line",
            ));
        }
        let number = text_of(o.get("msisdn"))
            .or_else(|| text_of(o.get("number")))
            .or_else(|| {
                // hlrlookup.com writes the detected number in international digits, no `+`.
                text_of(o.get("detected_telephone_number")).map(|n| {
                    if n.bytes().all(|b| b.is_ascii_digit()) {
                        format!("+{n}")
                    } else {
                        n
                    }
                })
            })
            .or_else(|| text_of(o.get("telephone_number")))
            .or_else(|| {
                text_of(
                    o.get("request_parameters")
                        .and_then(|r| r.get("telephone_number")),
                )
            })
            .ok_or_else(|| ParseError::new("missing_field", "the result has no number"))?;
        let at = match ["checked_at", "timestamp", "created_at"]
            .iter()
            .find(|k| o.get(**k).is_some_and(|v| !v.is_null()))
        {
            Some(k) => json_time(o.get(*k))?,
            None => None,
        };
        let id = text_of(o.get("id")).or_else(|| text_of(o.get("uuid")));
        let source = text_of(o.get("data_source"));
        if let Some(s) = text_of(o.get("connectivity_status")) {
            return connectivity_event(&number, &s, source.as_deref(), at, id.as_deref()).map(Some);
        }
        if let Some(s) = text_of(o.get("live_status")) {
            return live_event(&number, &s, at, id.as_deref()).map(Some);
        }
        if let Some(s) = text_of(o.get("status")) {
            return status_event(&number, &s, source.as_deref(), at, id.as_deref()).map(Some);
        }
        Err(ParseError::new(
            "missing_field",
            "the result has no connectivity_status, live_status or status",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{observe_shipped, shipped_class};
    use crate::connectors::event::{arbitrary_line, read_one};
    use crate::evidence::EvidenceClass;
    use proptest::prelude::*;

    fn class_of(event: Event) -> EvidenceClass {
        shipped_class("pbx", event)
    }

    fn day_ms(y: i32, m: u32, d: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn deactivation_lines_in_every_separator() {
        let mut r = DeactivationList::new();
        assert_eq!(r.line(b"number,date"), Ok(None));
        assert_eq!(r.line(b"\xEF\xBB\xBFmsisdn;deactivated_on"), Ok(None));
        for line in [
            "+14155552671,2026-02-14",
            "+14155552671\t2026-02-14",
            "+14155552671;2026-02-14",
            "\"+1 415 555 2671\",2026-02-14,extra",
        ] {
            let e = read_one(&mut r, line.as_bytes());
            assert!(e.number.ends_with("2671"), "{line}");
            assert_eq!(e.kind, EvidenceKind::Deactivation);
            assert_eq!(e.observed_at_ms, Some(day_ms(2026, 2, 14)));
            assert_eq!(e.message_id.as_deref(), Some("deactivated:2026-02-14"));
            assert_eq!(e.raw_code, "DEACTIVATED");
            assert_eq!(class_of(e), EvidenceClass::StrongInactive);
        }
        let e = read_one(&mut r, b"+14155552671,2026-02-14T09:30:00+02:00");
        assert_eq!(
            e.observed_at_ms,
            Some(day_ms(2026, 2, 14) + 7 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(e.message_id.as_deref(), Some("deactivated:2026-02-14"));
    }

    #[test]
    fn malformed_list_lines_get_stable_codes() {
        let long = format!("{},2026-02-14", "1".repeat(300));
        let mut r = DeactivationList::new();
        for (line, code) in [
            ("+14155552671", "missing_field"),
            (",2026-02-14", "missing_field"),
            ("+14155552671,14/02/2026", "invalid_date"),
            ("+14155552671,2026-02-30", "invalid_date"),
            ("\"+1415,2026-02-14", "invalid_csv"),
            (long.as_str(), "field_too_long"),
        ] {
            assert_eq!(r.line(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
        let mut a = ReassignedAnswers::new();
        for (line, code) in [
            ("+14155552671,2026-01-01,maybe", "invalid_answer"),
            ("+14155552671,2026-01-01", "missing_field"),
            ("+14155552671,someday,yes", "invalid_date"),
        ] {
            assert_eq!(a.line(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
    }

    #[test]
    fn reassigned_answers_read_every_spelling() {
        let mut r = ReassignedAnswers::new();
        assert_eq!(r.line(b"number,date,answer"), Ok(None));
        assert_eq!(r.line(b"phone\tlast_contact\tresult"), Ok(None));
        for (answer, code, class) in [
            ("yes", "YES", EvidenceClass::StrongInactive),
            ("Y", "YES", EvidenceClass::StrongInactive),
            ("TRUE", "YES", EvidenceClass::StrongInactive),
            ("no", "NO", EvidenceClass::Neutral),
            ("n", "NO", EvidenceClass::Neutral),
            ("false", "NO", EvidenceClass::Neutral),
            ("No Data", "NO_DATA", EvidenceClass::Neutral),
            ("no_data", "NO_DATA", EvidenceClass::Neutral),
            ("NO-DATA", "NO_DATA", EvidenceClass::Neutral),
        ] {
            let line = format!("+14155552671,2025-11-30,{answer}");
            let e = read_one(&mut r, line.as_bytes());
            assert_eq!(e.kind, EvidenceKind::Reassigned);
            assert_eq!(e.raw_code, code, "{answer}");
            assert_eq!(e.codes, vec![Code::Table("reassigned", code.into())]);
            assert_eq!(
                e.message_id.as_deref(),
                Some(format!("reassigned:2025-11-30:{code}").as_str())
            );
            assert_eq!(e.observed_at_ms, Some(day_ms(2025, 11, 30)));
            assert_eq!(class_of(e), class, "{answer}");
        }
    }

    #[test]
    fn hlr_connectivity_is_strong_only_from_a_live_hlr() {
        let mut r = HlrLines::new();
        let live = read_one(&mut r, br#"{"id":"f94ef092cb53","msisdn":"+14156226819","connectivity_status":"CONNECTED","data_source":"LIVE_HLR"}"#);
        assert_eq!(live.kind, EvidenceKind::Hlr);
        assert_eq!(live.raw_code, "CONNECTED;LIVE_HLR");
        assert_eq!(live.message_id.as_deref(), Some("f94ef092cb53"));
        assert_eq!(class_of(live), EvidenceClass::StrongActive);
        for source in [
            r#","data_source":"MNP_DB""#,
            r#","data_source":"HLR_CACHE""#,
            "",
        ] {
            let line =
                format!(r#"{{"msisdn":"+14156226819","connectivity_status":"CONNECTED"{source}}}"#);
            let e = read_one(&mut r, line.as_bytes());
            assert_eq!(
                e.codes,
                vec![Code::Table("hlr_connectivity", "CONNECTED_CACHED".into())]
            );
            assert_eq!(class_of(e), EvidenceClass::WeakActive, "{source}");
        }
        for (status, source, class) in [
            ("ABSENT", "LIVE_HLR", EvidenceClass::WeakInactive),
            ("INVALID_MSISDN", "LIVE_HLR", EvidenceClass::StrongInactive),
            ("INVALID_MSISDN", "MNP_DB", EvidenceClass::WeakInactive),
            ("UNDETERMINED", "LIVE_HLR", EvidenceClass::Neutral),
        ] {
            let e = connectivity_event("+14156226819", status, Some(source), None, None).unwrap();
            assert_eq!(class_of(e), class, "{status} {source}");
        }
    }

    #[test]
    fn hlr_live_status_results() {
        let mut r = HlrLines::new();
        let e = read_one(&mut r, br#"{"error":"NONE","uuid":"f066f711-4043-4d54-847d-c273e6491881","request_parameters":{"telephone_number":"+44(7790) 60 60 23"},"detected_telephone_number":"447790606023","live_status":"LIVE","timestamp":"2022-09-08T10:56:03Z"}"#);
        assert_eq!(e.number, "+447790606023");
        assert_eq!(
            e.observed_at_ms,
            Some(
                Utc.with_ymd_and_hms(2022, 9, 8, 10, 56, 3)
                    .unwrap()
                    .timestamp_millis()
            )
        );
        assert_eq!(
            e.message_id.as_deref(),
            Some("f066f711-4043-4d54-847d-c273e6491881")
        );
        assert_eq!(class_of(e), EvidenceClass::StrongActive);
        for (status, class) in [
            ("DEAD", EvidenceClass::StrongInactive),
            ("ABSENT_SUBSCRIBER", EvidenceClass::WeakInactive),
            ("NO_TELESERVICE_PROVISIONED", EvidenceClass::Neutral),
            ("INCONCLUSIVE", EvidenceClass::Neutral),
            ("NO_COVERAGE", EvidenceClass::Neutral),
            ("NOT_AVAILABLE_NETWORK_ONLY", EvidenceClass::Neutral),
        ] {
            let e = live_event("+447790606023", status, None, None).unwrap();
            assert_eq!(class_of(e), class, "{status}");
        }
    }

    #[test]
    fn hlr_csv_with_and_without_a_header() {
        let mut r = HlrLines::new();
        // No header: number,status,data_source,checked_at,id.
        let e = read_one(
            &mut r,
            b"+14156226819,CONNECTED,LIVE_HLR,2026-03-01 08:00:00,h1",
        );
        assert_eq!(e.message_id.as_deref(), Some("h1"));
        assert_eq!(class_of(e), EvidenceClass::StrongActive);
        assert_eq!(r.line(b"msisdn,checked_at,status"), Ok(None));
        let e = read_one(&mut r, b"+14156226819,1772352000,dead");
        assert_eq!(e.observed_at_ms, Some(1_772_352_000_000));
        assert_eq!(e.message_id.as_deref(), Some("hlr:DEAD:1772352000000"));
        assert_eq!(class_of(e), EvidenceClass::StrongInactive);
        // An unknown status is looked up in both tables and refused by the code book.
        let e = read_one(&mut r, b"+14156226819,,ROAMING");
        assert_eq!(e.codes.len(), 2);
        let err = observe_shipped("hlr", e).unwrap_err();
        assert_eq!(err.code, "unknown_code");
    }

    #[test]
    fn malformed_hlr_lines_get_stable_codes() {
        let mut r = HlrLines::new();
        for (line, code) in [
            (r#"{"msisdn":"+1415"#, "invalid_json"),
            (r#"{"msisdn":"+14156226819"}"#, "missing_field"),
            (r#"{"connectivity_status":"CONNECTED"}"#, "missing_field"),
            (r#"{"results":[]}"#, "unsupported_shape"),
            (
                r#"{"msisdn":"+14156226819","live_status":"LIVE","timestamp":"later"}"#,
                "invalid_date",
            ),
            ("+14156226819", "missing_field"),
            ("+14156226819,LIVE,,yesterday", "invalid_date"),
        ] {
            assert_eq!(r.line(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
    }

    /// Found by `fuzz/fuzz_targets/cdr_lines.rs`: a status and a data source each within
    /// MAX_FIELD made a raw code longer than one field.
    #[test]
    fn hlr_raw_code_of_status_and_source_is_bounded_as_a_whole() {
        let source = format!("LIVE_{}", "1".repeat(MAX_FIELD - 5));
        assert_eq!(source.len(), MAX_FIELD);
        let line = format!("+14156226819,CONNECTED,{source},2026-03-01 08:00:00,h1");
        let err = HlrLines::new().line(line.as_bytes()).unwrap_err();
        assert_eq!(err.code, "field_too_long");
        let e = connectivity_event("+14156226819", "ABSENT", Some("LIVE_HLR"), None, None).unwrap();
        assert_eq!(e.raw_code, "ABSENT;LIVE_HLR");
        let longest = "L".repeat(MAX_FIELD - "ABSENT;".len());
        let e = connectivity_event("+14156226819", "ABSENT", Some(&longest), None, None).unwrap();
        assert_eq!(e.raw_code.len(), MAX_FIELD);
    }

    proptest! {
        #[test]
        fn random_lines_never_panic(bytes in arbitrary_line(200)) {
            let _ = DeactivationList::new().line(&bytes);
            let _ = ReassignedAnswers::new().line(&bytes);
            let _ = HlrLines::new().line(&bytes);
            let mut h = HlrLines::new();
            let _ = h.line(b"number,status,data_source,checked_at,id");
            let _ = h.line(&bytes);
        }

        #[test]
        fn generated_list_lines_round_trip(
            number in "\\+[1-9][0-9]{6,14}",
            days in 0i64..40_000,
            sep in prop::sample::select(vec![',', ';', '\t']),
            answer in prop::sample::select(vec![("yes", "YES"), ("No", "NO"), ("no data", "NO_DATA")]),
        ) {
            let date = chrono::DateTime::from_timestamp(days * 86_400, 0).unwrap();
            let day = date.format("%Y-%m-%d").to_string();
            let e = DeactivationList::new()
                .line(format!("{number}{sep}{day}").as_bytes())
                .unwrap()
                .unwrap();
            prop_assert_eq!(&e.number, &number);
            prop_assert_eq!(e.observed_at_ms, Some(days * 86_400_000));
            prop_assert_eq!(e.message_id, Some(format!("deactivated:{day}")));
            let e = ReassignedAnswers::new()
                .line(format!("{number}{sep}{day}{sep}{}", answer.0).as_bytes())
                .unwrap()
                .unwrap();
            prop_assert_eq!(&e.number, &number);
            prop_assert_eq!(e.observed_at_ms, Some(days * 86_400_000));
            prop_assert_eq!(&e.raw_code, answer.1);
            prop_assert_eq!(e.message_id, Some(format!("reassigned:{day}:{}", answer.1)));
        }

        #[test]
        fn generated_hlr_lines_round_trip(
            number in "\\+[1-9][0-9]{6,14}",
            status in prop::sample::select(LIVE.to_vec()),
            id in "[a-f0-9]{12}",
            secs in 1i64..4_000_000_000,
        ) {
            let line = serde_json::json!({"msisdn": number, "live_status": status, "id": id, "timestamp": secs}).to_string();
            let e = HlrLines::new().line(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(&e.number, &number);
            prop_assert_eq!(&e.raw_code, status);
            prop_assert_eq!(e.observed_at_ms, Some(secs * 1000));
            prop_assert_eq!(e.message_id, Some(id));
            prop_assert_eq!(e.codes, vec![Code::Table("hlr_live", status.to_string())]);
        }
    }
}
