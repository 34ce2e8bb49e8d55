//! Any bytes as the value of a form field or path segment of the task API, through the pure
//! functions the routes call on them: `task_type`, `default_region`, `columns`, `formats`,
//! `live_lookup` / `max_lookups` / `max_age_days`, `callback_url`, a task id in a path, a
//! `status` filter and a signed result link (`expires`, `signature`). Nothing panics, and
//! what is accepted reads back as itself.
//!
//! Input: byte 0 picks the field (mod 8); the rest is its value, refused unless UTF-8 and
//! trimmed, as `routes::tasks::text_field` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::form_pairs;
use numcheck_core::{RegionCode, TaskId, TaskStatus, TaskType};
use numcheck_engine::callback_url::{MAX_URL_LEN, check_url};
use numcheck_engine::config::LookupConfig;
use numcheck_engine::options::{Columns, TaskOptions};
use numcheck_engine::signing::{LinkError, LinkSigner};

/// `routes::tasks::MAX_TEXT_FIELD`.
const MAX_TEXT_FIELD: usize = 4096;
const NOW_S: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    if raw.len() > MAX_TEXT_FIELD {
        return;
    }
    let Ok(value) = std::str::from_utf8(raw) else {
        return;
    };
    let value = value.trim();
    match pick % 8 {
        0 => {
            if let Ok(t) = value.parse::<TaskType>() {
                assert_eq!(t.as_str(), value);
            }
            if let Ok(s) = value.parse::<TaskStatus>() {
                assert_eq!(s.as_str(), value);
            }
        }
        1 => {
            if let Ok(r) = value.parse::<RegionCode>() {
                assert_eq!(r.as_str().parse::<RegionCode>(), Ok(r));
                assert_eq!(r.as_str(), value.to_ascii_uppercase());
            }
        }
        2 | 3 => {
            let (columns, formats) = match value.split_once('\n') {
                Some((c, f)) => (Some(c), Some(f)),
                None if pick % 8 == 2 => (Some(value), None),
                None => (None, Some(value)),
            };
            if let Ok(o) = TaskOptions::from_form(columns, formats) {
                assert_eq!(TaskOptions::from_json(&o.to_json()), o);
                if columns.is_some_and(|c| c.trim().eq_ignore_ascii_case("basic")) {
                    assert_eq!(o.columns, Columns::Basic);
                }
            }
            let _ = TaskOptions::from_json(value);
        }
        4 => {
            let mut parts = value.splitn(3, '\n').map(Some);
            let (live, max, age) = (
                parts.next().flatten(),
                parts.next().flatten(),
                parts.next().flatten(),
            );
            let config = LookupConfig::default();
            for have_providers in [false, true] {
                if let Ok(Some(l)) =
                    TaskOptions::lookup_from_form(live, max, age, &config, have_providers)
                {
                    assert!(have_providers);
                    assert!(l.max_lookups <= 1_000_000_000);
                    assert!((1..=3650).contains(&l.max_age_days));
                }
            }
        }
        5 => {
            if let Ok(url) = check_url(value, false) {
                assert!(matches!(url.scheme(), "http" | "https"));
                assert!(url.username().is_empty() && url.password().is_none());
                assert!(check_url(value, true).is_ok());
                if url.as_str().len() <= MAX_URL_LEN {
                    assert!(check_url(url.as_str(), false).is_ok(), "{url} re-checked");
                }
            }
            let _ = check_url(value, true);
        }
        6 => {
            if let Ok(id) = value.parse::<TaskId>() {
                assert_eq!(id.to_string(), value);
            }
        }
        _ => {
            // `GET /v1/results/{id}.zip?expires=…&signature=…`
            let signer = LinkSigner::new([7; 32]);
            let id: TaskId = "d4ll8ne8ql5ma2mq7ju0".parse().expect("a task id");
            let query = form_pairs(value.as_bytes());
            let param = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            if let (Some(expires), Some(signature)) = (
                param("expires").and_then(|e| e.parse::<i64>().ok()),
                param("signature"),
            ) {
                match signer.verify(&id, expires, signature, NOW_S) {
                    Ok(()) => assert!(expires >= NOW_S),
                    Err(LinkError::Expired) => assert!(expires < NOW_S),
                    Err(LinkError::BadSignature) => {}
                }
                let good = form_pairs(signer.query(&id, expires).as_bytes());
                let sig = &good
                    .iter()
                    .find(|(k, _)| k == "signature")
                    .expect("signed")
                    .1;
                let verdict = signer.verify(&id, expires, sig, NOW_S);
                assert!(matches!(verdict, Ok(()) | Err(LinkError::Expired)));
            }
        }
    }
});
