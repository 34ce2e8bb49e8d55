//! The `numcheck` binary: parses flags, sets up logging, loads the layered configuration and
//! hands over to the libraries: `serve` and `worker` to the server, everything else to the
//! engine. The flags and their help live here; the work does not.

mod client;
mod malloc;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use numcheck_core::connectors::ConnectorFormat;
use numcheck_core::{CodeTable, NumberingPlan, RegionCode, RowFormat, RowReader, TaskType};
use numcheck_engine::chunk::Checker;
use numcheck_engine::config::LogFormat;
use numcheck_engine::demo::DemoData;
use numcheck_engine::evidence::ingest::{Ingestor, LineReader};
use numcheck_engine::local::{Columns, LocalCheck, check_file};
use numcheck_engine::{Config, DataDir, keys};
use numcheck_server::Application;
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
    /// Run workers only, no HTTP API: extra capacity for a shared database and bucket
    /// (`--database-url postgres://… --blob-url s3://…`).
    Worker(ServeArgs),
    /// Manage API keys (works beside a running server on the same data folder).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Import and inspect evidence (delivery receipts, call outcomes, deactivations, …).
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Check a local file with the engine, without a server; writes the same zip.
    Check(CheckArgs),
    /// Build a synthetic evidence data set and a numbers file to try numcheck on; with
    /// --world, a simulated world with ground truth for measuring accuracy.
    Demo(DemoArgs),
    /// Measure verdicts against a truth file: precision and recall per verdict, the share
    /// decided, how well Confidence holds up as a probability, and the reassignment flag.
    Evaluate(EvaluateArgs),
    /// Fit the confidence calibration on labelled numbers and write it to a file that
    /// policy.calibration_file can point to.
    Calibrate(CalibrateArgs),
    /// Upload a file to a numcheck server as a task; with --wait, follow it and fetch the result.
    Submit(SubmitArgs),
    /// Show a task of a numcheck server.
    Status(StatusArgs),
    /// List your tasks on a numcheck server, newest first.
    Tasks(TasksArgs),
    /// Cancel an open task (nothing is charged).
    Cancel(StatusArgs),
    /// Delete a task with its upload and result.
    Delete(StatusArgs),
    /// Show your balance and usage on a numcheck server.
    Balance(RemoteOnly),
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Import evidence from a file, streamed; prints what was taken and why rows were refused.
    ///
    /// Formats: csv, ndjson (numcheck's own rows); smpp (number + receipt text a line),
    /// kannel (bearerbox access log), jasmin (messages.log), twilio, vonage, infobip (one
    /// recorded callback a line), freeswitch, asterisk (CDR CSV), deactivation, reassigned,
    /// hlr.
    Import {
        #[command(flatten)]
        common: Common,
        /// The file (`-` for standard input).
        file: PathBuf,
        /// The file's format (default for .csv/.ndjson files: from the extension).
        #[arg(long)]
        format: Option<String>,
        /// The source the file comes from (an SMSC, a switch, a list's supplier); with each
        /// message id it is the identity of an observation. Default: the format's name.
        #[arg(long)]
        source: Option<String>,
        /// The code table for SMPP `err:` values of this route (default: map).
        #[arg(long)]
        err_table: Option<String>,
        /// Region of numbers written in national format (e.g. GB).
        #[arg(long)]
        region: Option<String>,
        /// The switch's offset from UTC for CDR times (e.g. +02:00; default UTC).
        #[arg(long, allow_hyphen_values = true)]
        utc_offset: Option<String>,
        /// The time of records with no date of their own (`now` or RFC 3339): Twilio lines
        /// without DateUpdated/DateSent/DateCreated are refused without it.
        #[arg(long)]
        assume_time: Option<String>,
    },
    /// Counts of the evidence log by class, kind and source.
    Stats {
        #[command(flatten)]
        common: Common,
    },
    /// Recompute every profile from the observation log (after changing half-lives).
    Rebuild {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct RemoteArgs {
    /// The server (default http://127.0.0.1:8080). Env: NUMCHECK_SERVER.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Your API key. Env: NUMCHECK_API_KEY.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
}

#[derive(Args)]
struct SubmitArgs {
    /// The numbers file (one number a line).
    file: PathBuf,
    /// active_check or number_info.
    #[arg(long, default_value = "active_check")]
    task_type: String,
    /// Region of numbers written in national format (e.g. GB).
    #[arg(long)]
    region: Option<String>,
    /// For CSV and XLSX files: the phone column, by header name or 1-based number
    /// (default: detected).
    #[arg(long, value_name = "COLUMN")]
    phone_column: Option<String>,
    /// A URL the server POSTs a signed notice to when the task ends.
    #[arg(long, value_name = "URL")]
    callback_url: Option<String>,
    /// Verdicts less sure than this probability (0 to 1) come back `unknown`
    /// (`low_confidence`). Default: the server's `policy.min_confidence`.
    #[arg(long, value_name = "P", value_parser = probability)]
    min_confidence: Option<f64>,
    /// Follow the task to its end with a progress bar, then download and unpack the result.
    #[arg(long)]
    wait: bool,
    /// Where the result goes (with --wait): <DIR>/<task_id>.zip and <DIR>/<task_id>/.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Args)]
struct TasksArgs {
    /// How many (newest first); 0 lists every task.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Only tasks in this status (pending, processing, exported, failed, cancelled).
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Args)]
struct RemoteOnly {
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// The task id.
    task_id: String,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: Common,
    /// The numbers: a text file (one a line), a CSV or TSV, or an .xlsx workbook, as the
    /// server takes them.
    file: PathBuf,
    /// Where to write the result zip (default: <file stem>-result.zip here).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Region for numbers written in national format (ISO 3166 alpha-2, e.g. DE).
    #[arg(long, value_name = "XX", alias = "default-region")]
    region: Option<String>,
    /// For CSV and XLSX files: the phone column, by header name or 1-based number
    /// (default: detected).
    #[arg(long, value_name = "COLUMN")]
    phone_column: Option<String>,
    /// For XLSX files: the worksheet (default: the first visible one).
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,
    /// active_check (default) or number_info.
    #[arg(long, default_value = "active_check")]
    task_type: String,
    /// full (default) or basic (Number and ActiveStatus only).
    #[arg(long, default_value = "full")]
    columns: String,
    /// Also write an .xlsx copy into the zip.
    #[arg(long)]
    xlsx: bool,
    /// Verdicts less sure than this probability (0 to 1) become `unknown`
    /// (`low_confidence`). Default: `policy.min_confidence`.
    #[arg(long, value_name = "P", value_parser = probability)]
    min_confidence: Option<f64>,
}

#[derive(Args)]
struct EvaluateArgs {
    #[command(flatten)]
    common: Common,
    /// The truth: `number,truth[,holder_changed]` lines, truth `active` or `inactive`.
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,
    /// A result zip to score (from a task or `numcheck check`).
    #[arg(
        long,
        value_name = "ZIP",
        conflicts_with = "numbers",
        required_unless_present = "numbers"
    )]
    result: Option<PathBuf>,
    /// Or a numbers file, checked against the data folder first (as `numcheck check` does).
    #[arg(long, value_name = "FILE")]
    numbers: Option<PathBuf>,
    /// With --numbers: the confidence floor of the check (default: policy.min_confidence).
    #[arg(long, value_name = "P", value_parser = probability)]
    min_confidence: Option<f64>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CalibrateArgs {
    #[command(flatten)]
    common: Common,
    /// The truth: `number,truth[,holder_changed]` lines, truth `active` or `inactive`.
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,
    /// The labelled numbers, checked against the data folder's evidence.
    #[arg(long, value_name = "FILE")]
    numbers: PathBuf,
    /// Where to write the calibration (point policy.calibration_file at it).
    #[arg(long, value_name = "FILE", default_value = "calibration.json")]
    out: PathBuf,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    common: Common,
    /// Synthetic subscribers (about 20 observations each).
    #[arg(long, default_value_t = 50_000)]
    subscribers: usize,
    /// Seed of the generator (the same seed gives the same data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the numbers to check.
    #[arg(long, value_name = "FILE", default_value = "demo-numbers.txt")]
    numbers_out: PathBuf,
    /// Instead: write a simulated world with ground truth into this folder (evidence files
    /// in the shipped formats, the numbers, the truth), for measuring accuracy. Nothing is
    /// stored in the data folder.
    #[arg(long, value_name = "DIR")]
    world: Option<PathBuf>,
    /// The world's parameters (JSON, as the world.json a run writes); default: the built-in
    /// world. --seed overrides its seed.
    #[arg(long, value_name = "FILE", requires = "world")]
    world_params: Option<PathBuf>,
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
    /// Shared database (postgres://…) instead of the folder's SQLite. Env: NUMCHECK_DATABASE_URL.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Shared blob store (s3://bucket?endpoint=…) instead of the folder's blobs/. Env: NUMCHECK_BLOB_URL.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    blob_url: Option<String>,
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
        /// A key for posting evidence (POST /v1/evidence) only: it cannot create or read
        /// tasks. Add --check for a key that may do both.
        #[arg(long)]
        ingest: bool,
        /// With --ingest: the key may also create and read tasks (the default without --ingest).
        #[arg(long, requires = "ingest")]
        check: bool,
    },
    /// List keys (prefix, user, rights, the user's credits, created, revoked). Never shows a key.
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
    if matches!(cli.command, Command::Serve(_)) {
        malloc::limit_arenas();
    }
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
        Command::Serve(args) => serve(args.node_config()?).await,
        Command::Submit(args) => {
            let remote = args.remote.connect()?;
            let created = client::submit(
                &remote,
                &args.file,
                &client::SubmitOptions {
                    task_type: &args.task_type,
                    region: args.region.as_deref(),
                    phone_column: args.phone_column.as_deref(),
                    callback_url: args.callback_url.as_deref(),
                    min_confidence: args.min_confidence,
                },
            )
            .await?;
            let id = created["task_id"]
                .as_str()
                .context("the server's answer has no task_id")?
                .to_owned();
            println!("task {id} created ({} lines)", created["total"]);
            if args.wait {
                let done = client::wait(&remote, &id).await?;
                let dir = client::download(&done, &args.out).await?;
                print!("{}", client::describe(&done));
                print!(
                    "{}",
                    client::describe_outcome(&client::detail(&remote, &id).await?)
                );
                println!("result      {}", dir.display());
            }
            Ok(())
        }
        Command::Status(args) => {
            let remote = args.remote.connect()?;
            let v = client::status(&remote, &args.task_id).await?;
            print!("{}", client::describe(&v));
            if v["status"] == "exported" {
                print!(
                    "{}",
                    client::describe_outcome(&client::detail(&remote, &args.task_id).await?)
                );
            }
            Ok(())
        }
        Command::Tasks(args) => {
            let remote = args.remote.connect()?;
            let tasks = client::list(&remote, args.limit, args.status.as_deref()).await?;
            print!("{}", client::task_table(&tasks));
            Ok(())
        }
        Command::Cancel(args) => {
            let remote = args.remote.connect()?;
            let v = client::cancel(&remote, &args.task_id).await?;
            println!(
                "task {} {}",
                args.task_id,
                v["status"].as_str().unwrap_or("cancelled")
            );
            Ok(())
        }
        Command::Delete(args) => {
            let remote = args.remote.connect()?;
            client::delete(&remote, &args.task_id).await?;
            println!("task {} deleted", args.task_id);
            Ok(())
        }
        Command::Balance(args) => {
            let remote = args.remote.connect()?;
            print!(
                "{}",
                client::describe_balance(&client::balance(&remote).await?)
            );
            Ok(())
        }
        Command::Worker(args) => {
            let app = Application::build_worker(args.node_config()?).await?;
            println!("numcheck: worker node running");
            app.run_until(shutdown_signal()).await
        }
        Command::Keys { command } => {
            init_logging(LogFormat::Text);
            keys_command(command).await
        }
        Command::Evidence { command } => {
            init_logging(LogFormat::Text);
            evidence_command(command).await
        }
        Command::Check(args) => {
            init_logging(LogFormat::Text);
            check_command(args).await
        }
        Command::Demo(args) => {
            init_logging(LogFormat::Text);
            match args.world.clone() {
                Some(dir) => world_command(&args, &dir),
                None => demo_command(args).await,
            }
        }
        Command::Evaluate(args) => {
            init_logging(LogFormat::Text);
            evaluate_command(args).await
        }
        Command::Calibrate(args) => {
            init_logging(LogFormat::Text);
            calibrate_command(args).await
        }
    }
}

