//! Completion notices: when a task that named a `callback_url` ends (exported, failed or
//! cancelled), a signed JSON body is POSTed there.
//!
//! The notice is queued in the store in the same transaction that ends the task, so it
//! survives a crash; any node's sender loop leases due notices, sends them and records the
//! outcome, retrying with exponential backoff until a 2xx answer or the last attempt.
//!
//! Signing: `X-Numcheck-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! with the user's callback secret (`GET /v1/callback-secret`). The timestamp inside the MAC
//! lets receivers refuse replays of old notices.
//!
//! Server-side request forgery: a callback may not reach loopback, private, link-local
//! (cloud metadata), carrier-grade NAT, multicast or other non-public addresses unless
//! `callbacks.allow_private` is set. The host is resolved once per attempt, every address is
//! checked, and the connection goes to a checked address (no second lookup an attacker's DNS
//! could answer differently); redirects are not followed.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hmac::{Hmac, Mac};
use numcheck_engine::callback_url::{check_url, is_public};
use numcheck_engine::clock::{now_ms, rfc3339_ms};
use numcheck_store::{Callback, CallbackOutcome};
use serde::Serialize;
use sha2::Sha256;

use crate::state::AppState;
use crate::views::{TaskView, task_view};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-numcheck-signature";
/// The event header (`task.exported`, `task.failed`, `task.cancelled`).
pub const EVENT_HEADER: &str = "x-numcheck-event";

/// A new callback secret: `whsec_` and 32 random bytes, base64url.
pub fn new_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    let bytes = numcheck_engine::keys::random_bytes::<32>()?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The signature header's value for `body` sent at `unix_secs`.
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The event name for a task's end state.
fn event(status: numcheck_core::TaskStatus) -> &'static str {
    match status {
        numcheck_core::TaskStatus::Exported => "task.exported",
        numcheck_core::TaskStatus::Failed => "task.failed",
        numcheck_core::TaskStatus::Cancelled => "task.cancelled",
        // Not queued for open tasks; named anyway rather than panicking.
        numcheck_core::TaskStatus::Pending | numcheck_core::TaskStatus::Processing => {
            "task.updated"
        }
    }
}

