//! The evidence engine from the command line: `evidence import/stats/rebuild`, `check` and
//! `demo`, against the same data folder a server uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use std::path::Path;

use numcheck_testkit::{ResultZip, evidence_story};
use serde_json::Value;
use support::{CliOutput, Server, create_key, create_task, run_cli, wait_exported};

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Reads `<name>.csv` (the one CSV that is not rejected.csv) and summary.json from a zip.
fn read_zip(bytes: &[u8]) -> (String, Value) {
    let mut zip = ResultZip::new(bytes);
    let csv = zip
        .names()
        .into_iter()
        .find(|name| name.ends_with(".csv") && name != "rejected.csv")
        .map(|name| zip.text(&name))
        .unwrap_or_default();
    (csv, zip.summary())
}

/// `numcheck <args> --data-dir <data>`.
async fn on_data(cwd: &Path, data: &Path, args: &[&str]) -> CliOutput {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--data-dir", path_str(data)])
        .collect();
    run_cli(cwd, &args).await
}

/// `numcheck check <file> --data-dir <data> --out <out>`, which must succeed; the result.
async fn check(cwd: &Path, data: &Path, file: &str, out: &str) -> (String, Value) {
    let check = on_data(cwd, data, &["check", file, "--out", out]).await;
    assert!(check.status.success(), "{}", check.stderr);
    read_zip(&std::fs::read(cwd.join(out)).unwrap())
}

/// The verdict columns (status, reason, possibly reassigned) by number.
fn verdicts(csv: &str) -> Vec<(String, String, String, String)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[7].into())
        })
        .collect()
}

/// The policy's story ([`evidence_story`]) and a row whose time cannot be read.
fn evidence_csv() -> String {
    let mut csv = evidence_story::csv(now_s());
    csv.push_str("+12125550109,not-a-time,smsc-1,sms_dlr,DELIVRD,z9\n");
    csv
}

const NUMBERS: &str =
    "+12125550101\n+1 212 555 0102\n+12125550103\n+12125550104\n+12125550105\n+12125550106\n";

