//! Request limits that protect the service and other users from one client: a per-key request
//! rate and a cap on a user's open tasks. Refusals are 429 with `Retry-After`, and are never
//! charged (nothing is created).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The limits, from the config's `[limits]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second per API key (0: no limit).
    pub requests_per_second: u32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: u32,
    /// Tasks a user may have pending or processing at once (0: no limit).
    pub max_open_tasks: u32,
    /// Seconds an upload may stall (no bytes arriving) before it is refused.
    pub upload_idle_secs: u64,
    /// Non-blank lines (rows) an upload may hold (0: no limit).
    pub max_upload_lines: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_second: 100,
            burst: 200,
            max_open_tasks: 20,
            upload_idle_secs: 30,
            max_upload_lines: 50_000_000,
        }
    }
}

/// Per-key request rates.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: Option<Arc<DefaultKeyedRateLimiter<[u8; 32]>>>,
}

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> RateLimits {
        let limiter = NonZeroU32::new(config.requests_per_second).map(|rate| {
            let burst =
                NonZeroU32::new(config.burst.max(config.requests_per_second)).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        RateLimits { limiter }
    }

    /// Takes one request from the key's allowance, or says how long to wait.
    pub fn check(&self, key_hash: &[u8; 32]) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(key_hash) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited {
                    code: "rate_limited",
                    message: "too many requests for this API key; slow down and retry".into(),
                    retry_after: wait.max(Duration::from_secs(1)),
                })
            }
        }
    }

    /// Forgets keys that are back to a full allowance (bounded memory under many keys).
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}
