//! numcheck's server: the checknumber-compatible HTTP API, the in-process workers that
//! process tasks chunk by chunk, and the export of results.
//!
//! [`Application::build`] opens the data folder and binds the listener first, so callers
//! (the binary and the tests) know the port before anything runs; [`Application::run_until`]
//! serves until the given future resolves, then stops accepting, lets the workers finish the
//! work in hand, and returns.

mod auth;
pub mod callback;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod demo;
pub mod engine;
mod error;
mod export;
pub mod ingest;
pub mod keys;
pub mod limits;
pub mod local;
pub mod lookup;
pub mod options;
pub mod pipeline;
mod routes;
pub mod signing;
pub mod sources;
mod state;
pub mod sweep;
pub mod tabular;
pub mod telemetry;
mod upload;
mod worker;
mod xlsx;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use numcheck_core::{CodeTable, NumberingPlan};
use numcheck_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::{Config, LogFormat, WorkerConfig};
pub use datadir::DataDir;
pub use error::ApiError;
pub use state::AppState;

/// A built server: data folder open and locked, listener bound.
#[derive(Debug)]
pub struct Application {
    /// `None` for a worker-only node (`numcheck worker`).
    listener: Option<TcpListener>,
    state: AppState,
    data: DataDir,
    first_admin_key: Option<String>,
}

impl Application {
    /// Opens (creating and migrating) the data folder, creates the first admin key when the
    /// database has none, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_node(config, true).await
    }

    /// A worker-only node: the same database and blobs, no HTTP listener. Meant for a shared
    /// database (`database_url`), where any number of them may run.
    pub async fn build_worker(config: Config) -> anyhow::Result<Application> {
        Self::build_node(config, false).await
    }

    async fn build_node(config: Config, api: bool) -> anyhow::Result<Application> {
        config.validate()?;
        let code_book = sources::code_book(&config.codes)?;
        let evidence_sources = sources::Sources::build(&config.sources, &code_book)?;
        let lookups = Arc::new(lookup::LookupService::build(&config.lookup)?);
        let code_book = Arc::new(code_book);
        // Compile the numbering plan now rather than on the first upload.
        tokio::task::spawn_blocking(|| NumberingPlan.warm_up()).await?;
        let mut data = DataDir::open_config(&config).await?;
        if !data.shared {
            data.lock()?;
        }
        // Bind before anything is created, so a busy port cannot swallow the first admin key.
        let listener = if api {
            Some(
                TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.listen))?,
            )
        } else {
            None
        };
        // We hold the folder's lock, so every lease in it belonged to a process that is gone.
        // (A shared database's leases may be other nodes': they are taken over on expiry.)
        let released = if data.shared {
            0
        } else {
            data.store.release_leases(None).await?
        };
        // This process owns the folder: it may keep the evidence presence filter.
        if !data.shared {
            data.store.keep_presence_filter();
        }
        if released > 0 {
            tracing::info!(released, "took back work from a previous run");
        }
        // Files a stopped process left behind. Never a reason not to start.
        match sweep::sweep(&data, data.is_locked(), std::time::SystemTime::now()).await {
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
        let first_admin_key = if api && data.store.count_keys().await? == 0 {
            let issued = keys::issue(data.store.as_ref(), "admin", None, true, true).await?;
            Some(issued.key.secret)
        } else {
            None
        };
        let addr = match &listener {
            Some(l) => l.local_addr()?,
            None => config.listen,
        };
        let public_url = match &config.public_url {
            Some(url) => Some(url.trim_end_matches('/').to_owned()),
            None if addr.ip().is_unspecified() => None,
            None => Some(format!("http://{addr}")),
        };
        let store: Arc<dyn Store> = data.store.clone();
        let config_limits = config.limits.clone();
        let policy = config.policy.clone();
        let state = AppState {
            store,
            blobs: data.blobs.clone(),
            signer: data.signer.clone(),
            config: Arc::new(config),
            public_url,
            plan: NumberingPlan,
            engine: engine::Engine {
                plan: NumberingPlan,
                policy: Arc::new(policy),
                store: data.store.clone(),
                lookups: lookups.clone(),
                code_book: code_book.clone(),
            },
            codes: Arc::new(CodeTable::generic()),
            code_book,
            lookups,
            sources: Arc::new(evidence_sources),
            work: Arc::new(Notify::new()),
            tmp_dir: data.tmp_dir(),
            shutdown: CancellationToken::new(),
            telemetry: Arc::default(),
            rate_limits: limits::RateLimits::new(&config_limits),
        };
        Ok(Application {
            listener,
            state,
            data,
            first_admin_key,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(self.state.config.listen)
    }

    /// The API key of the admin user created on this start, if one was.
    pub fn first_admin_key(&self) -> Option<&str> {
        self.first_admin_key.as_deref()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets workers finish the work
    /// in hand and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            data,
            ..
        } = self;
        let token = state.shutdown.clone();
        // Workers run on their own runtime whose threads (and blocking threads) run at the
        // lowest CPU priority: a large task then uses every idle cycle, while the API's
        // threads still answer polls at once (measured: gettasks p99 under load).
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name("numcheck-worker")
            .on_thread_start(|| {
                // Best effort: where the OS refuses, workers run at normal priority.
                let _ = thread_priority::ThreadPriority::Min.set_for_current();
            })
            .enable_all()
            .build()
            .context("cannot start the worker runtime")?;
        let mut workers = Vec::new();
        let host = std::process::id();
        for i in 0..state.config.worker.concurrency {
            let suffix = hex::encode(keys::random_bytes::<4>()?);
            workers
                .push(background.spawn(worker::run(state.clone(), format!("{host}-{i}-{suffix}"))));
        }
        // Forget rate-limit state of keys that have gone quiet (bounded memory).
        {
            let state = state.clone();
            workers.push(background.spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = every.tick() => state.rate_limits.prune(),
                        _ = state.shutdown.cancelled() => break,
                    }
                }
            }));
        }
        // Completion notices: two senders, so one slow receiver does not hold up the rest.
        for i in 0..2 {
            let suffix = hex::encode(keys::random_bytes::<4>()?);
            workers.push(background.spawn(callback::run(
                state.clone(),
                format!("{host}-cb{i}-{suffix}"),
            )));
        }
        let stop = token.clone();
        let stopping = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop.cancelled() => {}
            }
            stop.cancel();
            tracing::info!("shutting down: no new connections; finishing work in hand");
        };
        match listener {
            Some(listener) => {
                let app = routes::router(state.clone());
                tracing::info!(addr = %listener.local_addr()?, "numcheck listening");
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopping)
                    .await
                    .context("server error")?;
            }
            None => {
                tracing::info!(
                    workers = state.config.worker.concurrency,
                    "numcheck worker node running"
                );
                stopping.await;
            }
        }
        token.cancel();
        for w in workers {
            if let Err(e) = w.await {
                tracing::warn!(error = %e, "a worker ended abnormally");
            }
        }
        // A runtime may not be dropped from async code; hand it to a blocking thread.
        tokio::task::spawn_blocking(move || {
            background.shutdown_timeout(std::time::Duration::from_secs(10))
        })
        .await
        .context("worker runtime shutdown")?;
        data.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// The shared state (for tests that look inside).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}
