//! The numbering plan: is a number valid, what kind of line is it, which region is it in.
//!
//! The answers come from libphonenumber's metadata as the `rlibphonenumber` port carries it
//! (pinned by its crate version; [`METADATA_VERSION`] names the data). Parsing follows
//! libphonenumber's rules, so the numbers we accept and refuse agree with it.
//!
//! Two paths give the same answers:
//!
//! - the **fast path** (`plan/compiled.rs`, `plan/fast.rs`, `plan/line.rs`): the metadata
//!   compiled at start-up into one automaton per calling code, and libphonenumber's parsing
//!   and validation algorithms re-done over byte slices, without allocating.
//!   [`NumberingPlan::check_line`] and [`NumberingPlan::parse_line`] use it;
//! - the **reference path**: `rlibphonenumber` itself
//!   ([`NumberingPlan::check_line_reference`]). The fast path hands it every line it is not
//!   sure about; [`fast_path_stats`] counts how often. The two differ in one place, where the
//!   fast path follows libphonenumber: rlibphonenumber 2.2.15 writes at most ten leading
//!   zeros of an Italian-style national number in E.164.
//!
//! Agreement with libphonenumber (Python `phonenumbers` of the same metadata release) is
//! measured, not assumed: `tests/plan_agreement.rs` and `bench/plan_*.py`.

mod compiled;
mod fast;
mod line;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use rlibphonenumber::{PHONE_NUMBER_UTIL, ParseError, PhoneNumberFormat, PhoneNumberType, Region};

use crate::e164::{E164, MAX_DIGITS};
use crate::normalise::{Dialled, LineError, dialled};

/// The libphonenumber metadata release the numbering plan answers from.
pub const METADATA_VERSION: &str = "libphonenumber 9.0.42 metadata (rlibphonenumber 2.2.15)";

/// An ISO 3166-1 alpha-2 region that libphonenumber has a numbering plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionCode(Region);

/// A string that is not a region with a numbering plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}: use an ISO 3166-1 alpha-2 code such as US, GB or DE")]
pub struct UnknownRegion(pub String);

impl RegionCode {
    pub fn as_str(&self) -> String {
        self.0.as_region_str().to_string()
    }

    /// The code's two letters, without allocating (`*b"GB"`).
    pub fn letters(&self) -> [u8; 2] {
        let code = self.0 as u16;
        [(code >> 8) as u8, code as u8]
    }
}

impl FromStr for RegionCode {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        if upper.len() != 2 || upper == "ZZ" || upper == "001" {
            return Err(UnknownRegion(s.to_owned()));
        }
        match Region::from_code(&upper) {
            Ok(r) if PHONE_NUMBER_UTIL.get_country_code_for_region(r).is_some() => {
                Ok(RegionCode(r))
            }
            _ => Err(UnknownRegion(s.to_owned())),
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// The kind of line a number belongs to, in libphonenumber's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineType {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

impl LineType {
    pub fn as_str(self) -> &'static str {
        match self {
            LineType::FixedLine => "fixed_line",
            LineType::Mobile => "mobile",
            LineType::FixedLineOrMobile => "fixed_line_or_mobile",
            LineType::TollFree => "toll_free",
            LineType::PremiumRate => "premium_rate",
            LineType::SharedCost => "shared_cost",
            LineType::Voip => "voip",
            LineType::PersonalNumber => "personal_number",
            LineType::Pager => "pager",
            LineType::Uan => "uan",
            LineType::Voicemail => "voicemail",
            LineType::Unknown => "unknown",
        }
    }

    fn from_lib(t: PhoneNumberType) -> Self {
        match t {
            PhoneNumberType::FixedLine => LineType::FixedLine,
            PhoneNumberType::Mobile => LineType::Mobile,
            PhoneNumberType::FixedLineOrMobile => LineType::FixedLineOrMobile,
            PhoneNumberType::TollFree => LineType::TollFree,
            PhoneNumberType::PremiumRate => LineType::PremiumRate,
            PhoneNumberType::SharedCost => LineType::SharedCost,
            PhoneNumberType::VoIP => LineType::Voip,
            PhoneNumberType::PersonalNumber => LineType::PersonalNumber,
            PhoneNumberType::Pager => LineType::Pager,
            PhoneNumberType::UAN => LineType::Uan,
            PhoneNumberType::VoiceMail => LineType::Voicemail,
            _ => LineType::Unknown,
        }
    }
}

/// What the numbering plan says about one parsed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub e164: E164,
    /// Valid for its numbering plan (right length and a range in use).
    pub valid: bool,
    pub line_type: LineType,
    /// The region the number belongs to; `None` for invalid and non-geographic numbers.
    pub region: Option<RegionCode>,
}

