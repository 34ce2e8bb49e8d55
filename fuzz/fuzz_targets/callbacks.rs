//! Any bytes through every Twilio / Vonage / Infobip reader, as a form body, a JSON body and
//! an import line: reading never panics, and what is accepted is bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::{
    Event, LineFormat, MAX_FIELD, form_pairs, infobip, twilio, vonage,
};

fn check(ev: &Event) {
    assert!(!ev.number.is_empty() && ev.number.len() <= MAX_FIELD);
    assert!(ev.message_id.as_ref().is_none_or(|m| m.len() <= MAX_FIELD));
    assert!(!ev.codes.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let pairs = form_pairs(data);
    if let Ok(ev) = twilio::callback_event(&pairs) {
        check(&ev);
    }
    let sig = twilio::signature("token", "https://example.com/cb", &pairs);
    assert!(twilio::verify(
        "token",
        "https://example.com/cb",
        &pairs,
        &sig
    ));
    let header = String::from_utf8_lossy(data);
    let _ = twilio::verify("token", "https://example.com/cb", &[], &header);
    if let Ok(ev) = vonage::callback_event_form(&pairs) {
        check(&ev);
    }
    if let Ok(ev) = vonage::callback_event_json(data) {
        check(&ev);
    }
    if let Ok(results) = infobip::callback_events(data) {
        for ev in results.iter().flatten() {
            check(ev);
        }
    }
    let mut readers: [Box<dyn LineFormat>; 3] = [
        Box::new(twilio::TwilioLines::new()),
        Box::new(vonage::VonageLines::new()),
        Box::new(infobip::InfobipLines::new()),
    ];
    for r in readers.iter_mut() {
        if let Ok(Some(ev)) = r.line(data) {
            check(&ev);
        }
    }
});
