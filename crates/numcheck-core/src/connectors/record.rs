//! Delimited records (CSV-like lines of CDRs, lists and evidence rows) and short excerpts of
//! untrusted text for error messages.

use super::ParseError;

/// Most fields read from one line; more is not a record of any format read here.
const MAX_FIELDS: usize = 512;

/// Splits one delimited line (RFC 4180 quoting: a field in double quotes may hold the
/// delimiter, `""` is a quote). Bytes that are not UTF-8 are replaced (caller names in
/// legacy encodings must not cost the record). A trailing `\r` is dropped.
pub(crate) fn split_record(line: &[u8], delimiter: char) -> Result<Vec<String>, ParseError> {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut fields = Vec::with_capacity(16);
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        if c == delimiter {
            if fields.len() >= MAX_FIELDS {
                return Err(ParseError::new(
                    "invalid_csv",
                    format!("the line has more than {MAX_FIELDS} fields"),
                ));
            }
            fields.push(std::mem::take(&mut field));
            at_start = true;
            continue;
        }
        if c == '"' && at_start {
            field.clear();
            quoted = true;
            at_start = false;
            continue;
        }
        field.push(c);
        if !c.is_whitespace() {
            at_start = false;
        }
    }
    if quoted {
        return Err(ParseError::new(
            "invalid_csv",
            "a quoted field is not closed",
        ));
    }
    fields.push(field);
    Ok(fields)
}

/// At most 64 characters of untrusted text, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}
