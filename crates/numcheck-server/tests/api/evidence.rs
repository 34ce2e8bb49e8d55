//! The evidence engine through the API: post evidence, then check numbers whose verdict
//! follows from the documented policy.

use numcheck_testkit::{ResultZip, evidence_story};

use numcheck_engine::keys::KeyRights;
use reqwest::Method;

use crate::helpers::*;

const DAY: i64 = 86_400;

fn ago(days: i64) -> i64 {
    numcheck_engine::clock::now_ms() / 1000 - days * DAY
}

/// The policy's story ([`evidence_story`]) and an invalid number, which needs no evidence.
fn scenario() -> (
    String,
    Vec<(&'static str, &'static str, &'static str, &'static str)>,
) {
    let mut expected = evidence_story::VERDICTS.to_vec();
    expected.push(("+4477009001", "inactive", "invalid_number", "false"));
    (evidence_story::csv(ago(0)), expected)
}

#[tokio::test]
async fn posted_evidence_decides_verdicts_as_the_policy_documents() {
    let s = TestServer::start().await;
    let (csv, expected) = scenario();
    let (code, report) = s.post_evidence(&s.admin_key, "text/csv", csv.clone()).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["rows"], 10);
    assert_eq!(report["inserted"], 10);
    assert_eq!(report["rejected"], 0);

    // Re-import adds nothing.
    let (_, again) = s.post_evidence(&s.admin_key, "text/csv", csv).await;
    assert_eq!(
        (again["inserted"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(10))
    );

    let file: String = expected.iter().map(|(n, ..)| format!("{n}\n")).collect();
    let (_, created) = s.create(&s.admin_key, file.as_bytes()).await;
    let v = s
        .wait(&s.admin_key, created["task_id"].as_str().unwrap())
        .await;
    let (csv, _, names) = s.result(&v).await;
    assert!(names.contains(&"summary.json".to_owned()));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Number,ActiveStatus,Reason,Confidence,LastActivity,LineType,Region,PossiblyReassigned,Line"
    );
    for ((number, status, reason, reassigned), row) in expected.iter().zip(lines) {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(
            (f[1], f[2], f[7]),
            (*status, *reason, *reassigned),
            "{number}: {row}"
        );
        let confidence: f64 = f[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&confidence));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_task_sets_its_own_confidence_floor() {
    let s = TestServer::start().await;
    let (csv, expected) = scenario();
    let (code, report) = s.post_evidence(&s.admin_key, "text/csv", csv).await;
    assert_eq!(code, 200, "{report}");
    let file: String = expected.iter().map(|(n, ..)| format!("{n}\n")).collect();
    let rows = |csv: String| -> Vec<(String, String, f64)> {
        csv.lines()
            .skip(1)
            .map(|row| {
                let f: Vec<&str> = row.split(',').collect();
                (f[1].to_owned(), f[2].to_owned(), f[3].parse().unwrap())
            })
            .collect()
    };
    let run = |floor: &'static str| {
        let s = &s;
        let file = file.clone();
        async move {
            let (code, created) = s
                .create_with(&s.admin_key, file.as_bytes(), &[("min_confidence", floor)])
                .await;
            assert_eq!(code, 200, "{created}");
            let v = s
                .wait(&s.admin_key, created["task_id"].as_str().unwrap())
                .await;
            rows(s.result(&v).await.0)
        }
    };
    // Floor 0: every verdict as the rules and the calibration give it. Floor 1: only sure
    // verdicts (the invalid number) stay decided; the others are `unknown / low_confidence`
    // and keep their confidence.
    let open = run("0").await;
    let shut = run("1").await;
    let mut floored = 0;
    for ((number, status, reason, _), (got, strict)) in expected.iter().zip(open.iter().zip(&shut))
    {
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (*status, *reason),
            "{number}"
        );
        if *status == "unknown" || got.2 >= 1.0 {
            assert_eq!(strict, got, "{number}");
        } else {
            floored += 1;
            assert_eq!(
                (strict.0.as_str(), strict.1.as_str(), strict.2),
                ("unknown", "low_confidence", got.2),
                "{number}"
            );
        }
    }
    assert!(floored >= 2, "{open:?}");
    for bad in ["1.5", "-0.1", "most", "NaN"] {
        let got = s
            .create_with(&s.admin_key, file.as_bytes(), &[("min_confidence", bad)])
            .await;
        assert_error(got, 400, "invalid_min_confidence");
    }
    s.stop().await;
}

