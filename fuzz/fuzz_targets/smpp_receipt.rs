//! Any bytes as an SMPP delivery receipt, and as its date and `err:` fields alone: reading
//! never panics, a parsed receipt keeps every field within bounds, and an `err:` value
//! normalises to a stable key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::MAX_FIELD;
use numcheck_core::connectors::smpp::{
    is_final_stat, normalise_err, parse_date, parse_receipt, receipt_event,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ms) = parse_date(&text) {
        // Years 2000-2099 only.
        assert!((946_684_800_000..4_102_444_800_000).contains(&ms));
    }
    if let Some(err) = normalise_err(&text) {
        assert!(!err.is_empty());
        assert_eq!(
            normalise_err(&err).as_deref(),
            Some(err.as_str()),
            "normalised twice"
        );
    }
    if let Ok(r) = parse_receipt(&text) {
        assert!(!r.stat.is_empty() && r.stat.len() <= MAX_FIELD);
        for v in [&r.id, &r.err, &r.text].into_iter().flatten() {
            assert!(v.len() <= MAX_FIELD);
        }
        let e = receipt_event("+14155552671", &r, None);
        assert!(e.raw_code.starts_with(r.stat.as_str()));
        assert_eq!(e.final_state, is_final_stat(&r.stat));
        assert!(!e.codes.is_empty() && e.codes.len() <= 2);
    }
});
