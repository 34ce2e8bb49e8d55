//! Per-key request rates and the open-task cap: 429 with Retry-After, nothing charged.

use futures::StreamExt;
use reqwest::Method;

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
        let req = s.request(Method::GET, "/v1/balance", Some(&key));
        async move { req.send().await.unwrap() }
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
        .request(Method::POST, "/v1/tasks", Some(&key))
        .multipart(crate::helpers::file_form(b"+33612345678\n").text("task_type", "active_check"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(json(resp).await, 429, "too_many_tasks");
    let (_, balance) = s.get(&key, "/v1/balance").await;
    assert_eq!(
        balance["held"], 2,
        "only the two accepted tasks hold credits"
    );
    assert_eq!(balance["usage"]["tasks"], 2);
    s.stop().await;
}

#[tokio::test]
async fn creates_that_pass_the_early_check_together_still_keep_to_the_cap() {
    let s = TestServer::start_with(|c| {
        c.limits.max_open_tasks = 3;
        c.worker.concurrency = 0;
    })
    .await;
    let key = s.key("ula", None).await;
    // Eight uploads start at once, each stalled after its first bytes until all have passed
    // the check made before the body is read; then they finish together.
    let (go, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut creates = Vec::new();
    for i in 0..8 {
        let mut wait = go.subscribe();
        let body =
            futures::stream::once(async { Ok::<_, std::io::Error>(b"+1415555267".to_vec()) })
                .chain(futures::stream::once(async move {
                    let _ = wait.recv().await;
                    Ok(format!("{i}\n").into_bytes())
                }));
        let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body))
            .file_name("n.txt")
            .mime_str("text/plain")
            .unwrap();
        let form = reqwest::multipart::Form::new()
            .text("task_type", "active_check")
            .part("file", part);
        creates.push(
            s.request(Method::POST, "/v1/tasks", Some(&key))
                .multipart(form)
                .send(),
        );
    }
    let sent = tokio::spawn(futures::future::join_all(creates));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    go.send(()).unwrap();
    let mut codes: Vec<u16> = sent
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 200, 200, 429, 429, 429, 429, 429]);
    let (_, balance) = s.get(&key, "/v1/balance").await;
    assert_eq!(balance["usage"]["tasks"], 3);
    // The refused uploads left nothing behind.
    let uploads = s.data_dir.join("blobs").join("uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0),
        3
    );
    s.stop().await;
}

#[tokio::test]
async fn an_upload_that_stalls_is_cut_off_with_408_and_nothing_is_stored() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| c.limits.upload_idle_secs = 1).await;
    let key = s.key("uma", None).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
         Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n\
         --XX\r\nContent-Disposition: form-data; name=\"task_type\"\r\n\r\nactive_check\r\n\
         --XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\r\n\r\n+14155552671\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Then nothing: the server gives up after a second of silence.
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers instead of waiting forever")
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("upload_stalled"), "{text}");
    let (_, page) = s.get(&key, "/v1/tasks").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 0);
    let uploads = s.data_dir.join("blobs").join("uploads");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the partial upload is removed");
    s.stop().await;
}

#[tokio::test]
async fn a_connection_that_trickles_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| c.limits.header_timeout_secs = 1).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = std::time::Instant::now();
    // One header line every half second, never the blank line that ends the head.
    let mut closed = false;
    for i in 0..20 {
        let line = if i == 0 {
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n")
        } else {
            format!("X-Slow-{i}: a\r\n")
        };
        if conn.write_all(line.as_bytes()).await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        match tokio::time::timeout(std::time::Duration::from_millis(500), conn.read(&mut byte))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // An answer (a 408) is as good as a close; then the server hangs up.
                let mut rest = Vec::new();
                let _ = conn.read_to_end(&mut rest).await;
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the server kept a trickling connection open");
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    // A prompt client is served as ever.
    let (code, _) = s.call(Method::GET, "/healthz", None).await;
    assert_eq!(code, 200);
    s.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_line_limit_is_refused_with_413_and_not_stored() {
    let s = TestServer::start_with(|c| c.limits.max_upload_lines = 1000).await;
    let key = s.key("val", Some(100_000)).await;
    let body: String = (0..1001).map(|i| format!("+1415555{:04}\n", i)).collect();
    assert_error(s.create(&key, body.as_bytes()).await, 413, "too_many_lines");
    let csv: String = std::iter::once("name,phone\n".to_owned())
        .chain((0..1001).map(|i| format!("n{i},+1415555{:04}\n", i)))
        .collect();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes())
                .file_name("big.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
        .text("task_type", "active_check");
    assert_error(s.create_form(&key, form, None).await, 413, "too_many_lines");
    // Exactly at the limit is fine.
    let ok: String = (0..1000).map(|i| format!("+1415555{:04}\n", i)).collect();
    assert_eq!(s.create(&key, ok.as_bytes()).await.0, 200);
    let uploads = s.data_dir.join("blobs").join("uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        1,
        "only the accepted upload"
    );
    s.stop().await;
}
