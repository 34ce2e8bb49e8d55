//! Live lookups through the API, against a stand-in for a remote HLR-lookup service (a local
//! axum server speaking the `connectivity_status` shape): only undecided numbers are asked,
//! the budget holds, a repeat asks nothing, and a dead provider leaves `unknown`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use numcheck_engine::config::ProviderConfig;
use serde_json::{Value, json};

use crate::helpers::*;

/// The stand-in: answers `{"msisdn": "+…"}` by the number's last digit — 1 CONNECTED, 2
/// INVALID_MSISDN (both from a live HLR), anything else ABSENT — and records what it was asked.
async fn stand_in() -> (String, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    async fn answer(
        State(asked): State<Arc<Mutex<Vec<String>>>>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        let msisdn = body["msisdn"].as_str().unwrap_or_default().to_owned();
        asked.lock().unwrap().push(msisdn.clone());
        let status = match msisdn.chars().last() {
            Some('1') => "CONNECTED",
            Some('2') => "INVALID_MSISDN",
            _ => "ABSENT",
        };
        Json(json!({
            "id": format!("q-{msisdn}"), "msisdn": msisdn, "connectivity_status": status,
            "data_source": "LIVE_HLR", "error_code": null
        }))
    }
    let app = axum::Router::new()
        .route("/hlr-lookup", post(answer))
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hlr-lookup"), asked)
}

fn provider(url: &str) -> ProviderConfig {
    serde_json::from_value(json!({
        "http": {"name": "hlr-x", "preset": "connectivity", "url": url, "timeout_ms": 2000},
        "limits": {"rate_per_second": 1000, "burst": 100, "attempts": 2, "backoff_ms": 10,
                   "max_backoff_ms": 50, "failure_threshold": 3, "cooldown_ms": 60000}
    }))
    .unwrap()
}

/// Runs a task over `numbers` with extra form fields; returns (final poll, verdicts, summary).
async fn task(
    s: &TestServer,
    numbers: &[&str],
    fields: &[(&str, &str)],
) -> (Value, HashMap<String, (String, String)>, Value) {
    let file: String = numbers.iter().map(|n| format!("{n}\n")).collect();
    let (code, created) = s.create_with(&s.admin_key, file.as_bytes(), fields).await;
    assert_eq!(code, 200, "{created}");
    let v = s
        .wait(&s.admin_key, created["task_id"].as_str().unwrap())
        .await;
    let mut zip = s.zip(&v).await;
    let verdicts = zip
        .csv(created["task_id"].as_str().unwrap())
        .lines()
        .skip(1)
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            (f[0].to_owned(), (f[1].to_owned(), f[2].to_owned()))
        })
        .collect();
    (v, verdicts, zip.summary())
}

const NUMBERS: [&str; 6] = [
    "+447911123401", // has evidence: delivered yesterday
    "+447911123411", // CONNECTED
    "+447911123412", // INVALID_MSISDN
    "+447911123413", // ABSENT
    "+447911123414", // ABSENT
    "+442079460000", // a landline: an HLR does not cover it
];

