//! Reading evidence rows from untrusted text: CSV (with a header) or NDJSON, one row a line.
//!
//! A row is `number, observed_at, source, kind, raw_code[, message_id][, class][, weight]
//! [, code_table]`. The class comes from the generic code table, or from the named table
//! (`map`, `twilio_error`, …) when the row has a `code_table`, unless the row names a class.
//! Every problem is a
//! [`RowError`] with a stable code, so one bad row is reported and the rest go on.

use std::sync::Arc;

use serde::Deserialize;

use crate::codes::{CodeTable, is_final};
use crate::evidence::{EvidenceClass, EvidenceKind, Observation};
use crate::plan::NumberingPlan;

/// Longest accepted `source` and `message_id`.
const MAX_SOURCE: usize = 128;
const MAX_MESSAGE_ID: usize = 256;
const MAX_RAW_CODE: usize = 128;
/// Observations further in the future than this are refused (clock skew allowance).
const FUTURE_SLACK_MS: i64 = 86_400_000;
/// Weights above this are refused: one row should not outweigh thousands.
const MAX_WEIGHT: f64 = 100.0;

/// Named code tables a row may point to with `code_table` (the connectors' code book, which
/// implements this; a trait so rows need not know the connectors).
pub trait NamedTables: std::fmt::Debug + Send + Sync {
    /// Whether a table of this name exists.
    fn has_table(&self, name: &str) -> bool;
    /// Table names, sorted, for error messages.
    fn table_names(&self) -> Vec<String>;
    /// The class table `name` gives `raw_code` of an event of `kind`.
    fn classify_named(
        &self,
        name: &str,
        kind: EvidenceKind,
        raw_code: &str,
    ) -> Option<EvidenceClass>;
}

/// The two row formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    Csv,
    Ndjson,
}

impl std::str::FromStr for RowFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(RowFormat::Csv),
            "ndjson" | "jsonl" | "json" => Ok(RowFormat::Ndjson),
            other => Err(format!(
                "unknown evidence format {other:?}; use csv or ndjson"
            )),
        }
    }
}

/// Why a row was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Stable machine code.
    pub code: &'static str,
    pub message: String,
}

impl RowError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        RowError {
            code,
            message: message.into(),
        }
    }
}

/// What one line gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// The CSV header.
    Header,
    Observation(Observation),
    /// A well-formed row that is not evidence: a non-final delivery state (`ENROUTE`, …),
    /// which must not take the message id of the final receipt.
    NotFinal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Number,
    ObservedAt,
    Source,
    Kind,
    RawCode,
    MessageId,
    Class,
    Weight,
    CodeTable,
    Other,
}

/// Turns lines into observations.
#[derive(Debug)]
pub struct RowReader {
    format: RowFormat,
    header: Option<Vec<Column>>,
    table: CodeTable,
    named: Option<Arc<dyn NamedTables>>,
    plan: NumberingPlan,
    now_ms: i64,
}

/// The fields of a row before checking, whatever the format.
#[derive(Debug, Default, Deserialize)]
struct Fields {
    number: Option<serde_json::Value>,
    observed_at: Option<serde_json::Value>,
    source: Option<String>,
    kind: Option<String>,
    raw_code: Option<serde_json::Value>,
    message_id: Option<serde_json::Value>,
    class: Option<String>,
    weight: Option<serde_json::Value>,
    code_table: Option<String>,
}

fn text_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Null => None,
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

impl RowReader {
    /// A reader; `now_ms` bounds how far in the future an observation may be.
    pub fn new(format: RowFormat, table: CodeTable, now_ms: i64) -> Self {
        RowReader {
            format,
            header: None,
            table,
            named: None,
            plan: NumberingPlan,
            now_ms,
        }
    }

    /// The same reader, with the named tables rows may point to with `code_table`.
    pub fn with_named_tables(mut self, named: Arc<dyn NamedTables>) -> Self {
        self.named = Some(named);
        self
    }

