//! Live lookups (DESIGN §5): providers that turn numbers into evidence when what numcheck
//! already knows leaves a number `unknown` — an HTTP HLR-lookup service ([`http`]) or the
//! operator's own Osmocom HLR over its CTRL interface ([`osmo`]). [`guard::Guarded`] wraps any
//! provider in the limits a paid, remote, fallible service needs: a rate limit, a cap on
//! concurrent calls, a timeout, retries with backoff and a circuit breaker. A provider error
//! is never evidence that a number is inactive: the number stays `unknown`.

pub mod guard;
pub mod http;
pub mod osmo;

use std::time::Duration;

use numcheck_core::E164;
use numcheck_core::connectors::Event;

/// One number's answer from a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub number: E164,
    /// What the provider said, as an event for the code book (kind `hlr` or
    /// `core_network`, the provider's raw status kept as `raw_code`). `None`: the provider
    /// answered the call but has nothing for this number (neutral, not cached as evidence).
    pub event: Option<Event>,
}

/// Why a call to a provider failed. The guard retries the transient ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// HTTP 429 or the provider's own throttling; `retry_after` when it said how long.
    #[error("the provider is throttling us")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, a refused or dropped connection: worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// An answer that cannot be read.
    #[error("the provider's answer cannot be read: {0}")]
    Malformed(String),
    /// A refusal that retrying will not change (bad credentials, a 4xx).
    #[error("the provider refused the request: {0}")]
    Refused(String),
    /// The guard did not call: the circuit is open after repeated failures.
    #[error("the provider is switched off after repeated failures (circuit open)")]
    CircuitOpen,
}

impl LookupError {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LookupError::Timeout(_) | LookupError::RateLimited { .. } | LookupError::Unavailable(_)
        )
    }
}

/// A source of live answers.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's name: the `source` of the observations it yields.
    fn name(&self) -> &str;
    /// Most numbers one call may carry (1 when the remote API has no batch form).
    fn batch_size(&self) -> usize {
        1
    }
    /// Whether the provider covers this number (say, an operator's HLR only knows its own
    /// ranges; an HTTP provider may be limited to mobile numbers or some regions).
    fn covers(
        &self,
        number: E164,
        line_type: numcheck_core::LineType,
        region: Option<numcheck_core::RegionCode>,
    ) -> bool {
        let _ = (number, line_type, region);
        true
    }
    /// Looks the numbers up (at most [`Provider::batch_size`] of them). Answers may come in
    /// any order and may leave numbers out (as if answered `None`).
    async fn lookup(&self, numbers: &[E164]) -> Result<Vec<Answer>, LookupError>;
}
