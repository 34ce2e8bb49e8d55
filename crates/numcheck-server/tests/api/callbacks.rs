//! Completion notices: signed, retried, refused for private targets unless allowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{TestServer, assert_error, file_form, json};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on loopback answering the given statuses in turn (the last one repeats).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

async fn receiver(answers: Vec<u16>) -> Receiver {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            let answers = answers.clone();
            async move {
                let mut g = seen.lock().unwrap();
                let n = g.len();
                g.push(Got {
                    headers,
                    body: body.to_vec(),
                });
                StatusCode::from_u16(answers[n.min(answers.len() - 1)]).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

impl Receiver {
    /// Waits (bounded) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        for _ in 0..3000 {
            {
                let g = self.got.lock().unwrap();
                if g.len() >= n {
                    return g.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the receiver got {} requests, not {n}",
            self.got.lock().unwrap().len()
        );
    }
}

/// Checks a signature header the way the README tells receivers to.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap_or_default())
        .is_ok()
}

async fn secret(s: &TestServer, key: &str) -> String {
    let (code, body) = json(
        s.http
            .get(format!("{}/v1/callback-secret", s.base))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body["secret"].as_str().unwrap().to_owned()
}

async fn detail(s: &TestServer, key: &str, id: &str) -> Value {
    json(
        s.http
            .get(format!("{}/v1/tasks/{id}", s.base))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
    .1
}

async fn create_with_callback(s: &TestServer, key: &str, url: &str) -> (u16, Value) {
    s.create_form(
        key,
        file_form(b"+447700900123\n+12025550143\n")
            .text("task_type", "active_check")
            .text("callback_url", url.to_owned()),
        None,
    )
    .await
}

#[tokio::test]
async fn an_exported_task_posts_a_signed_notice_to_its_callback_url() {
    let s = TestServer::start_with(|c| c.callbacks.allow_private = true).await;
    let key = s.key("ida", None).await;
    let rx = receiver(vec![200]).await;
    let (code, created) = create_with_callback(&s, &key, &rx.url).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap();
    s.wait(&key, id).await;
    let got = rx.wait_for(1).await;
    let notice: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(notice["event"], "task.exported");
    assert_eq!(notice["task"]["task_id"], id);
    assert_eq!(notice["task"]["status"], "exported");
    assert_eq!(notice["task"]["success"], 2);
    assert!(notice["task"]["result_url"].as_str().unwrap().contains(id));
    assert_eq!(got[0].headers["x-numcheck-event"], "task.exported");
    assert_eq!(got[0].headers["content-type"], "application/json");
    let signature = got[0].headers["x-numcheck-signature"].to_str().unwrap();
    let secret = secret(&s, &key).await;
    assert!(secret.starts_with("whsec_"));
    assert!(
        verify(&secret, signature, &got[0].body),
        "signature checks out"
    );
    assert!(!verify("whsec_wrong", signature, &got[0].body));
    let mut tampered = got[0].body.clone();
    tampered[10] ^= 1;
    assert!(!verify(&secret, signature, &tampered));
    // The result link in the notice works.
    let link = notice["task"]["result_url"].as_str().unwrap();
    assert_eq!(s.http.get(link).send().await.unwrap().status(), 200);

    // The delivery is recorded once; nothing more is sent.
    let mut d = detail(&s, &key, id).await;
    for _ in 0..300 {
        if d["callback"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        d = detail(&s, &key, id).await;
    }
    assert_eq!(d["callback"]["state"], "delivered", "{d}");
    assert_eq!(d["callback"]["attempts"], 1);
    assert_eq!(d["callback"]["last_status"], 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_until_it_answers() {
    let s = TestServer::start_with(|c| {
        c.callbacks.allow_private = true;
        c.callbacks.first_retry_ms = 50;
    })
    .await;
    let key = s.key("jan", None).await;
    let rx = receiver(vec![500, 503, 204]).await;
    let (_, created) = create_with_callback(&s, &key, &rx.url).await;
    let id = created["task_id"].as_str().unwrap();
    let got = rx.wait_for(3).await;
    let deliveries: Vec<&str> = got
        .iter()
        .map(|g| g.headers["x-numcheck-delivery"].to_str().unwrap())
        .collect();
    assert_eq!(
        deliveries,
        vec![format!("{id}-1"), format!("{id}-2"), format!("{id}-3")]
    );
    // Each attempt is signed on its own.
    let secret = secret(&s, &key).await;
    for g in &got {
        let sig = g.headers["x-numcheck-signature"].to_str().unwrap();
        assert!(verify(&secret, sig, &g.body));
    }
    let mut d = detail(&s, &key, id).await;
    for _ in 0..300 {
        if d["callback"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        d = detail(&s, &key, id).await;
    }
    assert_eq!(d["callback"]["state"], "delivered", "{d}");
    assert_eq!(d["callback"]["attempts"], 3);
    assert_eq!(d["callback"]["last_status"], 204);
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_answering_410_is_given_up_at_once() {
    let s = TestServer::start_with(|c| c.callbacks.allow_private = true).await;
    let key = s.key("kim", None).await;
    let rx = receiver(vec![410]).await;
    let (_, created) = create_with_callback(&s, &key, &rx.url).await;
    let id = created["task_id"].as_str().unwrap();
    rx.wait_for(1).await;
    let mut d = detail(&s, &key, id).await;
    for _ in 0..300 {
        if d["callback"]["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        d = detail(&s, &key, id).await;
    }
    assert_eq!(d["callback"]["state"], "failed", "{d}");
    assert_eq!(d["callback"]["last_status"], 410);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_cancelled_task_sends_a_cancelled_notice() {
    let s = TestServer::start_with(|c| {
        c.callbacks.allow_private = true;
        c.worker.concurrency = 0;
    })
    .await;
    let key = s.key("lou", None).await;
    let rx = receiver(vec![200]).await;
    let (_, created) = create_with_callback(&s, &key, &rx.url).await;
    let id = created["task_id"].as_str().unwrap();
    let resp = s
        .http
        .post(format!("{}/v1/tasks/{id}/cancel", s.base))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = rx.wait_for(1).await;
    let notice: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(notice["event"], "task.cancelled");
    assert_eq!(notice["task"]["status"], "cancelled");
    assert!(notice["task"].get("result_url").is_none());
    s.stop().await;
}

#[tokio::test]
async fn callback_urls_to_private_addresses_are_refused_unless_allowed() {
    let s = TestServer::start().await;
    let key = s.key("max", None).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.10/hook",
    ] {
        assert_error(
            create_with_callback(&s, &key, url).await,
            400,
            "callback_url_refused",
        );
    }
    for url in [
        "ftp://example.com/x",
        "example.com/hook",
        "https://u:p@example.com/",
    ] {
        assert_error(
            create_with_callback(&s, &key, url).await,
            400,
            "invalid_callback_url",
        );
    }
    // Nothing was stored for the refused requests.
    let (_, page) = json(
        s.http
            .get(format!("{}/v1/tasks", s.base))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 0);
    s.stop().await;
}

#[tokio::test]
async fn each_user_has_their_own_callback_secret_and_can_rotate_it() {
    let s = TestServer::start().await;
    let a = s.key("ned", None).await;
    let b = s.key("ona", None).await;
    let sa = secret(&s, &a).await;
    assert_eq!(secret(&s, &a).await, sa, "stable until rotated");
    assert_ne!(secret(&s, &b).await, sa);
    let (code, rotated) = json(
        s.http
            .post(format!("{}/v1/callback-secret/rotate", s.base))
            .header("X-API-Key", &a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert_ne!(rotated["secret"], sa.as_str());
    assert_eq!(secret(&s, &a).await, rotated["secret"].as_str().unwrap());
    s.stop().await;
}
