//! `numcheck submit` and `numcheck status` against a running server: upload, follow, download
//! and unpack; clear messages for API errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use support::{Server, generate, run_cli};
use tempfile::TempDir;

#[tokio::test]
async fn submit_waits_downloads_and_unpacks_the_result() {
    let root = TempDir::new().unwrap();
    let server = Server::start(root.path(), &root.path().join("data"), &[]).await;
    let key = server
        .stdout_lines()
        .iter()
        .find(|l| l.starts_with("nck_"))
        .cloned()
        .unwrap();
    let upload = generate(5_000);
    std::fs::write(root.path().join("numbers.txt"), &upload.bytes).unwrap();
    let out = run_cli(
        root.path(),
        &[
            "submit",
            "numbers.txt",
            "--wait",
            "--out",
            "results",
            "--server",
            &server.base,
            "--api-key",
            &key,
        ],
    )
    .await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("task ").and_then(|r| r.split(' ').next()))
        .unwrap()
        .to_owned();
    assert!(
        out.stdout.contains("status      exported"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("success     {}", upload.successes)),
        "{}",
        out.stdout
    );
    let dir = root.path().join("results").join(&id);
    let csv = std::fs::read_to_string(dir.join(format!("{id}.csv"))).unwrap();
    assert_eq!(
        csv.lines().count() as i64,
        upload.successes + 1,
        "header + rows"
    );
    assert!(dir.join("rejected.csv").exists() && dir.join("summary.json").exists());
    assert!(
        root.path()
            .join("results")
            .join(format!("{id}.zip"))
            .exists()
    );

    // status, with the key from the environment this time.
    let mut cmd = support::numcheck_command(root.path());
    cmd.args(["status", &id, "--server", &server.base])
        .env("NUMCHECK_API_KEY", &key);
    let status = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("status      exported"), "{text}");

    // API errors come out as what the server said.
    let bad = run_cli(
        root.path(),
        &[
            "status",
            &id,
            "--server",
            &server.base,
            "--api-key",
            "nck_wrong",
        ],
    )
    .await;
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("invalid_api_key"), "{}", bad.stderr);
    let missing = run_cli(
        root.path(),
        &[
            "submit",
            "nope.txt",
            "--server",
            &server.base,
            "--api-key",
            &key,
        ],
    )
    .await;
    assert!(!missing.status.success());
    assert!(missing.stderr.contains("nope.txt"), "{}", missing.stderr);
    let no_key = run_cli(root.path(), &["status", &id, "--server", &server.base]).await;
    assert!(!no_key.status.success());
    assert!(
        no_key.stderr.contains("NUMCHECK_API_KEY"),
        "{}",
        no_key.stderr
    );
}
