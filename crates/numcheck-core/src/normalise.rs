//! From one line of text to the digits someone dialled.
//!
//! Tolerates what real lists contain (DESIGN §2): surrounding whitespace and quotes, spaces,
//! dashes, dots, slashes and brackets between digits, a `+` or `00` international prefix,
//! full-width digits, and the damage spreadsheets do (`'+1415…` text markers, `1.4155552671E10`,
//! `14155552671.0`). Anything else is a [`LineError`] with a stable code, never a panic.

use std::fmt;

/// The most digits a line may hold before it is refused outright as too long (E.164 allows
/// 15; libphonenumber parses national numbers up to 17 digits plus a country code).
pub const MAX_DIALLED_DIGITS: usize = 20;

/// The digits of a line, and whether they carry an international prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialled {
    /// Written with `+` or `00`: country code first. Holds the digits after the prefix.
    International(String),
    /// Written without an international prefix: a national number, or one whose `+` a
    /// spreadsheet dropped. Holds all digits.
    National(String),
}

/// Why a line is not a phone number at all. The codes are stable and appear in `rejected.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LineError {
    #[error("the line is not a phone number: it has letters, symbols or no digits")]
    NotANumber,
    #[error("the line is not valid UTF-8 text")]
    NotUtf8,
    #[error("the line is longer than any phone number")]
    LineTooLong,
    #[error("the country calling code does not exist")]
    UnknownCountryCode,
    #[error("a national number needs the default_region form field (or write it with +)")]
    NationalWithoutRegion,
    #[error("too few digits for a phone number")]
    TooShort,
    #[error("too many digits for a phone number")]
    TooLong,
}

impl LineError {
    /// The stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            LineError::NotANumber => "not_a_number",
            LineError::NotUtf8 => "not_utf8",
            LineError::LineTooLong => "line_too_long",
            LineError::UnknownCountryCode => "unknown_country_code",
            LineError::NationalWithoutRegion => "national_without_region",
            LineError::TooShort => "too_short",
            LineError::TooLong => "too_long",
        }
    }

    /// Every error, for documentation and tests.
    pub const ALL: &'static [LineError] = &[
        LineError::NotANumber,
        LineError::NotUtf8,
        LineError::LineTooLong,
        LineError::UnknownCountryCode,
        LineError::NationalWithoutRegion,
        LineError::TooShort,
        LineError::TooLong,
    ];
}

impl fmt::Display for Dialled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dialled::International(d) => write!(f, "+{d}"),
            Dialled::National(d) => f.write_str(d),
        }
    }
}

/// Reads the digits out of one line of an upload (without its terminator).
pub fn dialled(line: &[u8]) -> Result<Dialled, LineError> {
    let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    let mut text = text.trim();
    // One pair of quotes from a CSV export, and Excel's leading apostrophe text marker.
    for q in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(q) && text.ends_with(q) {
            text = text[1..text.len() - 1].trim();
        }
    }
    if let Some(rest) = text.strip_prefix('\'') {
        text = rest.trim_start();
    }
    if let Some(digits) = spreadsheet_number(text) {
        // Read like the same digits without the `.0`: `00…` is the international prefix.
        return classify(digits, false);
    }

    let mut digits = String::with_capacity(16);
    let mut plus = false;
    let mut seen_digit = false;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                seen_digit = true;
            }
            // Full-width digits, as typed with East Asian input methods.
            '\u{FF10}'..='\u{FF19}' => {
                let d = (c as u32 - 0xFF10) as u8;
                digits.push(char::from(b'0' + d));
                seen_digit = true;
            }
            '+' | '\u{FF0B}' if !plus && !seen_digit => plus = true,
            ' '
            | '\t'
            | '\u{A0}'
            | '\u{2007}'
            | '\u{202F}'
            | '-'
            | '.'
            | '('
            | ')'
            | '/'
            | '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{30FC}' => {}
            _ => return Err(LineError::NotANumber),
        }
        if digits.len() > MAX_DIALLED_DIGITS {
            return Err(LineError::TooLong);
        }
    }
    classify(digits, plus)
}

/// Digits as dialled: after a `+`, or after the `00` international prefix, a country code
/// comes first; otherwise they are a national number.
fn classify(digits: String, plus: bool) -> Result<Dialled, LineError> {
    if digits.is_empty() {
        return Err(LineError::NotANumber);
    }
    if digits.len() > MAX_DIALLED_DIGITS {
        return Err(LineError::TooLong);
    }
    if plus {
        Ok(Dialled::International(digits))
    } else if let Some(rest) = digits.strip_prefix("00") {
        if rest.is_empty() {
            return Err(LineError::NotANumber);
        }
        Ok(Dialled::International(rest.to_owned()))
    } else {
        Ok(Dialled::National(digits))
    }
}

