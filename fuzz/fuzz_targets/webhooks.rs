//! Any request through `/v1/webhooks/{format}/{source}` as the route reads it, for every
//! webhook format: the query and form fields merged the way the route merges them, the
//! Twilio signature checked against the URL the route rebuilds, the format's parser, then
//! `observe` with the shipped code book. Nothing panics; a signature the server computes
//! verifies, one bit off does not; every observation is a bounded, final, dated fact.
//!
//! Input: byte 0 picks the request (format, method, content type, default region); the rest
//! is the query string, a NUL byte, then the body (no NUL: all body, empty query).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
use numcheck_core::connectors::{
    ConnectorFormat, Event, MAX_FIELD, ParseError, form_pairs, infobip, jasmin, kannel, twilio,
    vonage,
};
use numcheck_core::{Row, RowError};

const NOW: i64 = 1_800_000_000_000;
const WEBHOOKS: [ConnectorFormat; 5] = [
    ConnectorFormat::Kannel,
    ConnectorFormat::Jasmin,
    ConnectorFormat::Twilio,
    ConnectorFormat::Vonage,
    ConnectorFormat::Infobip,
];

static BOOK: LazyLock<CodeBook> = LazyLock::new(CodeBook::shipped);
static SOURCES: LazyLock<[SourceSpec; 2]> = LazyLock::new(|| {
    let mut national = SourceSpec::new("fuzz-gb");
    national.default_region = "GB".parse().ok();
    [SourceSpec::new("fuzz"), national]
});

fn check_event(ev: &Event) {
    assert!(!ev.number.is_empty() && ev.number.len() <= MAX_FIELD);
    assert!(ev.message_id.as_ref().is_none_or(|m| m.len() <= MAX_FIELD));
    // Only final states are classified (Jasmin's level 1 carries no code).
    assert!(!ev.final_state || !ev.codes.is_empty());
}

fn check_row(row: &Result<Row, RowError>, final_state: bool) {
    match row {
        Ok(Row::Observation(o)) => {
            assert!(final_state, "a non-final state became evidence");
            assert!(o.observed_at_ms <= NOW + 86_400_000);
            assert!(o.weight > 0.0);
            assert_eq!(o.number.to_string().parse(), Ok(o.number));
        }
        Ok(Row::NotFinal) => assert!(!final_state),
        Ok(Row::Header) => panic!("observe never answers Header"),
        Err(e) => assert!(!e.code.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, rest)) = data.split_first() else {
        return;
    };
    let format = WEBHOOKS[usize::from(knobs % 5)];
    let post = knobs & 0x08 == 0;
    let is_form = knobs & 0x10 != 0;
    let spec = &SOURCES[usize::from(knobs >> 5 & 1)];
    let (query, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };

    // As `routes::webhooks::receive` builds them.
    let mut pairs: Vec<(String, String)> = form_pairs(query)
        .into_iter()
        .filter(|(k, _)| k != "token")
        .collect();
    if post && (is_form || format == ConnectorFormat::Kannel) {
        pairs.extend(form_pairs(body));
    }
    let events: Vec<Result<Event, ParseError>> = match format {
        ConnectorFormat::Kannel => vec![kannel::callback_event(&pairs)],
        ConnectorFormat::Jasmin => vec![
            jasmin::callback_event(&pairs, None),
            jasmin::callback_event(&pairs, Some("+447700900123")),
        ],
        ConnectorFormat::Twilio => {
            let mut url = String::from("https://numcheck.example/v1/webhooks/twilio/fuzz");
            let query = String::from_utf8_lossy(query);
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query);
            }
            let fields = if is_form {
                form_pairs(body)
            } else {
                Vec::new()
            };
            let good = twilio::signature("auth-token", &url, &fields);
            assert!(twilio::verify("auth-token", &url, &fields, &good));
            assert!(!twilio::verify("other-token", &url, &fields, &good));
            let mut bad = good.into_bytes();
            bad[0] ^= if bad[0] == b'A' { 2 } else { 1 };
            let bad = String::from_utf8_lossy(&bad);
            assert!(!twilio::verify("auth-token", &url, &fields, &bad));
            // The X-Twilio-Signature header is the sender's: any text.
            let _ = twilio::verify("auth-token", &url, &fields, &String::from_utf8_lossy(body));
            vec![twilio::callback_event(&form_pairs(body))]
        }
        ConnectorFormat::Vonage => {
            if post && !is_form && !body.is_empty() {
                vec![vonage::callback_event_json(body)]
            } else {
                vec![vonage::callback_event_form(&pairs)]
            }
        }
        ConnectorFormat::Infobip => match infobip::callback_events(body) {
            Ok(events) => {
                assert!(events.len() <= infobip::MAX_RESULTS);
                events
            }
            Err(e) => vec![Err(e)],
        },
        _ => unreachable!("only webhook formats are picked"),
    };
    for event in events {
        match event {
            Ok(ev) => {
                check_event(&ev);
                let final_state = ev.final_state;
                check_row(&observe(&BOOK, spec, ev, NOW), final_state);
            }
            Err(e) => assert!(!e.code.is_empty()),
        }
    }
});