    /// Reads one non-blank line. For CSV the first line must be the header.
    pub fn line(&mut self, line: &[u8]) -> Result<Row, RowError> {
        let fields = match self.format {
            RowFormat::Ndjson => serde_json::from_slice::<Fields>(line).map_err(|e| {
                RowError::new(
                    "invalid_json",
                    format!("not a JSON object of evidence fields: {e}"),
                )
            })?,
            RowFormat::Csv => {
                let record = csv_record(line)?;
                let Some(header) = &self.header else {
                    self.header = Some(parse_header(&record)?);
                    return Ok(Row::Header);
                };
                let mut f = Fields::default();
                for (col, value) in header.iter().zip(&record) {
                    let value = value.trim();
                    if value.is_empty() {
                        continue;
                    }
                    let v = serde_json::Value::String(value.to_owned());
                    match col {
                        Column::Number => f.number = Some(v),
                        Column::ObservedAt => f.observed_at = Some(v),
                        Column::Source => f.source = Some(value.to_owned()),
                        Column::Kind => f.kind = Some(value.to_owned()),
                        Column::RawCode => f.raw_code = Some(v),
                        Column::MessageId => f.message_id = Some(v),
                        Column::Class => f.class = Some(value.to_owned()),
                        Column::Weight => f.weight = Some(v),
                        Column::CodeTable => f.code_table = Some(value.to_owned()),
                        Column::Other => {}
                    }
                }
                f
            }
        };
        self.check(fields)
    }

    fn check(&self, f: Fields) -> Result<Row, RowError> {
        let number_text = f
            .number
            .as_ref()
            .and_then(text_of)
            .ok_or_else(|| RowError::new("missing_number", "the row has no number"))?;
        let number = self
            .plan
            .parse_line(number_text.as_bytes(), None)
            .map_err(|e| RowError::new("invalid_number", format!("{number_text:?}: {e}")))?;
        let observed_at_ms =
            parse_time(f.observed_at.as_ref().ok_or_else(|| {
                RowError::new("missing_observed_at", "the row has no observed_at")
            })?)?;
        if observed_at_ms > self.now_ms + FUTURE_SLACK_MS {
            return Err(RowError::new(
                "observed_in_future",
                "observed_at is more than a day in the future",
            ));
        }
        let source = f
            .source
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| RowError::new("missing_source", "the row has no source"))?;
        if source.len() > MAX_SOURCE || source.chars().any(char::is_control) {
            return Err(RowError::new(
                "invalid_source",
                format!("source must be 1 to {MAX_SOURCE} printable characters"),
            ));
        }
        let kind: EvidenceKind = f
            .kind
            .ok_or_else(|| RowError::new("missing_kind", "the row has no kind"))?
            .parse()
            .map_err(|e| RowError::new("unknown_kind", e))?;
        let raw_code = f.raw_code.as_ref().and_then(text_of).unwrap_or_default();
        if raw_code.len() > MAX_RAW_CODE {
            return Err(RowError::new("invalid_raw_code", "raw_code is too long"));
        }
        let explicit: Option<EvidenceClass> = match f.class.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(c.parse().map_err(|e| RowError::new("unknown_class", e))?),
        };
        let class = match explicit {
            Some(c) => c,
            None if raw_code.is_empty() => {
                return Err(RowError::new(
                    "missing_raw_code",
                    "the row has neither a raw_code nor a class",
                ));
            }
            None => {
                if !is_final(kind, &raw_code) {
                    return Ok(Row::NotFinal);
                }
                self.classify(kind, &raw_code, f.code_table.as_deref())?
                    .ok_or_else(|| {
                    RowError::new(
                        "unknown_code",
                        format!(
                            "no class for {kind} code {raw_code:?}: add it to a code table or give the row a class"
                        ),
                    )
                })?
            }
        };
        let message_id = f.message_id.as_ref().and_then(text_of);
        if message_id
            .as_ref()
            .is_some_and(|m| m.len() > MAX_MESSAGE_ID)
        {
            return Err(RowError::new(
                "invalid_message_id",
                "message_id is too long",
            ));
        }
        let weight = match f.weight.as_ref().and_then(text_of) {
            None => 1.0,
            Some(w) => w
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w > 0.0 && *w <= MAX_WEIGHT)
                .ok_or_else(|| {
                    RowError::new(
                        "invalid_weight",
                        format!("weight must be a number above 0 and at most {MAX_WEIGHT}"),
                    )
                })?,
        };
        Ok(Row::Observation(Observation {
            number,
            observed_at_ms,
            source,
            kind,
            raw_code,
            class,
            weight,
            message_id,
        }))
    }
}