#[tokio::test]
async fn only_undecided_numbers_are_looked_up_within_the_budget_and_only_once() {
    let (url, asked) = stand_in().await;
    let s = TestServer::start_with(|c| c.lookup.providers = vec![provider(&url)]).await;
    let yesterday = numcheck_engine::clock::now_ms() / 1000 - 86_400;
    let evidence = format!(
        "number,observed_at,source,kind,raw_code,message_id\n+447911123401,{yesterday},smsc,sms_dlr,DELIVRD,m1\n"
    );
    let (code, report) = s.post_evidence(&s.admin_key, "text/csv", evidence).await;
    assert_eq!(code, 200, "{report}");

    // Budget 2: of the four undecided mobiles, the first two are asked.
    let (v, verdicts, summary) = task(
        &s,
        &NUMBERS,
        &[("live_lookup", "true"), ("max_lookups", "2")],
    )
    .await;
    // Calls run concurrently: compare as a set.
    let mut first = asked.lock().unwrap().clone();
    first.sort();
    assert_eq!(first, vec!["+447911123411", "+447911123412"]);
    assert_eq!(v["lookups"], json!({"made": 2, "max": 2}));
    let l = &summary["lookups"];
    assert_eq!(
        (
            l["candidates"].as_i64(),
            l["made"].as_i64(),
            l["answered"].as_i64(),
            l["skipped_budget"].as_i64(),
            l["from_cache"].as_i64()
        ),
        (Some(4), Some(2), Some(2), Some(2), Some(0)),
        "{summary}"
    );
    assert_eq!(verdicts["+447911123401"].0, "active");
    assert_eq!(verdicts["+447911123411"].0, "active");
    assert_eq!(
        verdicts["+447911123412"],
        ("inactive".into(), "disconnected".into())
    );
    assert_eq!(verdicts["+447911123413"].0, "unknown");
    assert_eq!(verdicts["+442079460000"].0, "unknown");

    // A bigger budget: the answered numbers are decided by their stored answers now; the two
    // left are asked and stay unknown (absent is temporary).
    let (_, verdicts, summary) = task(
        &s,
        &NUMBERS,
        &[("live_lookup", "true"), ("max_lookups", "10")],
    )
    .await;
    assert_eq!(asked.lock().unwrap().len(), 4);
    assert_eq!(summary["lookups"]["made"], 2);
    assert_eq!(verdicts["+447911123411"].0, "active");
    assert_eq!(verdicts["+447911123414"].0, "unknown");

    // Within the freshness window nothing is asked again.
    let (_, _, summary) = task(&s, &NUMBERS, &[("live_lookup", "true")]).await;
    assert_eq!(
        asked.lock().unwrap().len(),
        4,
        "a repeat task makes no lookups"
    );
    assert_eq!(summary["lookups"]["from_cache"], 2);
    assert_eq!(summary["lookups"]["made"], 0);

    // Without live_lookup (the configured default is off) nothing is asked or reported.
    let (v, _, summary) = task(&s, &NUMBERS, &[]).await;
    assert!(v.get("lookups").is_none(), "{v}");
    assert!(summary.get("lookups").is_none(), "{summary}");
    assert_eq!(asked.lock().unwrap().len(), 4);

    let metrics = s.text("/metrics").await;
    assert!(
        metrics.contains("numcheck_lookups_total{outcome=\"made\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("numcheck_lookups_total{outcome=\"from_cache\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("numcheck_lookup_provider_circuit_open{provider=\"hlr-x\"} 0"),
        "{metrics}"
    );

    // Bad form values are refused before anything runs.
    for (field, value, code) in [
        ("live_lookup", "maybe", "invalid_live_lookup"),
        ("max_lookups", "-1", "invalid_max_lookups"),
        ("max_age_days", "x", "invalid_max_age_days"),
    ] {
        let got = s
            .create_with(&s.admin_key, b"+447911123499\n", &[(field, value)])
            .await;
        assert_error(got, 400, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_dead_provider_leaves_numbers_unknown_never_inactive() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hlr-lookup");
    let s = TestServer::start_with(|c| {
        c.lookup.providers = vec![provider(&url)];
        c.lookup.enabled_by_default = true;
    })
    .await;
    let (_, verdicts, summary) = task(&s, &NUMBERS[1..5], &[]).await;
    for n in &NUMBERS[1..5] {
        assert_eq!(
            verdicts[*n],
            ("unknown".into(), "no_evidence".into()),
            "{n}"
        );
    }
    assert_eq!(summary["lookups"]["failed"], 4, "{summary}");
    assert_eq!(summary["lookups"]["answered"], 0);
    s.stop().await;
}

#[tokio::test]
async fn asking_for_lookups_without_a_provider_is_refused() {
    let s = TestServer::start().await;
    let live = [("live_lookup", "true")];
    let got = s.create_with(&s.admin_key, b"+447911123411\n", &live).await;
    assert_error(got, 400, "live_lookup_unavailable");
    s.stop().await;
}