/// `1.4155552671E10`, `1.4155552671E+10` or `14155552671.0`: a number a spreadsheet stored as
/// a float. Only exact integers are accepted; the `+` was lost along the way, so the result is
/// returned without one.
fn spreadsheet_number(text: &str) -> Option<String> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => {
            let exp = text[i + 1..].strip_prefix('+').unwrap_or(&text[i + 1..]);
            if exp.is_empty() || exp.len() > 2 || !exp.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&text[..i], exp.parse::<usize>().ok()?)
        }
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.')?;
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if exponent == 0 {
        // `14155552671.0`: only zeros after the point, and a long enough integer part that it
        // cannot be a formatted number like `415.555`.
        return (int.len() >= 7 && !frac.is_empty() && frac.bytes().all(|b| b == b'0'))
            .then(|| int.to_owned());
    }
    // Scientific notation: exactly one digit before the point, as spreadsheets print it.
    if int.len() != 1 {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > exponent {
        return None; // not an integer
    }
    let mut digits = String::with_capacity(1 + exponent);
    digits.push_str(int);
    digits.push_str(frac);
    digits.extend(std::iter::repeat_n('0', exponent - frac.len()));
    (digits.len() <= MAX_DIALLED_DIGITS && !digits.starts_with('0')).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn intl(d: &str) -> Result<Dialled, LineError> {
        Ok(Dialled::International(d.into()))
    }
    fn nat(d: &str) -> Result<Dialled, LineError> {
        Ok(Dialled::National(d.into()))
    }

    #[test]
    fn formatting_noise_is_removed() {
        let cases: &[(&str, Result<Dialled, LineError>)] = &[
            ("+14155552671", intl("14155552671")),
            ("  +1 (415) 555-2671  ", intl("14155552671")),
            ("+44 7700.900.123", intl("447700900123")),
            ("0049 30 901820", intl("4930901820")),
            ("00 49/30/901820", intl("4930901820")),
            ("030 901820", nat("030901820")),
            ("\"+33 6 12 34 56 78\"", intl("33612345678")),
            ("'+33612345678", intl("33612345678")),
            ("+33\u{A0}6\u{A0}12", intl("33612")),
            ("＋１４１５５５５２６７１", intl("14155552671")),
            ("+1 415\u{2013}555\u{2013}2671", intl("14155552671")),
        ];
        for (line, want) in cases {
            assert_eq!(&dialled(line.as_bytes()), want, "line {line:?}");
        }
    }

    #[test]
    fn spreadsheet_damage_is_repaired_when_unambiguous() {
        assert_eq!(dialled(b"1.4155552671E10"), nat("14155552671"));
        assert_eq!(dialled(b"1.4155552671E+10"), nat("14155552671"));
        assert_eq!(dialled(b"4.47700900123e11"), nat("447700900123"));
        assert_eq!(dialled(b"14155552671.0"), nat("14155552671"));
        // Found by `fuzz/fuzz_targets/line_normaliser.rs`: a `.0` number written with the
        // international prefix read as national digits `00…`, and its own text then as
        // international; both now read as the same international number.
        assert_eq!(dialled(b"00155552671.0"), intl("155552671"));
        assert_eq!(dialled(b"+155552671"), intl("155552671"));
        assert_eq!(dialled(b"0000000.0"), intl("00000"));
        // A spreadsheet integer longer than any number is too long, as its digits would be.
        assert_eq!(
            dialled(b"12345678901234567890123.0"),
            Err(LineError::TooLong)
        );
        assert_eq!(dialled(b"4.4E11"), nat("440000000000"));
        // Not an integer: the digits after the exponent are lost, refuse rather than guess.
        assert_eq!(dialled(b"1.41555526712345E10"), Err(LineError::NotANumber));
        // A short dotted number is formatting, not a float.
        assert_eq!(dialled(b"555.2671"), nat("5552671"));
    }

    #[test]
    fn lines_that_are_not_numbers_get_stable_codes() {
        assert_eq!(dialled(b"not a number"), Err(LineError::NotANumber));
        assert_eq!(dialled(b"+1 800 FLOWERS"), Err(LineError::NotANumber));
        assert_eq!(dialled(b"---"), Err(LineError::NotANumber));
        assert_eq!(dialled(b"+"), Err(LineError::NotANumber));
        assert_eq!(dialled(b"+1+2"), Err(LineError::NotANumber));
        assert_eq!(dialled(b"\xFF\xFE12"), Err(LineError::NotUtf8));
        assert_eq!(dialled(&[b'1'; 30]), Err(LineError::TooLong));
        assert_eq!(
            LineError::NationalWithoutRegion.code(),
            "national_without_region"
        );
    }

    proptest! {
        #[test]
        fn dialled_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = dialled(&bytes);
        }

        #[test]
        fn separators_never_change_the_digits(
            digits in "[1-9][0-9]{5,13}",
            seps in proptest::collection::vec(prop_oneof![Just(" "), Just("-"), Just("."), Just("("), Just(")"), Just("/")], 14),
        ) {
            let mut line = String::from("+");
            for (i, c) in digits.chars().enumerate() {
                line.push(c);
                line.push_str(seps[i % seps.len()]);
            }
            prop_assert_eq!(dialled(line.as_bytes()), Ok(Dialled::International(digits.clone())));
        }

        #[test]
        fn result_digits_are_ascii_and_bounded(s in "\\PC{0,40}") {
            if let Ok(d) = dialled(s.as_bytes()) {
                let digits = match &d { Dialled::International(x) | Dialled::National(x) => x };
                prop_assert!(!digits.is_empty() || matches!(d, Dialled::International(_)));
                prop_assert!(digits.len() <= MAX_DIALLED_DIGITS);
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
