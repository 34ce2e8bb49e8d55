//! What every connector reads a payload into: an [`Event`] with the codes to classify it by,
//! or a [`ParseError`] with a stable code; and the small readers the connectors share.

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
