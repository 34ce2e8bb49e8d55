//! `numcheck submit` and `numcheck status` against a running server: upload, follow, download
//! and unpack; clear messages for API errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use support::{Server, generate, run_cli};
use tempfile::TempDir;

/// The task id `numcheck submit` printed (`task <id> …`).
fn task_id_in(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("task ").and_then(|r| r.split(' ').next()))
        .unwrap_or_else(|| panic!("no task id in {stdout}"))
        .to_owned()
}

#[tokio::test]
async fn submit_waits_downloads_and_unpacks_the_result() {
    let root = TempDir::new().unwrap();
    let server = Server::start(root.path(), &root.path().join("data"), &[]).await;
    let key = server.admin_key();
    let upload = generate(5_000);
    std::fs::write(root.path().join("numbers.txt"), &upload.bytes).unwrap();
    // `submit FILE [extra…] --wait --out results` against the server, with the admin key.
    let submit_wait = |file: &'static str, extra: &'static [&'static str]| {
        let mut args = vec!["submit", file];
        args.extend_from_slice(extra);
        args.extend([
            "--wait",
            "--out",
            "results",
            "--server",
            &server.base,
            "--api-key",
            &key,
        ]);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let cwd = root.path().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&cwd, &args).await
        }
    };
    let out = submit_wait("numbers.txt", &[]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let id = task_id_in(&out.stdout);
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
    // The verdict counts, after submit --wait and in status: one line per verdict, adding
    // up to the numbers checked.
    for shown in [out.stdout.as_str(), &*text] {
        let counted: i64 = shown
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(k, _)| ["active", "inactive", "unknown"].contains(k))
            .map(|(_, n)| n.trim().parse::<i64>().unwrap())
            .sum();
        assert_eq!(counted, upload.successes, "{shown}");
    }

    // National numbers without a region: the output names the region problem.
    std::fs::write(
        root.path().join("national.txt"),
        "030 901820\n0151 12345678\n",
    )
    .unwrap();
    let national = submit_wait("national.txt", &[]).await;
    assert!(national.status.success(), "{}", national.stderr);
    assert!(
        national
            .stdout
            .contains("(national_numbers_without_region)")
            && national.stdout.contains("--region"),
        "{}",
        national.stdout
    );
    // With the region they are read; nothing is known of them, and the output says so.
    let with_region = submit_wait("national.txt", &["--region", "DE"]).await;
    assert!(with_region.status.success(), "{}", with_region.stderr);
    assert!(
        with_region.stdout.contains("unknown     2")
            && with_region.stdout.contains("(no_evidence)"),
        "{}",
        with_region.stdout
    );

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

#[tokio::test]
async fn tasks_balance_cancel_and_delete_from_the_command_line() {
    let root = TempDir::new().unwrap();
    let server = Server::start(root.path(), &root.path().join("data"), &[]).await;
    let key = server.admin_key();
    let cli = |args: Vec<String>| {
        let root = root.path().to_owned();
        let base = server.base.clone();
        let key = key.clone();
        async move {
            let mut all = args;
            all.extend(["--server".into(), base, "--api-key".into(), key]);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run_cli(&root, &refs).await
        }
    };
    // A CSV with the phone number in its second column, named by the flag.
    std::fs::write(
        root.path().join("contacts.csv"),
        "name,mobile\nAda,+14155552671\nBob,+33612345678\n",
    )
    .unwrap();
    let out = cli(vec![
        "submit".into(),
        "contacts.csv".into(),
        "--phone-column".into(),
        "mobile".into(),
        "--wait".into(),
        "--out".into(),
        "results".into(),
    ])
    .await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("success     2"), "{}", out.stdout);
    let first = task_id_in(&out.stdout);

    let listed = cli(vec!["tasks".into()]).await;
    assert!(listed.status.success(), "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&first))
        .unwrap_or_else(|| panic!("{first} listed: {}", listed.stdout));
    assert!(
        row.contains("exported") && row.contains("contacts.csv"),
        "{row}"
    );

    let balance = cli(vec!["balance".into()]).await;
    assert!(balance.status.success(), "{}", balance.stderr);
    assert!(balance.stdout.contains("unlimited"), "{}", balance.stdout);
    assert!(
        balance.stdout.contains("charged     2"),
        "{}",
        balance.stdout
    );

    // Cancelling a finished task says why it cannot.
    let late = cli(vec!["cancel".into(), first.clone()]).await;
    assert!(!late.status.success());
    assert!(late.stderr.contains("task_finished"), "{}", late.stderr);

    let deleted = cli(vec!["delete".into(), first.clone()]).await;
    assert!(deleted.status.success(), "{}", deleted.stderr);
    assert!(deleted.stdout.contains("deleted"));
    let gone = cli(vec!["status".into(), first.clone()]).await;
    assert!(!gone.status.success());
    assert!(gone.stderr.contains("task_not_found"), "{}", gone.stderr);
    let empty = cli(vec!["tasks".into()]).await;
    assert!(empty.stdout.contains("(no tasks)"), "{}", empty.stdout);
}
