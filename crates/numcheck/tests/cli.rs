//! End-to-end tests of the `numcheck` binary: the keys commands, first start of `serve`, and
//! crash (SIGKILL) and shutdown (SIGTERM) in the middle of a task, followed by a restart that
//! must finish the task with exact counts, identical results and exactly one charge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use numcheck_core::{TaskId, TaskStatus, UserId};
use numcheck_store::SqliteStore;
use numcheck_store::prelude::*;
use numcheck_testkit::wait_for;
use serde_json::Value;
use support::{
    Server, Upload, assert_key_shape, client, create_key, create_task, download_result, generate,
    get_task, int, run_cli, text, wait_exported,
};
use tempfile::TempDir;

/// Small chunks and one worker, so a task of a few hundred thousand lines takes long enough
/// to be interrupted in the middle.
const SLOW_WORKERS: &[(&str, &str)] = &[
    ("NUMCHECK_WORKER__CHUNK_LINES", "2000"),
    ("NUMCHECK_WORKER__CONCURRENCY", "1"),
];
/// The opening balance of the user who uploads the big files.
const CREDITS: i64 = 10_000_000;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

// ---------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn keys_create_on_a_fresh_folder_prints_the_key_last_and_once_revoked_it_gets_401() {
    let root = TempDir::new().unwrap();
    let data = root.path().join("not").join("there").join("yet");
    assert!(!data.exists());
    let dir = path_str(&data);

    let out = run_cli(
        root.path(),
        &[
            "keys",
            "create",
            "--data-dir",
            dir,
            "--user",
            "alice",
            "--credits",
            "500",
        ],
    )
    .await;
    assert!(out.status.success(), "keys create: {out:?}");
    let key = out.last_line().to_owned();
    assert_key_shape(&key);
    assert!(
        out.stdout.contains("created user \"alice\"") && out.stdout.contains("500 credits"),
        "keys create should say it made the user: {}",
        out.stdout
    );
    assert!(
        data.join("numcheck.db").exists(),
        "the data folder was not created"
    );

    let prefix = &key[..12];
    let list = run_cli(root.path(), &["keys", "list", "--data-dir", dir]).await;
    assert!(list.status.success(), "keys list: {list:?}");
    assert!(
        list.stdout.contains(prefix),
        "keys list lacks the prefix {prefix}: {}",
        list.stdout
    );
    assert!(
        list.stdout.contains("alice"),
        "keys list lacks the user: {}",
        list.stdout
    );
    assert!(
        !list.stdout.contains(&key),
        "keys list shows a whole key: {}",
        list.stdout
    );
    assert!(
        !list.stderr.contains(&key),
        "keys list logs a whole key: {}",
        list.stderr
    );

    let mut server = Server::start(root.path(), &data, &[]).await;
    assert!(
        !server.stdout_lines().iter().any(|l| l.contains("nck_")),
        "a folder that already has a key must not get an admin key: {:?}",
        server.stdout_lines()
    );
    let (status, created) =
        create_task(&server.base, &key, b"+14155550100\n+4930123456\n".to_vec()).await;
    assert_eq!(status, 200, "the new key should be accepted: {created}");
    let task_id = text(&created, "task_id").to_owned();

    let revoke = run_cli(root.path(), &["keys", "revoke", "--data-dir", dir, prefix]).await;
    assert!(revoke.status.success(), "keys revoke: {revoke:?}");

    let (status, body) = get_task(&client(), &server.base, &key, &task_id).await;
    assert_eq!(status, 401, "a revoked key must be refused: {body}");
    assert_eq!(text(&body, "error"), "invalid_api_key", "{body}");
    let (status, body) = create_task(&server.base, &key, b"+14155550100\n".to_vec()).await;
    assert_eq!(status, 401, "a revoked key must not create tasks: {body}");

    let list = run_cli(root.path(), &["keys", "list", "--data-dir", dir]).await;
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("keys list lost the revoked key: {}", list.stdout));
    assert!(
        !row.trim_end().ends_with('-'),
        "keys list should show it revoked: {row}"
    );

    let exit = server.terminate().await;
    assert!(
        exit.success(),
        "serve should stop cleanly on SIGTERM: {exit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_an_unknown_or_already_revoked_key_exits_non_zero_with_a_message_on_stderr() {
    let root = TempDir::new().unwrap();
    let data = root.path().join("data");
    let dir = path_str(&data);
    let key = create_key(root.path(), &data, "bob", None).await;

    let out = run_cli(
        root.path(),
        &["keys", "revoke", "--data-dir", dir, "nck_nosuchkey"],
    )
    .await;
    assert!(
        !out.status.success(),
        "revoking an unknown key must fail: {out:?}"
    );
    assert!(
        out.stderr.contains("no live key"),
        "stderr should say why: {out:?}"
    );
    assert!(
        !out.stdout.contains("revoked"),
        "nothing was revoked: {out:?}"
    );

    let prefix = &key[..12];
    let out = run_cli(root.path(), &["keys", "revoke", "--data-dir", dir, prefix]).await;
    assert!(out.status.success(), "revoking a live key: {out:?}");
    let out = run_cli(root.path(), &["keys", "revoke", "--data-dir", dir, prefix]).await;
    assert!(!out.status.success(), "revoking twice must fail: {out:?}");
    assert!(
        out.stderr.contains("no live key"),
        "stderr should say why: {out:?}"
    );
}

