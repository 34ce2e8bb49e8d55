//! Any bytes as one line of an upload: reading them never panics, and whatever is accepted
//! is a well-formed E.164 number that reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::{E164, NumberingPlan, RegionCode};

fuzz_target!(|data: &[u8]| {
    let plan = NumberingPlan;
    let regions: [Option<RegionCode>; 3] = [None, "US".parse().ok(), "DE".parse().ok()];
    for region in regions {
        if let Ok(checked) = plan.check_line(data, region) {
            let text = checked.e164.to_string();
            assert!(text.len() <= 16 && text.starts_with('+'));
            assert_eq!(text.parse::<E164>(), Ok(checked.e164));
            assert_eq!(plan.parse_line(data, region), Ok(checked.e164));
        }
    }
});
