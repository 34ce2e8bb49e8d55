//! The HTTP HLR-lookup provider against a local stand-in for the remote lookup service (an
//! axum server on 127.0.0.1:0 started by each test). The stand-in speaks both public shapes
//! (hlr-lookups.com-style connectivity answers and hlrlookup.com-style live answers), records
//! what it received, and can be told to answer slowly, throttle, fail or garble its answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
use numcheck_core::connectors::{Code, Event};
use numcheck_core::{E164, EvidenceClass, LineType, RegionCode, Row};
use numcheck_lookup::http::{HttpProvider, HttpProviderConfig};
use numcheck_lookup::{LookupError, Provider};
use serde_json::{Value, json};

/// What the stand-in does with the next requests.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Answers every number it was asked about.
    Normal,
    /// Answers normally after this delay.
    Slow(Duration),
    /// 429 with `Retry-After: 7`.
    Throttle,
    /// 503.
    Unavailable,
    /// 401.
    Unauthorized,
    /// 200 with a body that is not JSON.
    Garbled,
    /// Answers normally but leaves these numbers (E.164 digits) out.
    Omit(Vec<String>),
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    shape: String,
    api_key_header: Option<String>,
    query: HashMap<String, String>,
    body: Value,
}

#[derive(Debug, Clone)]
struct StandIn {
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
}

const NOW_MS: i64 = 1_800_000_000_000;
const HLR_TIME: &str = "2020-08-07 19:16:17.676+0300";
/// `HLR_TIME` in Unix ms: 16:16:17.676 UTC.
const HLR_TIME_MS: i64 = 1_596_816_977_676;

/// The stand-in's HLR state of a number, by its last digit:
/// 1 connected (live HLR) / live, 2 invalid (live HLR) / dead, 3 absent, 4 undetermined /
/// inconclusive, 5 connected from a portability database / no coverage,
/// 6 a per-result error.
fn connectivity_of(digits: &str) -> (&'static str, &'static str) {
    match digits.chars().last() {
        Some('1') => ("CONNECTED", "LIVE_HLR"),
        Some('2') => ("INVALID_MSISDN", "LIVE_HLR"),
        Some('3') => ("ABSENT", "LIVE_HLR"),
        Some('5') => ("CONNECTED", "MNP_DB"),
        _ => ("UNDETERMINED", "LIVE_HLR"),
    }
}