// ---------------------------------------------------------------------------------------
// first start
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_the_admin_key_only_on_first_start_and_accepts_keys_created_while_it_runs() {
    let root = TempDir::new().unwrap();
    let data = root.path().join("fresh");
    let mut server = Server::start(root.path(), &data, &[]).await;

    let lines = server.stdout_lines();
    let at = lines
        .iter()
        .position(|l| l.contains("created user \"admin\""))
        .unwrap_or_else(|| panic!("first start printed no admin user: {lines:?}"));
    let admin = lines
        .get(at + 1)
        .unwrap_or_else(|| panic!("no key after the admin line: {lines:?}"))
        .trim()
        .to_owned();
    assert_key_shape(&admin);
    assert!(
        !server.log().contains(&admin),
        "the admin key must not be logged"
    );

    let (status, body) = create_task(&server.base, &admin, b"+14155550100\n".to_vec()).await;
    assert_eq!(status, 200, "the admin key should be accepted: {body}");

    // A key made beside the running server, on the same data folder.
    let carol = create_key(root.path(), &data, "carol", Some(100)).await;
    assert_ne!(carol, admin);
    let (status, body) = create_task(&server.base, &carol, b"+4930123456\n".to_vec()).await;
    assert_eq!(
        status, 200,
        "a key created while serving should be accepted: {body}"
    );
    let done = wait_exported(&server.base, &carol, text(&body, "task_id")).await;
    assert_eq!(
        (int(&done, "success"), int(&done, "failure")),
        (1, 0),
        "{done}"
    );

    let list = run_cli(
        root.path(),
        &["keys", "list", "--data-dir", path_str(&data)],
    )
    .await;
    assert!(
        list.status.success(),
        "keys list beside the server: {list:?}"
    );
    for key in [&admin, &carol] {
        assert!(list.stdout.contains(&key[..12]), "{}", list.stdout);
        assert!(!list.stdout.contains(key.as_str()), "{}", list.stdout);
    }

    let exit = server.terminate().await;
    assert!(
        exit.success(),
        "serve should stop cleanly on SIGTERM: {exit}"
    );
    drop(server);

    let mut again = Server::start(root.path(), &data, &[]).await;
    let (status, body) = create_task(&again.base, &admin, b"+14155550101\n".to_vec()).await;
    assert_eq!(
        status, 200,
        "the admin key should survive a restart: {body}"
    );
    let exit = again.terminate().await;
    assert!(
        exit.success(),
        "serve should stop cleanly on SIGTERM: {exit}"
    );
    let lines = again.stdout_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("nck_") || l.contains("created user")),
        "a second start must not print a key: {lines:?}"
    );
}

// ---------------------------------------------------------------------------------------
// interrupted tasks
// ---------------------------------------------------------------------------------------

/// A big task caught in the middle of processing, and where it runs.
struct MidTask {
    root: TempDir,
    data: PathBuf,
    key: String,
    task_id: String,
    user_id: String,
    upload: Upload,
}

