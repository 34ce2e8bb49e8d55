//! The command-line client of a numcheck server (or any checknumber-compatible one):
//! `numcheck submit` uploads a file (streamed), optionally waits with a progress bar driven by
//! `gettasks`, downloads the result and unpacks it; `numcheck status` shows one task.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;

/// Where the server is and who we are.
#[derive(Debug, Clone)]
pub struct Remote {
    pub server: String,
    pub api_key: String,
}

impl Remote {
    pub fn new(server: Option<String>, api_key: Option<String>) -> anyhow::Result<Remote> {
        let server = server
            .or_else(|| std::env::var("NUMCHECK_SERVER").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
        let api_key = api_key
            .or_else(|| std::env::var("NUMCHECK_API_KEY").ok())
            .filter(|k| !k.trim().is_empty())
            .context("no API key: pass --api-key or set NUMCHECK_API_KEY")?;
        Ok(Remote {
            server: server.trim_end_matches('/').to_owned(),
            api_key: api_key.trim().to_owned(),
        })
    }

    /// A request to `path` (`/v1/…`) on the server, with the API key.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(http()?
            .request(method, format!("{}{path}", self.server))
            .header("X-API-Key", &self.api_key))
    }

    /// Sends a request: its JSON answer, or an error that says `what` failed and why.
    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.server))?;
        answer(resp, what).await
    }
}