impl ServeArgs {
    /// For `serve` and `worker`: the layered config, with logging set up as it says and its
    /// warnings logged.
    fn node_config(mut self) -> anyhow::Result<Config> {
        self.worker.concurrency = self.workers;
        let loaded = Config::load(self.common.config.as_deref(), &self)?;
        init_logging(loaded.config.log_format);
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        Ok(loaded.config)
    }
}

impl RemoteArgs {
    /// For a client command: text logs, and the server to talk to.
    fn connect(self) -> anyhow::Result<client::Remote> {
        init_logging(LogFormat::Text);
        client::Remote::new(self.server, self.api_key)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUMCHECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal (and not with NO_COLOR): a log file or the journal gets
    // plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
    Ok(open_with_config(common).await?.0)
}

async fn open_with_config(common: &Common) -> anyhow::Result<(DataDir, Config)> {
    let loaded = Config::load(common.config.as_deref(), common)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let data = DataDir::open_config(&loaded.config).await?;
    Ok((data, loaded.config))
}

fn checker(data: &DataDir, config: &Config) -> Checker {
    Checker {
        plan: NumberingPlan,
        policy: Arc::new(config.policy.clone()),
        store: data.store.clone(),
        // `numcheck check` works from the evidence already stored; lookups run in tasks.
        lookups: Arc::new(numcheck_engine::lookup::LookupService::default()),
        code_book: Arc::new(numcheck_core::connectors::codebook::CodeBook::shipped()),
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{human_pos}}/{{human_len}} ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn evidence_command(command: EvidenceCommand) -> anyhow::Result<()> {
    match command {
        EvidenceCommand::Import {
            common,
            file,
            format,
            source,
            err_table,
            region,
            utc_offset,
            assume_time,
        } => {
            let connector = match format.as_deref().map(str::trim) {
                None | Some("csv" | "ndjson" | "jsonl" | "json") => None,
                Some(f) => Some(f.parse::<ConnectorFormat>().map_err(|e| {
                    anyhow::anyhow!("{e}, or csv / ndjson for numcheck's own rows")
                })?),
            };
            let format: RowFormat = match format {
                _ if connector.is_some() => RowFormat::Csv,
                Some(f) => f.parse().map_err(anyhow::Error::msg)?,
                None => match file
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("csv") => RowFormat::Csv,
                    Some("ndjson" | "jsonl" | "json") => RowFormat::Ndjson,
                    _ => anyhow::bail!(
                        "cannot tell the format from the file name; pass --format csv or --format ndjson"
                    ),
                },
            };
            let (data, config) = open_with_config(&common).await?;
            let now = numcheck_engine::clock::now_ms();
            let reader = match connector {
                Some(c) => {
                    let book = numcheck_engine::evidence::sources::code_book(&config.codes)?;
                    let spec = numcheck_engine::evidence::sources::import_spec(
                        source.as_deref().unwrap_or(c.as_str()),
                        err_table.as_deref(),
                        region.as_deref(),
                        &book,
                    )?;
                    let options = numcheck_engine::evidence::sources::file_options(
                        utc_offset.as_deref(),
                        assume_time.as_deref(),
                        now,
                    )
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "--{}",
                            e.replacen("assume_time", "assume-time", 1).replacen(
                                "utc_offset",
                                "utc-offset",
                                1
                            )
                        )
                    })?;
                    LineReader::connector_with(c, Arc::new(book), spec, options)
                }
                None => {
                    if source.is_some()
                        || err_table.is_some()
                        || region.is_some()
                        || utc_offset.is_some()
                        || assume_time.is_some()
                    {
                        anyhow::bail!(
                            "--source, --err-table, --region, --utc-offset and --assume-time are for connector formats; csv and ndjson rows name their own source"
                        );
                    }
                    let book = numcheck_engine::evidence::sources::code_book(&config.codes)?;
                    LineReader::Rows(
                        RowReader::new(format, CodeTable::generic(), now)
                            .with_named_tables(Arc::new(book)),
                    )
                }
            };
            let mut ingestor =
                Ingestor::with_reader(data.store.as_ref(), reader, config.policy.half_lives(), now);
            let mut reader: Box<dyn tokio::io::AsyncRead + Unpin> = if file.as_os_str() == "-" {
                Box::new(tokio::io::stdin())
            } else {
                Box::new(
                    tokio::fs::File::open(&file)
                        .await
                        .with_context(|| format!("cannot open {}", file.display()))?,
                )
            };
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let progress = bar(size, "importing");
            progress.set_style(
                ProgressStyle::with_template("{spinner} importing [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await?;
                if n == 0 {
                    break;
                }
                ingestor.push(&buf[..n]).await?;
                progress.inc(n as u64);
            }
            let report = ingestor.finish().await?;
            progress.finish_and_clear();
            for e in &report.errors {
                eprintln!("{}:{}: {} ({})", file.display(), e.line, e.message, e.error);
            }
            if report.errors_truncated {
                eprintln!(
                    "… and {} more rejected rows",
                    report.rejected - report.errors.len() as u64
                );
            }
            println!(
                "rows {}  inserted {}  duplicates {}  not final {}  rejected {}",
                report.rows, report.inserted, report.duplicates, report.not_final, report.rejected
            );
            data.store.close().await;
        }
        EvidenceCommand::Stats { common } => {
            let data = open(&common).await?;
            let s = data.store.evidence_stats().await?;
            println!("observations  {}", s.observations);
            println!("numbers       {}", s.numbers);
            if let (Some(a), Some(b)) = (s.first_ms, s.last_ms) {
                println!("observed      {} .. {}", time_ms(a), time_ms(b));
            }
            for (title, rows) in [
                ("by class", &s.by_class),
                ("by kind", &s.by_kind),
                ("by source (top 20)", &s.by_source),
            ] {
                println!("{title}:");
                for (k, n) in rows {
                    println!("  {k:<28} {n:>12}");
                }
            }
            data.store.close().await;
        }
        EvidenceCommand::Rebuild { common } => {
            let (data, config) = open_with_config(&common).await?;
            let r = data
                .store
                .rebuild_profiles(&config.policy.half_lives())
                .await?;
            println!(
                "rebuilt {} profiles from {} observations: {} differed from the stored ones, {} removed; largest relative difference {:.3e}",
                r.profiles, r.observations, r.changed, r.removed, r.max_relative_difference
            );
            data.store.close().await;
        }
    }
    Ok(())
}

