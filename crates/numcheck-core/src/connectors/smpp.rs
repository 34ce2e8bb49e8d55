//! SMPP 3.4 delivery receipts: the text an SMSC puts in the `short_message` of a
//! `deliver_sm` receipt (SMPP 3.4, Appendix B), read into a [`Receipt`] and turned into an
//! [`Event`].
//!
//! The appendix gives the shape `id:… sub:… dlvrd:… submit date:YYMMDDhhmm done
//! date:YYMMDDhhmm stat:… err:… text:…` but calls it an example, and SMSCs differ: fields
//! come reordered, missing or added, field names in any case, ids in hex or decimal, dates
//! with or without seconds. [`parse_receipt`] accepts all of that:
//!
//! * a field starts at a word `name:` (letters, digits, `_`, `-`), or at `submit date:` /
//!   `done date:` (the two names with a space; `submit_date:` and `done_date:` also work);
//!   a value runs to the next field;
//! * `text:` takes the rest of the receipt, whatever it holds;
//! * the first of a repeated field wins; unknown fields are skipped;
//! * dates are `YYMMDDhhmm` or `YYMMDDhhmmss`, read as UTC in the years 2000–2099;
//! * only `stat:` is required.

use chrono::NaiveDate;

use super::{Code, Event, LineFormat, MAX_FIELD, ParseError, bounded};
use crate::evidence::EvidenceKind;

/// The code table of receipt message states (`codes/smpp_stat.csv`).
pub const STAT_TABLE: &str = "smpp_stat";

/// One delivery receipt, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The SMSC's message id (`id:`), as written (hex or decimal), trimmed.
    pub id: Option<String>,
    /// Messages originally submitted (`sub:`).
    pub sub: Option<u32>,
    /// Messages delivered (`dlvrd:`).
    pub dlvrd: Option<u32>,
    /// `submit date:` in milliseconds since the Unix epoch (UTC).
    pub submit_date_ms: Option<i64>,
    /// `done date:` in milliseconds since the Unix epoch (UTC).
    pub done_date_ms: Option<i64>,
    /// The message state (`stat:`), upper-cased: `DELIVRD`, `UNDELIV`, ….
    pub stat: String,
    /// The error code (`err:`), as written and trimmed (`001`, `0dc`, `000`).
    pub err: Option<String>,
    /// The start of the message (`text:`), at most [`MAX_FIELD`] bytes of it.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Sub,
    Dlvrd,
    Submit,
    Done,
    Stat,
    Err,
    Text,
    Other,
}

impl Key {
    fn from_name(name: &str) -> Key {
        match name.to_ascii_lowercase().as_str() {
            "id" => Key::Id,
            "sub" => Key::Sub,
            "dlvrd" => Key::Dlvrd,
            "submit date" | "submit_date" | "submitdate" => Key::Submit,
            "done date" | "done_date" | "donedate" => Key::Done,
            "stat" => Key::Stat,
            "err" => Key::Err,
            "text" => Key::Text,
            _ => Key::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Key::Id => "id",
            Key::Sub => "sub",
            Key::Dlvrd => "dlvrd",
            Key::Submit => "submit date",
            Key::Done => "done date",
            Key::Stat => "stat",
            Key::Err => "err",
            Key::Text => "text",
            Key::Other => "field",
        }
    }
}

/// Splits `text` into whitespace-separated words with their byte offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, &text[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// If `word` starts a field (`name:rest`), its name and the rest of the word.
fn field_start(word: &str) -> Option<(&str, &str)> {
    let colon = word.find(':')?;
    let name = &word[..colon];
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| (name, &word[colon + 1..]))
}

