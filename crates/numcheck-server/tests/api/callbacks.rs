//! Completion notices: signed, retried, refused for private targets unless allowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use numcheck_testkit::wait_for;

use crate::helpers::{TestServer, assert_error};

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
        wait_for(format!("the receiver to get {n} requests"))
            .every(Duration::from_millis(10))
            .until(|| async {
                let got = self.got.lock().unwrap();
                if got.len() >= n {
                    Ok(got.clone())
                } else {
                    Err(format!("{} requests", got.len()))
                }
            })
            .await
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
    let (code, body) = s.get(key, "/v1/callback-secret").await;
    assert_eq!(code, 200, "{body}");
    body["secret"].as_str().unwrap().to_owned()
}

/// The task's detail once its completion notice is in `state` (bounded).
async fn callback_settled(s: &TestServer, key: &str, id: &str, state: &str) -> Value {
    wait_for(format!("the notice of {id} to be {state}"))
        .every(Duration::from_millis(10))
        .until(|| async {
            let (_, detail) = s.get(key, &format!("/v1/tasks/{id}")).await;
            if detail["callback"]["state"] == state {
                Ok(detail)
            } else {
                Err(detail)
            }
        })
        .await
}

async fn create_with_callback(s: &TestServer, key: &str, url: &str) -> (u16, Value) {
    let hook = [("callback_url", url)];
    s.create_with(key, b"+447700900123\n+12025550143\n", &hook)
        .await
}

/// A server allowed to call loopback (and changed by `tweak`), a user's key, a receiver
/// answering `answers`, and a task of that user with the receiver as its callback URL.
async fn task_with_receiver(
    user: &str,
    answers: Vec<u16>,
    tweak: impl FnOnce(&mut numcheck_server::Config),
) -> (TestServer, String, Receiver, String) {
    let s = TestServer::start_with(|c| {
        c.callbacks.allow_private = true;
        tweak(c);
    })
    .await;
    let key = s.key(user, None).await;
    let rx = receiver(answers).await;
    let (code, created) = create_with_callback(&s, &key, &rx.url).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap().to_owned();
    (s, key, rx, id)
}

#[tokio::test]
async fn an_exported_task_posts_a_signed_notice_to_its_callback_url() {
    let (s, key, rx, id) = task_with_receiver("ida", vec![200], |_| {}).await;
    let id = id.as_str();
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
    let d = callback_settled(&s, &key, id, "delivered").await;
    assert_eq!(d["callback"]["attempts"], 1);
    assert_eq!(d["callback"]["last_status"], 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_until_it_answers() {
    let (s, key, rx, id) = task_with_receiver("jan", vec![500, 503, 204], |c| {
        c.callbacks.first_retry_ms = 50
    })
    .await;
    let id = id.as_str();
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
    let d = callback_settled(&s, &key, id, "delivered").await;
    assert_eq!(d["callback"]["attempts"], 3);
    assert_eq!(d["callback"]["last_status"], 204);
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_answering_410_is_given_up_at_once() {
    let (s, key, rx, id) = task_with_receiver("kim", vec![410], |_| {}).await;
    let id = id.as_str();
    rx.wait_for(1).await;
    let d = callback_settled(&s, &key, id, "failed").await;
    assert_eq!(d["callback"]["last_status"], 410);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_cancelled_task_sends_a_cancelled_notice() {
    let (s, key, rx, id) = task_with_receiver("lou", vec![200], |c| c.worker.concurrency = 0).await;
    let id = id.as_str();
    let (code, body) = s.post(&key, &format!("/v1/tasks/{id}/cancel")).await;
    assert_eq!(code, 200, "{body}");
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
    for (url, code) in [
        ("http://127.0.0.1:9/hook", "callback_url_refused"),
        ("http://localhost/hook", "callback_url_refused"),
        ("http://[::1]/hook", "callback_url_refused"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "callback_url_refused",
        ),
        ("http://192.168.1.10/hook", "callback_url_refused"),
        ("ftp://example.com/x", "invalid_callback_url"),
        ("example.com/hook", "invalid_callback_url"),
        ("https://u:p@example.com/", "invalid_callback_url"),
    ] {
        assert_error(create_with_callback(&s, &key, url).await, 400, code);
    }
    // Nothing was stored for the refused requests.
    let (_, page) = s.get(&key, "/v1/tasks").await;
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
    let (code, rotated) = s.post(&a, "/v1/callback-secret/rotate").await;
    assert_eq!(code, 200);
    assert_ne!(rotated["secret"], sa.as_str());
    assert_eq!(secret(&s, &a).await, rotated["secret"].as_str().unwrap());
    s.stop().await;
}
