//! Per-key request rates and the open-task cap: 429 with Retry-After, nothing charged.

use crate::helpers::{TestServer, assert_error, json};

#[tokio::test]
async fn a_key_over_its_request_rate_gets_429_with_retry_after_and_others_do_not() {
    let s = TestServer::start_with(|c| {
        c.limits.requests_per_second = 1;
        c.limits.burst = 3;
    })
    .await;
    let a = s.key("ria", None).await;
    let b = s.key("sam", None).await;
    let get = |key: String| {
        let http = s.http.clone();
        let url = format!("{}/v1/balance", s.base);
        async move { http.get(url).header("X-API-Key", key).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(get(a.clone()).await.status(), 200);
    }
    let limited = get(a.clone()).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_error(json(limited).await, 429, "rate_limited");
    // Another key has its own allowance.
    assert_eq!(get(b.clone()).await.status(), 200);
    // After the wait, the key is let through again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(get(a.clone()).await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_user_at_the_open_task_cap_is_refused_before_the_upload_and_not_charged() {
    let s = TestServer::start_with(|c| {
        c.limits.max_open_tasks = 2;
        c.worker.concurrency = 0;
    })
    .await;
    let key = s.key("tia", Some(100)).await;
    for _ in 0..2 {
        let (code, body) = s.create(&key, b"+14155552671\n").await;
        assert_eq!(code, 200, "{body}");
    }
    let resp = s
        .http
        .post(format!("{}/v1/tasks", s.base))
        .header("X-API-Key", &key)
        .multipart(crate::helpers::file_form(b"+33612345678\n").text("task_type", "active_check"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(json(resp).await, 429, "too_many_tasks");
    let (_, balance) = json(
        s.http
            .get(format!("{}/v1/balance", s.base))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        balance["held"], 2,
        "only the two accepted tasks hold credits"
    );
    assert_eq!(balance["usage"]["tasks"], 2);
    s.stop().await;
}