fn expected() -> Vec<(String, String, String, String)> {
    evidence_story::VERDICTS
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_evidence_gives_the_policy_verdicts_in_check_and_in_a_served_task() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let data = cwd.join("data");
    std::fs::write(cwd.join("evidence.csv"), evidence_csv()).unwrap();
    std::fs::write(cwd.join("numbers.txt"), NUMBERS).unwrap();

    let out = on_data(cwd, &data, &["evidence", "import", "evidence.csv"]).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.last_line(),
        "rows 11  inserted 10  duplicates 0  not final 0  rejected 1"
    );
    assert!(
        out.stderr.contains("evidence.csv:12:"),
        "the bad row is named by line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("invalid_observed_at"), "{}", out.stderr);

    let again = on_data(cwd, &data, &["evidence", "import", "evidence.csv"]).await;
    assert_eq!(
        again.last_line(),
        "rows 11  inserted 0  duplicates 10  not final 0  rejected 1",
        "re-import adds nothing"
    );

    let stats = on_data(cwd, &data, &["evidence", "stats"]).await;
    assert!(
        stats.stdout.contains("observations  10"),
        "{}",
        stats.stdout
    );
    assert!(stats.stdout.contains("numbers       5"), "{}", stats.stdout);

    let rebuild = on_data(cwd, &data, &["evidence", "rebuild"]).await;
    assert!(rebuild.status.success(), "{}", rebuild.stderr);
    assert!(
        rebuild
            .stdout
            .contains("rebuilt 5 profiles from 10 observations: 0 differed"),
        "rebuild equals the incremental profiles: {}",
        rebuild.stdout
    );

    let (local_csv, summary) = check(cwd, &data, "numbers.txt", "local.zip").await;
    assert_eq!(verdicts(&local_csv), expected());
    assert_eq!(summary["by_status"]["active"], 2);
    assert_eq!(summary["possibly_reassigned"], 1);

    // The same file through a served task on the same data folder gives the same verdicts.
    let server = Server::start(cwd, &data, &[]).await;
    let key = create_key(cwd, &data, "checker", None).await;
    let (code, created) = create_task(&server.base, &key, NUMBERS.as_bytes().to_vec()).await;
    assert_eq!(code, 200, "{created}");
    let task = wait_exported(&server.base, &key, created["task_id"].as_str().unwrap()).await;
    let zip = reqwest::get(task["result_url"].as_str().unwrap()).await;
    let (served_csv, _) = read_zip(&zip.unwrap().bytes().await.unwrap());
    assert_eq!(verdicts(&served_csv), verdicts(&local_csv));
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_then_check_shows_all_three_verdicts_and_every_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let data = cwd.join("data");
    let demo = on_data(
        cwd,
        &data,
        &["demo", "--subscribers", "3000", "--numbers-out", "n.txt"],
    )
    .await;
    assert!(demo.status.success(), "{}", demo.stderr);
    let (csv, summary) = check(cwd, &data, "n.txt", "r.zip").await;
    for status in ["active", "inactive", "unknown"] {
        assert!(
            summary["by_status"][status].as_u64().unwrap() > 100,
            "{status}: {summary}"
        );
    }
    for reason in numcheck_core::Reason::ALL {
        assert!(
            summary["by_reason"][reason.as_str()].as_u64().unwrap_or(0) > 0,
            "{reason:?}: {summary}"
        );
    }
    assert!(summary["possibly_reassigned"].as_u64().unwrap() > 0);
    assert!(
        summary["by_region"].as_object().unwrap().len() >= 10,
        "{summary}"
    );
    assert_eq!(
        csv.lines().count() as u64,
        summary["success"].as_u64().unwrap() + 1
    );
    // The same seed gives the same data: a second demo adds nothing.
    let again = on_data(
        cwd,
        &data,
        &["demo", "--subscribers", "3000", "--numbers-out", "n2.txt"],
    )
    .await;
    assert!(
        again.stdout.contains(" 0 observations stored"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_binary_missing_and_empty_files_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    std::fs::write(cwd.join("bin.dat"), b"PK\x03\x04\x00\x00binary").unwrap();
    std::fs::write(cwd.join("empty.txt"), b"\n\n").unwrap();
    std::fs::write(cwd.join("nul.txt"), b"+14155550100\x00\x01\x02").unwrap();
    for (file, says) in [
        ("nul.txt", "not a text file"),
        ("bin.dat", "the workbook could not be read"),
        ("missing.txt", "cannot open"),
        ("empty.txt", "no phone numbers"),
    ] {
        let out = run_cli(cwd, &["check", file]).await;
        assert!(!out.status.success(), "{file}");
        assert!(out.stderr.contains(says), "{file}: {}", out.stderr);
    }
    let out = run_cli(cwd, &["check", "bin.dat", "--task-type", "bogus"]).await;
    assert!(
        out.stderr.contains("active_check, number_info"),
        "{}",
        out.stderr
    );
    // A confidence floor outside 0–1 is refused before anything is read.
    std::fs::write(cwd.join("one.txt"), b"+14155550100\n").unwrap();
    for floor in ["1.5", "-0.1", "most"] {
        let flag = format!("--min-confidence={floor}");
        let out = run_cli(cwd, &["check", "one.txt", &flag]).await;
        assert!(!out.status.success(), "{floor}");
        assert!(
            out.stderr.contains("--min-confidence") && out.stderr.contains("from 0 to 1"),
            "{floor}: {}",
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_a_csv_by_its_phone_column_and_names_a_missing_region() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let data = cwd.join("data");
    std::fs::write(
        cwd.join("leads.csv"),
        "name,phone\nAnna,0151 23456789\nBen,030 12345678\nCarl,+33 6 12 34 56 78\n",
    )
    .unwrap();
    // Without a region the national numbers fail: the command says why and exits non-zero
    // only when nothing at all could be read.
    let out = on_data(cwd, &data, &["check", "leads.csv", "--out", "a.zip"]).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("read column 2 of leads.csv (below its header)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 numbers, 2 failures"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("(national_numbers_without_region)") && out.stderr.contains("--region"),
        "{}",
        out.stderr
    );
    // With the region (the old flag name still works), every row is read.
    for flag in ["--region", "--default-region"] {
        let out = on_data(
            cwd,
            &data,
            &["check", "leads.csv", flag, "DE", "--out", "b.zip"],
        )
        .await;
        assert!(out.status.success(), "{}", out.stderr);
        assert!(
            out.stdout.contains("3 numbers, 0 failures"),
            "{flag}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("(leads.csv inside)"), "{}", out.stdout);
        // No evidence in this folder: the warning says so and where to start.
        assert!(out.stderr.contains("(no_evidence)"), "{}", out.stderr);
    }
    let bytes = std::fs::read(cwd.join("b.zip")).unwrap();
    let mut zip = ResultZip::new(bytes.clone());
    let csv = zip.text("leads.csv");
    assert!(
        csv.contains("+4915123456789") && csv.contains("+493012345678"),
        "{csv}"
    );
    assert_eq!(zip.summary()["warnings"][0]["code"], "no_evidence");
    // The zip is an ordinary file of the user's, its entries dated today.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cwd.join("b.zip"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o044, 0, "{mode:o}");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let entry = archive.by_name("leads.csv").unwrap();
    let when = entry.last_modified().unwrap();
    let year_now = 1970 + now_s() / 31_556_952;
    assert!(i64::from(when.year()) >= year_now - 1, "{when:?}");
    // A file none of whose rows is a number: a clear message and a failure exit.
    std::fs::write(cwd.join("names.csv"), "name,phone\nAnna,none\n").unwrap();
    let out = on_data(
        cwd,
        &data,
        &["check", "names.csv", "--phone-column", "phone"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("no line of names.csv could be read"),
        "{}",
        out.stderr
    );
}

/// A day `days` ago, as `YYYY-MM-DD` and as SMPP's `YYMMDDhhmm`.
fn day(days: i64) -> (String, String) {
    let t = chrono::Utc::now() - chrono::Duration::days(days);
    (
        t.format("%Y-%m-%d").to_string(),
        t.format("%y%m%d%H%M").to_string(),
    )
}

#[tokio::test]
async fn connector_files_import_with_counts_and_reimports_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let data = cwd.join("data");
    let (d3, smpp3) = day(3);
    let t = format!("{d3} 09:30:00");
    // Asterisk Master.csv: accountcode, src, dst, dcontext, clid, channel, dstchannel,
    // lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags,
    // uniqueid.
    let cdr = format!(
        "\"\",\"1000\",\"+442079460101\",\"from-internal\",\"\"\"Desk\"\" <1000>\",\"PJSIP/1000-0001\",\"PJSIP/trunk-0002\",\"Dial\",\"PJSIP/+442079460101@trunk\",\"{t}\",\"{t}\",\"{t}\",\"95\",\"90\",\"ANSWERED\",\"DOCUMENTATION\",\"1700000000.1\"\n\
         \"\",\"1000\",\"+442079460102\",\"from-internal\",\"\"\"Desk\"\" <1000>\",\"PJSIP/1000-0003\",\"PJSIP/trunk-0004\",\"Dial\",\"PJSIP/+442079460102@trunk\",\"{t}\",\"\",\"{t}\",\"20\",\"0\",\"BUSY\",\"DOCUMENTATION\",\"1700000000.2\"\n\
         \"too\",\"few\"\n"
    );
    std::fs::write(cwd.join("Master.csv"), &cdr).unwrap();
    let receipts = format!(
        "+442079460103\tid:0A1B sub:001 dlvrd:000 submit date:{smpp3} done date:{smpp3} stat:UNDELIV err:001 text:Hi\n\
         +442079460104\tid:0A1C sub:001 dlvrd:001 submit date:{smpp3} done date:{smpp3} stat:ENROUTE err:000 text:Hi\n"
    );
    std::fs::write(cwd.join("receipts.txt"), &receipts).unwrap();
    let import = |file: &'static str, format: &'static str, source: &'static str| {
        let data = data.clone();
        async move {
            let args = [
                "evidence", "import", file, "--format", format, "--source", source,
            ];
            on_data(cwd, &data, &args).await
        }
    };
    let out = import("Master.csv", "asterisk", "pbx-1").await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.last_line(),
        "rows 3  inserted 2  duplicates 0  not final 0  rejected 1"
    );
    assert!(out.stderr.contains("Master.csv:3:"), "{}", out.stderr);
    let out = import("Master.csv", "asterisk", "pbx-1").await;
    assert_eq!(
        out.last_line(),
        "rows 3  inserted 0  duplicates 2  not final 0  rejected 1"
    );
    let out = import("receipts.txt", "smpp", "smsc-1").await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.last_line(),
        "rows 2  inserted 1  duplicates 0  not final 1  rejected 0"
    );
    // A wrong format name says which exist.
    let out = import("receipts.txt", "smpp-ish", "smsc-1").await;
    assert!(!out.status.success());
    assert!(out.stderr.contains("freeswitch"), "{}", out.stderr);

    std::fs::write(
        cwd.join("n.txt"),
        "+442079460101\n+442079460102\n+442079460103\n+442079460104\n",
    )
    .unwrap();
    let (csv, _) = check(cwd, &data, "n.txt", "r.zip").await;
    let got: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            (f[0].to_owned(), f[1].to_owned())
        })
        .collect();
    let status = |n: &str| got.iter().find(|(x, _)| x == n).unwrap().1.clone();
    assert_eq!(status("+442079460101"), "active", "{csv}");
    assert_ne!(
        status("+442079460102"),
        "inactive",
        "busy is a live line: {csv}"
    );
    assert_eq!(
        status("+442079460103"),
        "inactive",
        "MAP unknown subscriber: {csv}"
    );
    assert_eq!(
        status("+442079460104"),
        "unknown",
        "ENROUTE is not evidence: {csv}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_world_is_measured_calibrated_and_its_calibration_checked_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let data = cwd.join("data");
    std::fs::write(cwd.join("small.json"), r#"{"numbers": 800, "seed": 4}"#).unwrap();
    let world = run_cli(
        cwd,
        &["demo", "--world", "w", "--world-params", "small.json"],
    )
    .await;
    assert!(world.status.success(), "{}", world.stderr);
    for (file, args) in [
        (
            "w/receipts.smpp",
            &["--format", "smpp", "--err-table", "map"][..],
        ),
        ("w/calls.csv", &["--format", "freeswitch"][..]),
        ("w/deactivations.csv", &["--format", "deactivation"][..]),
        ("w/app.ndjson", &[][..]),
    ] {
        let mut all = vec!["evidence", "import", file];
        all.extend_from_slice(args);
        let import = on_data(cwd, &data, &all).await;
        assert!(import.status.success(), "{file}: {}", import.stderr);
    }

    // Measured against the truth: every number scored, figures that are shares.
    let labelled = ["--truth", "w/truth.csv", "--numbers", "w/numbers.txt"];
    let eval = on_data(
        cwd,
        &data,
        &[&["evaluate"][..], &labelled, &["--json"]].concat(),
    )
    .await;
    assert!(eval.status.success(), "{}", eval.stderr);
    let e: Value = serde_json::from_str(&eval.stdout).unwrap();
    assert_eq!(e["truth_numbers"], 800, "{e}");
    assert_eq!(
        e["scored"].as_u64().unwrap() + e["missing_from_result"].as_u64().unwrap(),
        800
    );
    for share in [
        &e["active"]["precision"],
        &e["inactive"]["precision"],
        &e["decided_with_evidence"],
        &e["calibration_error"],
    ] {
        let v = share.as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{e}");
    }
    assert!(e["active"]["predicted"].as_u64().unwrap() > 100, "{e}");
    let text = on_data(cwd, &data, &[&["evaluate"][..], &labelled].concat()).await;
    assert!(
        text.stdout.contains("precision") && text.stdout.contains("PossiblyReassigned"),
        "{}",
        text.stdout
    );

    // A calibration fitted on it is taken from config; the same check then runs on it.
    let cal = on_data(
        cwd,
        &data,
        &[&["calibrate"][..], &labelled, &["--out", "cal.json"]].concat(),
    )
    .await;
    assert!(cal.status.success(), "{}", cal.stderr);
    let fitted: Value =
        serde_json::from_slice(&std::fs::read(cwd.join("cal.json")).unwrap()).unwrap();
    assert!(
        fitted["active"]["score"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{fitted}"
    );
    std::fs::write(
        cwd.join("numcheck.toml"),
        "[policy]\ncalibration_file = \"cal.json\"\n",
    )
    .unwrap();
    check(cwd, &data, "w/numbers.txt", "r.zip").await;

    // A calibration that goes down is refused before anything runs, naming the file.
    std::fs::write(
        cwd.join("cal.json"),
        r#"{"fitted_on": "by hand", "active": {"score": [0.2, 0.8], "probability": [0.9, 0.5]},
            "inactive": {"score": [0.5], "probability": [0.9]}}"#,
    )
    .unwrap();
    let refused = on_data(cwd, &data, &["check", "w/numbers.txt", "--out", "r2.zip"]).await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("cal.json") && refused.stderr.contains("active"),
        "{}",
        refused.stderr
    );

    // A truth file with a mistake names its line.
    std::fs::write(
        cwd.join("bad.csv"),
        "number,truth\n+14155550100,active\n+14155550100,inactive\n",
    )
    .unwrap();
    let bad = on_data(
        cwd,
        &data,
        &["evaluate", "--truth", "bad.csv", "--result", "r.zip"],
    )
    .await;
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("line 3"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_folder_of_the_previous_release_is_read_then_rebuilt_like_a_fresh_import() {
    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/release-a3f104b8"
    );
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let old = cwd.join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(format!("{FIXTURE}/numcheck.db"), old.join("numcheck.db")).unwrap();
    std::fs::copy(format!("{FIXTURE}/story.csv"), cwd.join("story.csv")).unwrap();
    std::fs::write(cwd.join("numbers.txt"), NUMBERS).unwrap();

    // Opened (and migrated) as it is: the stored profiles read, every number gets a verdict.
    let stats = on_data(cwd, &old, &["evidence", "stats"]).await;
    assert!(stats.status.success(), "{}", stats.stderr);
    let (before, _) = check(cwd, &old, "numbers.txt", "before.zip").await;
    assert_eq!(verdicts(&before).len(), 6);
    // A rebuild rewrites every old profile once; then nothing differs.
    for expect in ["5 differed", "0 differed"] {
        let rebuild = on_data(cwd, &old, &["evidence", "rebuild"]).await;
        assert!(rebuild.status.success(), "{}", rebuild.stderr);
        assert!(
            rebuild.stdout.contains(expect),
            "{expect}: {}",
            rebuild.stdout
        );
    }
    // Then it decides exactly as the same evidence imported by this release.
    let (upgraded, _) = check(cwd, &old, "numbers.txt", "upgraded.zip").await;
    let fresh = cwd.join("fresh");
    let import = on_data(cwd, &fresh, &["evidence", "import", "story.csv"]).await;
    assert!(import.status.success(), "{}", import.stderr);
    let (fresh_csv, _) = check(cwd, &fresh, "numbers.txt", "fresh.zip").await;
    let columns = |csv: &str| -> Vec<Vec<String>> {
        csv.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                [0, 1, 2, 3, 7].iter().map(|&i| f[i].to_owned()).collect()
            })
            .collect()
    };
    assert_eq!(columns(&upgraded), columns(&fresh_csv));
}