/// Uploads a big file and polls until the task is processing and under half done. When the
/// machine is fast enough to finish first, starts over with a file twice as big, twice; then
/// gives up loudly rather than pass without having interrupted anything.
async fn upload_and_catch_mid_task() -> (MidTask, Server) {
    let mut lines = 300_000;
    let mut missed = Vec::new();
    for attempt in 1..=3 {
        let root = TempDir::new().unwrap();
        let data = root.path().join("data");
        let key = create_key(root.path(), &data, "bulk", Some(CREDITS)).await;
        let server = Server::start(root.path(), &data, SLOW_WORKERS).await;
        let upload = generate(lines);
        let (status, created) = create_task(&server.base, &key, upload.bytes.clone()).await;
        assert_eq!(status, 200, "upload of {lines} lines: {created}");
        assert_eq!(int(&created, "total"), upload.total, "{created}");
        let task_id = text(&created, "task_id").to_owned();

        let client = client();
        let ticker = wait_for(format!("task {task_id} to make progress"))
            .every(Duration::from_millis(2))
            .start();
        loop {
            let (status, body) = get_task(&client, &server.base, &key, &task_id).await;
            assert_eq!(status, 200, "gettasks: {body}");
            let done = int(&body, "success") + int(&body, "failure");
            match text(&body, "status") {
                "pending" => {}
                "processing" if done == 0 => {}
                "processing" if 2 * done < upload.total => {
                    let user_id = text(&body, "user_id").to_owned();
                    eprintln!(
                        "caught task {task_id} at {done} of {} rows (attempt {attempt}, {lines} lines)",
                        upload.total
                    );
                    let mid = MidTask {
                        root,
                        data,
                        key,
                        task_id,
                        user_id,
                        upload,
                    };
                    return (mid, server);
                }
                _ => {
                    missed.push(format!("attempt {attempt}, {lines} lines: {body}"));
                    break;
                }
            }
            ticker.tick_seen(Some(body.to_string())).await;
        }
        lines *= 2;
    }
    panic!(
        "could not catch a task in the middle of processing; every poll came too late: {missed:#?}"
    );
}

impl MidTask {
    /// With the first server stopped: the task was left unfinished, and a server restarted
    /// on the same folder finishes it with exact counts and every row in order.
    async fn restart_and_finish(&self) -> (Server, Value) {
        assert_left_unfinished(&self.data, &self.task_id, &self.upload).await;
        let server = Server::start(self.root.path(), &self.data, SLOW_WORKERS).await;
        let done = wait_exported(&server.base, &self.key, &self.task_id).await;
        assert_exact_counts(&done, &self.upload);
        let (csv, rejected) = download_result(&done).await;
        assert_result_rows(&csv, &rejected, &self.upload);
        (server, done)
    }

    /// Stops the server cleanly, then checks one charge for each of `tasks`.
    async fn stop_and_check_charges(&self, mut server: Server, tasks: &[&str]) {
        let exit = server.terminate().await;
        assert!(
            exit.success(),
            "serve should stop cleanly on SIGTERM: {exit}"
        );
        drop(server);
        assert_one_charge_per_task(&self.data, &self.user_id, tasks, &self.upload).await;
    }
}

/// The task as stored, read with the server stopped.
async fn stored_task(data: &Path, id: &str) -> numcheck_store::Task {
    let store = SqliteStore::open(&data.join("numcheck.db"))
        .await
        .expect("open the database");
    let id: TaskId = id.parse().expect("a task id");
    let task = store
        .task(&id)
        .await
        .expect("read the task")
        .expect("the task is stored");
    store.close().await;
    task
}

/// The server stopped before the task was done: nothing exported, nothing charged.
async fn assert_left_unfinished(data: &Path, id: &str, upload: &Upload) {
    let task = stored_task(data, id).await;
    assert_eq!(task.status, TaskStatus::Processing, "{task:?}");
    assert!(
        task.chunks_done < task.chunk_count,
        "the task was already done: {task:?}"
    );
    assert!(task.success + task.failure < upload.total, "{task:?}");
    assert_eq!(
        task.charged, None,
        "nothing may be charged before export: {task:?}"
    );
}

/// The exported task's counters are exactly what the upload holds.
fn assert_exact_counts(task: &Value, upload: &Upload) {
    assert_eq!(text(task, "status"), "exported", "{task}");
    assert_eq!(int(task, "total"), upload.total, "total: {task}");
    assert_eq!(int(task, "success"), upload.successes, "success: {task}");
    assert_eq!(int(task, "failure"), upload.failures, "failure: {task}");
    assert_eq!(
        int(task, "success") + int(task, "failure"),
        upload.total,
        "{task}"
    );
}