fn live_of(digits: &str) -> &'static str {
    match digits.chars().last() {
        Some('1') => "LIVE",
        Some('2') => "DEAD",
        Some('3') => "ABSENT_SUBSCRIBER",
        Some('5') => "NO_COVERAGE",
        _ => "INCONCLUSIVE",
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A connectivity result shaped like hlr-lookups.com's (number echoed in `+E.164`).
fn connectivity_result(number: &str) -> Value {
    let d = digits(number);
    let (status, source) = connectivity_of(&d);
    let error = if d.ends_with('6') {
        json!("UNSUPPORTED_NETWORK")
    } else {
        Value::Null
    };
    json!({
        "id": format!("id{d}"),
        "msisdn": format!("+{d}"),
        "connectivity_status": status,
        "timestamp": HLR_TIME,
        "processing_status": "COMPLETED",
        "error_code": error,
        "data_source": source,
    })
}

/// A live result shaped like hlrlookup.com's (number echoed as sent).
fn live_result(sent: &str) -> Value {
    let d = digits(sent);
    json!({
        "error": if d.ends_with('6') { "INVALID_NUMBER" } else { "NONE" },
        "uuid": format!("uuid-{d}"),
        "request_parameters": { "telephone_number": sent },
        "detected_telephone_number": d,
        "live_status": live_of(&d),
        "timestamp": "2022-09-08T10:56:03Z",
    })
}

async fn handle(
    State(st): State<StandIn>,
    Path(shape): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.seen.lock().unwrap().push(Seen {
        method,
        shape: shape.clone(),
        api_key_header: headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        query: query.clone(),
        body: body_json.clone(),
    });
    let omit = match &st.behaviour {
        Behaviour::Slow(d) => {
            tokio::time::sleep(*d).await;
            Vec::new()
        }
        Behaviour::Throttle => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "7")],
                r#"{"error":"TOO_MANY_REQUESTS","message":"Please try again later"}"#,
            )
                .into_response();
        }
        Behaviour::Unavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Behaviour::Unauthorized => {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"UNAUTHORIZED","message":"Invalid api_key or api_secret"}"#,
            )
                .into_response();
        }
        Behaviour::Garbled => {
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
        Behaviour::Omit(o) => o.clone(),
        Behaviour::Normal => Vec::new(),
    };
    let keep = |n: &str| !omit.contains(&digits(n));
    let answer = match shape.as_str() {
        // hlr-lookups.com-style synchronous lookup: one `msisdn`, one result object.
        "connectivity" => match body_json.get("msisdn").and_then(Value::as_str) {
            Some(n) => connectivity_result(n),
            None => return StatusCode::BAD_REQUEST.into_response(),
        },
        // A batch variant of the connectivity shape: `msisdns` in, `results` out.
        "connectivity-batch" => {
            let Some(ns) = body_json.get("msisdns").and_then(Value::as_array) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let results: Vec<Value> = ns
                .iter()
                .filter_map(Value::as_str)
                .filter(|n| keep(n))
                .map(connectivity_result)
                .collect();
            json!({ "success": true, "results": results })
        }
        // GET with the number in the query.
        "connectivity-get" => match query.get("msisdn") {
            Some(n) => connectivity_result(n),
            None => return StatusCode::BAD_REQUEST.into_response(),
        },
        // hlrlookup.com-style: `requests: [{telephone_number}]` in, `body.results` out.
        "live" => {
            let Some(reqs) = body_json.get("requests").and_then(Value::as_array) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let results: Vec<Value> = reqs
                .iter()
                .filter_map(|r| r.get("telephone_number").and_then(Value::as_str))
                .filter(|n| keep(n))
                .map(live_result)
                .collect();
            json!({ "body": { "results": results } })
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    axum::Json(answer).into_response()
}

/// Starts a stand-in on 127.0.0.1:0; returns its base URL and what it will record.
async fn stand_in(behaviour: Behaviour) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/{shape}", any(handle))
        .with_state(StandIn {
            behaviour,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

/// A stand-in behaving as told, and a provider configured by `config`, whose `url` is a path
/// on the stand-in (`/connectivity`). Returns the provider and what the stand-in will record.
async fn provider_on(
    behaviour: Behaviour,
    mut config: Value,
) -> (HttpProvider, Arc<Mutex<Vec<Seen>>>) {
    let (base, seen) = stand_in(behaviour).await;
    let path = config["url"].as_str().expect("a url path").to_owned();
    config["url"] = json!(format!("{base}{path}"));
    (provider(config), seen)
}

fn config(v: Value) -> HttpProviderConfig {
    serde_json::from_value(v).unwrap()
}

fn provider(v: Value) -> HttpProvider {
    HttpProvider::new(&config(v)).unwrap()
}

fn n(s: &str) -> E164 {
    s.parse().unwrap()
}

fn class_of(e: &Event) -> EvidenceClass {
    match observe(
        &CodeBook::shipped(),
        &SourceSpec::new("hlr-test"),
        e.clone(),
        NOW_MS,
    ) {
        Ok(Row::Observation(o)) => o.class,
        other => panic!("not an observation: {other:?}"),
    }
}

/// UK mobile numbers ending in 1..=6 (the stand-in's state is the last digit).
fn uk(last: u8) -> E164 {
    n(&format!("+44779060600{last}"))
}

#[tokio::test]
async fn connectivity_preset_posts_one_msisdn_and_reads_a_live_hlr_answer() {
    let (p, seen) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/connectivity", "name": "hlr-lookups", "preset": "connectivity",
            "auth_header": "X-Api-Key", "auth_value": "s3cret-key",
        }),
    )
    .await;
    assert_eq!(p.name(), "hlr-lookups");
    assert_eq!(p.batch_size(), 1);

    let answers = p.lookup(&[uk(1)]).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].number, uk(1));
    let e = answers[0].event.clone().expect("an event");
    assert_eq!(e.number, "+447790606001");
    assert_eq!(e.raw_code, "CONNECTED;LIVE_HLR");
    assert_eq!(
        e.codes,
        vec![Code::Table("hlr_connectivity", "CONNECTED".into())]
    );
    assert_eq!(e.message_id.as_deref(), Some("id447790606001"));
    // 2020-08-07 19:16:17.676 at +03:00 is 16:16:17.676 UTC.
    assert_eq!(e.observed_at_ms, Some(HLR_TIME_MS));
    assert_eq!(class_of(&e), EvidenceClass::StrongActive);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].api_key_header.as_deref(), Some("s3cret-key"));
    assert_eq!(seen[0].body, json!({ "msisdn": "+447790606001" }));
}

