//! What every handler shares: the engine, and what only the HTTP side needs.

use std::sync::Arc;

use numcheck_engine::signing::LinkSigner;
use numcheck_engine::{Config, Engine};
use numcheck_store::SqliteStore;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Engine,
    /// The same configuration as the engine's.
    pub config: Arc<Config>,
    pub signer: LinkSigner,
    /// Base of result links, without a trailing slash; `None`: from the request's Host.
    pub public_url: Option<String>,
    /// Per-key request rates.
    pub rate_limits: crate::limits::RateLimits,
    /// This process's counters, for `/metrics`.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The embedded SQLite store, when that is the store (its evidence presence filter shows
    /// in `/readyz` and `/metrics`).
    pub embedded: Option<Arc<SqliteStore>>,
}

impl AppState {
    /// How many evidence presence filters the embedded store has built (0: none yet, or a
    /// store that keeps none).
    pub fn presence_filter_builds(&self) -> u64 {
        self.embedded
            .as_ref()
            .map_or(0, |s| s.presence_filter_builds())
    }

    /// The base URL clients reach this server at: `public_url` when set, else from the
    /// request's `Host`, else the listen address.
    pub fn base_url(&self, host: Option<&str>) -> String {
        match (&self.public_url, host) {
            (Some(base), _) => base.clone(),
            (None, Some(host)) => format!("http://{host}"),
            (None, None) => format!("http://{}", self.config.listen),
        }
    }
}
