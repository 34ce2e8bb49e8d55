//! Helpers for driving the real `numcheck` binary: CLI runs, a server guard that kills its
//! process on drop, a small API client and a generator of upload files with known outcomes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numcheck_testkit::{PATIENCE as DEADLINE, ResultZip, wait_for};
use serde_json::{Value, json};

/// A `numcheck` command with a clean environment: no inherited `NUMCHECK_*` variable and a
/// working directory (`cwd`) that holds no `numcheck.toml`.
pub fn numcheck_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_numcheck"));
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("NUMCHECK_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("NUMCHECK_LOG", "info,sqlx=warn");
    cmd
}

/// What a finished CLI run printed.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The last non-empty line of stdout.
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
    }
}

/// Runs `numcheck <args>` to completion (bounded by [`DEADLINE`]).
pub async fn run_cli(cwd: &Path, args: &[&str]) -> CliOutput {
    let mut cmd = tokio::process::Command::from(numcheck_command(cwd));
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("numcheck {args:?} did not finish within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("cannot run numcheck {args:?}: {e}"));
    CliOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `numcheck keys create`; asserts success and returns the printed key (the last line).
pub async fn create_key(cwd: &Path, data: &Path, user: &str, credits: Option<i64>) -> String {
    let data = data.to_str().expect("utf-8 temp path");
    let credits = credits.map(|c| c.to_string());
    let mut args = vec!["keys", "create", "--data-dir", data, "--user", user];
    if let Some(c) = &credits {
        args.extend(["--credits", c.as_str()]);
    }
    let out = run_cli(cwd, &args).await;
    assert!(
        out.status.success(),
        "keys create failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let key = out.last_line().trim().to_owned();
    assert_key_shape(&key);
    key
}

/// An API key is `nck_` and 32 letters or digits.
pub fn assert_key_shape(key: &str) {
    assert!(
        key.starts_with("nck_")
            && key.len() == 36
            && key[4..].bytes().all(|b| b.is_ascii_alphanumeric()),
        "not an API key: {key:?}"
    );
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

static SERVER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running `numcheck serve`. Dropping it kills the process (SIGKILL) and reaps it, so a
/// failing test leaves nothing behind; on a panic it prints the tail of the server's log.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts `numcheck serve --data-dir <data> --listen 127.0.0.1:<free port>` with extra
    /// environment, and waits until it has printed its listening line and `/healthz` answers.
    pub async fn start(cwd: &Path, data: &Path, env: &[(&str, &str)]) -> Server {
        Self::spawn(cwd, data, env, "serve").await
    }

    /// Starts `numcheck worker` (no HTTP API) and waits until it says it runs.
    pub async fn start_worker(cwd: &Path, data: &Path, env: &[(&str, &str)]) -> Server {
        Self::spawn(cwd, data, env, "worker").await
    }

    async fn spawn(cwd: &Path, data: &Path, env: &[(&str, &str)], kind: &str) -> Server {
        let port = free_port();
        let n = SERVER_SEQ.fetch_add(1, Ordering::SeqCst);
        let log = cwd.join(format!("{kind}-{n}.log"));
        let log_file = File::create(&log).expect("create the server log file");
        let mut cmd = numcheck_command(cwd);
        cmd.arg(kind)
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let mut child = cmd.spawn().expect("spawn numcheck serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().expect("piped stdout");
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("stdout lines lock").push(line);
            }
        });
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            log,
            exited: None,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let client = client();
        let ticker = wait_for(format!("numcheck to be ready on {}", self.base)).start();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                panic!(
                    "numcheck exited during startup ({status}).\nstdout:\n{}\nlog:\n{}",
                    self.stdout_lines().join("\n"),
                    self.log()
                );
            }
            let lines = self.stdout_lines();
            if lines.iter().any(|l| l.contains("worker node running")) {
                return;
            }
            let listening = lines.iter().any(|l| l.contains("listening on http://"));
            if listening
                && let Ok(resp) = client.get(format!("{}/healthz", self.base)).send().await
                && resp.status() == 200
            {
                return;
            }
            // On a panic the guard's drop prints the tail of the log.
            ticker.tick().await;
        }
    }

    /// The admin key the first start of a fresh data folder printed.
    pub fn admin_key(&self) -> String {
        self.stdout_lines()
            .into_iter()
            .find(|l| l.starts_with("nck_"))
            .expect("the first start prints the admin key")
    }

    /// The lines the server printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines lock").clone()
    }

    /// The server's log (stderr) so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    pub fn kill_dash_nine(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        self.child.kill().expect("SIGKILL the server");
        let status = self.child.wait().expect("reap the server");
        self.exited = Some(status);
        status
    }

    /// SIGTERM through `kill -TERM <pid>`, then waits (bounded) for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed: {sent}", self.pid());
        let ticker = wait_for(format!(
            "numcheck (pid {}) to exit after SIGTERM",
            self.pid()
        ))
        .start();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            // On a panic the guard's drop prints the tail of the log.
            ticker.tick().await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of {} ---\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build the HTTP client")
}