/// Reads a receipt's text. Fails with `missing_field` when there is no `stat:`, with
/// `invalid_date` for a date that is not `YYMMDDhhmm[ss]` or not a real time, and with
/// `field_too_long` for a field (other than `text:`) longer than [`MAX_FIELD`].
pub fn parse_receipt(text: &str) -> Result<Receipt, ParseError> {
    let ws = words(text);
    let mut fields: Vec<(Key, String)> = Vec::new();
    let mut current: Option<(Key, String)> = None;
    let mut i = 0;
    while i < ws.len() {
        let (_, word) = ws[i];
        // `submit date:` / `done date:` are the two names with a space in them.
        let lower = word.to_ascii_lowercase();
        let spaced = if (lower == "submit" || lower == "done") && i + 1 < ws.len() {
            let next = ws[i + 1].1;
            next.get(..5)
                .filter(|p| p.eq_ignore_ascii_case("date:"))
                .map(|_| (format!("{lower} date"), &next[5..]))
        } else {
            None
        };
        let start = match spaced {
            Some((name, rest)) => {
                i += 1;
                Some((Key::from_name(&name), rest))
            }
            None => field_start(word).map(|(name, rest)| (Key::from_name(name), rest)),
        };
        match start {
            Some((Key::Text, _)) => {
                // `text:` consumes the rest of the receipt, spaces and colons included.
                let (t_off, t_word) = ws[i];
                let colon = t_word.find(':').map_or(0, |c| c + 1);
                let rest = text[t_off + colon..].trim();
                if let Some(done) = current.take() {
                    fields.push(done);
                }
                fields.push((Key::Text, truncate(rest, MAX_FIELD).to_owned()));
                break;
            }
            Some((key, rest)) => {
                if let Some(done) = current.take() {
                    fields.push(done);
                }
                current = Some((key, rest.to_owned()));
            }
            None => {
                // A word that does not start a field continues the current value.
                if let Some((key, value)) = current.as_mut() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(word);
                    if value.len() > MAX_FIELD && *key != Key::Other {
                        return Err(too_long(*key));
                    }
                    if *key == Key::Other {
                        // Unknown fields are skipped: keep nothing of them.
                        value.clear();
                    }
                }
            }
        }
        i += 1;
    }
    if let Some(done) = current.take() {
        fields.push(done);
    }

    let mut r = Receipt::default();
    let mut stat: Option<String> = None;
    let mut seen = Vec::new();
    for (key, value) in fields {
        if key == Key::Other || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let value = value.trim();
        if key != Key::Text && value.len() > MAX_FIELD {
            return Err(too_long(key));
        }
        let non_empty = (!value.is_empty()).then_some(value);
        match key {
            Key::Id => r.id = non_empty.map(str::to_owned),
            Key::Sub => r.sub = non_empty.and_then(|v| v.parse().ok()),
            Key::Dlvrd => r.dlvrd = non_empty.and_then(|v| v.parse().ok()),
            Key::Submit => r.submit_date_ms = non_empty.map(parse_date).transpose()?,
            Key::Done => r.done_date_ms = non_empty.map(parse_date).transpose()?,
            Key::Stat => stat = non_empty.map(str::to_ascii_uppercase),
            Key::Err => r.err = non_empty.map(str::to_owned),
            Key::Text => r.text = non_empty.map(str::to_owned),
            Key::Other => {}
        }
    }
    r.stat = stat.ok_or_else(|| ParseError::new("missing_field", "the receipt has no stat:"))?;
    Ok(r)
}