/// Turns a response into its JSON body, or an error that says what the server said.
async fn answer(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("{what}: the answer could not be read"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    match (body["error"].as_str(), body["message"].as_str()) {
        (Some(code), Some(message)) => {
            anyhow::bail!("{what}: {message} ({code}, HTTP {})", status.as_u16())
        }
        _ => anyhow::bail!(
            "{what}: HTTP {} {}",
            status.as_u16(),
            text.chars().take(200).collect::<String>()
        ),
    }
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// The form fields of an upload besides the file.
#[derive(Debug, Clone, Copy)]
pub struct SubmitOptions<'a> {
    pub task_type: &'a str,
    pub region: Option<&'a str>,
    pub phone_column: Option<&'a str>,
    pub callback_url: Option<&'a str>,
    pub min_confidence: Option<f64>,
}

/// Uploads `file` (streamed) as a new task; returns the create answer.
pub async fn submit(
    remote: &Remote,
    file: &Path,
    options: &SubmitOptions<'_>,
) -> anyhow::Result<Value> {
    let part = reqwest::multipart::Part::file(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    let mut form = reqwest::multipart::Form::new().text("task_type", options.task_type.to_owned());
    for (name, value) in [
        ("default_region", options.region),
        ("phone_column", options.phone_column),
        ("callback_url", options.callback_url),
    ] {
        if let Some(v) = value {
            form = form.text(name, v.to_owned());
        }
    }
    if let Some(floor) = options.min_confidence {
        form = form.text("min_confidence", floor.to_string());
    }
    // The file goes last, so the server has every option before the bytes arrive.
    form = form.part("file", part);
    let request = remote.request(Method::POST, "/v1/tasks")?.multipart(form);
    remote.call(request, "upload refused").await
}

/// Lists tasks, newest first, following pages until `limit` (0: all).
pub async fn list(
    remote: &Remote,
    limit: usize,
    status: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let want = if limit == 0 {
            200
        } else {
            (limit - out.len()).min(200)
        };
        let mut query = vec![("limit", want.to_string())];
        if let Some(s) = status {
            query.push(("status", s.to_owned()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let request = remote.request(Method::GET, "/v1/tasks")?.query(&query);
        let page = remote.call(request, "task list").await?;
        out.extend(page["tasks"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) if limit == 0 || out.len() < limit => cursor = Some(c.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// Cancels a task.
pub async fn cancel(remote: &Remote, task_id: &str) -> anyhow::Result<Value> {
    let path = format!("/v1/tasks/{}/cancel", path_segment(task_id));
    remote
        .call(remote.request(Method::POST, &path)?, "cancel refused")
        .await
}

/// Deletes a task.
pub async fn delete(remote: &Remote, task_id: &str) -> anyhow::Result<Value> {
    let path = format!("/v1/tasks/{}", path_segment(task_id));
    remote
        .call(remote.request(Method::DELETE, &path)?, "delete refused")
        .await
}

/// The caller's balance.
pub async fn balance(remote: &Remote) -> anyhow::Result<Value> {
    remote
        .call(remote.request(Method::GET, "/v1/balance")?, "balance")
        .await
}

/// A task id as a URL path segment (ids are alphanumeric; anything else is escaped).
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One line per task.
pub fn task_table(tasks: &[Value]) -> String {
    let mut out = format!(
        "{:<20}  {:<10}  {:>10}  {:>10}  {:<20}  {}\n",
        "TASK", "STATUS", "TOTAL", "DONE", "CREATED", "FILE"
    );
    for t in tasks {
        let done = t["success"].as_i64().unwrap_or(0) + t["failure"].as_i64().unwrap_or(0);
        out.push_str(&format!(
            "{:<20}  {:<10}  {:>10}  {:>10}  {:<20}  {}\n",
            t["task_id"].as_str().unwrap_or("?"),
            t["status"].as_str().unwrap_or("?"),
            t["total"].as_i64().unwrap_or(0),
            done,
            t["created_at"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(19)
                .collect::<String>(),
            t["file_name"].as_str().unwrap_or(""),
        ));
    }
    if tasks.is_empty() {
        out.push_str("(no tasks)\n");
    }
    out
}

/// The balance answer for people.
pub fn describe_balance(v: &Value) -> String {
    let mut out = String::new();
    if v["unlimited"].as_bool() == Some(true) {
        out.push_str("balance     unlimited\n");
    } else {
        out.push_str(&format!("balance     {}\n", v["balance"]));
        out.push_str(&format!("held        {}\n", v["held"]));
        out.push_str(&format!("available   {}\n", v["available"]));
    }
    let u = &v["usage"];
    out.push_str(&format!("tasks       {}\n", u["tasks"]));
    out.push_str(&format!("checked     {}\n", u["numbers_checked"]));
    out.push_str(&format!("charged     {}\n", u["credits_charged"]));
    out
}

/// Polls a task once.
pub async fn status(remote: &Remote, task_id: &str) -> anyhow::Result<Value> {
    let request = remote
        .request(Method::POST, "/v1/gettasks")?
        .form(&[("task_id", task_id)]);
    remote.call(request, "gettasks").await
}

/// The task in full (`GET /v1/tasks/{id}`): its summary and warnings once exported.
pub async fn detail(remote: &Remote, task_id: &str) -> anyhow::Result<Value> {
    let request = remote.request(Method::GET, &format!("/v1/tasks/{task_id}"))?;
    remote.call(request, "task").await
}

/// The verdict counts and warnings of an exported task's detail, a line each (empty before
/// the export).
pub fn describe_outcome(detail: &Value) -> String {
    let mut out = String::new();
    if let Some(by_status) = detail["summary"]["by_status"].as_object() {
        for (status, n) in by_status {
            out.push_str(&format!("{status:<11} {n}\n"));
        }
    }
    if let Some(warnings) = detail["warnings"].as_array() {
        for w in warnings {
            out.push_str(&format!(
                "warning     {} ({})\n",
                w["message"].as_str().unwrap_or_default(),
                w["code"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// Polls until the task ends, with a progress bar on a terminal.
pub async fn wait(remote: &Remote, task_id: &str) -> anyhow::Result<Value> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                // Whole numbers, and no estimate of the time left: a task's pace changes
                // between its upload, its chunks and its export, so an estimate would be made up.
                "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} lines ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    loop {
        let v = status(remote, task_id).await?;
        let total = v["total"].as_u64().unwrap_or(0);
        let done = v["success"].as_u64().unwrap_or(0) + v["failure"].as_u64().unwrap_or(0);
        let state = v["status"].as_str().unwrap_or("unknown").to_owned();
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(state.clone());
        match state.as_str() {
            "exported" => {
                bar.finish_and_clear();
                return Ok(v);
            }
            "failed" | "cancelled" => {
                bar.finish_and_clear();
                anyhow::bail!(
                    "task {task_id} {state}: {}",
                    v["message"].as_str().unwrap_or("no reason given")
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Downloads the result zip into `out/<task_id>.zip` and unpacks it into `out/<task_id>/`;
/// returns the folder.
pub async fn download(task: &Value, out: &Path) -> anyhow::Result<PathBuf> {
    let id = task["task_id"]
        .as_str()
        .context("the task has no task_id")?;
    let url = task["result_url"]
        .as_str()
        .context("the task has no result_url yet")?;
    let resp = http()?
        .get(url)
        .send()
        .await
        .context("cannot download the result")?;
    if !resp.status().is_success() {
        answer(resp, "download refused").await?;
        anyhow::bail!("download refused");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let zip_path = out.join(format!("{id}.zip"));
    // Streamed to disk: a result of millions of rows need not fit in memory.
    {
        use futures::StreamExt;
        use std::io::Write;
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&zip_path)
                .with_context(|| format!("cannot write {}", zip_path.display()))?,
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("the download broke off")?;
            file.write_all(&chunk)
                .with_context(|| format!("cannot write {}", zip_path.display()))?;
        }
        file.flush()
            .with_context(|| format!("cannot write {}", zip_path.display()))?;
    }
    let dir = out.join(id);
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(
        std::fs::File::open(&zip_path)
            .with_context(|| format!("cannot read {}", zip_path.display()))?,
    ))
    .context("the result is not a zip")?;
    // `extract` refuses entries that would land outside `dir`.
    archive
        .extract(&dir)
        .with_context(|| format!("cannot unpack into {}", dir.display()))?;
    Ok(dir)
}

/// One line per field of a task answer.
pub fn describe(v: &Value) -> String {
    let mut out = String::new();
    for key in [
        "task_id",
        "status",
        "total",
        "success",
        "failure",
        "created_at",
        "updated_at",
        "result_url",
        "message",
    ] {
        if let Some(value) = v.get(key).filter(|x| !x.is_null()) {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            out.push_str(&format!("{key:<11} {text}\n"));
        }
    }
    out
}
