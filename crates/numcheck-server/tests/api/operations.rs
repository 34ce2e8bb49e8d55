//! Request ids and the process metrics.

use reqwest::Method;

use crate::helpers::TestServer;

#[tokio::test]
async fn every_answer_carries_a_request_id_keeping_a_sane_client_one() {
    let s = TestServer::start().await;
    let healthz = || s.request(Method::GET, "/healthz", None).send();
    let fresh = healthz().await.unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let other = healthz().await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);

    let kept = s
        .request(Method::GET, "/v1/balance", None)
        .header("X-Request-Id", "client-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 401, "errors carry it too");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(kept.headers()[name], value, "{name}");
    }
    assert!(kept.headers().contains_key("content-security-policy"));
    assert_eq!(kept.headers()["x-request-id"], "client-abc-123");
    let too_long = "x".repeat(200);
    let replaced = s
        .request(Method::GET, "/nowhere", None)
        .header("X-Request-Id", &too_long)
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 404);
    let got = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(!got.is_empty() && got != too_long);
    s.stop().await;
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_tasks_uploads_verdicts_chunks_and_requests() {
    let s = TestServer::start().await;
    let key = s.key("ops", None).await;
    let body = b"+14155552671\n+33612345678\nnot a number\n";
    let (_, created) = s.create(&key, body).await;
    let view = s.wait(&key, created["task_id"].as_str().unwrap()).await;
    let text = s.text("/metrics").await;
    assert_eq!(value(&text, "numcheck_tasks{status=\"exported\"}"), 1.0);
    assert_eq!(value(&text, "numcheck_tasks{status=\"pending\"}"), 0.0);
    assert_eq!(value(&text, "numcheck_uploads_total"), 1.0);
    assert_eq!(
        value(&text, "numcheck_upload_bytes_total"),
        body.len() as f64
    );
    let verdicts: f64 = ["active", "inactive", "unknown"]
        .iter()
        .filter_map(|v| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("numcheck_numbers_total{{verdict=\"{v}\"}} "))
                })
                .map(|n| n.parse::<f64>().unwrap())
        })
        .sum();
    assert_eq!(verdicts, view["success"].as_f64().unwrap());
    assert_eq!(
        value(&text, "numcheck_numbers_total{verdict=\"failure\"}"),
        1.0
    );
    assert_eq!(value(&text, "numcheck_chunk_seconds_count"), 1.0);
    assert_eq!(value(&text, "numcheck_export_seconds_count"), 1.0);
    assert!(
        value(
            &text,
            "numcheck_http_requests_total{route=\"/v1/gettasks\",status=\"200\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &text,
            "numcheck_http_requests_total{route=\"/v1/tasks\",status=\"200\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "numcheck_http_request_seconds_count{route=\"/v1/gettasks\"}"
        ) >= 1.0
    );
    assert!(text.contains("# TYPE numcheck_chunk_seconds histogram"));
    s.stop().await;
}