impl RowReader {
    /// The class of a raw code: from the named table when the row names one, else from the
    /// generic table. `Ok(None)` when the table has no class for it.
    fn classify(
        &self,
        kind: EvidenceKind,
        raw_code: &str,
        code_table: Option<&str>,
    ) -> Result<Option<EvidenceClass>, RowError> {
        let Some(name) = code_table.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(self.table.classify(kind, raw_code));
        };
        match &self.named {
            Some(named) if named.has_table(name) => Ok(named.classify_named(name, kind, raw_code)),
            Some(named) => Err(RowError::new(
                "unknown_code_table",
                format!(
                    "code_table {name:?} is not a code table (have: {})",
                    named.table_names().join(", ")
                ),
            )),
            None => Err(RowError::new(
                "unknown_code_table",
                format!("code_table {name:?}: this reader has no named code tables"),
            )),
        }
    }
}

/// Splits one CSV line (RFC 4180: commas, fields in double quotes with `""` for a quote),
/// with the connectors' splitter; evidence rows must be UTF-8.
fn csv_record(line: &[u8]) -> Result<Vec<String>, RowError> {
    std::str::from_utf8(line).map_err(|_| RowError::new("invalid_csv", "the line is not UTF-8"))?;
    crate::connectors::split_record(line, ',').map_err(|e| RowError {
        code: e.code,
        message: e.message,
    })
}

fn parse_header(record: &[String]) -> Result<Vec<Column>, RowError> {
    let cols: Vec<Column> = record
        .iter()
        .map(|h| {
            match h
                .trim()
                .trim_start_matches('\u{FEFF}')
                .to_ascii_lowercase()
                .as_str()
            {
                "number" | "msisdn" | "phone" => Column::Number,
                "observed_at" | "time" | "timestamp" => Column::ObservedAt,
                "source" => Column::Source,
                "kind" => Column::Kind,
                "raw_code" | "code" | "status" => Column::RawCode,
                "message_id" => Column::MessageId,
                "class" => Column::Class,
                "weight" => Column::Weight,
                "code_table" | "table" => Column::CodeTable,
                _ => Column::Other,
            }
        })
        .collect();
    for (need, name) in [
        (Column::Number, "number"),
        (Column::ObservedAt, "observed_at"),
        (Column::Source, "source"),
        (Column::Kind, "kind"),
    ] {
        if !cols.contains(&need) {
            return Err(RowError::new(
                "invalid_header",
                format!(
                    "the CSV header needs the columns number, observed_at, source, kind and raw_code (or class); {name} is missing"
                ),
            ));
        }
    }
    if !cols.contains(&Column::RawCode) && !cols.contains(&Column::Class) {
        return Err(RowError::new(
            "invalid_header",
            "the CSV header needs a raw_code or a class column",
        ));
    }
    Ok(cols)
}

