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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hmac::{Hmac, Mac};
use numcheck_store::{Callback, CallbackOutcome};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::{now_ms, rfc3339_ms};
use crate::error::ApiError;
use crate::state::AppState;

/// Longest accepted callback URL.
pub const MAX_URL_LEN: usize = 2048;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-numcheck-signature";
/// The event header (`task.exported`, `task.failed`, `task.cancelled`).
pub const EVENT_HEADER: &str = "x-numcheck-event";

/// How completion notices are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Allow callbacks to loopback and private addresses (a receiver on the same host or LAN).
    pub allow_private: bool,
    /// Per attempt: connect plus answer, in seconds.
    pub timeout_secs: u64,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; each later wait is 4 times longer.
    pub first_retry_ms: u64,
    /// The longest wait between attempts, in milliseconds.
    pub max_retry_ms: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            allow_private: false,
            timeout_secs: 10,
            // 10 s, 40 s, 2.7 min, 11 min, 43 min, 1 h, 1 h: about three hours in all.
            max_attempts: 8,
            first_retry_ms: 10_000,
            max_retry_ms: 3_600_000,
        }
    }
}

impl CallbackConfig {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let factor = 4u64.saturating_pow(attempt.saturating_sub(1));
        self.first_retry_ms
            .saturating_mul(factor)
            .min(self.max_retry_ms)
    }
}

/// Whether an address is on the public internet (what a callback may reach by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890), benchmarking (RFC 2544), reserved (RFC 1112).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms are refused rather than reasoned about.
        || ip.segments()[..6].iter().all(|s| *s == 0)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// Checks a `callback_url` form field: an absolute http(s) URL without credentials, and not an
/// address in a refused range. Host names are checked again on every attempt, after lookup.
pub fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(
            "invalid_callback_url",
            format!("callback_url {why}; send an absolute http:// or https:// URL"),
        )
    };
    if raw.len() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} characters")));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("has the scheme {:?}", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("holds credentials (user:password@)"));
    }
    let Some(host) = url.host() else {
        return Err(bad("has no host"));
    };
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(d) => {
            if !allow_private && (d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"))
            {
                return Err(refused());
            }
            None
        }
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(refused());
    }
    Ok(url)
}

fn refused() -> ApiError {
    ApiError::bad_request(
        "callback_url_refused",
        "callback_url points at a loopback, private or reserved address; the server's \
         configuration does not allow that (callbacks.allow_private)",
    )
}

/// A new callback secret: `whsec_` and 32 random bytes, base64url.
pub fn new_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    let bytes = crate::keys::random_bytes::<32>()?;
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
        if state.shutdown.is_cancelled() {
            break;
        }
        match state.store.claim_callback(&owner, now_ms(), lease_ms).await {
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
                    _ = state.shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim completion notices");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = state.shutdown.cancelled() => {}
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
    task: crate::routes::TaskView,
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
        .store
        .callback_secret(&cb.task.user_id, &new_secret().unwrap_or_default(), false)
        .await
    {
        Ok(s) => s,
        Err(e) => return fail(None, format!("cannot read the signing secret: {e}"), false),
    };
    let view = match crate::routes::task_view(state, &cb.task, None).await {
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn private_and_reserved_ranges_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s} should be refused");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(is_public(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn callback_urls_are_checked() {
        assert!(check_url("https://hooks.example.com/numcheck?x=1", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "not a url",
            "https://user:pw@example.com/",
            "/relative",
        ] {
            let e = check_url(bad, false).unwrap_err();
            assert_eq!(e.status_and_code().1, "invalid_callback_url", "{bad}");
        }
        for refused in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://localhost/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
        ] {
            let e = check_url(refused, false).unwrap_err();
            assert_eq!(e.status_and_code().1, "callback_url_refused", "{refused}");
            assert!(
                check_url(refused, true).is_ok(),
                "{refused} allowed by config"
            );
        }
    }

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
        let c = CallbackConfig::default();
        assert_eq!(c.backoff_ms(1), 10_000);
        assert_eq!(c.backoff_ms(2), 40_000);
        assert_eq!(c.backoff_ms(3), 160_000);
        assert_eq!(c.backoff_ms(7), 3_600_000);
        assert_eq!(c.backoff_ms(40), 3_600_000);
    }
}
