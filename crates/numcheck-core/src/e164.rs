//! `E164`: a phone number in international form, kept as a `u64`.

use std::fmt;
use std::str::FromStr;

/// The largest number of digits E.164 allows (country code included).
pub const MAX_DIGITS: usize = 15;

/// A phone number in E.164 form: country code followed by the national significant number,
/// at most 15 digits, stored as an integer so that sorting, hashing and dedupe are cheap.
///
/// Country codes never start with `0`, so no leading digit is lost in the integer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E164(u64);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E164Error {
    #[error("an E.164 number starts with '+'")]
    MissingPlus,
    #[error("an E.164 number has 1 to 15 digits after '+' and no other characters")]
    BadDigits,
    #[error("a country code never starts with 0")]
    LeadingZero,
}

impl E164 {
    /// Builds a number from its digits (no `+`). Fails on anything but 1–15 ASCII digits that
    /// do not start with `0`.
    pub fn from_digits(digits: &[u8]) -> Result<Self, E164Error> {
        if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit)
        {
            return Err(E164Error::BadDigits);
        }
        if digits[0] == b'0' {
            return Err(E164Error::LeadingZero);
        }
        Ok(E164(
            digits
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
        ))
    }

    /// The number as an integer (its digits read as a decimal number).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds a number from [`E164::as_u64`]; `None` when the value cannot be one.
    pub fn from_u64(value: u64) -> Option<Self> {
        (value > 0 && value < 10u64.pow(MAX_DIGITS as u32)).then_some(E164(value))
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl FromStr for E164 {
    type Err = E164Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('+').ok_or(E164Error::MissingPlus)?;
        E164::from_digits(digits.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn e164_prints_with_plus_and_digits() {
        let n: E164 = "+14155552671".parse().unwrap();
        assert_eq!(n.to_string(), "+14155552671");
        assert_eq!(n.as_u64(), 14_155_552_671);
    }

    #[test]
    fn e164_rejects_malformed_strings() {
        assert_eq!("14155552671".parse::<E164>(), Err(E164Error::MissingPlus));
        assert_eq!("+".parse::<E164>(), Err(E164Error::BadDigits));
        assert_eq!(
            "+1234567890123456".parse::<E164>(),
            Err(E164Error::BadDigits)
        );
        assert_eq!("+0123".parse::<E164>(), Err(E164Error::LeadingZero));
        assert_eq!("+1 415".parse::<E164>(), Err(E164Error::BadDigits));
    }

    proptest! {
        #[test]
        fn e164_round_trips_through_text_and_integer(v in 1u64..999_999_999_999_999u64) {
            let n = E164::from_u64(v).unwrap();
            let back: E164 = n.to_string().parse().unwrap();
            prop_assert_eq!(back, n);
            prop_assert_eq!(E164::from_u64(n.as_u64()), Some(n));
        }
    }
}