/// RFC 3339 (`2026-11-01T10:00:00Z`, any offset), `YYYY-MM-DD HH:MM:SS` (UTC), or Unix time
/// in seconds or milliseconds.
fn parse_time(v: &serde_json::Value) -> Result<i64, RowError> {
    let bad = |t: &str| {
        RowError::new(
            "invalid_observed_at",
            format!("{t:?} is not RFC 3339 time or Unix seconds/milliseconds"),
        )
    };
    let text = text_of(v).ok_or_else(|| bad(""))?;
    if let Ok(n) = text.parse::<i64>() {
        // Below 10^11 it is seconds (until the year 5138), above it milliseconds.
        let ms = if n.abs() < 100_000_000_000 {
            n.checked_mul(1000)
        } else {
            Some(n)
        };
        return ms.filter(|ms| *ms > 0).ok_or_else(|| bad(&text));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
        return Ok(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(bad(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn csv_reader() -> RowReader {
        let mut r = RowReader::new(RowFormat::Csv, CodeTable::generic(), NOW);
        assert_eq!(
            r.line(b"number,observed_at,source,kind,raw_code,message_id,class,weight"),
            Ok(Row::Header)
        );
        r
    }

    fn obs(row: Result<Row, RowError>) -> Observation {
        match row {
            Ok(Row::Observation(o)) => o,
            other => panic!("expected an observation, got {other:?}"),
        }
    }

    #[test]
    fn csv_rows_are_classified_by_the_code_table() {
        let mut r = csv_reader();
        let o = obs(r.line(b"+14155552671,2026-11-01T10:00:00Z,smsc-1,sms_dlr,DELIVRD,abc,,"));
        assert_eq!(o.number.to_string(), "+14155552671");
        assert_eq!(o.observed_at_ms, 1_793_527_200_000);
        assert_eq!(o.class, EvidenceClass::StrongActive);
        assert_eq!(o.message_id.as_deref(), Some("abc"));
        assert_eq!(o.weight, 1.0);
        // An explicit class wins over the table; quoted fields and seconds work.
        let o = obs(r.line(b"\"+1 415 555 2671\",1761991200,sw,call,486,,weak_inactive,2.5"));
        assert_eq!(
            (o.class, o.weight, o.observed_at_ms),
            (EvidenceClass::WeakInactive, 2.5, 1_761_991_200_000)
        );
    }

    #[test]
    fn rows_may_name_the_code_table_of_their_raw_code() {
        let book = std::sync::Arc::new(crate::connectors::codebook::CodeBook::shipped());
        let mut r = RowReader::new(RowFormat::Csv, CodeTable::generic(), NOW)
            .with_named_tables(book.clone());
        r.line(b"number,observed_at,source,kind,raw_code,code_table")
            .unwrap();
        // A MAP-coded route's receipt: unknown subscriber.
        let o = obs(r.line(b"+14155552671,1761991200,smsc,sms_dlr,UNDELIV:001,map"));
        assert_eq!(
            (o.class, o.raw_code.as_str()),
            (EvidenceClass::StrongInactive, "UNDELIV:001")
        );
        // Without a table the generic one decides, as before.
        let e = r
            .line(b"+14155552671,1761991200,smsc,sms_dlr,UNDELIV:001,")
            .unwrap_err();
        assert_eq!(e.code, "unknown_code");
        // A table that does not exist, or a code the table does not know.
        let e = r
            .line(b"+14155552671,1761991200,smsc,sms_dlr,UNDELIV:001,nope")
            .unwrap_err();
        assert_eq!(e.code, "unknown_code_table");
        assert!(e.message.contains("map"), "{}", e.message);
        let e = r
            .line(b"+14155552671,1761991200,pbx,call,31337,q850")
            .unwrap_err();
        assert_eq!(e.code, "unknown_code");
        // Non-final states stay non-final.
        assert_eq!(
            r.line(b"+14155552671,1761991200,smsc,sms_dlr,ENROUTE,map")
                .unwrap(),
            Row::NotFinal
        );
        // NDJSON names it the same way; a reader without named tables refuses the name.
        let mut j =
            RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW).with_named_tables(book);
        let o = obs(j.line(br#"{"number":"+14155552671","observed_at":1761991200,"source":"tw","kind":"sms_dlr","raw_code":"undelivered:30005","code_table":"twilio_error"}"#));
        assert_eq!(o.class, EvidenceClass::StrongInactive);
        let mut bare = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW);
        let e = bare.line(br#"{"number":"+14155552671","observed_at":1761991200,"source":"tw","kind":"sms_dlr","raw_code":"UNDELIV:001","code_table":"map"}"#).unwrap_err();
        assert_eq!(e.code, "unknown_code_table");
    }

    #[test]
    fn ndjson_rows_take_strings_or_numbers() {
        let mut r = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW);
        let o = obs(r.line(br#"{"number":"+33612345678","observed_at":1761991200000,"source":"hlr","kind":"hlr","raw_code":"ABSENT"}"#));
        assert_eq!(
            (o.class, o.observed_at_ms),
            (EvidenceClass::WeakInactive, 1_761_991_200_000)
        );
        let o = obs(r.line(br#"{"number":"+33612345678","observed_at":"2026-11-01 10:00:00","source":"carrier","kind":"deactivation","raw_code":"D1","message_id":42}"#));
        assert_eq!(o.class, EvidenceClass::StrongInactive);
        assert_eq!(o.message_id.as_deref(), Some("42"));
    }

    #[test]
    fn non_final_delivery_states_are_not_evidence() {
        let mut r = csv_reader();
        assert_eq!(
            r.line(b"+14155552671,1761991200,smsc,sms_dlr,ENROUTE,m1,,"),
            Ok(Row::NotFinal)
        );
    }

    #[test]
    fn every_bad_row_gets_a_stable_code() {
        let cases: &[(&[u8], &str)] = &[
            (b"hello,1761991200,s,sms_dlr,DELIVRD,,,", "invalid_number"),
            (b",1761991200,s,sms_dlr,DELIVRD,,,", "missing_number"),
            (
                b"+14155552671,yesterday,s,sms_dlr,DELIVRD,,,",
                "invalid_observed_at",
            ),
            (b"+14155552671,,s,sms_dlr,DELIVRD,,,", "missing_observed_at"),
            (
                b"+14155552671,4102444800,s,sms_dlr,DELIVRD,,,",
                "observed_in_future",
            ),
            (
                b"+14155552671,1761991200,,sms_dlr,DELIVRD,,,",
                "missing_source",
            ),
            (b"+14155552671,1761991200,s,fax,DELIVRD,,,", "unknown_kind"),
            (
                b"+14155552671,1761991200,s,sms_dlr,WHATEVER,,,",
                "unknown_code",
            ),
            (b"+14155552671,1761991200,s,sms_dlr,,,,", "missing_raw_code"),
            (
                b"+14155552671,1761991200,s,sms_dlr,DELIVRD,,loud,",
                "unknown_class",
            ),
            (
                b"+14155552671,1761991200,s,sms_dlr,DELIVRD,,,-1",
                "invalid_weight",
            ),
            (
                b"+14155552671,1761991200,s,sms_dlr,DELIVRD,,,1000",
                "invalid_weight",
            ),
            (
                b"+14155552671,1761991200,s,sms_dlr,DELIVRD,,,NaN",
                "invalid_weight",
            ),
        ];
        for (line, code) in cases {
            let mut r = csv_reader();
            let got = r.line(line);
            assert_eq!(
                got.as_ref().err().map(|e| e.code),
                Some(*code),
                "{}: {got:?}",
                String::from_utf8_lossy(line)
            );
        }
        let mut j = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW);
        assert_eq!(j.line(b"{not json").unwrap_err().code, "invalid_json");
        assert_eq!(j.line(b"[1,2]").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn csv_fields_follow_rfc_4180_quoting() {
        assert_eq!(
            csv_record(b"a,\"b,c\",\"d\"\"e\",,f").unwrap(),
            ["a", "b,c", "d\"e", "", "f"]
        );
        assert_eq!(csv_record(b"").unwrap(), [""]);
        assert_eq!(csv_record(b" \"x\" ,y").unwrap(), ["x ", "y"]);
        assert_eq!(
            csv_record(b"a\"b,c").unwrap(),
            ["a\"b", "c"],
            "a quote inside a bare field is kept"
        );
    }

    #[test]
    fn a_csv_header_must_name_the_required_columns() {
        let mut r = RowReader::new(RowFormat::Csv, CodeTable::generic(), NOW);
        let e = r.line(b"number,observed_at,kind,raw_code").unwrap_err();
        assert_eq!(e.code, "invalid_header");
        assert!(e.message.contains("source"));
    }

    proptest::proptest! {
        #[test]
        fn reading_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut c = csv_reader();
            let _ = c.line(&bytes);
            let mut j = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW);
            let _ = j.line(&bytes);
        }
    }
}
