//! Processing at size, and persistence across restarts.

use numcheck_testkit::wait_for;

use crate::helpers::*;

/// A deterministic mixed file: valid numbers of several countries, duplicates, blanks,
/// formatting noise and garbage. Returns (file, total, failures).
fn mixed_file(lines: usize) -> (String, i64, i64) {
    let mut out = String::with_capacity(lines * 16);
    let (mut total, mut failures) = (0, 0);
    for i in 0..lines {
        match i % 10 {
            0 => out.push_str(&format!("+1 415 555 {:04}\n", i % 10_000)),
            1 => out.push_str(&format!("+49 30 {:07}\n", i % 10_000_000)),
            2 => out.push_str(&format!("+336{:08}\n", i % 100_000_000)),
            3 => out.push('\n'),
            4 => out.push_str(&format!("0044 7911 {:06}\r\n", i % 1_000_000)),
            5 => out.push_str("not a number\n"),
            6 => out.push_str("+14155552671\n"),
            7 => out.push_str(&format!("+86 138 {:08}\n", i % 100_000_000)),
            8 => out.push_str("+999 000\n"),
            _ => out.push_str(&format!("(+1) 212-555-{:04}\n", i % 10_000)),
        }
        match i % 10 {
            3 => {}
            5 | 8 => {
                total += 1;
                failures += 1;
            }
            _ => total += 1,
        }
    }
    (out, total, failures)
}

#[tokio::test]
async fn a_100000_line_upload_is_exported_with_exact_counts() {
    let s = TestServer::start_with(|c| c.worker.chunk_lines = 7_000).await;
    let (file, total, failures) = mixed_file(111_112);
    let (code, created) = s.create(&s.admin_key, file.as_bytes()).await;
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["total"].as_i64(), Some(total));
    assert!(total >= 100_000);
    let id = created["task_id"].as_str().unwrap();
    // Progress moves chunk by chunk and never backwards.
    let mut last = 0;
    let ticker = wait_for(format!("task {id} to be exported"))
        .every(std::time::Duration::from_millis(5))
        .start();
    let v = loop {
        let (_, v) = s.poll(&s.admin_key, id).await;
        let done = v["success"].as_i64().unwrap() + v["failure"].as_i64().unwrap();
        assert!(done >= last, "counters went backwards");
        last = done;
        if v["status"] == "exported" {
            break v;
        }
        assert!(
            v["status"] == "pending" || v["status"] == "processing",
            "{v}"
        );
        ticker.tick_seen(Some(v.to_string())).await;
    };
    assert_eq!(v["failure"].as_i64(), Some(failures));
    assert_eq!(v["success"].as_i64(), Some(total - failures));
    let (csv, rejected, _) = s.result(&v).await;
    assert_eq!(csv.lines().count() as i64, total - failures + 1);
    assert_eq!(rejected.lines().count() as i64, failures + 1);
    // Input order: the line numbers in the last column only grow.
    let mut prev = 0u64;
    for row in csv.lines().skip(1) {
        let line: u64 = row.rsplit(',').next().unwrap().parse().unwrap();
        assert!(line > prev);
        prev = line;
    }
    s.stop().await;
}

#[tokio::test]
async fn tasks_and_results_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::boot(config(dir.path())).await;
    let key = s.key("keeper", Some(1000)).await;
    let (_, done) = s.create(&key, b"+14155552671\n+33612345678\n").await;
    let done_id = done["task_id"].as_str().unwrap().to_owned();
    let before = s.wait(&key, &done_id).await;
    let (csv_before, _, _) = s.result(&before).await;
    s.stop().await;

    // The same folder, a new process: no new admin key, same key works, same task and result.
    let s = TestServer::boot(config(dir.path())).await;
    assert!(
        s.admin_key.is_empty(),
        "the admin key is printed only on first start"
    );
    let (code, after) = s.poll(&key, &done_id).await;
    assert_eq!(code, 200);
    for k in GETTASKS_KEYS {
        assert_eq!(after[k], before[k], "{k}");
    }
    let (csv_after, _, _) = s.result(&after).await;
    assert_eq!(csv_after, csv_before);
    s.stop().await;
}

#[tokio::test]
async fn a_task_left_pending_by_a_stopped_server_is_finished_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.worker.concurrency = 0;
    let s = TestServer::boot(c).await;
    let key = s.key("patient", None).await;
    let (file, total, failures) = mixed_file(5_000);
    let (_, created) = s.create(&key, file.as_bytes()).await;
    let id = created["task_id"].as_str().unwrap().to_owned();
    s.stop().await;

    let s = TestServer::boot(config(dir.path())).await;
    let v = s.wait(&key, &id).await;
    assert_eq!(v["status"], "exported");
    assert_eq!(v["failure"].as_i64(), Some(failures));
    assert_eq!(v["success"].as_i64(), Some(total - failures));
    s.stop().await;
}

