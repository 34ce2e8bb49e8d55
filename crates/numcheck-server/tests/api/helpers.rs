//! Boots the real server in-process on 127.0.0.1:0 with a fresh data folder, and talks HTTP
//! to it the way a checknumber.ai client does.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use numcheck_engine::keys;
use numcheck_server::{Application, Config};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub admin_key: String,
    pub data_dir: PathBuf,
    pub state: numcheck_server::AppState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.worker.concurrency = 2;
    c.worker.chunk_lines = 1000;
    // Tests poll in tight loops with one key; the limits have their own tests.
    c.limits.requests_per_second = 0;
    c.limits.max_open_tasks = 0;
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path());
        tweak(&mut c);
        let mut s = Self::boot(c).await;
        s._tmp = Some(tmp);
        s
    }

    /// Boots on an existing folder (for restart tests). The caller keeps the folder alive.
    pub async fn boot(config: Config) -> TestServer {
        let data_dir = config.data_dir.clone();
        let app = Application::build(config).await.expect("server builds");
        let admin_key = app.first_admin_key().unwrap_or_default().to_owned();
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestServer {
            base,
            admin_key,
            data_dir,
            state,
            stop: Some(tx),
            handle: Some(handle),
            _tmp: None,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server and waits for it (workers finish their work in hand).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// A key for a new user; `credits: None` is unlimited.
    pub async fn key(&self, user: &str, credits: Option<i64>) -> String {
        keys::issue(
            self.state.engine.store.as_ref(),
            user,
            credits,
            false,
            false,
        )
        .await
        .unwrap()
        .key
        .secret
    }

    pub async fn create(&self, key: &str, body: &[u8]) -> (u16, Value) {
        self.create_form(key, file_form(body).text("task_type", "active_check"), None)
            .await
    }

    pub async fn create_form(&self, key: &str, form: Form, idem: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/tasks", self.base))
            .header("X-API-Key", key)
            .multipart(form);
        if let Some(i) = idem {
            req = req.header("Idempotency-Key", i);
        }
        let resp = req.send().await.unwrap();
        json(resp).await
    }

    pub async fn poll(&self, key: &str, task_id: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/gettasks", self.base))
            .header("X-API-Key", key)
            .multipart(Form::new().text("task_id", task_id.to_owned()))
            .send()
            .await
            .unwrap();
        json(resp).await
    }

    /// Polls until the task is terminal (bounded: fails after 120 s).
    pub async fn wait(&self, key: &str, task_id: &str) -> Value {
        for _ in 0..12_000 {
            let (code, body) = self.poll(key, task_id).await;
            assert_eq!(code, 200, "{body}");
            if matches!(body["status"].as_str(), Some("exported" | "failed")) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {task_id} did not finish");
    }

    /// Downloads and unpacks a result zip: (result csv, rejected csv, member names).
    pub async fn result(&self, view: &Value) -> (String, String, Vec<String>) {
        let url = view["result_url"].as_str().expect("result_url");
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        let bytes = resp.bytes().await.unwrap();
        unzip(&bytes, view["task_id"].as_str().unwrap())
    }
}

pub fn unzip(bytes: &[u8], task_id: &str) -> (String, String, Vec<String>) {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    let mut csv = String::new();
    zip.by_name(&format!("{task_id}.csv"))
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    let mut rejected = String::new();
    zip.by_name("rejected.csv")
        .unwrap()
        .read_to_string(&mut rejected)
        .unwrap();
    (csv, rejected, names)
}

pub fn file_form(body: &[u8]) -> Form {
    Form::new().part(
        "file",
        Part::bytes(body.to_vec())
            .file_name("numbers.txt")
            .mime_str("text/plain")
            .unwrap(),
    )
}

pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (code, value)
}

/// The keys of a JSON object in document order.
pub fn keys_in_order(text: &str) -> Vec<String> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
    v.keys().cloned().collect()
}

/// Asserts an error answer: status, stable code and a message.
pub fn assert_error(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
    assert_eq!(
        got.1.as_object().unwrap().len(),
        2,
        "only error and message: {}",
        got.1
    );
}
