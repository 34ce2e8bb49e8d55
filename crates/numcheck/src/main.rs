//! The `numcheck` binary: parses flags, sets up logging, loads the layered configuration and
//! hands over to the server library. Nothing else lives here.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use numcheck_server::{Application, Config, DataDir, LogFormat, keys};
use numcheck_store::Store;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "numcheck",
    version,
    about = "Self-hosted bulk phone-number activity checker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the workers.
    Serve(ServeArgs),
    /// Manage API keys (works beside a running server on the same data folder).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// Flags shared by every command that opens a data folder.
#[derive(Args, Serialize)]
struct Common {
    /// Config file (default: ./numcheck.toml when it exists).
    #[arg(long, value_name = "FILE", env = "NUMCHECK_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Data folder (database, blobs, link secret). Env: NUMCHECK_DATA_DIR.
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Serialize)]
struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: Common,
    /// Address to listen on (default 127.0.0.1:8080). Env: NUMCHECK_LISTEN.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Base URL of result links (default http://<listen>). Env: NUMCHECK_PUBLIC_URL.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Largest accepted upload in bytes (default 268435456). Env: NUMCHECK_MAX_UPLOAD_BYTES.
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_upload_bytes: Option<u64>,
    /// Log format: text or json. Env: NUMCHECK_LOG_FORMAT.
    #[arg(long, value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    #[arg(skip)]
    #[serde(skip_serializing_if = "WorkerFlags::is_empty")]
    worker: WorkerFlags,
    /// Worker tasks in this process (0: API only). Env: NUMCHECK_WORKER__CONCURRENCY.
    #[arg(long, value_name = "N")]
    #[serde(skip)]
    workers: Option<usize>,
}

#[derive(Default, Serialize)]
struct WorkerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
}

impl WorkerFlags {
    fn is_empty(&self) -> bool {
        self.concurrency.is_none()
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key (and the user, when new). Prints the key as the last line.
    Create {
        #[command(flatten)]
        common: Common,
        /// User name; created when it does not exist.
        #[arg(long)]
        user: String,
        /// Credits: the balance of a new user (absent: unlimited), or credits added to an
        /// existing limited user.
        #[arg(long)]
        credits: Option<i64>,
    },
    /// List keys (prefix, user, created, revoked). Never shows a key.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key by its id or prefix (as `keys list` shows them).
    Revoke {
        #[command(flatten)]
        common: Common,
        /// Key id or prefix.
        key: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("numcheck: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("numcheck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(mut args) => {
            args.worker.concurrency = args.workers;
            let loaded = Config::load(args.common.config.as_deref(), &args)?;
            init_logging(loaded.config.log_format);
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            serve(loaded.config).await
        }
        Command::Keys { command } => {
            init_logging(LogFormat::Text);
            keys_command(command).await
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUMCHECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    if let Some(key) = app.first_admin_key() {
        // Printed, never logged: this is the only time the key is shown.
        println!("numcheck: first start — created user \"admin\". Its API key (shown only once):");
        println!("{key}");
    }
    println!("numcheck: listening on http://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn open(common: &Common) -> anyhow::Result<DataDir> {
    let loaded = Config::load(common.config.as_deref(), common)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    DataDir::open(&loaded.config.data_dir).await
}

fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

async fn keys_command(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            common,
            user,
            credits,
        } => {
            let data = open(&common).await?;
            let issued = keys::issue(data.store.as_ref(), &user, credits, false).await?;
            let balance = match issued.user.credits {
                Some(c) => format!("{c} credits"),
                None => "unlimited credits".to_owned(),
            };
            if issued.user_created {
                println!(
                    "created user {:?} (id {}) with {balance}",
                    issued.user.name, issued.user.id
                );
            } else {
                println!(
                    "user {:?} (id {}) has {balance}",
                    issued.user.name, issued.user.id
                );
            }
            println!("new API key (shown only once; store it now):");
            println!("{}", issued.key.secret);
            data.store.close().await;
        }
        KeysCommand::List { common } => {
            let data = open(&common).await?;
            let keys = data.store.list_keys().await.context("cannot list keys")?;
            println!(
                "{:>5}  {:<14} {:<20} {:<24} REVOKED",
                "ID", "PREFIX", "USER", "CREATED"
            );
            for k in keys {
                println!(
                    "{:>5}  {:<14} {:<20} {:<24} {}",
                    k.id,
                    k.prefix,
                    k.user_name,
                    time_ms(k.created_at_ms),
                    k.revoked_at_ms.map(time_ms).unwrap_or_else(|| "-".into())
                );
            }
            data.store.close().await;
        }
        KeysCommand::Revoke { common, key } => {
            let data = open(&common).await?;
            let n = data
                .store
                .revoke_key(&key, numcheck_server::clock::now_ms())
                .await?;
            data.store.close().await;
            anyhow::ensure!(n > 0, "no live key with id or prefix {key:?}");
            println!("revoked key {key}");
        }
    }
    Ok(())
}
