//! [`normalise::dialled`](crate::normalise::dialled) without allocating, for the lines almost
//! every upload is made of: ASCII digits, `+`, and the separators space, tab, `-`, `.`, `(`,
//! `)` and `/`. Anything else — quotes, letters, full-width digits, scientific notation,
//! non-ASCII bytes — returns `None` and the caller uses `dialled` itself, so the two can
//! never disagree on a line this module does not fully understand.

use crate::normalise::{Dialled, LineError, MAX_DIALLED_DIGITS};

/// The digits of a line, on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digits {
    buf: [u8; MAX_DIALLED_DIGITS],
    start: u8,
    len: u8,
    /// Written with `+` or `00` (and then `digits` are those after the prefix).
    pub international: bool,
}

impl Digits {
    #[inline]
    pub(crate) fn digits(&self) -> &[u8] {
        &self.buf[usize::from(self.start)..usize::from(self.len)]
    }

    fn new(digits: &[u8], international: bool) -> Option<Digits> {
        let mut buf = [0u8; MAX_DIALLED_DIGITS];
        buf.get_mut(..digits.len())?.copy_from_slice(digits);
        Some(Digits {
            buf,
            start: 0,
            len: u8::try_from(digits.len()).ok()?,
            international,
        })
    }

    /// From the general normaliser's answer; `None` when it holds more digits than fit.
    pub(crate) fn from_dialled(d: &Dialled) -> Option<Digits> {
        match d {
            Dialled::International(s) => Digits::new(s.as_bytes(), true),
            Dialled::National(s) => Digits::new(s.as_bytes(), false),
        }
    }
}

/// Byte classes of the simple alphabet (digits and separators first: the hot loop tests
/// `class <= SEPARATOR`).
const DIGIT: u8 = 0;
const SEPARATOR: u8 = 1;
const PLUS: u8 = 2;
const DOT: u8 = 3;
const QUOTE: u8 = 4;
const OTHER: u8 = 5;

const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b'+' as usize] = PLUS;
    t[b'"' as usize] = QUOTE;
    t[b'\'' as usize] = QUOTE;
    t[b' ' as usize] = SEPARATOR;
    t[b'\t' as usize] = SEPARATOR;
    t[b'-' as usize] = SEPARATOR;
    t[b'.' as usize] = DOT;
    t[b'(' as usize] = SEPARATOR;
    t[b')' as usize] = SEPARATOR;
    t[b'/' as usize] = SEPARATOR;
    t
};

/// Reads a line made only of the simple alphabet exactly as `dialled` would; `None` when the
/// line holds anything else (or a spreadsheet integer too long to hold).
#[inline]
pub(crate) fn read_simple(line: &[u8]) -> Option<Result<Digits, LineError>> {
    // One pass. `dialled` stops at the first error; here the rest of the line is still
    // checked for bytes outside the alphabet (which send the line to `dialled` anyway), and
    // the first error is worked out at the end: a misplaced `+` after `k` digits comes before
    // the 21st digit's `TooLong` exactly when `k` is at most 20.
    let mut buf = [0u8; MAX_DIALLED_DIGITS + 1];
    let mut len = 0usize;
    let mut plus = false;
    let mut misplaced_plus: Option<usize> = None;
    for &b in line {
        let class = CLASS[usize::from(b)];
        if class <= SEPARATOR {
            // Branch-free for digits and separators: a separator is written and overwritten.
            buf[len.min(MAX_DIALLED_DIGITS)] = b;
            len += usize::from(class == DIGIT);
            continue;
        }
        match class {
            PLUS if !plus && len == 0 => plus = true,
            PLUS => {
                misplaced_plus.get_or_insert(len);
            }
            // A dot may make the line a spreadsheet float: read it the careful way.
            DOT => return read_dotted(line),
            QUOTE => return read_quoted(line),
            _ => return None,
        }
    }
    match misplaced_plus {
        Some(k) if k <= MAX_DIALLED_DIGITS => return Some(Err(LineError::NotANumber)),
        _ if len > MAX_DIALLED_DIGITS => return Some(Err(LineError::TooLong)),
        _ => {}
    }
    let mut digits_buf = [0u8; MAX_DIALLED_DIGITS];
    digits_buf.copy_from_slice(&buf[..MAX_DIALLED_DIGITS]);
    let buf = digits_buf;
    let len = len as u8; // at most MAX_DIALLED_DIGITS here
    let digits = Digits {
        buf,
        start: 0,
        len,
        international: plus,
    };
    Some(if len == 0 {
        Err(LineError::NotANumber)
    } else if plus {
        Ok(digits)
    } else if buf.starts_with(b"00") {
        if len == 2 {
            Err(LineError::NotANumber)
        } else {
            Ok(Digits {
                start: 2,
                international: true,
                ..digits
            })
        }
    } else {
        Ok(digits)
    })
}