/// The data folder a local check reads evidence from: the configured one when there is one;
/// without, an empty scratch folder (kept alive by the returned guard), so the numbering plan
/// alone decides.
async fn open_for_check(
    common: &Common,
) -> anyhow::Result<(DataDir, Config, Option<tempfile::TempDir>)> {
    let loaded = Config::load(common.config.as_deref(), common)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if common.data_dir.is_some() || loaded.config.data_dir.exists() {
        let data = DataDir::open(&loaded.config.data_dir).await?;
        return Ok((data, loaded.config, None));
    }
    let scratch = tempfile::tempdir()?;
    let data = DataDir::open(scratch.path()).await?;
    Ok((data, loaded.config, Some(scratch)))
}

/// A `--min-confidence` value: a probability from 0 to 1, read as the form field is.
fn probability(text: &str) -> Result<f64, String> {
    numcheck_engine::options::TaskOptions::min_confidence_from_form(Some(text))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "give a number from 0 to 1".to_owned())
}

/// Checks a numbers file against the data folder's evidence into a result zip in `dir`.
async fn check_numbers(
    checker: &Checker,
    config: &Config,
    numbers: &std::path::Path,
    dir: &std::path::Path,
    min_confidence: Option<f64>,
) -> anyhow::Result<PathBuf> {
    let out = dir.join("result.zip");
    let check = LocalCheck {
        file: numbers.to_owned(),
        out: out.clone(),
        default_region: None,
        task_type: TaskType::ActiveCheck,
        columns: Columns::Full,
        xlsx: false,
        chunk_lines: config.worker.chunk_lines,
        min_confidence,
        phone_column: None,
        sheet: None,
    };
    let progress = bar(0, "checking");
    check_file(checker, &check, |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })
    .await?;
    progress.finish_and_clear();
    Ok(out)
}

