//! numcheck's HTTP layer: the checknumber-compatible API, its auth and limits, telemetry, the
//! completion-notice sender and the dashboard, around the engine (`numcheck-engine`), whose
//! workers this process runs.
//!
//! [`Application::build`] opens the engine and binds the listener first, so callers (the
//! binary and the tests) know the port before anything runs; [`Application::run_until`]
//! serves until the given future resolves, then stops accepting, lets the workers finish the
//! work in hand, and returns. Handlers parse the request, call the engine and answer; the
//! work itself is the engine's (see `docs/architecture.md`).

mod auth;
pub mod callback;
mod error;
pub mod limits;
mod routes;
mod serve;
mod state;
pub mod telemetry;
mod upload;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use numcheck_engine::{DataDir, Engine, keys};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use numcheck_engine::Config;
pub use numcheck_engine::config::LogFormat;
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
        let (engine, data) = Engine::open(config).await?;
        let config = engine.config.clone();
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
        engine.recover(&data).await?;
        let first_admin_key = if api && engine.store.count_keys().await? == 0 {
            let issued = keys::issue(
                engine.store.as_ref(),
                "admin",
                None,
                true,
                keys::KeyRights::ALL,
            )
            .await?;
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
        let telemetry = Arc::new(telemetry::Telemetry::new(engine.metrics.clone()));
        let state = AppState {
            rate_limits: limits::RateLimits::new(&config.limits),
            signer: data.signer.clone(),
            embedded: data.embedded.clone(),
            engine,
            config,
            public_url,
            telemetry,
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
        let token = state.engine.shutdown.clone();
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
            workers.push(background.spawn(numcheck_engine::worker::run(
                state.engine.clone(),
                format!("{host}-{i}-{suffix}"),
            )));
        }
        workers.push(
            background.spawn(numcheck_engine::worker::relay_work_signals(
                state.engine.clone(),
            )),
        );
        // Forget rate-limit state of keys that have gone quiet (bounded memory).
        {
            let state = state.clone();
            workers.push(background.spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = every.tick() => state.rate_limits.prune(),
                        _ = state.engine.shutdown.cancelled() => break,
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
                // The webhook sources are read at start only: a change to `[[sources]]` needs
                // a restart, and this says what the running server accepts.
                let sources = state.engine.sources.all();
                if sources.is_empty() {
                    tracing::info!("no webhook sources configured ([[sources]])");
                }
                for s in sources {
                    tracing::info!(
                        source = %s.spec.name,
                        format = %s.format,
                        path = %format!("/v1/webhooks/{}/{}", s.format, s.spec.name),
                        "webhook source"
                    );
                }
                tracing::info!(addr = %listener.local_addr()?, "numcheck listening");
                let header_timeout = match state.config.limits.header_timeout_secs {
                    0 => None,
                    s => Some(std::time::Duration::from_secs(s)),
                };
                serve::serve(listener, app, header_timeout, stopping).await;
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