/// The numbering plan. Cheap to copy; the metadata behind it is loaded once per process.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumberingPlan;

/// Lines that left the fast path, since the process started.
static SLOW_NORMALISER: AtomicU64 = AtomicU64::new(0);
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How often the fast path needed help, counted since the process started (all threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastPathStats {
    /// Lines outside the simple alphabet, read by the general normaliser (then still
    /// answered by the compiled plan).
    pub slow_normaliser: u64,
    /// Lines the compiled plan was not sure about, answered by `rlibphonenumber`.
    pub fallbacks: u64,
}

/// The fast path's counters.
pub fn fast_path_stats() -> FastPathStats {
    FastPathStats {
        slow_normaliser: SLOW_NORMALISER.load(Ordering::Relaxed),
        fallbacks: FALLBACKS.load(Ordering::Relaxed),
    }
}

impl NumberingPlan {
    /// Reads one line of an upload as a phone number: its E.164 form only, without validity.
    /// This is what decides whether a line is a success row or a failure row.
    pub fn parse_line(&self, line: &[u8], region: Option<RegionCode>) -> Result<E164, LineError> {
        self.check_line(line, region).map(|c| c.e164)
    }

    /// Reads one line and asks the numbering plan about it.
    #[inline]
    pub fn check_line(
        &self,
        line: &[u8],
        region: Option<RegionCode>,
    ) -> Result<Checked, LineError> {
        let digits = match line::read_simple(line) {
            Some(Ok(digits)) => digits,
            Some(Err(e)) => return Err(e),
            None => {
                SLOW_NORMALISER.fetch_add(1, Ordering::Relaxed);
                match line::Digits::from_dialled(&dialled(line)?) {
                    Some(digits) => digits,
                    None => return self.fall_back(line, region),
                }
            }
        };
        match fast::check(&digits, region) {
            Ok(answer) => answer,
            Err(fast::Unsure) => self.fall_back(line, region),
        }
    }

    #[cold]
    fn fall_back(&self, line: &[u8], region: Option<RegionCode>) -> Result<Checked, LineError> {
        FALLBACKS.fetch_add(1, Ordering::Relaxed);
        self.check_line_reference(line, region)
    }

    /// Forces the compiled plan to be built now rather than on the first line (it takes a
    /// moment: call it at start-up to keep that out of the first request).
    pub fn warm_up(&self) {
        std::sync::LazyLock::force(&fast::PLAN);
    }

    /// [`check_line`](Self::check_line) through `rlibphonenumber` alone: the reference the fast
    /// path falls back on, kept public for comparison and benchmarks. Same answers, ~10x slower.
    pub fn check_line_reference(
        &self,
        line: &[u8],
        region: Option<RegionCode>,
    ) -> Result<Checked, LineError> {
        let (e164, number) = self.parse(&dialled(line)?, region)?;
        let valid = number.is_valid();
        Ok(Checked {
            e164,
            valid,
            line_type: if valid {
                LineType::from_lib(number.get_type())
            } else {
                LineType::Unknown
            },
            region: if valid {
                number.get_region_code().map(RegionCode)
            } else {
                None
            },
        })
    }

    fn parse(
        &self,
        dialled: &Dialled,
        region: Option<RegionCode>,
    ) -> Result<(E164, rlibphonenumber::PhoneNumber), LineError> {
        let util = &*PHONE_NUMBER_UTIL;
        let number = match dialled {
            Dialled::International(digits) => {
                let text = format!("+{digits}");
                util.parse(&text, None).map_err(map_error)?
            }
            Dialled::National(digits) => match region {
                Some(RegionCode(r)) => util.parse(digits, Some(r)).map_err(map_error)?,
                None => {
                    // No region to read it in: accept it only as an international number
                    // whose `+` was lost (a spreadsheet's doing) and that is valid as such.
                    let text = format!("+{digits}");
                    match util.parse(&text, None) {
                        Ok(n) if n.is_valid() => n,
                        _ => return Err(LineError::NationalWithoutRegion),
                    }
                }
            },
        };
        let formatted = number.format_as(PhoneNumberFormat::E164);
        let digits = formatted.trim_start_matches('+');
        if digits.len() > MAX_DIGITS {
            return Err(LineError::TooLong);
        }
        let e164 = E164::from_digits(digits.as_bytes()).map_err(|_| LineError::NotANumber)?;
        Ok((e164, number))
    }
}

/// The printable forms of a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formats {
    pub country_code: u32,
    pub national: String,
    pub international: String,
}