async fn evaluate_command(args: EvaluateArgs) -> anyhow::Result<()> {
    let truth = numcheck_engine::evaluate::read_truth_file(&args.truth)?;
    let scratch = tempfile::tempdir()?;
    let zip = match (&args.result, &args.numbers) {
        (Some(zip), _) => zip.clone(),
        (None, Some(numbers)) => {
            let (data, config, _guard) = open_for_check(&args.common).await?;
            let out = check_numbers(
                &checker(&data, &config),
                &config,
                numbers,
                scratch.path(),
                args.min_confidence,
            )
            .await?;
            data.store.close().await;
            out
        }
        (None, None) => anyhow::bail!("give --result ZIP or --numbers FILE"),
    };
    let result = numcheck_engine::evaluate::read_result_zip(&zip)?;
    let e = numcheck_engine::evaluate::evaluate(&truth, &result);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", e.to_text());
    }
    Ok(())
}

async fn calibrate_command(args: CalibrateArgs) -> anyhow::Result<()> {
    use numcheck_core::calibration::Calibration;
    let truth = numcheck_engine::evaluate::read_truth_file(&args.truth)?;
    let (data, config, _guard) = open_for_check(&args.common).await?;
    // Raw scores: no calibration, and every verdict the rules reach (no floor).
    let mut raw = checker(&data, &config);
    raw.policy = Arc::new(numcheck_core::Policy {
        calibration: Calibration::identity(),
        min_confidence: 0.0,
        ..config.policy.clone()
    });
    let scratch = tempfile::tempdir()?;
    let zip = check_numbers(&raw, &config, &args.numbers, scratch.path(), Some(0.0)).await?;
    data.store.close().await;
    let result = numcheck_engine::evaluate::read_result_zip(&zip)?;
    let calibration = numcheck_engine::evaluate::fit_calibration(
        &truth,
        &result,
        &args.truth.display().to_string(),
    )?;
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&calibration)? + "\n",
    )
    .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("calibration: {}", calibration.fitted_on);
    println!(
        "wrote {}; use it with policy.calibration_file = {:?}",
        args.out.display(),
        args.out.display().to_string()
    );
    Ok(())
}