#[tokio::test]
async fn connectivity_statuses_become_the_code_book_classes() {
    // A batch variant, numbers as digits, overriding the preset's request shape.
    let (p, seen) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/connectivity-batch", "name": "hlr-batch", "preset": "connectivity",
            "body_number_field": "", "numbers_field": "msisdns", "number_format": "digits",
            "batch_size": 6, "results_path": "results",
        }),
    )
    .await;
    let asked: Vec<E164> = (1..=6).map(uk).collect();
    let answers = p.lookup(&asked).await.unwrap();
    assert_eq!(answers.len(), 6);
    let by: HashMap<E164, Option<Event>> =
        answers.into_iter().map(|a| (a.number, a.event)).collect();
    let class = |i: u8| class_of(by[&uk(i)].as_ref().expect("an event"));
    assert_eq!(class(1), EvidenceClass::StrongActive, "CONNECTED, live HLR");
    assert_eq!(
        class(2),
        EvidenceClass::StrongInactive,
        "INVALID_MSISDN, live"
    );
    assert_eq!(class(3), EvidenceClass::WeakInactive, "ABSENT");
    assert_eq!(class(4), EvidenceClass::Neutral, "UNDETERMINED");
    assert_eq!(class(5), EvidenceClass::WeakActive, "CONNECTED from MNP_DB");
    assert_eq!(
        by[&uk(5)].as_ref().unwrap().codes,
        vec![Code::Table("hlr_connectivity", "CONNECTED_CACHED".into())]
    );
    // A result with an `error_code` answers None, not a failed call.
    assert_eq!(by[&uk(6)], None);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one request for the batch");
    let sent: Vec<String> = (1..=6).map(|i| format!("44779060600{i}")).collect();
    assert_eq!(seen[0].body, json!({ "msisdns": sent }));
    assert_eq!(seen[0].api_key_header, None);
}

#[tokio::test]
async fn live_preset_sends_the_hlrlookup_batch_shape() {
    let (p, seen) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/live", "name": "hlrlookup", "preset": "live",
            "body_fields": { "api_key": "k1", "api_secret": "very-secret" },
        }),
    )
    .await;
    assert_eq!(p.batch_size(), 80);
    let asked = [uk(1), uk(2), uk(3), uk(6)];
    let answers = p.lookup(&asked).await.unwrap();
    let by: HashMap<E164, Option<Event>> =
        answers.into_iter().map(|a| (a.number, a.event)).collect();
    let live = by[&uk(1)].clone().unwrap();
    assert_eq!(live.raw_code, "LIVE");
    assert_eq!(live.codes, vec![Code::Table("hlr_live", "LIVE".into())]);
    assert_eq!(live.message_id.as_deref(), Some("uuid-447790606001"));
    assert_eq!(live.observed_at_ms, Some(1_662_634_563_000));
    assert_eq!(class_of(&live), EvidenceClass::StrongActive);
    assert_eq!(
        class_of(by[&uk(2)].as_ref().unwrap()),
        EvidenceClass::StrongInactive,
        "DEAD"
    );
    assert_eq!(
        class_of(by[&uk(3)].as_ref().unwrap()),
        EvidenceClass::WeakInactive,
        "ABSENT_SUBSCRIBER"
    );
    assert_eq!(by[&uk(6)], None, "a result with error INVALID_NUMBER");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].shape, "live");
    assert_eq!(
        seen[0].body,
        json!({
            "api_key": "k1",
            "api_secret": "very-secret",
            "requests": [
                { "telephone_number": "447790606001" },
                { "telephone_number": "447790606002" },
                { "telephone_number": "447790606003" },
                { "telephone_number": "447790606006" },
            ]
        })
    );
}

#[tokio::test]
async fn get_requests_carry_the_number_in_the_query() {
    let (p, seen) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/connectivity-get", "name": "hlr-get", "method": "GET",
            "number_param": "msisdn", "number_format": "e164", "auth_header": "X-Api-Key",
            "auth_value": "k", "number_field": "msisdn", "status_field": "connectivity_status",
            "data_source_field": "data_source", "status_family": "connectivity",
            "timeout_ms": 2000,
        }),
    )
    .await;
    let answers = p.lookup(&[uk(2)]).await.unwrap();
    let e = answers[0].event.clone().unwrap();
    assert_eq!(e.raw_code, "INVALID_MSISDN;LIVE_HLR");
    assert_eq!(class_of(&e), EvidenceClass::StrongInactive);
    // No time_field configured: the observation takes the lookup time.
    assert_eq!(e.observed_at_ms, None);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(
        seen[0].query.get("msisdn").map(String::as_str),
        Some("+447790606002")
    );
    assert_eq!(seen[0].api_key_header.as_deref(), Some("k"));
}