impl NumberingPlan {
    /// National and international formats of a number, as libphonenumber writes them.
    pub fn formats(&self, e164: E164) -> Option<Formats> {
        let number = PHONE_NUMBER_UTIL.parse(e164.to_string(), None).ok()?;
        Some(Formats {
            country_code: u32::try_from(number.country_code).unwrap_or_default(),
            national: number.format_as(PhoneNumberFormat::National).to_string(),
            international: number
                .format_as(PhoneNumberFormat::International)
                .to_string(),
        })
    }
}

fn map_error(e: ParseError) -> LineError {
    match e {
        ParseError::InvalidCountryCode => LineError::UnknownCountryCode,
        ParseError::NotANumber(_) => LineError::NotANumber,
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => LineError::TooShort,
        ParseError::TooLongNsn => LineError::TooLong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, region: Option<&str>) -> Result<Checked, LineError> {
        NumberingPlan.check_line(line.as_bytes(), region.map(|r| r.parse().unwrap()))
    }

    #[test]
    fn international_numbers_parse_to_e164_with_type_and_region() {
        let c = check("+33 6 12 34 56 78", None).unwrap();
        assert_eq!(c.e164.to_string(), "+33612345678");
        assert!(c.valid);
        assert_eq!(c.line_type, LineType::Mobile);
        assert_eq!(c.region.unwrap().as_str(), "FR");
        let c = check("+1 (415) 555-2671", None).unwrap();
        assert_eq!(c.e164.to_string(), "+14155552671");
        assert_eq!(c.region.unwrap().as_str(), "US");
    }

    /// Found by `fuzz/fuzz_targets/line_normaliser.rs`: a valid number's E.164 form need not
    /// read back as itself. Belarus strips a national prefix `8` (or `80`) written after the
    /// country code when what is left is a viable number, so `+375 80 8100511142` is the valid
    /// `+3758100511142`, and that again loses its `8`. Python phonenumbers 9.0.43 gives the
    /// same three answers (`parse(s, None)`, E.164, `is_valid_number`): the plan follows
    /// libphonenumber here rather than being idempotent.
    #[test]
    fn a_valid_numbers_e164_form_may_lose_another_national_prefix_as_libphonenumber_does() {
        let c = check("+375808100511142", None).unwrap();
        assert_eq!(
            (c.e164.to_string().as_str(), c.valid),
            ("+3758100511142", true)
        );
        let again = check("+3758100511142", None).unwrap();
        assert_eq!(
            (again.e164.to_string().as_str(), again.valid),
            ("+375100511142", false)
        );
        let third = check("+375100511142", None).unwrap();
        assert_eq!(third.e164, again.e164);
    }

    #[test]
    fn national_numbers_need_a_region() {
        let c = check("030 901820", Some("DE")).unwrap();
        assert_eq!(c.e164.to_string(), "+4930901820");
        assert_eq!(
            check("030 901820", None),
            Err(LineError::NationalWithoutRegion)
        );
    }

    #[test]
    fn a_lost_plus_is_restored_only_when_the_result_is_valid() {
        let c = check("14155552671", None).unwrap();
        assert_eq!(c.e164.to_string(), "+14155552671");
        assert_eq!(
            check("1.4155552671E10", None).unwrap().e164.to_string(),
            "+14155552671"
        );
        assert_eq!(check("12345", None), Err(LineError::NationalWithoutRegion));
    }

    #[test]
    fn parseable_but_invalid_numbers_are_checked_not_refused() {
        let c = check("+4400000000", None).unwrap();
        assert!(!c.valid);
        assert_eq!(c.line_type, LineType::Unknown);
        assert_eq!(c.region, None);
    }

    #[test]
    fn unparseable_numbers_map_to_stable_errors() {
        assert_eq!(
            check("+999 123456", None),
            Err(LineError::UnknownCountryCode)
        );
        assert_eq!(check("+49 1", None), Err(LineError::TooShort));
        assert_eq!(check("not a number", None), Err(LineError::NotANumber));
        assert_eq!(
            check("+49 12345678901234567", None),
            Err(LineError::TooLong)
        );
    }

    #[test]
    fn formats_follow_the_numbering_plan() {
        let f = NumberingPlan
            .formats("+4930901820".parse().unwrap())
            .unwrap();
        assert_eq!(f.country_code, 49);
        assert_eq!(f.national, "030 901820");
        assert_eq!(f.international, "+49 30 901820");
    }

    #[test]
    fn region_codes_are_case_insensitive_and_checked() {
        assert_eq!("de".parse::<RegionCode>().unwrap().as_str(), "DE");
        assert!("XX".parse::<RegionCode>().is_err());
        assert!("ZZ".parse::<RegionCode>().is_err());
        assert!("DEU".parse::<RegionCode>().is_err());
    }
}