/// Idle senders look for due notices this often.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// One sender's loop; returns on shutdown.
pub async fn run(state: AppState, owner: String) {
    let lease_ms = (state.config.callbacks.timeout_secs as i64 + 30) * 1000;
    loop {
        if state.engine.shutdown.is_cancelled() {
            break;
        }
        match state
            .engine
            .store
            .claim_callback(&owner, now_ms(), lease_ms)
            .await
        {
            Ok(Some(cb)) => {
                let task = cb.task.id.clone();
                let outcome = deliver(&state, &cb).await;
                let t = &state.telemetry;
                match &outcome {
                    CallbackOutcome::Delivered { status } => {
                        t.callbacks_delivered.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%task, status, "completion notice delivered")
                    }
                    CallbackOutcome::Retry { error, .. } => {
                        t.callbacks_retried.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%task, %error, attempt = cb.attempts + 1, "completion notice failed; will retry")
                    }
                    CallbackOutcome::GaveUp { error, .. } => {
                        t.callbacks_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%task, %error, attempt = cb.attempts + 1, "completion notice given up")
                    }
                }
                if let Err(e) = state
                    .engine
                    .store
                    .finish_callback(&task, &owner, &outcome, now_ms())
                    .await
                {
                    tracing::error!(%task, error = %e, "cannot record a completion notice attempt");
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = state.engine.shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim completion notices");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = state.engine.shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// The JSON body of a notice.
#[derive(Debug, Serialize)]
struct Notice<'a> {
    event: &'a str,
    sent_at: String,
    task: TaskView,
}

/// One attempt.
async fn deliver(state: &AppState, cb: &Callback) -> CallbackOutcome {
    let config = &state.config.callbacks;
    let attempt = u32::try_from(cb.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let fail = |status: Option<i32>, error: String, permanent: bool| {
        if permanent || attempt >= config.max_attempts {
            CallbackOutcome::GaveUp { status, error }
        } else {
            CallbackOutcome::Retry {
                next_at_ms: now_ms() + config.backoff_ms(attempt) as i64,
                status,
                error,
            }
        }
    };
    // Checked at create; checked again in case the configuration changed since.
    let url = match check_url(&cb.url, config.allow_private) {
        Ok(u) => u,
        Err(e) => return fail(None, e.to_string(), true),
    };
    let target = match resolve(&url, config.allow_private).await {
        Ok(t) => t,
        Err(Resolve::Refused(e)) => return fail(None, e, true),
        Err(Resolve::Failed(e)) => return fail(None, e, false),
    };
    let secret = match state
        .engine
        .store
        .callback_secret(&cb.task.user_id, &new_secret().unwrap_or_default(), false)
        .await
    {
        Ok(s) => s,
        Err(e) => return fail(None, format!("cannot read the signing secret: {e}"), false),
    };
    let view = match task_view(state, &cb.task, None).await {
        Ok(v) => v,
        Err(e) => return fail(None, format!("cannot build the notice: {e}"), false),
    };
    let notice = Notice {
        event: event(cb.task.status),
        sent_at: rfc3339_ms(now_ms()),
        task: view,
    };
    let body = match serde_json::to_vec(&notice) {
        Ok(b) => b,
        Err(e) => return fail(None, format!("cannot encode the notice: {e}"), false),
    };
    let client = match target {
        Some((host, addr)) => reqwest::Client::builder().resolve(&host, addr),
        None => reqwest::Client::builder(),
    }
    .redirect(reqwest::redirect::Policy::none())
    .timeout(Duration::from_secs(config.timeout_secs))
    .user_agent(concat!("numcheck/", env!("CARGO_PKG_VERSION")))
    .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => return fail(None, format!("cannot build an HTTP client: {e}"), false),
    };
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, notice.event)
        .header(SIGNATURE_HEADER, signature(&secret, now_ms() / 1000, &body))
        .header("x-numcheck-delivery", format!("{}-{attempt}", cb.task.id))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => CallbackOutcome::Delivered {
            status: i32::from(resp.status().as_u16()),
        },
        Ok(resp) => {
            let status = resp.status();
            // 410 Gone: the receiver says this endpoint is retired.
            fail(
                Some(i32::from(status.as_u16())),
                format!("the receiver answered HTTP {}", status.as_u16()),
                status == reqwest::StatusCode::GONE,
            )
        }
        Err(e) => fail(None, format!("the request failed: {e}"), false),
    }
}

enum Resolve {
    /// Every address is refused: permanent.
    Refused(String),
    /// The lookup failed: may work later.
    Failed(String),
}

/// Looks the host up and picks an address allowed to be reached; `None` for IP literals
/// (already checked).
async fn resolve(
    url: &reqwest::Url,
    allow_private: bool,
) -> Result<Option<(String, SocketAddr)>, Resolve> {
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(None);
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Resolve::Failed(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Resolve::Failed(format!("{host} has no address")));
    }
    // Every address must pass: a name answering one public and one private address would
    // otherwise be a way in.
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(Resolve::Refused(format!(
            "{host} resolves to {}, a loopback, private or reserved address",
            bad.ip()
        )));
    }
    Ok(Some((host.to_owned(), addrs[0])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Known answer computed independently with Python:
        // hmac.new(b"whsec_test", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest()
        let got = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            got,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = numcheck_engine::config::CallbackConfig::default();
        assert_eq!(c.backoff_ms(1), 10_000);
        assert_eq!(c.backoff_ms(2), 40_000);
        assert_eq!(c.backoff_ms(3), 160_000);
        assert_eq!(c.backoff_ms(7), 3_600_000);
        assert_eq!(c.backoff_ms(40), 3_600_000);
    }
}
