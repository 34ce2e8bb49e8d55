//! The limits around a provider: a rate limit (calls per second, with a burst), a cap on
//! calls in flight, a timeout per call, retries with exponential backoff (honouring a
//! provider's `Retry-After`) for transient failures, and a circuit breaker that stops calling
//! a provider after repeated failures and tries again after a cool-down.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use numcheck_core::E164;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::{Answer, LookupError, Provider};

/// The limits of one provider (`[lookup.providers.limits]` in config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Calls per second (a batch call counts once).
    pub rate_per_second: u32,
    /// Calls allowed at once above the steady rate.
    pub burst: u32,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Longest wait for one call.
    pub timeout_ms: u64,
    /// Attempts per call, the first included, for transient failures.
    pub attempts: u32,
    /// First backoff; it doubles per retry, with jitter, up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Consecutive failed calls (after retries) that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before one trial call is let through.
    pub cooldown_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_per_second: 10,
            burst: 10,
            concurrency: 4,
            timeout_ms: 5_000,
            attempts: 3,
            backoff_ms: 200,
            max_backoff_ms: 10_000,
            failure_threshold: 5,
            cooldown_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), String> {
        if self.rate_per_second == 0 || self.burst == 0 || self.concurrency == 0 {
            return Err("rate_per_second, burst and concurrency must be above 0".into());
        }
        if self.attempts == 0 || self.failure_threshold == 0 {
            return Err("attempts and failure_threshold must be above 0".into());
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be above 0".into());
        }
        Ok(())
    }
}

/// Counters of one guarded provider since start.
#[derive(Debug, Default)]
pub struct Counters {
    pub calls: AtomicU64,
    pub numbers: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
    pub refused_open: AtomicU64,
}

#[derive(Debug)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out; others are refused until it ends.
    HalfOpen,
}

/// A provider behind its limits.
#[derive(Debug)]
pub struct Guarded<P: Provider + ?Sized> {
    limits: Limits,
    limiter: DefaultDirectRateLimiter,
    in_flight: Semaphore,
    circuit: Mutex<Circuit>,
    pub counters: Counters,
    provider: Box<P>,
}

impl<P: Provider + ?Sized> Guarded<P> {
    pub fn new(provider: Box<P>, limits: Limits) -> Result<Self, String> {
        limits.validate()?;
        let rate = NonZeroU32::new(limits.rate_per_second).ok_or("rate_per_second is 0")?;
        let burst = NonZeroU32::new(limits.burst).ok_or("burst is 0")?;
        Ok(Guarded {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            in_flight: Semaphore::new(limits.concurrency),
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
            counters: Counters::default(),
            limits,
            provider,
        })
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the circuit is open now (calls are refused).
    pub fn is_open(&self) -> bool {
        matches!(
            self.circuit.lock().as_deref(),
            Ok(Circuit::Open { until }) if Instant::now() < *until
        )
    }

    /// Looks numbers up within the limits: waits for the rate limit and a free slot, retries
    /// transient failures, and fails fast while the circuit is open.
    pub async fn lookup(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError> {
        self.admit()?;
        let outcome = self.call_with_retries(numbers).await;
        self.record(outcome.is_ok());
        match &outcome {
            Ok(answers) => {
                self.counters
                    .numbers
                    .fetch_add(answers.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(provider = self.provider.name(), "lookup failed: {e}");
            }
        }
        outcome
    }

    /// Lets a call through the circuit, or refuses it.
    fn admit(&self) -> Result<(), LookupError> {
        let mut c = self
            .circuit
            .lock()
            .map_err(|_| LookupError::Unavailable("circuit state poisoned".into()))?;
        match *c {
            Circuit::Closed { .. } => Ok(()),
            Circuit::Open { until } if Instant::now() >= until => {
                *c = Circuit::HalfOpen;
                Ok(())
            }
            Circuit::Open { .. } | Circuit::HalfOpen => {
                self.counters.refused_open.fetch_add(1, Ordering::Relaxed);
                Err(LookupError::CircuitOpen)
            }
        }
    }

    fn record(&self, ok: bool) {
        let Ok(mut c) = self.circuit.lock() else {
            return;
        };
        let cooldown = Duration::from_millis(self.limits.cooldown_ms);
        *c = match (&*c, ok) {
            (_, true) => Circuit::Closed { failures: 0 },
            (Circuit::HalfOpen, false) => Circuit::Open {
                until: Instant::now() + cooldown,
            },
            (Circuit::Closed { failures }, false) => {
                let failures = failures + 1;
                if failures >= self.limits.failure_threshold {
                    tracing::warn!(
                        provider = self.provider.name(),
                        failures,
                        "circuit opened: no calls for {cooldown:?}"
                    );
                    Circuit::Open {
                        until: Instant::now() + cooldown,
                    }
                } else {
                    Circuit::Closed { failures }
                }
            }
            (Circuit::Open { until }, false) => Circuit::Open { until: *until },
        };
    }

    async fn call_with_retries(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError> {
        let timeout = Duration::from_millis(self.limits.timeout_ms);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = {
                let _slot = self
                    .in_flight
                    .acquire()
                    .await
                    .map_err(|_| LookupError::Unavailable("provider closed".into()))?;
                self.limiter.until_ready().await;
                self.counters.calls.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(timeout, self.provider.lookup(numbers)).await {
                    Ok(r) => r,
                    Err(_) => Err(LookupError::Timeout(timeout)),
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.limits.attempts => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt, &e)).await;
                }
                other => return other,
            }
        }
    }

    /// The wait before retry `attempt` (1-based): the provider's `Retry-After` when it gave
    /// one (capped), else exponential with up to 50% jitter.
    fn backoff(&self, attempt: u32, error: &LookupError) -> Duration {
        let cap = Duration::from_millis(self.limits.max_backoff_ms);
        if let LookupError::RateLimited {
            retry_after: Some(d),
        } = error
        {
            return (*d).min(cap);
        }
        let base = self
            .limits
            .backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20));
        let jitter = jitter_ms(base / 2);
        Duration::from_millis(base.saturating_add(jitter)).min(cap)
    }
}