fn too_long(key: Key) -> ParseError {
    ParseError::new(
        "field_too_long",
        format!("{} is longer than {MAX_FIELD} bytes", key.name()),
    )
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `YYMMDDhhmm` or `YYMMDDhhmmss` (SMPP 3.4 Appendix B gives the 10-digit form; many SMSCs
/// add seconds), read as UTC, years 2000–2099, to milliseconds since the epoch.
pub fn parse_date(value: &str) -> Result<i64, ParseError> {
    let v = value.trim();
    let bad = || ParseError::new("invalid_date", format!("{v:?} is not YYMMDDhhmm[ss]"));
    if !(v.len() == 10 || v.len() == 12) || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |at: usize| -> u32 { v[at..at + 2].parse().unwrap_or(u32::MAX) };
    let seconds = if v.len() == 12 { n(10) } else { 0 };
    NaiveDate::from_ymd_opt(2000 + n(0) as i32, n(2), n(4))
        .and_then(|d| d.and_hms_opt(n(6), n(8), seconds))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(bad)
}

/// Whether a receipt state is final. `DELIVRD`, `UNDELIV`, `EXPIRED`, `DELETED`, `REJECTD`
/// and `UNKNOWN` are final (SMPP 3.4 §5.2.28 and Appendix B Table B-2); `ENROUTE`, `ACCEPTD`
/// and the non-standard `BUFFRED` / `SCHEDULED` that some SMSCs send are not. A state this
/// list does not know is taken as final, so that the code book reports it as an unknown code
/// instead of it being dropped as an intermediate state.
pub fn is_final_stat(stat: &str) -> bool {
    const NOT_FINAL: &[&str] = &[
        "ENROUTE",
        "ACCEPTD",
        "ACCEPTED",
        "BUFFRED",
        "BUFFERED",
        "SCHEDULED",
        "SCHEDLD",
    ];
    let stat = stat.trim().to_ascii_uppercase();
    !NOT_FINAL.contains(&stat.as_str())
}

/// The `err:` value as the code books key it: all-digit values lose their leading zeros
/// (`001` → `1`), so `1`, `01` and `001` are one code; other values (hex such as `0dc`) are
/// kept, trimmed. Zero and empty mean "no error": `None`.
pub fn normalise_err(err: &str) -> Option<String> {
    let e = err.trim();
    if e.is_empty() {
        return None;
    }
    if e.bytes().all(|b| b.is_ascii_digit()) {
        let stripped = e.trim_start_matches('0');
        return (!stripped.is_empty()).then(|| stripped.to_owned());
    }
    Some(e.to_ascii_uppercase())
}

/// The event a receipt stands for, for destination `number`.
///
/// * `raw_code` is `STAT:ERR` with the err as written (`UNDELIV:001`), or just `STAT` when
///   there is no err or when a `DELIVRD` receipt carries an all-zero err;
/// * `codes` are the route's err table (normalised err, see [`normalise_err`]) then the
///   [`STAT_TABLE`]; a `DELIVRD` receipt is classified by its state alone, since an err
///   on a delivered message says nothing against the number;
/// * `observed_at_ms` is the done date, else the submit date;
/// * `message_id` is the receipt's id, else `message_id_fallback`.
pub fn receipt_event(number: &str, receipt: &Receipt, message_id_fallback: Option<&str>) -> Event {
    let stat = receipt.stat.trim().to_ascii_uppercase();
    let delivered = stat == "DELIVRD" || stat == "DELIVERED";
    let err_raw = receipt
        .err
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let err_code = err_raw.and_then(normalise_err);
    let raw_code = match err_raw {
        Some(e) if !(delivered && err_code.is_none()) => format!("{stat}:{e}"),
        _ => stat.clone(),
    };
    let mut codes = Vec::with_capacity(2);
    if let (Some(e), false) = (err_code, delivered) {
        codes.push(Code::SmppErr(e));
    }
    codes.push(Code::Table(STAT_TABLE, stat.clone()));
    Event {
        number: number.to_owned(),
        observed_at_ms: receipt.done_date_ms.or(receipt.submit_date_ms),
        kind: EvidenceKind::SmsDlr,
        raw_code,
        codes,
        message_id: receipt
            .id
            .clone()
            .or_else(|| message_id_fallback.map(str::to_owned)),
        final_state: is_final_stat(&stat),
    }
}

/// Import files of receipts, one a line: the destination number, a TAB (or, when the line
/// has no TAB, the first comma), then the receipt text as the SMSC sent it:
///
/// ```text
/// +14155552671<TAB>id:4f2a9c sub:001 dlvrd:001 submit date:2405011000 done date:2405011002 stat:DELIVRD err:000 text:Hello
/// 14155552672,id:1234567890 stat:UNDELIV err:001 text:
/// ```
///
/// A first column of `number` (any case) is a header and yields nothing.
#[derive(Debug, Default, Clone)]
pub struct SmppReceiptLines;

impl SmppReceiptLines {
    pub fn new() -> Self {
        SmppReceiptLines
    }
}

impl LineFormat for SmppReceiptLines {
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, ParseError> {
        let line = std::str::from_utf8(line)
            .map_err(|_| ParseError::new("invalid_utf8", "the line is not UTF-8"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        let cut = line.find('\t').or_else(|| line.find(',')).ok_or_else(|| {
            ParseError::new("missing_field", "expected number<TAB or comma>receipt text")
        })?;
        let number = line[..cut].trim();
        if number.eq_ignore_ascii_case("number") {
            return Ok(None);
        }
        if number.is_empty() {
            return Err(ParseError::new("missing_field", "the number is empty"));
        }
        let number = bounded("number", number)?;
        let receipt = parse_receipt(&line[cut + 1..])?;
        Ok(Some(receipt_event(&number, &receipt, None)))
    }
}

/// For tests: the event of a receipt `stat:UNDELIV err:001`, as every SMPP-carrying
/// connector reads it (the err normalised, before the stat).
#[cfg(test)]
pub(crate) fn assert_undeliv_001(e: &Event) {
    assert_eq!(e.raw_code, "UNDELIV:001");
    assert_eq!(
        e.codes,
        vec![
            Code::SmppErr("1".into()),
            Code::Table(STAT_TABLE, "UNDELIV".into())
        ]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::codebook::{CodeBook, SourceSpec, observe};
    use crate::connectors::event::read_one;
    use crate::evidence::EvidenceClass;
    use crate::evidence_rows::Row;
    use proptest::prelude::*;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn reads_the_appendix_b_shape() {
        // Written after SMPP 3.4 Appendix B's example layout.
        let r = parse_receipt(
            "id:0123456789 sub:001 dlvrd:001 submit date:2405011000 done date:2405011002 \
             stat:DELIVRD err:000 text:Your code is 4821",
        )
        .unwrap();
        assert_eq!(r.id.as_deref(), Some("0123456789"));
        assert_eq!(r.sub, Some(1));
        assert_eq!(r.dlvrd, Some(1));
        assert_eq!(r.submit_date_ms, Some(ms(2024, 5, 1, 10, 0, 0)));
        assert_eq!(r.done_date_ms, Some(ms(2024, 5, 1, 10, 2, 0)));
        assert_eq!(r.stat, "DELIVRD");
        assert_eq!(r.err.as_deref(), Some("000"));
        assert_eq!(r.text.as_deref(), Some("Your code is 4821"));
    }

    #[test]
    fn tolerates_order_case_extras_seconds_and_hex_ids() {
        let r = parse_receipt(
            "STAT:undeliv ID:7a3F09c2 Done Date:240501100259 imsi:310150123456789 \
             Submit Date:2405011000 ERR:001 Text:stat:fake id:fake",
        )
        .unwrap();
        assert_eq!(r.id.as_deref(), Some("7a3F09c2"));
        assert_eq!(r.stat, "UNDELIV");
        assert_eq!(r.err.as_deref(), Some("001"));
        assert_eq!(r.done_date_ms, Some(ms(2024, 5, 1, 10, 2, 59)));
        assert_eq!(r.submit_date_ms, Some(ms(2024, 5, 1, 10, 0, 0)));
        // text: eats the rest, even things that look like fields.
        assert_eq!(r.text.as_deref(), Some("stat:fake id:fake"));
        assert_eq!(r.sub, None);
    }

    #[test]
    fn missing_fields_are_none_but_stat_is_required() {
        let r = parse_receipt("stat:EXPIRED").unwrap();
        assert_eq!(r.stat, "EXPIRED");
        assert_eq!(
            (r.id, r.err, r.text, r.done_date_ms),
            (None, None, None, None)
        );
        assert_eq!(
            parse_receipt("id:1 err:001").unwrap_err().code,
            "missing_field"
        );
        assert_eq!(parse_receipt("").unwrap_err().code, "missing_field");
        assert_eq!(
            parse_receipt("stat: err:1").unwrap_err().code,
            "missing_field"
        );
    }

    #[test]
    fn bad_dates_and_long_fields_are_errors() {
        for bad in ["24050110", "2413011000", "2405011000xx", "2405321000"] {
            let e = parse_receipt(&format!("stat:DELIVRD done date:{bad}")).unwrap_err();
            assert_eq!(e.code, "invalid_date", "{bad}");
        }
        let long = "9".repeat(MAX_FIELD + 1);
        assert_eq!(
            parse_receipt(&format!("id:{long} stat:DELIVRD"))
                .unwrap_err()
                .code,
            "field_too_long"
        );
        // A long text is cut, not refused.
        let r = parse_receipt(&format!("stat:DELIVRD text:{long}")).unwrap();
        assert_eq!(r.text.unwrap().len(), MAX_FIELD);
    }

    #[test]
    fn final_states() {
        for s in [
            "DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "UNKNOWN", "delivrd",
        ] {
            assert!(is_final_stat(s), "{s}");
        }
        for s in ["ENROUTE", "ACCEPTD", "BUFFRED", "SCHEDULED", "enroute"] {
            assert!(!is_final_stat(s), "{s}");
        }
    }

    #[test]
    fn err_normalisation() {
        assert_eq!(normalise_err("001").as_deref(), Some("1"));
        assert_eq!(normalise_err("01").as_deref(), Some("1"));
        assert_eq!(normalise_err(" 44 ").as_deref(), Some("44"));
        assert_eq!(normalise_err("000"), None);
        assert_eq!(normalise_err(""), None);
        assert_eq!(normalise_err("0dc").as_deref(), Some("0DC"));
    }

    #[test]
    fn events_carry_stat_err_dates_and_ids() {
        let r = parse_receipt(
            "id:abc submit date:2405011000 done date:2405011005 stat:UNDELIV err:001 text:x",
        )
        .unwrap();
        let e = receipt_event("+14155552671", &r, Some("fallback"));
        assert_undeliv_001(&e);
        assert_eq!(e.observed_at_ms, Some(ms(2024, 5, 1, 10, 5, 0)));
        assert_eq!(e.message_id.as_deref(), Some("abc"));
        assert!(e.final_state);
        assert_eq!(e.kind, EvidenceKind::SmsDlr);

        let r = parse_receipt("submit date:2405011000 stat:DELIVRD err:000").unwrap();
        let e = receipt_event("+14155552671", &r, Some("fallback"));
        assert_eq!(e.raw_code, "DELIVRD");
        assert_eq!(e.codes, vec![Code::Table(STAT_TABLE, "DELIVRD".into())]);
        assert_eq!(e.observed_at_ms, Some(ms(2024, 5, 1, 10, 0, 0)));
        assert_eq!(e.message_id.as_deref(), Some("fallback"));

        // A non-zero err on a delivered message is kept in the raw code, not classified.
        let r = parse_receipt("stat:DELIVRD err:001").unwrap();
        let e = receipt_event("1", &r, None);
        assert_eq!(e.raw_code, "DELIVRD:001");
        assert_eq!(e.codes, vec![Code::Table(STAT_TABLE, "DELIVRD".into())]);

        let r = parse_receipt("stat:ENROUTE err:000").unwrap();
        let e = receipt_event("1", &r, None);
        assert_eq!(e.raw_code, "ENROUTE:000");
        assert!(!e.final_state);
    }

    #[test]
    fn import_lines_take_tab_or_comma() {
        let mut f = SmppReceiptLines::new();
        let e = read_one(
            &mut f,
            b"+14155552671\tid:9 stat:UNDELIV err:001 text:a, b\r",
        );
        assert_eq!(e.number, "+14155552671");
        assert_eq!(e.raw_code, "UNDELIV:001");
        let e = read_one(&mut f, b"14155552672,stat:DELIVRD text:hi, there");
        assert_eq!(e.number, "14155552672");
        assert_eq!(e.raw_code, "DELIVRD");
        assert_eq!(f.line(b"number,receipt").unwrap(), None);
        assert_eq!(f.line(b"no separator").unwrap_err().code, "missing_field");
        assert_eq!(f.line(b"\tstat:DELIVRD").unwrap_err().code, "missing_field");
        assert_eq!(f.line(b"1\tid:1").unwrap_err().code, "missing_field");
        assert_eq!(f.line(b"1\t\xff").unwrap_err().code, "invalid_utf8");
    }

    fn class_of(line: &str, err_table: &str) -> EvidenceClass {
        let book = CodeBook::shipped();
        let mut src = SourceSpec::new("smsc-test");
        src.err_table = err_table.to_owned();
        let e = SmppReceiptLines::new()
            .line(line.as_bytes())
            .unwrap()
            .unwrap();
        match observe(&book, &src, e, 1_800_000_000_000).unwrap() {
            Row::Observation(o) => o.class,
            other => panic!("not an observation: {other:?}"),
        }
    }

    /// Checks the class of each case's receipt line, read on a route with the `map` table.
    fn assert_classes(line_of: impl Fn(&str) -> String, cases: &[(&str, EvidenceClass)]) {
        for (value, class) in cases {
            let line = line_of(value);
            assert_eq!(class_of(&line, "map"), *class, "{line}");
        }
    }

    #[test]
    fn stat_table_rows_map_as_documented() {
        use EvidenceClass::*;
        assert_classes(
            |stat| format!("+14155552671\tid:1 stat:{stat} err:000"),
            &[
                ("DELIVRD", StrongActive),
                ("UNDELIV", WeakInactive),
                ("EXPIRED", WeakInactive),
                ("DELETED", Neutral),
                ("REJECTD", Neutral),
                ("UNKNOWN", Neutral),
            ],
        );
        let book = CodeBook::shipped();
        for stat in ["ACCEPTD", "ENROUTE"] {
            assert_eq!(book.lookup(STAT_TABLE, stat), Some(Neutral), "{stat}");
        }
        // Non-final states never become observations.
        let e = SmppReceiptLines::new()
            .line(b"+14155552671\tstat:ENROUTE")
            .unwrap()
            .unwrap();
        assert_eq!(
            observe(&book, &SourceSpec::new("s"), e, 0).unwrap(),
            Row::NotFinal
        );
    }

    #[test]
    fn map_table_rows_map_as_documented() {
        use EvidenceClass::*;
        assert_classes(
            |err| format!("+14155552671\tstat:UNDELIV err:{err}"),
            &[
                ("001", StrongInactive),
                ("5", StrongInactive),
                ("006", WeakInactive),
                ("009", WeakInactive),
                ("011", WeakInactive),
                ("013", Neutral),
                ("021", Neutral),
                ("027", WeakInactive),
                ("031", WeakActive),
                ("032", Neutral),
                ("034", Neutral),
                ("044", StrongInactive),
            ],
        );
        // Every row of the table parses to a class the lookup returns for 1, 01 and 001.
        let book = CodeBook::shipped();
        let map = book.table("map").unwrap();
        assert!(map.len() >= 30, "map.csv has {} rows", map.len());
        for code in map.keys() {
            let n: u32 = code.parse().unwrap();
            let padded = format!("{n:03}");
            assert_eq!(normalise_err(&padded).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn the_same_err_reads_by_route() {
        let line = "+14155552671\tstat:UNDELIV err:001";
        assert_eq!(class_of(line, "map"), EvidenceClass::StrongInactive);
        assert_eq!(class_of(line, "twilio_smpp"), EvidenceClass::WeakInactive);
        // An err the route's table lacks falls through to the stat table.
        assert_eq!(
            class_of("+14155552671\tstat:UNDELIV err:999", "map"),
            EvidenceClass::WeakInactive
        );
        assert_eq!(
            class_of("+14155552671\tstat:EXPIRED err:002", "twilio_smpp"),
            EvidenceClass::WeakActive
        );
    }

    fn field_value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{1,12}"
    }

    proptest! {
        #[test]
        fn any_string_never_panics(s in any::<String>()) {
            if let Ok(r) = parse_receipt(&s) {
                prop_assert!(!r.stat.is_empty() && r.stat.len() <= MAX_FIELD);
                prop_assert!(r.id.is_none_or(|v| v.len() <= MAX_FIELD));
                prop_assert!(r.err.is_none_or(|v| v.len() <= MAX_FIELD));
                prop_assert!(r.text.is_none_or(|v| v.len() <= MAX_FIELD));
            }
        }

        #[test]
        fn any_bytes_through_import_lines_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SmppReceiptLines::new().line(&b);
        }

        #[test]
        fn generated_receipts_parse_back(
            id in field_value(),
            sub in 0u32..1000,
            dlvrd in 0u32..1000,
            submit in (0i32..100, 1u32..13, 1u32..29, 0u32..24, 0u32..60),
            done in (0i32..100, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60),
            stat in "[A-Z]{5,8}",
            err in "[0-9]{3}",
            text in "[ -~]{0,40}",
            extras in proptest::collection::vec(("x[a-z]{1,6}", field_value()), 0..4),
            order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
            upper in any::<bool>(),
        ) {
            let submit_s = format!("{:02}{:02}{:02}{:02}{:02}", submit.0, submit.1, submit.2, submit.3, submit.4);
            let done_s = format!("{:02}{:02}{:02}{:02}{:02}{:02}", done.0, done.1, done.2, done.3, done.4, done.5);
            let name = |n: &str| if upper { n.to_ascii_uppercase() } else { n.to_owned() };
            let mut parts = [
                format!("{}:{id}", name("id")),
                format!("{}:{sub:03}", name("sub")),
                format!("{}:{dlvrd:03}", name("dlvrd")),
                format!("{}:{submit_s}", name("submit date")),
                format!("{}:{done_s}", name("done date")),
                format!("{}:{stat}", name("stat")),
                format!("{}:{err}", name("err")),
            ];
            let mut shuffled: Vec<String> = order.iter().map(|&i| std::mem::take(&mut parts[i])).collect();
            for (k, v) in &extras {
                shuffled.insert(v.len() % (shuffled.len() + 1), format!("{k}:{v}"));
            }
            shuffled.push(format!("{}:{text}", name("text")));
            let line = shuffled.join(" ");
            let r = parse_receipt(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
            prop_assert_eq!(r.id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(r.sub, Some(sub));
            prop_assert_eq!(r.dlvrd, Some(dlvrd));
            prop_assert_eq!(r.submit_date_ms, Some(ms(2000 + submit.0, submit.1, submit.2, submit.3, submit.4, 0)));
            prop_assert_eq!(r.done_date_ms, Some(ms(2000 + done.0, done.1, done.2, done.3, done.4, done.5)));
            prop_assert_eq!(r.stat, stat);
            prop_assert_eq!(r.err.as_deref(), Some(err.as_str()));
            let t = text.trim();
            prop_assert_eq!(r.text.as_deref(), (!t.is_empty()).then_some(t));
        }
    }
}
