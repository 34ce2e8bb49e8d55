//! The fast path answers exactly as the `rlibphonenumber` reference path does, and never
//! panics, whatever the line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use numcheck_core::plan::{NumberingPlan, RegionCode};
use proptest::prelude::*;

/// Regions with a numbering plan, a sample wide enough to reach shared calling codes, national
/// prefix transforms (AR, BR, MX...), IDDs of every shape and non-main regions (CA, GG, KZ).
const REGIONS: &[&str] = &[
    "US", "CA", "AG", "BS", "PR", "GB", "GG", "JE", "IM", "DE", "FR", "RE", "YT", "IT", "VA", "SM",
    "RU", "KZ", "AR", "BR", "MX", "JP", "CN", "IN", "AU", "CC", "CX", "NZ", "FI", "AX", "NO", "SJ",
    "MA", "EH", "SH", "TA", "GP", "BL", "MF", "CW", "BQ", "MG", "GA", "ZA", "NG", "CO", "PE", "KR",
    "SG", "HK", "ID", "PH", "TR", "IR", "IL", "AE", "SA", "EG", "UA", "PL",
];

/// Calling codes to put in front of random tails, shared and non-geographic ones included.
const CODES: &[&str] = &[
    "1", "7", "20", "27", "33", "39", "44", "49", "52", "54", "55", "61", "62", "81", "86", "91",
    "212", "262", "290", "358", "379", "590", "599", "800", "808", "870", "878", "881", "882",
    "883", "888", "979",
];

fn region() -> impl Strategy<Value = Option<RegionCode>> {
    prop_oneof![
        1 => Just(None),
        2 => proptest::sample::select(REGIONS).prop_map(|r| Some(r.parse().unwrap())),
    ]
}

fn same_answers(line: &[u8], region: Option<RegionCode>) -> Result<(), TestCaseError> {
    // The one known difference, tested on its own below.
    prop_assume!(!line.windows(11).any(|w| w == b"00000000000"));
    let plan = NumberingPlan;
    prop_assert_eq!(
        plan.check_line(line, region),
        plan.check_line_reference(line, region),
        "line {:?} region {:?}",
        String::from_utf8_lossy(line),
        region.map(|r| r.as_str())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn fast_path_equals_reference_on_random_digit_strings(
        plus in prop_oneof![Just(""), Just("+"), Just("00")],
        digits in "[0-9]{1,20}",
        region in region(),
    ) {
        same_answers(format!("{plus}{digits}").as_bytes(), region)?;
    }

    #[test]
    fn fast_path_equals_reference_after_a_calling_code(
        plus in prop_oneof![Just(""), Just("+"), Just("00")],
        cc in proptest::sample::select(CODES),
        tail in "[0-9]{0,15}",
        region in region(),
    ) {
        same_answers(format!("{plus}{cc}{tail}").as_bytes(), region)?;
    }

    #[test]
    fn fast_path_equals_reference_on_national_prefixes_and_idds(
        prefix in prop_oneof![Just("0"), Just("00"), Just("011"), Just("8"), Just("810"), Just("1"),
                              Just("0015"), Just("15"), Just("9"), Just("044"), Just("045")],
        tail in "[0-9]{0,14}",
        region in region(),
    ) {
        same_answers(format!("{prefix}{tail}").as_bytes(), region)?;
    }

    #[test]
    fn fast_path_equals_reference_on_formatted_lines(
        line in "[ \"'+(]{0,2}[0-9]{1,4}[ .()/-]{0,2}[0-9]{1,5}[ .\u{a0}\u{2013}-]?[0-9]{0,8}[.0]{0,2}[ \"]{0,1}",
        region in region(),
    ) {
        same_answers(line.as_bytes(), region)?;
    }

    #[test]
    fn check_line_never_panics_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..48),
        region in region(),
    ) {
        let _ = NumberingPlan.check_line(&bytes, region);
    }

    #[test]
    fn check_line_never_panics_on_any_text(line in "\\PC{0,40}", region in region()) {
        let _ = NumberingPlan.check_line(line.as_bytes(), region);
    }
}

/// rlibphonenumber 2.2.15 writes at most ten leading zeros of an Italian-style national
/// number in E.164 (`number_of_leading_zeros_safe_for_formatting`); libphonenumber writes them
/// all. The fast path follows libphonenumber: the one place the two paths differ.
#[test]
fn more_than_ten_leading_zeros_are_kept_as_libphonenumber_keeps_them() {
    for (line, e164) in [
        ("+390000000000012", "+390000000000012"),
        ("+39000000000001", "+39000000000001"),
    ] {
        let checked = NumberingPlan.check_line(line.as_bytes(), None).unwrap();
        assert_eq!(checked.e164.to_string(), e164);
    }
    // Sixteen digits in libphonenumber's E.164 form: too long for us.
    assert_eq!(
        NumberingPlan.check_line(b"+8820000000000012", None),
        Err(numcheck_core::LineError::TooLong)
    );
}