/// What a `kill -9` leaves behind goes at the next start; what tasks still need stays.
#[tokio::test]
async fn a_restart_sweeps_files_a_stopped_process_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::boot(config(dir.path())).await;
    let key = s.key("tidy", None).await;
    let (_, done) = s.create(&key, b"+14155552671\n+33612345678\n").await;
    let done_id = done["task_id"].as_str().unwrap().to_owned();
    let before = s.wait(&key, &done_id).await;
    let (csv_before, _, _) = s.result(&before).await;
    s.stop().await;
    // A second task, never worked on: everything it has stays.
    let mut c = config(dir.path());
    c.worker.concurrency = 0;
    let s = TestServer::boot(c).await;
    let (_, open) = s.create(&key, b"+14155552671\n").await;
    let open_id = open["task_id"].as_str().unwrap().to_owned();
    s.stop().await;

    let blobs = dir.path().join("blobs");
    let ghost = "0123456789abcdefghij"; // a task id with no task
    let plant = |rel: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"left behind").unwrap();
        p
    };
    let leftovers = [
        plant("tmp/upload-123.part"),
        plant(&format!("blobs/uploads/{ghost}.txt")),
        plant(&format!("blobs/uploads/{ghost}.txt#1")),
        plant(&format!("blobs/work/{done_id}/00000.csv")),
        plant(&format!("blobs/work/{ghost}/00000.csv")),
        plant(&format!("blobs/results/{ghost}.zip")),
    ];
    let kept = [
        plant(&format!("blobs/work/{open_id}/00000.csv")),
        plant("blobs/notes/readme.txt"),
        blobs.join(format!("uploads/{open_id}.txt")),
        blobs.join(format!("uploads/{done_id}.txt")),
    ];
    for p in kept.iter() {
        assert!(p.exists(), "{}", p.display());
    }

    let mut c = config(dir.path());
    c.worker.concurrency = 0;
    let s = TestServer::boot(c).await;
    for p in leftovers.iter() {
        assert!(!p.exists(), "left in place: {}", p.display());
    }
    for p in kept.iter() {
        assert!(p.exists(), "swept: {}", p.display());
    }
    assert!(!blobs.join(format!("work/{ghost}")).exists());
    let (code, after) = s.poll(&key, &done_id).await;
    assert_eq!(code, 200);
    let (csv_after, _, _) = s.result(&after).await;
    assert_eq!(csv_after, csv_before);
    let (code, open_view) = s.poll(&key, &open_id).await;
    assert_eq!((code, open_view["status"].as_str()), (200, Some("pending")));
    s.stop().await;
}

#[tokio::test]
async fn the_same_file_always_gives_byte_identical_results() {
    let s = TestServer::start_with(|c| c.worker.chunk_lines = 300).await;
    let (file, _, _) = mixed_file(3_000);
    let (_, a) = s.create(&s.admin_key, file.as_bytes()).await;
    let (_, b) = s.create(&s.admin_key, file.as_bytes()).await;
    let va = s.wait(&s.admin_key, a["task_id"].as_str().unwrap()).await;
    let vb = s.wait(&s.admin_key, b["task_id"].as_str().unwrap()).await;
    let (csv_a, rej_a, _) = s.result(&va).await;
    let (csv_b, rej_b, _) = s.result(&vb).await;
    assert_eq!(csv_a, csv_b);
    assert_eq!(rej_a, rej_b);
    s.stop().await;
}