fn world_command(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    use numcheck_engine::world::{World, WorldParams};
    let mut params = match &args.world_params {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str::<WorldParams>(&text)
                .with_context(|| format!("{} is not a world's parameters", path.display()))?
        }
        None => WorldParams::default(),
    };
    if args.seed != 1 || args.world_params.is_none() {
        params.seed = args.seed;
    }
    // Anchored to today's midnight (UTC), as the demo is.
    const DAY_MS: i64 = 86_400_000;
    let now = numcheck_engine::clock::now_ms() / DAY_MS * DAY_MS;
    let reuse = numcheck_core::reuse::ReuseTable::shipped();
    let world = World::generate(&params, &reuse, now).map_err(anyhow::Error::msg)?;
    let stats = world.write(dir)?;
    println!(
        "world: {} numbers ({} active, {} with a new holder), {} receipts, {} calls, {} app events, {} deactivations, in {}",
        stats.numbers,
        stats.active,
        stats.holder_changed,
        stats.receipts,
        stats.calls,
        stats.app_events,
        stats.deactivations,
        dir.display()
    );
    println!(
        "feed it and measure: docs/accuracy.md, or python3 bench/accuracy.py --world {}",
        dir.display()
    );
    Ok(())
}

async fn check_command(args: CheckArgs) -> anyhow::Result<()> {
    let task_type: TaskType = args
        .task_type
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; supported: {}", TaskType::supported_list()))?;
    let columns = match args.columns.as_str() {
        "full" => Columns::Full,
        "basic" => Columns::Basic,
        other => anyhow::bail!("--columns {other:?}: use basic or full"),
    };
    let default_region = args
        .region
        .as_deref()
        .map(|r| r.parse::<RegionCode>())
        .transpose()?;
    let (data, config, _scratch) = open_for_check(&args.common).await?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("numbers");
        PathBuf::from(format!("{stem}-result.zip"))
    });
    let check = LocalCheck {
        file: args.file.clone(),
        out: out.clone(),
        default_region,
        task_type,
        columns,
        xlsx: args.xlsx,
        chunk_lines: config.worker.chunk_lines,
        min_confidence: args.min_confidence,
        phone_column: args.phone_column.clone(),
        sheet: args.sheet.clone(),
    };
    let progress = bar(0, "checking");
    let report = check_file(&checker(&data, &config), &check, |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })
    .await?;
    progress.finish_and_clear();
    data.store.close().await;
    let s = &report.summary;
    if let Some(table) = &report.table
        && let Some(column) = table.phone_column
    {
        println!(
            "read column {column} of {}{}",
            args.file.display(),
            if table.has_header {
                " (below its header)"
            } else {
                ""
            }
        );
    }
    println!(
        "checked {} lines: {} numbers, {} failures, {} unique",
        report.total, s.success, s.failure, report.unique
    );
    for (k, n) in &s.by_status {
        println!("  {k:<12} {n:>10}");
    }
    println!("wrote {} ({}.csv inside)", out.display(), report.name);
    for w in numcheck_engine::warnings::of_summary(s, report.total) {
        eprintln!("warning: {} ({})", w.message, w.code);
    }
    anyhow::ensure!(
        s.success > 0,
        "no line of {} could be read as a phone number; the reasons are in rejected.csv inside {}",
        args.file.display(),
        out.display()
    );
    Ok(())
}

