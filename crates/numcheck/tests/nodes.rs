//! Several nodes on one PostgreSQL and one S3-compatible bucket (a real s3s-fs on loopback):
//! tasks submitted to different nodes, a node killed with SIGKILL mid-task, every node
//! restarted in turn during a task — and each result equal to a single-node run's, with exact
//! counters and one charge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::Duration;

use numcheck_testkit::{ResultZip, S3Server, TestDb, wait_for};
use serde_json::Value;
use support::{
    Server, client, create_task, download_result, generate, get_task, int, run_cli, text,
    wait_exported,
};
use tempfile::TempDir;

/// The result's `summary.json` without what names the task (its id and creation time).
async fn summary(done: &Value) -> Value {
    let mut v = ResultZip::download(&client(), text(done, "result_url"))
        .await
        .summary();
    let map = v.as_object_mut().unwrap();
    assert!(map.remove("task_id").is_some() && map.remove("as_of").is_some());
    v
}

/// Runs a task on a single node with the embedded default: the reference result.
async fn single_node_result(root: &Path, upload: &[u8]) -> (Vec<u8>, Vec<u8>, Value, Value) {
    let data = root.join("single");
    let server = Server::start(root, &data, &[("NUMCHECK_WORKER__CHUNK_LINES", "2000")]).await;
    let key = server.admin_key();
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
    wait_for(format!("task {id} to be exported on one of {bases:?}"))
        .every(Duration::from_millis(50))
        .until(|| async {
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
                    assert_ne!(text(&v, "status"), "failed", "{v}");
                    if text(&v, "status") == "exported" {
                        return Some(v);
                    }
                }
            }
            None
        })
        .await
}

/// Waits until the task has made some progress, not all.
async fn wait_mid_task(base: &str, key: &str, id: &str, total: i64) {
    let http = client();
    wait_for(format!("progress on task {id}"))
        .every(Duration::from_millis(5))
        .until(|| async {
            let (_, v) = get_task(&http, base, key, id).await;
            let done = int(&v, "success") + int(&v, "failure");
            let exported = text(&v, "status") == "exported";
            if done > 0 || exported {
                assert!(done < total || exported);
                return Ok(());
            }
            Err(v)
        })
        .await;
}

#[tokio::test]
async fn three_nodes_survive_a_kill_and_a_rolling_restart_with_single_node_results() {
    let root = TempDir::new().unwrap();
    let db = TestDb::new().await;
    let bucket = S3Server::start();
    let bucket_url = bucket.url();
    let upload = generate(120_000);
    let (reference_csv, reference_rejected, reference, reference_summary) =
        single_node_result(root.path(), &upload.bytes).await;

    let env: Vec<(&str, &str)> = vec![
        ("NUMCHECK_DATABASE_URL", db.url.as_str()),
        ("NUMCHECK_BLOB_URL", bucket_url.as_str()),
        ("NUMCHECK_WORKER__CHUNK_LINES", "2000"),
        ("NUMCHECK_WORKER__LEASE_SECS", "2"),
        ("NUMCHECK_WORKER__CONCURRENCY", "2"),
    ];
    let dir = |n: &str| root.path().join(n);
    // Node a creates the first admin key; b (API + workers) and c (workers only) join.
    let mut a = Server::start(root.path(), &dir("a"), &env).await;
    let key = a.admin_key();
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
        let charges = db
            .query_text(&format!(
                "SELECT count(*) || ':' || coalesce(sum(-amount), 0) FROM ledger WHERE task_id = '{id}' AND kind = 'charge'"
            ))
            .await;
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
