//! Any bytes as one line of an upload: reading them never panics; whatever is accepted is a
//! well-formed E.164 number that reads back as itself; and normalising is stable — the digits
//! a line dialled read the same when written out again, and a valid number's E.164 form
//! never reads as another valid number, in any region.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::normalise::{Dialled, MAX_DIALLED_DIGITS, dialled};
use numcheck_core::{E164, NumberingPlan, RegionCode};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = dialled(data) {
        let digits = match &d {
            Dialled::International(s) | Dialled::National(s) => s,
        };
        assert!(!digits.is_empty() && digits.len() <= MAX_DIALLED_DIGITS);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            dialled(d.to_string().as_bytes()),
            Ok(d),
            "normalising twice"
        );
    }

    let plan = NumberingPlan;
    let regions: [Option<RegionCode>; 3] = [None, "US".parse().ok(), "DE".parse().ok()];
    for region in regions {
        if let Ok(checked) = plan.check_line(data, region) {
            let text = checked.e164.to_string();
            assert!(text.len() <= 16 && text.starts_with('+'));
            assert_eq!(text.parse::<E164>(), Ok(checked.e164));
            assert_eq!(plan.parse_line(data, region), Ok(checked.e164));
            // Only a valid number's E.164 form is its own: libphonenumber keeps a national
            // prefix written after the country code of an invalid number as a leading zero
            // (`+44 0020 7183 8750` is `+4402071838750`), and strips it when that is read
            // again (`+442071838750`). Python phonenumbers does the same; the plan follows it.
            if !checked.valid {
                continue;
            }
            // Nor always then: libphonenumber strips a second national prefix where what is
            // left is viable (`+375808100511142` is the valid `+3758100511142`, which reads
            // as the invalid `+375100511142`; Python phonenumbers agrees, see the plan's
            // tests). So: read again, a valid number's form is the same valid number.
            for again in regions {
                if let Ok(c) = plan.check_line(text.as_bytes(), again)
                    && c.valid
                {
                    assert_eq!(c.e164, checked.e164, "{text} read again in {again:?}");
                }
            }
        }
    }
});
