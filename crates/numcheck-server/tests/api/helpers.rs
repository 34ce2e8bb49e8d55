//! Boots the real server in-process on 127.0.0.1:0 with a fresh data folder, and talks HTTP
//! to it the way a checknumber.ai client does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use numcheck_engine::keys;
use numcheck_server::{Application, Config};
use numcheck_testkit::wait_for;
pub use numcheck_testkit::{ResultZip, assert_error, json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::sync::oneshot;

/// The keys of a `gettasks` answer, in order, before the task is exported (`result_url`
/// follows once it is).
pub const GETTASKS_KEYS: [&str; 8] = [
    "created_at",
    "updated_at",
    "task_id",
    "user_id",
    "status",
    "total",
    "success",
    "failure",
];

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
        self.key_with(user, credits, keys::KeyRights::CHECK).await
    }

    /// A key with these rights (for a new user, or another key of an existing one).
    pub async fn key_with(
        &self,
        user: &str,
        credits: Option<i64>,
        rights: keys::KeyRights,
    ) -> String {
        keys::issue(
            self.state.engine.store.as_ref(),
            user,
            credits,
            false,
            rights,
        )
        .await
        .unwrap()
        .key
        .secret
    }

    /// A request to `path` on this server, with the key when one is given.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => req.header("X-API-Key", key),
            None => req,
        }
    }

    /// Sends `method path` (with the key when given) and nothing else; the answer's status and
    /// JSON body.
    pub async fn call(&self, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
        json(self.request(method, path, key).send().await.unwrap()).await
    }

    /// `GET path` with `key`.
    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(key)).await
    }

    /// `POST path` with `key` and no body.
    pub async fn post(&self, key: &str, path: &str) -> (u16, Value) {
        self.call(Method::POST, path, Some(key)).await
    }

    /// `DELETE path` with `key`.
    pub async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, Some(key)).await
    }

    /// The body of `GET path` without a key, as text (pages, scripts, metrics).
    pub async fn text(&self, path: &str) -> String {
        let resp = self.request(Method::GET, path, None).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// `POST /v1/evidence` with `body` of `content_type`.
    pub async fn post_evidence(&self, key: &str, content_type: &str, body: String) -> (u16, Value) {
        let req = self.request(Method::POST, "/v1/evidence", Some(key));
        let resp = req.header("Content-Type", content_type).body(body);
        json(resp.send().await.unwrap()).await
    }

    pub async fn create(&self, key: &str, body: &[u8]) -> (u16, Value) {
        self.create_with(key, body, &[]).await
    }

    /// An `active_check` task over `body` with more form fields.
    pub async fn create_with(
        &self,
        key: &str,
        body: &[u8],
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = file_form(body).text("task_type", "active_check");
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        self.create_form(key, form, None).await
    }

    pub async fn create_form(&self, key: &str, form: Form, idem: Option<&str>) -> (u16, Value) {
        let mut req = self
            .request(Method::POST, "/v1/tasks", Some(key))
            .multipart(form);
        if let Some(i) = idem {
            req = req.header("Idempotency-Key", i);
        }
        let resp = req.send().await.unwrap();
        json(resp).await
    }

    pub async fn poll(&self, key: &str, task_id: &str) -> (u16, Value) {
        let resp = self
            .request(Method::POST, "/v1/gettasks", Some(key))
            .multipart(Form::new().text("task_id", task_id.to_owned()))
            .send()
            .await
            .unwrap();
        json(resp).await
    }

    /// Polls until the task is terminal (bounded: fails after the testkit's patience).
    pub async fn wait(&self, key: &str, task_id: &str) -> Value {
        wait_for(format!("task {task_id} to finish"))
            .every(Duration::from_millis(10))
            .until(|| async {
                let (code, body) = self.poll(key, task_id).await;
                assert_eq!(code, 200, "{body}");
                match body["status"].as_str() {
                    Some("exported" | "failed") => Ok(body),
                    _ => Err(body),
                }
            })
            .await
    }

    /// Downloads a task's result zip (it must be served as one) and opens it.
    pub async fn zip(&self, view: &Value) -> ResultZip {
        let url = view["result_url"].as_str().expect("result_url");
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        ResultZip::new(resp.bytes().await.unwrap().to_vec())
    }

    /// Downloads and unpacks a result zip: (result csv, rejected csv, member names).
    /// (ActiveStatus, Reason) per number, from a task over `numbers`.
    pub async fn verdicts(&self, numbers: &[&str]) -> HashMap<String, (String, String)> {
        let file: String = numbers.iter().map(|n| format!("{n}\n")).collect();
        let (_, created) = self.create(&self.admin_key, file.as_bytes()).await;
        let v = self
            .wait(&self.admin_key, created["task_id"].as_str().unwrap())
            .await;
        let (csv, _, _) = self.result(&v).await;
        csv.lines()
            .skip(1)
            .map(|row| {
                let f: Vec<&str> = row.split(',').collect();
                (f[0].to_owned(), (f[1].to_owned(), f[2].to_owned()))
            })
            .collect()
    }

    pub async fn result(&self, view: &Value) -> (String, String, Vec<String>) {
        let mut zip = self.zip(view).await;
        let id = view["task_id"].as_str().unwrap();
        (zip.csv(id), zip.rejected(), zip.names())
    }
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

/// The keys of a JSON object in document order.
pub fn keys_in_order(text: &str) -> Vec<String> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
    v.keys().cloned().collect()
}
