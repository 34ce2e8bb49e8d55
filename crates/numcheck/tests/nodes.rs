//! Several nodes on one PostgreSQL and one S3-compatible bucket (a real s3s-fs on loopback):
//! tasks submitted to different nodes, a node killed with SIGKILL mid-task, every node
//! restarted in turn during a task — and each result equal to a single-node run's, with exact
//! counters and one charge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    DEADLINE, Server, client, create_task, download_result, free_port, generate, get_task, int,
    run_cli, text, wait_exported,
};
use tempfile::TempDir;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh database on the machine's PostgreSQL, dropped at the end.
struct Database {
    name: String,
    url: String,
}

fn psql(sql: &str) {
    let admin = std::env::var("NUMCHECK_TEST_PG").unwrap_or_else(|_| PG_ADMIN.to_owned());
    let out = Command::new("psql")
        .arg(&admin)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("run psql (the PostgreSQL client)");
    assert!(
        out.status.success(),
        "psql {admin} -c {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn psql_value(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Database {
    fn create() -> Database {
        let name = format!(
            "numcheck_nodes_{}_{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() % 1_000_000
        );
        psql(&format!("CREATE DATABASE {name}"));
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Database { name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = std::env::var("NUMCHECK_TEST_PG").unwrap_or_else(|_| PG_ADMIN.to_owned());
        let _ = Command::new("psql")
            .arg(&admin)
            .args([
                "-qAt",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A real S3-compatible server (s3s-fs, files on disk) with one bucket.
struct Bucket {
    child: Child,
    url: String,
}

/// The s3s-fs binary: `$S3S_FS`, the PATH, or `$CARGO_HOME/bin`; installed once (pinned)
/// when it is nowhere, as the blob store's tests do.
fn s3s_fs() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS") {
        return PathBuf::from(p);
    }
    let on_path = Command::new("s3s-fs")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if on_path {
        return PathBuf::from("s3s-fs");
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let installed = home.join("bin/s3s-fs");
    if !installed.exists() {
        eprintln!(
            "s3s-fs is missing: cargo install s3s-fs --version 0.14.1 --features binary --locked"
        );
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "s3s-fs",
                "--version",
                "0.14.1",
                "--features",
                "binary",
                "--locked",
            ])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not install s3s-fs; install it by hand with the command above"
        );
    }
    installed
}

impl Bucket {
    fn start(root: &Path) -> Bucket {
        let dir = root.join("s3");
        std::fs::create_dir_all(dir.join("numcheck")).unwrap();
        let port = free_port();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "nodes-test-key", "--secret-key", "nodes-test-secret"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("s3s-fs.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need s3s-fs (cargo install s3s-fs --version 0.14.1 --features binary --locked): {e}"
                )
            });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "s3s-fs did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Bucket {
            child,
            url: format!(
                "s3://numcheck?endpoint=http://127.0.0.1:{port}&region=us-east-1&allow_http=true&access_key_id=nodes-test-key&secret_access_key=nodes-test-secret"
            ),
        }
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The result's `summary.json` without what names the task (its id and creation time).
async fn summary(done: &Value) -> Value {
    let bytes = client()
        .get(text(done, "result_url"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("summary.json").unwrap(), &mut text).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let map = v.as_object_mut().unwrap();
    assert!(map.remove("task_id").is_some() && map.remove("as_of").is_some());
    v
}

/// Runs a task on a single node with the embedded default: the reference result.
async fn single_node_result(root: &Path, upload: &[u8]) -> (Vec<u8>, Vec<u8>, Value, Value) {
    let data = root.join("single");
    let server = Server::start(root, &data, &[("NUMCHECK_WORKER__CHUNK_LINES", "2000")]).await;
    let key = server
        .stdout_lines()
        .iter()
        .find(|l| l.starts_with("nck_"))
        .cloned()
        .expect("the first start prints the admin key");
    let (code, created) = create_task(&server.base, &key, upload.to_vec()).await;
    assert_eq!(code, 200, "{created}");
    let done = wait_exported(&server.base, &key, text(&created, "task_id")).await;
    let (csv, rejected) = download_result(&done).await;
    let summary = summary(&done).await;
    (csv, rejected, done, summary)
}

/// Polls through any node that answers until the task is exported.
async fn wait_on_any(bases: &[String], key: &str, id: &str) -> Value {
    let http = client();
    let started = Instant::now();
    loop {
        for base in bases {
            if let Ok(resp) = http
                .post(format!("{base}/v1/gettasks"))
                .header("X-API-Key", key)
                .form(&[("task_id", id)])
                .send()
                .await
                && resp.status() == 200
            {
                let v: Value = resp.json().await.unwrap();
                if text(&v, "status") == "exported" {
                    return v;
                }
                assert_ne!(text(&v, "status"), "failed", "{v}");
            }
        }
        assert!(started.elapsed() < DEADLINE, "task {id} did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the task has made some progress, not all.
async fn wait_mid_task(base: &str, key: &str, id: &str, total: i64) {
    let http = client();
    let started = Instant::now();
    loop {
        let (_, v) = get_task(&http, base, key, id).await;
        let done = int(&v, "success") + int(&v, "failure");
        if done > 0 || text(&v, "status") == "exported" {
            assert!(done < total || text(&v, "status") == "exported");
            return;
        }
        assert!(started.elapsed() < DEADLINE, "no progress on {id}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn three_nodes_survive_a_kill_and_a_rolling_restart_with_single_node_results() {
    let root = TempDir::new().unwrap();
    let db = Database::create();
    let bucket = Bucket::start(root.path());
    let upload = generate(120_000);
    let (reference_csv, reference_rejected, reference, reference_summary) =
        single_node_result(root.path(), &upload.bytes).await;

    let env: Vec<(&str, &str)> = vec![
        ("NUMCHECK_DATABASE_URL", db.url.as_str()),
        ("NUMCHECK_BLOB_URL", bucket.url.as_str()),
        ("NUMCHECK_WORKER__CHUNK_LINES", "2000"),
        ("NUMCHECK_WORKER__LEASE_SECS", "2"),
        ("NUMCHECK_WORKER__CONCURRENCY", "2"),
    ];
    let dir = |n: &str| root.path().join(n);
    // Node a creates the first admin key; b (API + workers) and c (workers only) join.
    let mut a = Server::start(root.path(), &dir("a"), &env).await;
    let key = a
        .stdout_lines()
        .iter()
        .find(|l| l.starts_with("nck_"))
        .cloned()
        .expect("the first node prints the admin key");
    let mut b = Server::start(root.path(), &dir("b"), &env).await;
    assert!(
        !b.stdout_lines().iter().any(|l| l.starts_with("nck_")),
        "only the first node creates a key"
    );
    let mut c = Server::start_worker(root.path(), &dir("c"), &env).await;

    // Two tasks, submitted to different nodes; node b is killed while they run.
    let (code, first) = create_task(&a.base, &key, upload.bytes.clone()).await;
    assert_eq!(code, 200, "{first}");
    let (code, second) = create_task(&b.base, &key, upload.bytes.clone()).await;
    assert_eq!(code, 200, "{second}");
    let first_id = text(&first, "task_id").to_owned();
    let second_id = text(&second, "task_id").to_owned();
    wait_mid_task(&a.base, &key, &second_id, upload.total).await;
    let killed = b.kill_dash_nine();
    assert!(!killed.success());
    let bases = vec![a.base.clone()];
    let done_first = wait_on_any(&bases, &key, &first_id).await;
    let done_second = wait_on_any(&bases, &key, &second_id).await;
    for done in [&done_first, &done_second] {
        assert_eq!(int(done, "total"), upload.total);
        assert_eq!(int(done, "success"), upload.successes, "{done}");
        assert_eq!(int(done, "failure"), upload.failures, "{done}");
        assert!(
            text(done, "result_url").contains("X-Amz-Signature"),
            "a presigned bucket link: {done}"
        );
        let (csv, rejected) = download_result(done).await;
        assert!(
            csv == reference_csv,
            "result differs from the single-node run"
        );
        assert!(rejected == reference_rejected, "rejected rows differ");
        assert_eq!(summary(done).await, reference_summary);
    }
    assert_eq!(int(&reference, "success"), upload.successes);

    // A rolling restart of every node while a third task runs.
    b = Server::start(root.path(), &dir("b"), &env).await;
    let (code, third) = create_task(&a.base, &key, upload.bytes.clone()).await;
    assert_eq!(code, 200, "{third}");
    let third_id = text(&third, "task_id").to_owned();
    wait_mid_task(&a.base, &key, &third_id, upload.total).await;
    assert!(c.terminate().await.success());
    c = Server::start_worker(root.path(), &dir("c"), &env).await;
    assert!(b.terminate().await.success());
    b = Server::start(root.path(), &dir("b"), &env).await;
    assert!(a.terminate().await.success());
    a = Server::start(root.path(), &dir("a"), &env).await;
    let bases = vec![a.base.clone(), b.base.clone()];
    let done_third = wait_on_any(&bases, &key, &third_id).await;
    assert_eq!(int(&done_third, "success"), upload.successes);
    let (csv, rejected) = download_result(&done_third).await;
    assert!(csv == reference_csv && rejected == reference_rejected);

    // One charge per task, each the number of distinct numbers.
    for id in [&first_id, &second_id, &third_id] {
        let charges = psql_value(
            &db.url,
            &format!(
                "SELECT count(*) || ':' || coalesce(sum(-amount), 0) FROM ledger WHERE task_id = '{id}' AND kind = 'charge'"
            ),
        );
        assert_eq!(charges, format!("1:{}", upload.unique), "task {id}");
    }
    // Keys can be managed against the shared database too.
    let out = run_cli(
        root.path(),
        &[
            "keys",
            "list",
            "--data-dir",
            dir("a").to_str().unwrap(),
            "--database-url",
            &db.url,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("admin"), "{}", out.stdout);
    drop((a, b, c));
}
