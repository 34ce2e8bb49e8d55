//! numcheck's engine: everything that turns an upload into a result and delivery receipts
//! into evidence, without HTTP. The server and the command line both drive it.
//!
//! - [`intake`]: an upload's bytes (text, CSV, TSV, XLSX) streamed into the blob store, cut
//!   into chunks and counted; the create form's values checked into one [`intake::Intake`].
//! - [`tasks`]: creating, cancelling and deleting tasks, with their files.
//! - [`worker`]: the loop that claims a leased chunk or export and does it.
//! - [`chunk`] and [`pipeline`]: the checker on one chunk (numbering plan, evidence
//!   profiles, live lookups, policy); [`export`]: the result zip.
//! - [`evidence`]: delivery receipts, call records and lists read into observations.
//! - [`lookup`]: live lookups for what the evidence leaves undecided.
//! - [`local`]: `numcheck check`, the same checker on a local file.
//! - [`datadir`], [`sweep`], [`keys`], [`signing`], [`config`], [`blob_keys`]: the data
//!   folder, its clean-up, API keys, result-link signatures, the configuration and the blob
//!   key layout. [`demo`]: a demo population with evidence; [`world`]: a simulated world with
//!   ground truth, and [`evaluate`]: verdicts measured against a truth file.
//!
//! It may use the domain (`numcheck-core`), the stores (`numcheck-store`, `numcheck-blob`) and
//! the lookup providers (`numcheck-lookup`); it must not know HTTP (no axum, no routes, no
//! status codes: refusals carry a stable code in [`EngineError`] for the caller to answer).
//! The design is in `docs/architecture.md`.

pub mod blob_keys;
pub mod callback_url;
pub mod chunk;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod demo;
mod error;
pub mod evaluate;
pub mod evidence;
pub mod export;
pub mod intake;
pub mod keys;
pub mod local;
pub mod lookup;
pub mod metrics;
pub mod options;
pub mod pipeline;
pub mod signing;
pub mod sweep;
pub mod tasks;
pub mod warnings;
pub mod worker;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use numcheck_blob::BlobStore;
use numcheck_core::connectors::codebook::CodeBook;
use numcheck_core::{CodeTable, NumberingPlan};
use numcheck_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use datadir::DataDir;
pub use error::EngineError;

/// What one numcheck process needs to take in, process and export tasks: the stores, the
/// checker and its tables, and the signals between the parts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    /// Where uploads are spooled and results assembled (`tmp/` in the data folder).
    pub tmp_dir: PathBuf,
    pub plan: NumberingPlan,
    /// Decides chunks.
    pub checker: chunk::Checker,
    /// Raw code → evidence class, for `kind,raw_code` rows (CSV/NDJSON evidence).
    pub codes: Arc<CodeTable>,
    /// The named code tables connectors classify with (shipped, plus `[codes]` overrides).
    pub code_book: Arc<CodeBook>,
    /// Live-lookup providers and their counters.
    pub lookups: Arc<lookup::LookupService>,
    /// Configured evidence sources (webhook callers).
    pub sources: Arc<evidence::sources::Sources>,
    /// Wakes idle workers when there is new work.
    pub work: Arc<Notify>,
    /// Cancelled when the process starts shutting down.
    pub shutdown: CancellationToken,
    pub metrics: Arc<metrics::WorkMetrics>,
    /// Workbooks read at once (previews and uploads): reading one holds its shared strings,
    /// so this bounds what spreadsheets take of memory together.
    pub workbooks: Arc<tokio::sync::Semaphore>,
}

/// How many `.xlsx` workbooks a node reads at once; the rest wait their turn.
pub const WORKBOOKS_AT_ONCE: usize = 1;

impl Engine {
    /// Opens what the configuration names: reads the code tables, sources and lookup
    /// providers (a bad one stops here, before anything is touched), compiles the numbering
    /// plan, opens the data folder (creating and migrating it) and, on the embedded default,
    /// takes it for this process. Call [`Engine::recover`] next.
    pub async fn open(mut config: Config) -> anyhow::Result<(Engine, DataDir)> {
        config.validate()?;
        config.load_policy_files()?;
        let code_book = evidence::sources::code_book(&config.codes)?;
        let sources = evidence::sources::Sources::build(&config.sources, &code_book)?;
        let lookups = Arc::new(lookup::LookupService::build(&config.lookup)?);
        let code_book = Arc::new(code_book);
        // Compile the numbering plan now rather than on the first upload.
        tokio::task::spawn_blocking(|| NumberingPlan.warm_up())
            .await
            .context("compiling the numbering plan")?;
        let mut data = DataDir::open_config(&config).await?;
        if !data.shared {
            data.lock()?;
        }
        let checker = chunk::Checker {
            plan: NumberingPlan,
            policy: Arc::new(config.policy.clone()),
            store: data.store.clone(),
            lookups: lookups.clone(),
            code_book: code_book.clone(),
        };
        let engine = Engine {
            config: Arc::new(config),
            store: data.store.clone(),
            blobs: data.blobs.clone(),
            tmp_dir: data.tmp_dir(),
            plan: NumberingPlan,
            checker,
            codes: Arc::new(CodeTable::generic()),
            code_book,
            lookups,
            sources: Arc::new(sources),
            work: Arc::new(Notify::new()),
            shutdown: CancellationToken::new(),
            metrics: Arc::default(),
            workbooks: Arc::new(tokio::sync::Semaphore::new(WORKBOOKS_AT_ONCE)),
        };
        Ok((engine, data))
    }

    /// What a starting node does before it takes work: on the embedded default (this process
    /// holds the folder's lock) it takes back every lease, since their holders are gone, and
    /// keeps the evidence presence filter; then it sweeps the files a stopped process left
    /// behind. A shared database's leases may be other nodes': they are taken over on expiry.
    pub async fn recover(&self, data: &DataDir) -> anyhow::Result<()> {
        if !data.shared {
            let released = self.store.release_leases(None).await?;
            if released > 0 {
                tracing::info!(released, "took back work from a previous run");
            }
        }
        if let Some(sqlite) = &data.embedded
            && data.is_locked()
        {
            sqlite.keep_presence_filter();
        }
        // Never a reason not to start.
        match sweep::sweep(data, data.is_locked(), std::time::SystemTime::now()).await {
            Ok(s) if s.files > 0 => {
                tracing::info!(
                    files = s.files,
                    bytes = s.bytes,
                    "removed leftover files of a previous run"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot sweep leftover files; they stay"),
        }
        Ok(())
    }
}