/// One result row per parsed line, in input order, and one rejected row per failure.
fn assert_result_rows(csv: &[u8], rejected: &[u8], upload: &Upload) {
    let csv = std::str::from_utf8(csv).expect("the result csv is UTF-8");
    let mut lines = csv.lines();
    let header = lines.next().expect("a header row");
    assert!(
        header.starts_with("Number,ActiveStatus"),
        "header: {header}"
    );
    let numbers: Vec<&str> = lines
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(numbers.len(), upload.numbers_in_order.len(), "result rows");
    if let Some(i) = numbers
        .iter()
        .zip(&upload.numbers_in_order)
        .position(|(got, want)| *got != want)
    {
        panic!(
            "result row {} is {:?}, expected {:?}: rows lost, repeated or out of order",
            i + 1,
            numbers[i],
            upload.numbers_in_order[i]
        );
    }

    let rejected = std::str::from_utf8(rejected).expect("rejected.csv is UTF-8");
    let mut lines = rejected.lines();
    assert_eq!(
        lines.next(),
        Some("Line,Input,Reason"),
        "rejected.csv header"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as i64, upload.failures, "rejected rows");
    assert!(
        rows.iter().all(|r| r.ends_with(",not_a_number")),
        "every rejected line is garbage text: {:?}",
        rows.iter().find(|r| !r.ends_with(",not_a_number"))
    );
}

/// Exactly one `charge` row per task, each minus the upload's unique parsed numbers, and a
/// balance that agrees. Read with the server stopped.
async fn assert_one_charge_per_task(data: &Path, user_id: &str, tasks: &[&str], upload: &Upload) {
    let store = SqliteStore::open(&data.join("numcheck.db"))
        .await
        .expect("open the database");
    let user: UserId = user_id.parse().expect("a user id");
    let ledger = store.ledger(&user).await.expect("read the ledger");
    let charges: Vec<_> = ledger.iter().filter(|r| r.kind == "charge").collect();
    assert_eq!(
        charges.len(),
        tasks.len(),
        "one charge per task: {ledger:#?}"
    );
    for task in tasks {
        let rows: Vec<_> = charges
            .iter()
            .filter(|r| r.task_id.as_deref() == Some(*task))
            .collect();
        assert_eq!(
            rows.len(),
            1,
            "task {task} charged {} times: {ledger:#?}",
            rows.len()
        );
        assert_eq!(
            rows[0].amount, -upload.unique,
            "charge of task {task}: {ledger:#?}"
        );
    }
    let balance = store
        .user(&user)
        .await
        .expect("read the user")
        .expect("the user exists")
        .credits;
    assert_eq!(
        balance,
        Some(CREDITS - tasks.len() as i64 * upload.unique),
        "balance after charges: {ledger:#?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_mid_task_then_restart_finishes_with_exact_counts_and_one_charge() {
    let (mid, mut server) = upload_and_catch_mid_task().await;
    let killed = server.kill_dash_nine();
    assert_eq!(
        killed.signal(),
        Some(9),
        "the server should die of SIGKILL: {killed}"
    );
    drop(server);
    let (server, first) = mid.restart_and_finish().await;

    // The same file, uninterrupted, on the restarted server.
    let (status, created) = create_task(&server.base, &mid.key, mid.upload.bytes.clone()).await;
    assert_eq!(status, 200, "second upload: {created}");
    let second_id = text(&created, "task_id").to_owned();
    let second = wait_exported(&server.base, &mid.key, &second_id).await;
    assert_exact_counts(&second, &mid.upload);

    let (csv_first, rejected_first) = download_result(&first).await;
    let (csv_second, rejected_second) = download_result(&second).await;
    assert!(
        csv_first == csv_second,
        "the interrupted task's csv ({} bytes) differs from the uninterrupted one's ({} bytes)",
        csv_first.len(),
        csv_second.len()
    );
    assert!(rejected_first == rejected_second, "rejected.csv differs");
    mid.stop_and_check_charges(server, &[&mid.task_id, &second_id])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_task_exits_zero_and_the_restarted_server_finishes_with_exact_counts() {
    let (mid, mut server) = upload_and_catch_mid_task().await;
    let exit = server.terminate().await;
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM should end serve with status 0: {exit}"
    );
    drop(server);
    let (server, _) = mid.restart_and_finish().await;
    mid.stop_and_check_charges(server, &[&mid.task_id]).await;
}