async fn demo_command(args: DemoArgs) -> anyhow::Result<()> {
    let (data, config) = open_with_config(&args.common).await?;
    // Anchored to today's midnight (UTC), so running the demo again the same day adds nothing.
    const DAY_MS: i64 = 86_400_000;
    let now = numcheck_engine::clock::now_ms() / DAY_MS * DAY_MS;
    let demo = DemoData::generate(args.seed, args.subscribers, now);
    let half_lives = config.policy.half_lives();
    let progress = bar((args.subscribers as u64) * 20, "writing evidence");
    let (mut inserted, mut duplicates) = (0u64, 0u64);
    let mut batch = Vec::new();
    for obs in demo.observations(now) {
        batch.push(obs);
        if batch.len() == 200_000 {
            progress.inc(batch.len() as u64);
            let out = data
                .store
                .ingest(std::mem::take(&mut batch), &half_lives, now)
                .await?;
            inserted += out.inserted;
            duplicates += out.duplicates;
        }
    }
    let out = data.store.ingest(batch, &half_lives, now).await?;
    inserted += out.inserted;
    duplicates += out.duplicates;
    progress.finish_and_clear();
    std::fs::write(&args.numbers_out, demo.numbers_file())
        .with_context(|| format!("cannot write {}", args.numbers_out.display()))?;
    data.store.close().await;
    println!(
        "demo: {} synthetic subscribers, {inserted} observations stored ({duplicates} already there) in {}",
        args.subscribers,
        config.data_dir.display()
    );
    println!(
        "demo: numbers to check written to {}",
        args.numbers_out.display()
    );
    println!(
        "next: numcheck check {} --data-dir {}",
        args.numbers_out.display(),
        config.data_dir.display()
    );
    Ok(())
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
            ingest,
            check,
        } => {
            let data = open(&common).await?;
            let rights = keys::KeyRights {
                check: check || !ingest,
                ingest,
            };
            let issued = keys::issue(data.store.as_ref(), &user, credits, false, rights).await?;
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
            println!(
                "new API key, rights: {} (shown only once; store it now):",
                match (rights.check, rights.ingest) {
                    (true, true) => "create and read tasks, post evidence",
                    (false, true) => "post evidence only",
                    _ => "create and read tasks",
                }
            );
            println!("{}", issued.key.secret);
            data.store.close().await;
        }
        KeysCommand::List { common } => {
            let data = open(&common).await?;
            let keys = data.store.list_keys().await.context("cannot list keys")?;
            println!(
                "{:>5}  {:<14} {:<20} {:<13} {:>10}  {:<24} REVOKED",
                "ID", "PREFIX", "USER", "RIGHTS", "CREDITS", "CREATED"
            );
            for k in keys {
                println!(
                    "{:>5}  {:<14} {:<20} {:<13} {:>10}  {:<24} {}",
                    k.id,
                    k.prefix,
                    k.user_name,
                    k.rights.label(),
                    k.credits
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "unlimited".into()),
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
                .revoke_key(&key, numcheck_engine::clock::now_ms())
                .await?;
            data.store.close().await;
            anyhow::ensure!(n > 0, "no live key with id or prefix {key:?}");
            println!("revoked key {key}");
        }
    }
    Ok(())
}