/// A pseudo-random number below `max` (jitter needs no cryptographic quality).
fn jitter_ms(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos.wrapping_mul(6364136223846793005) % max
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A provider scripted with a list of outcomes, one per call (the last repeats).
    #[derive(Debug)]
    struct Scripted {
        outcomes: Vec<Result<(), LookupError>>,
        calls: AtomicUsize,
        delay: Duration,
    }

    #[async_trait::async_trait]
    impl Provider for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        async fn lookup(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError> {
            let i = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let outcome = self.outcomes[i.min(self.outcomes.len() - 1)].clone();
            outcome.map(|()| {
                numbers
                    .iter()
                    .map(|n| Answer {
                        number: *n,
                        event: None,
                    })
                    .collect()
            })
        }
    }

    fn guarded(outcomes: Vec<Result<(), LookupError>>, limits: Limits) -> Guarded<Scripted> {
        Guarded::new(
            Box::new(Scripted {
                outcomes,
                calls: AtomicUsize::new(0),
                delay: Duration::ZERO,
            }),
            limits,
        )
        .unwrap()
    }

    fn fast() -> Limits {
        Limits {
            rate_per_second: 1000,
            burst: 1000,
            backoff_ms: 1,
            max_backoff_ms: 5,
            cooldown_ms: 100,
            ..Limits::default()
        }
    }

    fn n() -> Vec<E164> {
        vec![E164::from_u64(4915112345678).unwrap()]
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_refusals_are_not() {
        let g = guarded(
            vec![
                Err(LookupError::Unavailable("503".into())),
                Err(LookupError::RateLimited { retry_after: None }),
                Ok(()),
            ],
            fast(),
        );
        assert_eq!(g.lookup(&n()).await.unwrap().len(), 1);
        assert_eq!(g.counters.calls.load(Ordering::SeqCst), 3);
        assert_eq!(g.counters.retries.load(Ordering::SeqCst), 2);

        let g = guarded(
            vec![Err(LookupError::Refused("401".into())), Ok(())],
            fast(),
        );
        assert_eq!(
            g.lookup(&n()).await.unwrap_err(),
            LookupError::Refused("401".into())
        );
        assert_eq!(g.counters.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_slow_provider_times_out() {
        let g = Guarded::new(
            Box::new(Scripted {
                outcomes: vec![Ok(())],
                calls: AtomicUsize::new(0),
                delay: Duration::from_millis(300),
            }),
            Limits {
                timeout_ms: 50,
                attempts: 2,
                ..fast()
            },
        )
        .unwrap();
        let started = Instant::now();
        assert!(matches!(g.lookup(&n()).await, Err(LookupError::Timeout(_))));
        assert_eq!(g.counters.calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_millis(280));
    }

    #[tokio::test]
    async fn the_circuit_opens_after_repeated_failures_and_a_trial_closes_it() {
        let limits = Limits {
            attempts: 1,
            failure_threshold: 3,
            ..fast()
        };
        let mut outcomes: Vec<Result<(), LookupError>> =
            vec![Err(LookupError::Unavailable("down".into())); 3];
        outcomes.push(Ok(()));
        let g = guarded(outcomes, limits);
        for _ in 0..3 {
            assert!(g.lookup(&n()).await.is_err());
        }
        assert!(g.is_open());
        assert_eq!(g.lookup(&n()).await.unwrap_err(), LookupError::CircuitOpen);
        assert_eq!(
            g.counters.calls.load(Ordering::SeqCst),
            3,
            "no call while open"
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(g.lookup(&n()).await.is_ok(), "the trial call goes through");
        assert!(!g.is_open());
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_cap() {
        let g = guarded(vec![Ok(())], fast());
        let e = LookupError::RateLimited {
            retry_after: Some(Duration::from_millis(3)),
        };
        assert_eq!(g.backoff(1, &e), Duration::from_millis(3));
        let e = LookupError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(g.backoff(1, &e), Duration::from_millis(5));
        let plain = LookupError::Unavailable("x".into());
        let limits = Limits {
            backoff_ms: 100,
            max_backoff_ms: 100_000,
            ..fast()
        };
        let g = guarded(vec![Ok(())], limits);
        for attempt in 1..5u32 {
            let d = g.backoff(attempt, &plain).as_millis() as u64;
            let base = 100 << (attempt - 1);
            assert!((base..=base + base / 2).contains(&d), "{attempt}: {d}");
        }
    }

    #[tokio::test]
    async fn the_rate_limit_spaces_calls() {
        let g = guarded(
            vec![Ok(())],
            Limits {
                rate_per_second: 20,
                burst: 1,
                ..fast()
            },
        );
        let started = Instant::now();
        for _ in 0..5 {
            g.lookup(&n()).await.unwrap();
        }
        // One call at once, then one every 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(190),
            "{:?}",
            started.elapsed()
        );
    }
}
