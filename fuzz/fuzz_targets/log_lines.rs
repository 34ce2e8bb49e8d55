//! Any bytes through the Kannel and Jasmin log readers, the SMPP receipt import lines and
//! both callback parsers: nothing panics, and every event is bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::jasmin::JasminLogLines;
use numcheck_core::connectors::kannel::KannelLogLines;
use numcheck_core::connectors::kannel::parse_time;
use numcheck_core::connectors::smpp::SmppReceiptLines;
use numcheck_core::connectors::{Event, LineFormat, MAX_FIELD, form_pairs, jasmin, kannel};

fn check(event: &Event) {
    assert!(!event.number.is_empty() && event.number.len() <= MAX_FIELD);
    assert!(
        event
            .message_id
            .as_ref()
            .is_none_or(|m| m.len() <= MAX_FIELD)
    );
    assert!(event.raw_code.len() <= 2 * MAX_FIELD + 1);
}

fuzz_target!(|data: &[u8]| {
    let mut kannel_log = KannelLogLines::new();
    let mut jasmin_log = JasminLogLines::new();
    let mut receipts = SmppReceiptLines::new();
    // Prime the Jasmin reader with a sent message, so DLR lines can match it.
    let _ = jasmin_log.line(b"SMS-MT [cid:c] [queue-msgid:q] [smpp-msgid:1] [to:14155552671]");
    let formats: [&mut dyn LineFormat; 3] = [&mut kannel_log, &mut jasmin_log, &mut receipts];
    for format in formats {
        if let Ok(Some(e)) = format.line(data) {
            check(&e);
        }
    }
    // Kannel's `at` field and log time stamps.
    let _ = parse_time(&String::from_utf8_lossy(data));
    let pairs = form_pairs(data);
    if let Ok(e) = kannel::callback_event(&pairs) {
        check(&e);
    }
    if let Ok(e) = jasmin::callback_event(&pairs, None) {
        check(&e);
    }
    if let Ok(e) = jasmin::callback_event(&pairs, Some("+14155552671")) {
        check(&e);
    }
});
