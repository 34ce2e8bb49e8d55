//! What every connector reads a payload into: an [`Event`] with the codes to classify it by,
//! or a [`ParseError`] with a stable code; and the small readers the connectors share.

use serde_json::{Map, Value};

use crate::evidence::EvidenceKind;

/// Longest text kept from any one field of a payload (numbers, ids, codes).
pub const MAX_FIELD: usize = 256;

/// Where a code is looked up. A connector lists the places in order; the first table that
/// knows the code decides the class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A shipped table, by name (the file stem under `crates/numcheck-core/codes/`), and the
    /// code as the system wrote it. Codes compare case-insensitively, after trimming.
    Table(&'static str, String),
    /// An SMPP receipt's `err:` value. Its meaning depends on the route, so the table is
    /// chosen per connector in config (`map` by default; `twilio_smpp`, …).
    SmppErr(String),
}

/// One fact read from a system's output, before classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The number as the system wrote it (`+14155552671`, `14155552671`, `0044…`); the
    /// numbering plan normalises it, with the connector's default region for national forms.
    pub number: String,
    /// When it happened, milliseconds since the Unix epoch (UTC), when the payload says;
    /// `None` means "when we received it".
    pub observed_at_ms: Option<i64>,
    pub kind: EvidenceKind,
    /// The code kept on the observation, as the system gave it: `DELIVRD`,
    /// `UNDELIV:001` (stat and err of a receipt), `30003`, `USER_BUSY`, `486;cause=17`, ….
    pub raw_code: String,
    /// Where to look the class up, in order.
    pub codes: Vec<Code>,
    /// The system's id of the message or call: with the connector's name it makes the
    /// observation's identity, so a retried callback or a re-imported log counts once.
    pub message_id: Option<String>,
    /// Whether this is a final state. Non-final states (`ENROUTE`, `queued`, `sent`, Kannel
    /// DLR type 4/8 …) are read and counted, never stored as evidence.
    pub final_state: bool,
}

impl Event {
    /// An SMS delivery report: the codes come with the raw code they were read from.
    pub(crate) fn sms_dlr(
        number: String,
        observed_at_ms: Option<i64>,
        message_id: Option<String>,
        (raw_code, codes): (String, Vec<Code>),
        final_state: bool,
    ) -> Event {
        Event {
            number,
            observed_at_ms,
            kind: EvidenceKind::SmsDlr,
            raw_code,
            codes,
            message_id,
            final_state,
        }
    }
}

/// Why a payload or line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Stable machine code, e.g. `missing_field`, `invalid_date`, `invalid_json`.
    pub code: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ParseError {}

/// A line-oriented file format (logs, CDR CSV, lists, one recorded callback a line).
pub trait LineFormat: Send + std::fmt::Debug {
    /// Reads one non-blank line (without its line ending). `Ok(None)` for lines that carry no
    /// event: a CSV header, a log line about something else.
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError>;
}

/// Decodes `application/x-www-form-urlencoded` text (also a URL's query) into pairs.
pub fn form_pairs(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name` among form pairs (names compare case-sensitively, as the
/// systems send them), trimmed; `None` when absent or empty.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Truncation-free bound check for a field: refuses values longer than [`MAX_FIELD`].
pub fn bounded(name: &str, value: &str) -> Result<String, ParseError> {
    if value.len() > MAX_FIELD {
        return Err(ParseError::new(
            "field_too_long",
            format!("{name} is longer than {MAX_FIELD} bytes"),
        ));
    }
    Ok(value.to_owned())
}

/// A number written as bare international digits without `+` (`41793026727`, as Infobip's
/// `to` and Vonage's `msisdn` are) gets its `+`, so the numbering plan reads it as
/// international. Anything else is passed on as written.
pub(crate) fn international(number: String) -> String {
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !number.starts_with('0')
    {
        format!("+{number}")
    } else {
        number
    }
}

/// A JSON body that must be one object; `must_be` says so in the error when it is not.
pub(crate) fn json_object(
    body: &[u8],
    must_be: &'static str,
) -> Result<Map<String, Value>, ParseError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ParseError::new("invalid_json", format!("not JSON: {e}")))?;
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(ParseError::new("invalid_json", must_be)),
    }
}

/// A string (or number) member of a JSON object, trimmed; `None` when absent, null or empty.
pub(crate) fn json_text(
    obj: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ParseError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ParseError::new(
            "invalid_field",
            format!("{name} is neither a string nor a number"),
        )),
    }
}

/// The numeric error code that comes beside a status (Twilio's `ErrorCode`, Vonage's
/// `err-code`): digits only, and `0` (or `00…`) means no error.
pub(crate) fn error_code(name: &str, value: Option<&str>) -> Result<Option<String>, ParseError> {
    let Some(v) = value else { return Ok(None) };
    let v = bounded(name, v)?;
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            "invalid_field",
            format!("{name} {v:?} is not a number"),
        ));
    }
    Ok((!v.bytes().all(|b| b == b'0')).then_some(v))
}

/// The raw code and the codes of a status that may come with an error code: `status` or
/// `status:error`; the error's table first when there is one, then the status's.
pub(crate) fn status_codes(
    status: String,
    error: Option<String>,
    status_table: &'static str,
    error_table: &'static str,
) -> (String, Vec<Code>) {
    let mut codes = Vec::with_capacity(2);
    let raw_code = match error {
        Some(e) => {
            let raw = format!("{status}:{e}");
            codes.push(Code::Table(error_table, e));
            raw
        }
        None => status.clone(),
    };
    codes.push(Code::Table(status_table, status));
    (raw_code, codes)
}

/// For tests: form pairs with names drawn from `names` and values matching `value`.
#[cfg(test)]
pub(crate) fn arbitrary_form_pairs(
    names: &'static [&'static str],
    value: &'static str,
) -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
    use proptest::strategy::Strategy;
    proptest::collection::vec((proptest::sample::select(names), value), 0..8)
        .prop_map(|raw| raw.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// For tests: lines of arbitrary bytes, up to `max` long.
#[cfg(test)]
pub(crate) fn arbitrary_line(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::num::u8::ANY, 0..max)
}

/// For tests: checks an event's raw code and its codes, `(table, code)` in order.
#[cfg(test)]
pub(crate) fn assert_codes(e: &Event, raw_code: &str, codes: &[(&'static str, &str)]) {
    assert_eq!(e.raw_code, raw_code);
    let want: Vec<Code> = codes
        .iter()
        .map(|(t, c)| Code::Table(t, (*c).to_owned()))
        .collect();
    assert_eq!(e.codes, want);
}

/// For tests: the event a line must give.
#[cfg(test)]
pub(crate) fn read_one(format: &mut impl LineFormat, line: &[u8]) -> Event {
    format.line(line).unwrap().unwrap()
}
