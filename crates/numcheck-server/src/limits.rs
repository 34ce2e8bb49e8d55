//! Request limits that protect the service and other users from one client: a per-key request
//! rate and a cap on a user's open tasks. Refusals are 429 with `Retry-After`, and are never
//! charged (nothing is created).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use numcheck_engine::config::LimitsConfig;

use crate::error::ApiError;

fn refusal(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        code: "rate_limited",
        message: "too many requests for this API key; slow down and retry".into(),
        retry_after: wait.max(Duration::from_secs(1)),
    }
}

/// Per-key request rates.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: Option<Arc<DefaultKeyedRateLimiter<[u8; 32]>>>,
    /// Keys refused recently, and until when: their next requests are refused before the
    /// key is even looked up, so a client hammering past its limit costs no database read.
    /// Only live keys that were refused get here, so its size is bounded by the keys issued.
    throttled: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
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
        RateLimits {
            limiter,
            throttled: Default::default(),
        }
    }

    /// Refuses at once a key that was refused moments ago and is still to wait; `Ok` says
    /// nothing about the key (it is looked up and [`check`](Self::check)ed as usual).
    pub fn precheck(&self, key_hash: &[u8; 32]) -> Result<(), ApiError> {
        if self.limiter.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let mut throttled = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        match throttled.get(key_hash) {
            Some(until) if *until > now => Err(refusal(*until - now)),
            Some(_) => {
                throttled.remove(key_hash);
                Ok(())
            }
            None => Ok(()),
        }
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
                self.throttled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(*key_hash, Instant::now() + wait);
                Err(refusal(wait))
            }
        }
    }

    /// Forgets keys that are back to a full allowance (bounded memory under many keys).
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let now = Instant::now();
        self.throttled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_key_is_refused_before_lookup_until_its_wait_is_over() {
        let limits = RateLimits::new(&LimitsConfig {
            requests_per_second: 1,
            burst: 1,
            ..LimitsConfig::default()
        });
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(limits.precheck(&a).is_ok() && limits.check(&a).is_ok());
        // Over the allowance: refused, and from then on refused before any lookup.
        let Err(ApiError::RateLimited { retry_after, .. }) = limits.check(&a) else {
            panic!("the second request in a second is refused");
        };
        assert!(retry_after >= Duration::from_secs(1));
        assert!(matches!(
            limits.precheck(&a),
            Err(ApiError::RateLimited {
                code: "rate_limited",
                ..
            })
        ));
        limits.prune();
        assert!(
            limits.precheck(&a).is_err(),
            "pruning keeps a wait not yet over"
        );
        // Another key is not held up.
        assert!(limits.precheck(&b).is_ok() && limits.check(&b).is_ok());
        // Once the wait is over, the key is looked up again.
        std::thread::sleep(Duration::from_millis(1100));
        assert!(limits.precheck(&a).is_ok() && limits.check(&a).is_ok());
        limits.prune();
        assert!(limits.throttled.lock().unwrap().is_empty());
    }

    #[test]
    fn no_limit_means_no_refusal() {
        let limits = RateLimits::new(&LimitsConfig {
            requests_per_second: 0,
            ..LimitsConfig::default()
        });
        for _ in 0..1000 {
            assert!(limits.precheck(&[7; 32]).is_ok() && limits.check(&[7; 32]).is_ok());
        }
    }
}