/// Trims space and tab, the only white space of the simple alphabet (`str::trim` there).
fn trim(text: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = text.iter().position(|b| !is_space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

/// [`read_simple`] for a line with quotes: `dialled` strips one pair of `"` (from a CSV
/// export), then one pair of `'`, then Excel's leading `'` text marker, and reads the rest.
fn read_quoted(line: &[u8]) -> Option<Result<Digits, LineError>> {
    let mut text = trim(line);
    for q in [b'"', b'\''] {
        if text.len() >= 2 && text.first() == Some(&q) && text.last() == Some(&q) {
            text = trim(&text[1..text.len() - 1]);
        }
    }
    if let Some(rest) = text.strip_prefix(b"'") {
        text = trim(rest);
    }
    // What is left must be simple; quotes left inside go to `dialled` (which refuses them).
    if text.iter().any(|&b| b == b'"' || b == b'\'') {
        return None;
    }
    read_simple(text)
}

/// [`read_simple`] for a line with a dot, step for step as `dialled` does it.
fn read_dotted(line: &[u8]) -> Option<Result<Digits, LineError>> {
    if line.iter().any(|&b| CLASS[usize::from(b)] >= QUOTE) {
        return None;
    }
    let text = trim(line);

    // `14155552671.0`: a spreadsheet float (no `e`/`E` can occur here, so exponent 0).
    if let Some(dot) = text.iter().position(|&b| b == b'.') {
        let (int, frac) = (&text[..dot], &text[dot + 1..]);
        if !int.is_empty()
            && int.iter().all(u8::is_ascii_digit)
            && frac.iter().all(u8::is_ascii_digit)
            && int.len() >= 7
            && !frac.is_empty()
            && frac.iter().all(|&b| b == b'0')
        {
            // Read like the same digits without the `.0`: `00…` is the international prefix,
            // counted in the length as the normaliser counts it.
            if int.len() > MAX_DIALLED_DIGITS {
                return None;
            }
            return match int.strip_prefix(b"00") {
                Some(rest) => Digits::new(rest, true).map(Ok),
                None => Digits::new(int, false).map(Ok),
            };
        }
    }

    let mut buf = [0u8; MAX_DIALLED_DIGITS];
    let mut len = 0usize;
    let mut plus = false;
    for &b in text {
        match CLASS[usize::from(b)] {
            DIGIT => {
                if len == MAX_DIALLED_DIGITS {
                    return Some(Err(LineError::TooLong));
                }
                buf[len] = b;
                len += 1;
            }
            PLUS if !plus && len == 0 => plus = true,
            PLUS => return Some(Err(LineError::NotANumber)),
            _ => {}
        }
    }
    let digits = &buf[..len];
    Some(if digits.is_empty() {
        Err(LineError::NotANumber)
    } else if plus {
        Digits::new(digits, true).ok_or(LineError::TooLong)
    } else if let Some(rest) = digits.strip_prefix(b"00") {
        if rest.is_empty() {
            Err(LineError::NotANumber)
        } else {
            Digits::new(rest, true).ok_or(LineError::TooLong)
        }
    } else {
        Digits::new(digits, false).ok_or(LineError::TooLong)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::dialled;
    use proptest::prelude::*;

    fn same_as_dialled(line: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = read_simple(line) {
            let slow = dialled(line);
            match (fast, slow) {
                (Ok(f), Ok(s)) => {
                    let s = Digits::from_dialled(&s).unwrap();
                    prop_assert_eq!(f.digits(), s.digits(), "{:?}", line);
                    prop_assert_eq!(f.international, s.international, "{:?}", line);
                }
                (Err(f), Err(s)) => prop_assert_eq!(f, s, "{:?}", line),
                (f, s) => prop_assert!(false, "{:?}: fast {:?}, dialled {:?}", line, f, s),
            }
        }
        Ok(())
    }

    #[test]
    fn simple_lines_read_the_same_as_the_normaliser() {
        for line in [
            "+14155552671",
            "  +1 (415) 555-2671  ",
            "0049 30 901820",
            "00",
            "00 ",
            "+",
            "+1+2",
            "1+2",
            "14155552671.0",
            "14155552671.00",
            "00155552671.0",
            "0000000.0",
            "00000000000000000000.0",
            "000000000000015932187.0",
            "415.555.2671",
            "123456.0",
            "1234567.",
            ".0",
            "123456789012345678901",
            "+123456789012345678901",
            "12345678901234567890123.0",
            "",
            "\t",
            "\"+14155552671\"",
            "'+14155552671",
            "' +1 415 555 2671",
            "\"'+33612345678'\"",
            "'14155552671.0'",
            "\"\"",
            "\"",
            "'",
            "\"'\"",
            "12\"34",
        ] {
            same_as_dialled(line.as_bytes()).unwrap();
        }
    }

    #[test]
    fn unusual_lines_are_left_to_the_normaliser() {
        assert!(read_simple(b"\"\"+14155552671\"\"").is_none());
        assert!(read_simple(b"1.4155552671E10").is_none());
        assert!(read_simple("＋１４１５".as_bytes()).is_none());
        assert!(read_simple(b"+1 800 FLOWERS").is_none());
        assert!(read_simple(b"+1415\r").is_none());
    }

    /// The families of lines the fast path must read as the normaliser does: its whole
    /// alphabet, lines without dots, long lines and late plus signs, quoted lines, and dotted
    /// digit lines.
    fn simple_lines() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9+ \t.()/-]{0,30}",
            "[0-9+ \t()/-]{0,30}",
            "[+]?[0-9 ]{15,26}[+]?[0-9]{0,4}[+]?",
            "[ ]?[\"']{0,2}[ ]?[+]?[0-9 .-]{0,14}[ ]?[\"']{0,2}[ ]?",
            "[ ]?[0-9]{0,12}[.][0-9]{0,3}[ ]?",
        ]
    }

    proptest! {
        // 5000 cases for each family.
        #![proptest_config(ProptestConfig::with_cases(25_000))]

        #[test]
        fn simple_lines_agree_with_the_normaliser(line in simple_lines()) {
            same_as_dialled(line.as_bytes())?;
        }
    }
}
