//! API.md Part 1: shapes, key order, formats and the result zip.

use numcheck_testkit::wait_for;
use regex_lite::Regex;
use reqwest::Method;
use reqwest::multipart::Form;

use crate::helpers::*;

/// The text of `gettasks` for `id`, with the admin key.
async fn gettasks_text(s: &TestServer, id: &str) -> String {
    let resp = s
        .request(Method::POST, "/v1/gettasks", Some(&s.admin_key))
        .multipart(Form::new().text("task_id", id.to_owned()))
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

#[tokio::test]
async fn create_answers_the_contract_keys_in_order_with_a_nanosecond_created_at() {
    let s = TestServer::start().await;
    let resp = s
        .request(Method::POST, "/v1/tasks", Some(&s.admin_key))
        .multipart(file_form(b"+14155552671\n\n+33612345678\n").text("task_type", "active_check"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(
        keys_in_order(&text),
        ["task_id", "status", "total", "message", "created_at"]
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        Regex::new("^[0-9a-v]{20}$")
            .unwrap()
            .is_match(v["task_id"].as_str().unwrap())
    );
    assert_eq!(v["status"], "pending");
    assert_eq!(v["total"], 2, "blank lines are not counted");
    assert_eq!(v["message"], "Task created successfully");
    let ts = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$").unwrap();
    assert!(ts.is_match(v["created_at"].as_str().unwrap()), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn gettasks_has_no_result_url_until_exported_and_millisecond_timestamps() {
    // No workers: the task stays pending, as a busy server's would.
    let s = TestServer::start_with(|c| c.worker.concurrency = 0).await;
    let (_, created) = s.create(&s.admin_key, b"+14155552671\n").await;
    let id = created["task_id"].as_str().unwrap();
    let text = gettasks_text(&s, id).await;
    assert_eq!(keys_in_order(&text), GETTASKS_KEYS);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "pending");
    let ms = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    assert!(ms.is_match(v["created_at"].as_str().unwrap()));
    assert!(ms.is_match(v["updated_at"].as_str().unwrap()));
    assert!(
        Regex::new("^[0-9A-Za-z]{20}$")
            .unwrap()
            .is_match(v["user_id"].as_str().unwrap())
    );
    // created_at on poll is the create time cut to milliseconds.
    assert_eq!(
        &v["created_at"].as_str().unwrap()[..23],
        &created["created_at"].as_str().unwrap()[..23]
    );
    s.stop().await;
}

#[tokio::test]
async fn an_exported_task_has_every_key_in_order_and_a_downloadable_zip() {
    let s = TestServer::start().await;
    let (_, created) = s
        .create(&s.admin_key, b"+14155552671\nnot a number\n+33612345678\n")
        .await;
    let id = created["task_id"].as_str().unwrap();
    s.wait(&s.admin_key, id).await;
    let text = gettasks_text(&s, id).await;
    assert_eq!(
        keys_in_order(&text),
        [&GETTASKS_KEYS[..], &["result_url"]].concat()
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            v["total"].as_i64(),
            v["success"].as_i64(),
            v["failure"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let url = v["result_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/results/{id}.zip?expires=", s.base)),
        "{url}"
    );
    let (csv, rejected, names) = s.result(&v).await;
    assert_eq!(
        names,
        [
            format!("{id}.csv"),
            "rejected.csv".to_owned(),
            "summary.json".to_owned()
        ]
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("Number,ActiveStatus,"));
    assert!(lines[1].starts_with("+14155552671,unknown,"));
    assert!(lines[2].starts_with("+33612345678,unknown,"));
    assert_eq!(lines.len(), 3);
    assert_eq!(rejected, "Line,Input,Reason\n2,not a number,not_a_number\n");
    s.stop().await;
}

#[tokio::test]
async fn gettasks_takes_task_id_as_multipart_urlencoded_json_or_query() {
    let s = TestServer::start_with(|c| c.worker.concurrency = 0).await;
    let (_, created) = s.create(&s.admin_key, b"+14155552671\n").await;
    let id = created["task_id"].as_str().unwrap().to_owned();
    let gettasks = |query: &str| {
        s.request(
            Method::POST,
            &format!("/v1/gettasks{query}"),
            Some(&s.admin_key),
        )
    };
    let form = gettasks("").form(&[("task_id", &id)]).send().await.unwrap();
    let json_body = gettasks("")
        .json(&serde_json::json!({"task_id": id}))
        .send()
        .await
        .unwrap();
    let query = gettasks(&format!("?task_id={id}")).send().await.unwrap();
    for resp in [form, json_body, query] {
        let (code, v) = json(resp).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["task_id"], id.as_str());
    }
    s.stop().await;
}

#[tokio::test]
async fn formatting_noise_blanks_garbage_duplicates_and_national_numbers_are_handled() {
    let s = TestServer::start().await;
    let file = "\u{FEFF}+1 (415) 555-2671\r\n\r\n0049 30 901820\r\n030 901820\r\n  \r\nhello\r\n\
                +1.415.555.2671\r\n+999 12345\r\n1.4155552671E10\r\n+4400000000";
    let form = file_form(file.as_bytes())
        .text("task_type", "active_check")
        .text("default_region", "de");
    let (code, created) = s.create_form(&s.admin_key, form, None).await;
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["total"], 8);
    let v = s
        .wait(&s.admin_key, created["task_id"].as_str().unwrap())
        .await;
    assert_eq!(
        (v["success"].as_i64(), v["failure"].as_i64()),
        (Some(6), Some(2))
    );
    let (csv, rejected, _) = s.result(&v).await;
    let numbers: Vec<(&str, &str)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    assert_eq!(
        numbers,
        [
            ("+14155552671", "unknown"),
            ("+4930901820", "unknown"),
            ("+4930901820", "unknown"),
            ("+14155552671", "unknown"),
            // A bare digit string read in the default region (DE): not a valid German number.
            ("+4914155552671", "inactive"),
            ("+440000000", "inactive"),
        ]
    );
    assert_eq!(
        rejected,
        "Line,Input,Reason\n6,hello,not_a_number\n8,'+999 12345,unknown_country_code\n"
    );
    s.stop().await;
}

#[tokio::test]
async fn healthz_answers_ok() {
    let s = TestServer::start().await;
    let (code, v) = s.call(Method::GET, "/healthz", None).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "ok");
    s.stop().await;
}

#[tokio::test]
async fn readyz_reports_the_database_and_the_evidence_filter() {
    let s = TestServer::start().await;
    // The filter of an empty store builds at once, in the background.
    wait_for("the evidence filter to be ready")
        .every(std::time::Duration::from_millis(10))
        .until(|| async {
            let (code, v) = s.call(Method::GET, "/readyz", None).await;
            assert_eq!(code, 200);
            assert_eq!(v["status"], "ready");
            assert_eq!(v["database"], "ok");
            let filter = v["evidence_filter"].as_str().unwrap();
            (filter == "ready").then_some(())
        })
        .await;
    s.stop().await;
}
