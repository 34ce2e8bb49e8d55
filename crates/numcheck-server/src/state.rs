//! What every handler and worker shares.

use std::path::PathBuf;
use std::sync::Arc;

use numcheck_blob::BlobStore;
use numcheck_core::{CodeTable, NumberingPlan};
use numcheck_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::Engine;
use crate::signing::LinkSigner;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    pub signer: LinkSigner,
    pub config: Arc<Config>,
    /// Base of result links, without a trailing slash; `None`: from the request's Host.
    pub public_url: Option<String>,
    pub plan: NumberingPlan,
    pub engine: Engine,
    /// Raw code → evidence class, for `kind,raw_code` rows (CSV/NDJSON evidence).
    pub codes: Arc<CodeTable>,
    /// The named code tables connectors classify with (shipped, plus `[codes]` overrides).
    pub code_book: Arc<numcheck_core::connectors::codebook::CodeBook>,
    /// Live-lookup providers and their counters.
    pub lookups: Arc<crate::lookup::LookupService>,
    /// Configured evidence sources (webhook callers).
    pub sources: Arc<crate::sources::Sources>,
    /// Wakes idle workers when a task is created.
    pub work: Arc<Notify>,
    pub tmp_dir: PathBuf,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Per-key request rates.
    pub rate_limits: crate::limits::RateLimits,
    /// This process's counters, for `/metrics`.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

impl AppState {
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
