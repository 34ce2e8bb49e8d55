//! Any bytes as an SMPP delivery receipt: reading never panics, and a parsed receipt keeps
//! every field within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::MAX_FIELD;
use numcheck_core::connectors::smpp::{is_final_stat, parse_receipt, receipt_event};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
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
