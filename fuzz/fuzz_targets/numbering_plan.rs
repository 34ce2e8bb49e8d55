//! Any bytes as a line and any region as a `default_region`: the numbering plan's fast path
//! answers exactly as the `rlibphonenumber` reference does (bar the one documented
//! difference, more than ten leading zeros), nothing panics, and the plan's other readers —
//! a region code, an E.164 string, the printable formats — round-trip.
//!
//! Input: byte 0 picks the region (mod 32; 31 is none); the rest is the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::normalise::{Dialled, dialled};
use numcheck_core::{E164, NumberingPlan, RegionCode};

/// Shared calling codes, national prefix transforms, IDDs of every shape, non-main regions.
const REGIONS: [&str; 31] = [
    "US", "CA", "AG", "GB", "GG", "DE", "FR", "RE", "IT", "VA", "SM", "RU", "KZ", "AR", "BR", "MX",
    "JP", "CN", "IN", "AU", "CX", "FI", "AX", "MA", "SH", "TA", "BQ", "KR", "SG", "ID", "UA",
];

/// The documented difference: rlibphonenumber keeps at most ten leading zeros.
fn many_zeros(line: &[u8]) -> bool {
    match dialled(line) {
        Ok(Dialled::International(d) | Dialled::National(d)) => d.contains("00000000000"),
        Err(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, line)) = data.split_first() else {
        return;
    };
    let region: Option<RegionCode> = REGIONS
        .get(usize::from(pick % 32))
        .map(|r| r.parse().expect("a region with a plan"));
    let plan = NumberingPlan;
    let fast = plan.check_line(line, region);
    if !many_zeros(line) {
        assert_eq!(
            fast,
            plan.check_line_reference(line, region),
            "line {:?} region {:?}",
            String::from_utf8_lossy(line),
            region.map(|r| r.as_str())
        );
    }
    if let Ok(checked) = fast {
        assert!(checked.valid || checked.region.is_none());
        if let Some(f) = plan.formats(checked.e164) {
            assert!(checked.e164.to_string()[1..].starts_with(&f.country_code.to_string()));
        }
    }

    let text = String::from_utf8_lossy(line);
    // A `default_region` form field.
    if let Ok(r) = text.parse::<RegionCode>() {
        assert_eq!(r.as_str().parse::<RegionCode>(), Ok(r));
        assert_eq!(r.as_str(), text.trim().to_ascii_uppercase());
    }
    // An E.164 string (stored numbers, API answers).
    if let Ok(n) = text.parse::<E164>() {
        assert_eq!(n.to_string(), text);
        assert_eq!(E164::from_u64(n.as_u64()), Some(n));
    }
});