/// The warning codes of an exported task, from `GET /v1/tasks/{id}`; `summary.json` holds the
/// same, and `gettasks` keeps the original's fields without them.
async fn warnings_of(s: &TestServer, key: &str, form: reqwest::multipart::Form) -> Vec<String> {
    let (code, created) = s.create_form(key, form, None).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap().to_owned();
    let polled = s.wait(key, &id).await;
    assert!(polled.get("warnings").is_none(), "{polled}");
    let (code, detail) = s.get(key, &format!("/v1/tasks/{id}")).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["warnings"], detail["summary"]["warnings"]);
    let mut zip = s.zip(&polled).await;
    assert_eq!(zip.summary()["warnings"], detail["warnings"]);
    detail["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(w["message"].as_str().unwrap().len() > 20, "{w}");
            w["code"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_task_warns_of_what_most_likely_went_wrong() {
    let s = TestServer::start().await;
    let key = s.admin_key.clone();
    let national = b"030 901820\n0151 12345678\n+14155552671\n";
    // National numbers without a region; every verdict without evidence.
    let got = warnings_of(
        &s,
        &key,
        file_form(national).text("task_type", "active_check"),
    )
    .await;
    assert_eq!(got, ["national_numbers_without_region", "no_evidence"]);
    // With the region there is only the evidence warning.
    let form = file_form(national)
        .text("task_type", "active_check")
        .text("default_region", "DE");
    assert_eq!(warnings_of(&s, &key, form).await, ["no_evidence"]);
    // `curl -F file=numbers.txt`: a text field holding a file's name.
    let form = reqwest::multipart::Form::new()
        .text("file", "numbers.txt")
        .text("task_type", "active_check");
    assert_eq!(
        warnings_of(&s, &key, form).await,
        ["file_name_sent_as_text"]
    );
    // Numbers with evidence: no warning at all.
    let evidence = "number,observed_at,source,kind,raw_code\n+14155552671,2026-11-20T10:00:00Z,s,sms_dlr,DELIVRD\n";
    let (code, _) = s.post_evidence(&key, "text/csv", evidence.to_owned()).await;
    assert_eq!(code, 200);
    let form = file_form(b"+14155552671\n").text("task_type", "active_check");
    let got = warnings_of(&s, &key, form).await;
    assert!(got.is_empty(), "{got:?}");
    s.stop().await;
}

#[tokio::test]
async fn the_first_rows_of_a_result_are_read_without_the_zip() {
    let s = TestServer::start().await;
    let key = s.admin_key.clone();
    let (file, total, failures) = mixed_file(2_000);
    let (code, created) = s.create(&key, file.as_bytes()).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap().to_owned();
    let polled = s.wait(&key, &id).await;
    let path = format!("/v1/tasks/{id}/rows");
    let (code, got) = s.get(&key, &format!("{path}?limit=3")).await;
    assert_eq!(code, 200, "{got}");
    // The same rows as the downloaded CSV's first ones.
    let (csv, _, _) = s.result(&polled).await;
    let mut lines = csv.lines();
    assert_eq!(
        got["columns"].as_array().unwrap().len(),
        lines.next().unwrap().split(',').count()
    );
    for row in got["rows"].as_array().unwrap() {
        let fields: Vec<&str> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(fields.join(","), lines.next().unwrap());
    }
    assert_eq!(got["rows"].as_array().unwrap().len(), 3);
    assert_eq!(got["more"], true);
    // All of them: as many as the task checked.
    let (_, all) = s.get(&key, &format!("{path}?limit=500")).await;
    assert_eq!(
        all["rows"].as_array().unwrap().len() as i64,
        (total - failures).min(500)
    );
    for bad in ["0", "501", "x"] {
        let got = s.get(&key, &format!("{path}?limit={bad}")).await;
        assert_error(got, 400, "invalid_limit");
    }
    assert_error(
        s.get(&key, &format!("{path}?page=2")).await,
        400,
        "invalid_query",
    );
    // Another user's task is not found; a task not yet exported has no rows.
    let other = s.key("other", None).await;
    assert_error(s.get(&other, &path).await, 404, "task_not_found");
    let task = s
        .state
        .engine
        .store
        .task(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut pending = task.clone();
    pending.status = numcheck_core::TaskStatus::Pending;
    let none = numcheck_engine::tasks::first_rows(&s.state.engine, &pending, 5)
        .await
        .unwrap();
    assert!(none.is_none());
    s.stop().await;
}

#[tokio::test]
async fn rejected_lines_that_could_run_as_formulas_are_neutralised() {
    let s = TestServer::start().await;
    let key = s.admin_key.clone();
    let body =
        "=HYPERLINK(\"http://x\")\n+cmd|' /C calc'!A0\n-2+3\n@SUM(A1)\n\tx\nplain\n+14155552671\n";
    let (code, created) = s.create(&key, body.as_bytes()).await;
    assert_eq!(code, 200, "{created}");
    let v = s.wait(&key, created["task_id"].as_str().unwrap()).await;
    let (_, rejected, _) = s.result(&v).await;
    let mut reader = csv::ReaderBuilder::new().from_reader(rejected.as_bytes());
    let inputs: Vec<String> = reader
        .records()
        .map(|r| r.unwrap().get(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        inputs,
        [
            "'=HYPERLINK(\"http://x\")",
            "'+cmd|' /C calc'!A0",
            "'-2+3",
            "'@SUM(A1)",
            // Lines are read trimmed: a leading tab is gone before anything is echoed.
            "x",
            "plain"
        ]
    );
    s.stop().await;
}