#[tokio::test]
async fn numbers_the_answer_leaves_out_answer_none() {
    let omit = Behaviour::Omit(vec!["447790606002".into(), "447790606004".into()]);
    let (p, _) = provider_on(
        omit,
        json!({
            "url": "/live", "name": "hlrlookup", "preset": "live",
            "body_fields": { "api_key": "k", "api_secret": "s" },
        }),
    )
    .await;
    let asked: Vec<E164> = (1..=4).map(uk).collect();
    let answers = p.lookup(&asked).await.unwrap();
    assert_eq!(answers.len(), 4);
    for a in &answers {
        let omitted = a.number == uk(2) || a.number == uk(4);
        assert_eq!(a.event.is_none(), omitted, "{}", a.number);
    }
}

// The clock is paused: the stand-in's delay and the provider's timeout (reqwest's, on the
// runtime's timers) run on the test's clock, which jumps to the next timer whenever the
// runtime has nothing else to do. The answer comes 800 ms after the request in that clock's
// time however slow the machine is, and how long the provider waited is read on it too.
#[tokio::test(start_paused = true)]
async fn a_slow_answer_is_a_timeout() {
    let (p, _) = provider_on(
        Behaviour::Slow(Duration::from_millis(800)),
        json!({
            "url": "/connectivity", "name": "slow", "preset": "connectivity", "timeout_ms": 200,
        }),
    )
    .await;
    let started = tokio::time::Instant::now();
    let err = p.lookup(&[uk(1)]).await.unwrap_err();
    assert_eq!(err, LookupError::Timeout(Duration::from_millis(200)));
    assert!(err.is_transient());
    // It gave up at its timeout, without waiting for the answer.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(800),
        "gave up after {waited:?} on the test's clock"
    );
}

async fn error_of(behaviour: Behaviour) -> LookupError {
    let (p, seen) = provider_on(
        behaviour,
        json!({
            "url": "/live", "name": "hlrlookup", "preset": "live",
            "body_fields": { "api_key": "k", "api_secret": "s" }, "timeout_ms": 500,
        }),
    )
    .await;
    let err = p.lookup(&[uk(1), uk(2)]).await.unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 1, "exactly one attempt");
    err
}