/// `POST /v1/tasks` with `file` and `task_type=active_check`.
pub async fn create_task(base: &str, key: &str, file: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("numbers.txt"),
        )
        .text("task_type", "active_check");
    let resp = client()
        .post(format!("{base}/v1/tasks"))
        .header("X-API-Key", key)
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/tasks");
    numcheck_testkit::json(resp).await
}

/// `POST /v1/gettasks` with a JSON body.
pub async fn get_task(client: &reqwest::Client, base: &str, key: &str, id: &str) -> (u16, Value) {
    let resp = client
        .post(format!("{base}/v1/gettasks"))
        .header("X-API-Key", key)
        .json(&json!({ "task_id": id }))
        .send()
        .await
        .expect("POST /v1/gettasks");
    numcheck_testkit::json(resp).await
}

pub fn int(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} is not an integer in {v}"))
}

pub fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

/// Polls until the task is exported; panics on a terminal failure or after [`DEADLINE`].
pub async fn wait_exported(base: &str, key: &str, id: &str) -> Value {
    let client = client();
    wait_for(format!("task {id} to be exported"))
        .until(|| async {
            let (status, body) = get_task(&client, base, key, id).await;
            assert_eq!(status, 200, "gettasks {id}: {body}");
            match text(&body, "status") {
                "exported" => Ok(body),
                "pending" | "processing" => Err(body),
                other => panic!("task {id} ended as {other}: {body}"),
            }
        })
        .await
}

/// Downloads a result zip and returns (`<task_id>.csv`, `rejected.csv`).
pub async fn download_result(task: &Value) -> (Vec<u8>, Vec<u8>) {
    let id = text(task, "task_id");
    let mut zip = ResultZip::download(&client(), text(task, "result_url")).await;
    (zip.bytes(&format!("{id}.csv")), zip.bytes("rejected.csv"))
}

/// An upload whose outcome is known from how it was made.
#[derive(Debug)]
pub struct Upload {
    pub bytes: Vec<u8>,
    /// Non-blank lines.
    pub total: i64,
    /// Lines that cannot be read as a number at all.
    pub failures: i64,
    /// Lines that parse (valid or not).
    pub successes: i64,
    /// Distinct parsed numbers: what the task is charged.
    pub unique: i64,
    /// The E.164 form of every parsed line, in input order.
    pub numbers_in_order: Vec<String>,
}

const GARBAGE: &[&str] = &["not a number", "call me maybe", "+1 800 FLOWERS", "n/a"];

/// About `lines` physical lines: numbers of San Francisco (+1415555xxxx, which repeat every
/// 10,000) and Berlin (+4930xxxxxxx), some written with spaces around them or CRLF endings,
/// exact duplicates of earlier lines, blank and whitespace-only lines, and garbage lines with
/// letters (failures).
pub fn generate(lines: usize) -> Upload {
    let mut bytes = Vec::with_capacity(lines * 14);
    let mut emitted: Vec<String> = Vec::new();
    let mut failures = 0i64;
    let mut total = 0i64;
    for i in 0..lines {
        let number = match i % 20 {
            7 => {
                bytes.extend_from_slice(if i % 40 == 7 { b"\n" } else { b"   \n" });
                continue;
            }
            13 => {
                bytes.extend_from_slice(GARBAGE[(i / 20) % GARBAGE.len()].as_bytes());
                bytes.push(b'\n');
                failures += 1;
                total += 1;
                continue;
            }
            4 | 17 if !emitted.is_empty() => emitted[(i * 7919) % emitted.len()].clone(),
            r if r % 2 == 0 => format!("+1415555{:04}", (i / 2) % 10_000),
            _ => format!("+4930{:07}", i % 10_000_000),
        };
        let line = if i % 20 == 9 {
            format!("  {number} ")
        } else {
            number.clone()
        };
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(if i % 50 == 11 { b"\r\n" } else { b"\n" });
        total += 1;
        emitted.push(number);
    }
    let unique = emitted.iter().collect::<HashSet<_>>().len() as i64;
    Upload {
        bytes,
        total,
        failures,
        successes: emitted.len() as i64,
        unique,
        numbers_in_order: emitted,
    }
}