#[tokio::test]
async fn ndjson_evidence_reports_each_bad_row_with_its_line_and_keeps_the_rest() {
    let s = TestServer::start().await;
    let t = ago(1);
    let body = format!(
        "{{\"number\":\"+33612345678\",\"observed_at\":{t},\"source\":\"smsc\",\"kind\":\"sms_dlr\",\"raw_code\":\"DELIVRD\",\"message_id\":\"m1\"}}\n\
         not json\n\
         \n\
         {{\"number\":\"nope\",\"observed_at\":{t},\"source\":\"smsc\",\"kind\":\"sms_dlr\",\"raw_code\":\"DELIVRD\"}}\n\
         {{\"number\":\"+33612345678\",\"observed_at\":{t},\"source\":\"smsc\",\"kind\":\"sms_dlr\",\"raw_code\":\"ENROUTE\",\"message_id\":\"m2\"}}\n\
         {{\"number\":\"+33612345678\",\"observed_at\":{t},\"source\":\"smsc\",\"kind\":\"sms_dlr\",\"raw_code\":\"WEIRD\"}}\n\
         {{\"number\":\"+33612345679\",\"observed_at\":{t},\"source\":\"smsc\",\"kind\":\"sms_dlr\",\"raw_code\":\"WEIRD\",\"class\":\"weak_active\"}}\n"
    );
    let (code, r) = s
        .post_evidence(&s.admin_key, "application/x-ndjson", body)
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (
            r["rows"].as_i64(),
            r["inserted"].as_i64(),
            r["not_final"].as_i64(),
            r["rejected"].as_i64()
        ),
        (Some(6), Some(2), Some(1), Some(3))
    );
    let errors: Vec<(i64, &str)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            (2, "invalid_json"),
            (4, "invalid_number"),
            (6, "unknown_code")
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn evidence_needs_a_key_with_the_ingest_right_and_a_known_format() {
    let s = TestServer::start().await;
    let plain = s.key("customer", None).await;
    let body =
        "number,observed_at,source,kind,raw_code\n+33612345678,1761991200,s,sms_dlr,DELIVRD\n"
            .to_owned();
    let bad_header = "phone,when\n+33612345678,1761991200\n".to_owned();
    for (key, content_type, body, status, code) in [
        (
            plain.as_str(),
            "text/csv",
            body.clone(),
            403,
            "ingest_not_allowed",
        ),
        (
            "nck_wrong",
            "text/csv",
            body.clone(),
            401,
            "invalid_api_key",
        ),
        (&s.admin_key, "text/plain", body, 400, "unknown_format"),
        (&s.admin_key, "text/csv", bad_header, 400, "invalid_header"),
    ] {
        let got = s.post_evidence(key, content_type, body).await;
        assert_error(got, status, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn an_ingest_key_posts_evidence_and_nothing_else_unless_asked() {
    let s = TestServer::start().await;
    let feed = s.key_with("feed", None, KeyRights::INGEST).await;
    let both = s.key_with("ops", None, KeyRights::ALL).await;
    let body =
        "number,observed_at,source,kind,raw_code\n+33612345678,1761991200,s,sms_dlr,DELIVRD\n";
    let (code, report) = s.post_evidence(&feed, "text/csv", body.to_owned()).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["inserted"], 1);
    // Creating, polling, listing and the balance are refused, and nothing is stored.
    let refused = s.create(&feed, b"+33612345678\n").await;
    assert_error(refused, 403, "check_not_allowed");
    let (code, _) = s.create(&both, b"+33612345678\n").await;
    assert_eq!(code, 200);
    let store = &s.state.engine.store;
    let feed_user = store.user_by_name("feed").await.unwrap().unwrap();
    let stored = store
        .list_tasks(&feed_user.id, None, None, 10)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    for (method, path) in [
        (Method::POST, "/v1/gettasks"),
        (Method::GET, "/v1/tasks"),
        (Method::GET, "/v1/balance"),
    ] {
        let got = s.call(method.clone(), path, Some(&feed)).await;
        assert_error(got, 403, "check_not_allowed");
    }
    // A key with both rights posts too.
    let (code, report) = s.post_evidence(&both, "text/csv", body.to_owned()).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["duplicates"], 1);
    s.stop().await;
}

#[tokio::test]
async fn columns_basic_gives_only_the_contract_columns_and_xlsx_is_added_on_request() {
    let s = TestServer::start().await;
    let fields = [("columns", "basic"), ("formats", "csv,xlsx")];
    let body = b"+14155552671\nx\n+33612345678\n";
    let (code, created) = s.create_with(&s.admin_key, body, &fields).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap().to_owned();
    let v = s.wait(&s.admin_key, &id).await;
    let mut zip = s.zip(&v).await;
    assert_eq!(
        zip.csv(&id),
        "Number,ActiveStatus\n+14155552671,unknown\n+33612345678,unknown\n"
    );
    let summary = zip.summary();
    assert_eq!(summary["success"], 2);
    assert_eq!(summary["failure"], 1);
    assert_eq!(summary["unique_numbers"], 2);
    assert_eq!(summary["by_status"]["unknown"], 2);
    assert_eq!(summary["failures_by_reason"]["not_a_number"], 1);
    // The spreadsheet copy holds the numbers as text.
    let mut book = ResultZip::new(zip.bytes(&format!("{id}.xlsx")));
    let sheet = book.text("xl/worksheets/sheet1.xml");
    assert!(sheet.contains("+14155552671"), "{sheet}");
    assert!(
        !sheet.contains("<v>14155552671</v>"),
        "numbers must not be numeric cells"
    );

    let pdf = [("formats", "pdf")];
    let got = s.create_with(&s.admin_key, b"+1\n", &pdf).await;
    assert_error(got, 400, "invalid_formats");
    s.stop().await;
}

#[tokio::test]
async fn number_info_is_a_second_checker_on_the_same_flow() {
    let s = TestServer::start().await;
    let form = file_form(b"030 901820\n+14155552671\n+4400000000\n")
        .text("task_type", "number_info")
        .text("default_region", "DE");
    let (code, created) = s.create_form(&s.admin_key, form, None).await;
    assert_eq!(code, 200, "{created}");
    let v = s
        .wait(&s.admin_key, created["task_id"].as_str().unwrap())
        .await;
    let (csv, _, _) = s.result(&v).await;
    assert_eq!(
        csv,
        "Number,Valid,LineType,Region,CountryCode,NationalFormat,InternationalFormat,Line\n\
         +4930901820,true,fixed_line,DE,49,030 901820,+49 30 901820,1\n\
         +14155552671,true,fixed_line_or_mobile,US,1,(415) 555-2671,+1 415-555-2671,2\n\
         +440000000,false,unknown,,44,0000000,+44 0000000,3\n"
    );
    let got = s
        .create_form(
            &s.admin_key,
            file_form(b"+1\n").text("task_type", "carrier_lookup"),
            None,
        )
        .await;
    let message = got.1["message"].as_str().unwrap().to_owned();
    assert_error(got, 400, "unknown_task_type");
    assert!(
        message.contains("active_check") && message.contains("number_info"),
        "{message}"
    );
    s.stop().await;
}