#[tokio::test]
async fn throttling_carries_retry_after() {
    assert_eq!(
        error_of(Behaviour::Throttle).await,
        LookupError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn a_503_is_unavailable() {
    let err = error_of(Behaviour::Unavailable).await;
    assert!(
        matches!(err, LookupError::Unavailable(ref m) if m.contains("503")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_401_is_refused_and_not_transient() {
    let err = error_of(Behaviour::Unauthorized).await;
    assert!(
        matches!(err, LookupError::Refused(ref m) if m.contains("401")),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_garbled_body_is_malformed() {
    let err = error_of(Behaviour::Garbled).await;
    assert!(matches!(err, LookupError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn a_body_without_the_results_path_is_malformed() {
    // The connectivity endpoint answers one object; a `results` path does not exist there.
    let (p, _) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/connectivity", "name": "wrong-path", "preset": "connectivity",
            "results_path": "body.results",
        }),
    )
    .await;
    let err = p.lookup(&[uk(1)]).await.unwrap_err();
    assert!(
        matches!(err, LookupError::Malformed(ref m) if m.contains("body.results")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = provider(json!({
        "name": "gone",
        "preset": "connectivity",
        "url": format!("http://{addr}/connectivity"),
        "timeout_ms": 500,
    }));
    let err = p.lookup(&[uk(1)]).await.unwrap_err();
    assert!(matches!(err, LookupError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn more_numbers_than_the_batch_size_are_refused_without_a_request() {
    let (p, seen) = provider_on(
        Behaviour::Normal,
        json!({
            "url": "/connectivity", "name": "one", "preset": "connectivity",
        }),
    )
    .await;
    let err = p.lookup(&[uk(1), uk(2)]).await.unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    assert!(p.lookup(&[]).await.unwrap().is_empty());
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn coverage_is_mobile_only_by_default_and_limited_to_regions() {
    let gb: RegionCode = "GB".parse().unwrap();
    let us: RegionCode = "US".parse().unwrap();
    let p = provider(json!({ "name": "a", "preset": "connectivity" }));
    assert!(p.covers(uk(1), LineType::Mobile, Some(gb)));
    assert!(p.covers(uk(1), LineType::FixedLineOrMobile, None));
    assert!(!p.covers(uk(1), LineType::FixedLine, Some(gb)));
    assert!(!p.covers(uk(1), LineType::Voip, Some(gb)));

    let p = provider(json!({
        "name": "b", "preset": "live", "mobile_only": false, "regions": ["gb", "DE"],
    }));
    assert!(p.covers(uk(1), LineType::FixedLine, Some(gb)));
    assert!(!p.covers(n("+14155552671"), LineType::Mobile, Some(us)));
    assert!(!p.covers(uk(1), LineType::Mobile, None));
}

#[test]
fn debug_output_redacts_the_secrets() {
    let c = config(json!({
        "name": "a",
        "preset": "live",
        "auth_header": "Authorization",
        "auth_value": "Bearer TOPSECRET1",
        "body_fields": { "api_key": "KEYVALUE2", "api_secret": "SECRETVALUE3" },
    }));
    let p = HttpProvider::new(&c).unwrap();
    for text in [format!("{c:?}"), format!("{p:?}")] {
        for secret in ["TOPSECRET1", "KEYVALUE2", "SECRETVALUE3"] {
            assert!(!text.contains(secret), "{secret} leaks in {text}");
        }
        assert!(text.contains("redacted"), "{text}");
        assert!(text.contains("api_secret"), "the key names stay: {text}");
    }
}

#[test]
fn a_preset_with_overrides_parses_and_validates() {
    let c = config(json!({
        "name": "hlrlookup",
        "preset": "live",
        "batch_size": 20,
        "timeout_ms": 3000,
        "number_field": "detected_telephone_number",
        "regions": ["GB"],
    }));
    assert_eq!(c.validate(), Ok(()));
    let p = HttpProvider::new(&c).unwrap();
    assert_eq!(p.batch_size(), 20);
    assert_eq!(p.timeout(), Duration::from_millis(3000));

    // A fully explicit config without a preset.
    let c = config(json!({
        "name": "custom",
        "url": "https://lookup.example.net/v1/hlr",
        "method": "POST",
        "numbers_field": "numbers",
        "batch_size": 10,
        "results_path": "data.items",
        "number_field": "number",
        "status_field": "status",
        "status_family": "live",
    }));
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn bad_configs_are_refused_with_a_clear_message() {
    let unknown = serde_json::from_value::<HttpProviderConfig>(json!({
        "name": "a", "preset": "live", "batch_szie": 5,
    }))
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("batch_szie"), "{unknown}");

    let bad_preset = serde_json::from_value::<HttpProviderConfig>(json!({
        "name": "a", "preset": "hlr",
    }))
    .unwrap_err()
    .to_string();
    assert!(bad_preset.contains("connectivity"), "{bad_preset}");

    let refused = |v: Value, want: &str| {
        let c = config(v);
        let msg = c.validate().unwrap_err();
        assert!(msg.contains(want), "{want:?} not in {msg:?}");
        let err = HttpProvider::new(&c).unwrap_err().to_string();
        assert!(err.contains(want), "{want:?} not in {err:?}");
    };
    refused(
        json!({ "name": "a", "preset": "live", "batch_size": 0 }),
        "batch_size must be at least 1",
    );
    refused(
        json!({
            "name": "a", "method": "POST", "numbers_field": "n", "status_field": "s",
            "number_field": "n", "status_family": "live",
        }),
        "url is missing",
    );
    refused(
        json!({ "name": "a", "preset": "live", "url": "ftp://x" }),
        "http:// or https://",
    );
    refused(
        json!({ "name": "a", "preset": "connectivity", "batch_size": 5 }),
        "body_number_field carries one number",
    );
    refused(
        json!({
            "name": "a", "preset": "live", "method": "GET", "number_param": "n",
            "body_fields": { "api_key": "k" },
        }),
        "GET request has no body",
    );
    refused(
        json!({
            "name": "a", "url": "http://x", "method": "GET", "status_field": "s",
            "status_family": "live",
        }),
        "number_param is missing",
    );
    refused(
        json!({ "name": "a", "preset": "live", "auth_header": "X-Key" }),
        "auth_value is missing",
    );
    refused(
        json!({ "name": "a", "preset": "live", "status_field": "" }),
        "status_field is missing",
    );
    refused(
        json!({ "name": "a", "preset": "live", "regions": ["XX"] }),
        "regions",
    );
    refused(
        json!({ "name": "a", "preset": "live", "timeout_ms": 0 }),
        "timeout_ms",
    );
    let msg = config(json!({ "name": " ", "preset": "live" }))
        .validate()
        .unwrap_err();
    assert!(msg.contains("name"), "{msg}");
}
