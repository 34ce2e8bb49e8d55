//! The evidence engine through the API: post evidence, then check numbers whose verdict
//! follows from the documented policy.

use std::io::Read;

use crate::helpers::*;

const DAY: i64 = 86_400;

fn ago(days: i64) -> i64 {
    numcheck_engine::clock::now_ms() / 1000 - days * DAY
}

async fn post_evidence(
    s: &TestServer,
    key: &str,
    content_type: &str,
    body: String,
) -> (u16, serde_json::Value) {
    let resp = s
        .http
        .post(format!("{}/v1/evidence", s.base))
        .header("X-API-Key", key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    json(resp).await
}

/// (number, expected status, expected reason, possibly reassigned) and the CSV evidence.
fn scenario() -> (
    String,
    Vec<(&'static str, &'static str, &'static str, &'static str)>,
) {
    let mut csv = String::from("number,observed_at,source,kind,raw_code,message_id\n");
    let mut row = |n: &str, days: i64, source: &str, kind: &str, code: &str, msg: &str| {
        csv.push_str(&format!("{n},{},{source},{kind},{code},{msg}\n", ago(days)));
    };
    // Fresh delivery.
    row("+12125550101", 2, "smsc-1", "sms_dlr", "DELIVRD", "a1");
    // Unknown subscriber after the last delivery (a SIP 404 on a call).
    row("+12125550102", 40, "smsc-1", "sms_dlr", "DELIVRD", "b1");
    row("+12125550102", 3, "sbc-1", "call", "404", "b2");
    // Only absent-subscriber failures, close together.
    row("+12125550103", 3, "hlr-x", "hlr", "ABSENT", "");
    row("+12125550103", 2, "hlr-x", "hlr", "ABSENT_SUBSCRIBER", "");
    // Activity after a carrier deactivation.
    row("+12125550104", 90, "carrier", "deactivation", "D", "");
    row("+12125550104", 1, "app", "app_event", "login", "");
    // Failures spread over weeks.
    row("+12125550105", 30, "smsc-1", "sms_dlr", "EXPIRED", "e1");
    row("+12125550105", 16, "smsc-1", "sms_dlr", "EXPIRED", "e2");
    row("+12125550105", 2, "smsc-1", "sms_dlr", "UNDELIV", "e3");
    let expected = vec![
        ("+12125550101", "active", "recent_activity", "false"),
        ("+12125550102", "inactive", "disconnected", "false"),
        ("+12125550103", "unknown", "temporary_failures", "false"),
        ("+12125550104", "active", "recent_activity", "true"),
        ("+12125550105", "inactive", "repeated_failures", "false"),
        ("+12125550106", "unknown", "no_evidence", "false"),
        ("+4477009001", "inactive", "invalid_number", "false"),
    ];
    (csv, expected)
}

#[tokio::test]
async fn posted_evidence_decides_verdicts_as_the_policy_documents() {
    let s = TestServer::start().await;
    let (csv, expected) = scenario();
    let (code, report) = post_evidence(&s, &s.admin_key, "text/csv", csv.clone()).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["rows"], 10);
    assert_eq!(report["inserted"], 10);
    assert_eq!(report["rejected"], 0);

    // Re-import adds nothing.
    let (_, again) = post_evidence(&s, &s.admin_key, "text/csv", csv).await;
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
    let (code, r) = post_evidence(&s, &s.admin_key, "application/x-ndjson", body).await;
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
    assert_error(
        post_evidence(&s, &plain, "text/csv", body.clone()).await,
        403,
        "ingest_not_allowed",
    );
    assert_error(
        post_evidence(&s, "nck_wrong", "text/csv", body.clone()).await,
        401,
        "invalid_api_key",
    );
    assert_error(
        post_evidence(&s, &s.admin_key, "text/plain", body).await,
        400,
        "unknown_format",
    );
    let bad_header = "phone,when\n+33612345678,1761991200\n".to_owned();
    assert_error(
        post_evidence(&s, &s.admin_key, "text/csv", bad_header).await,
        400,
        "invalid_header",
    );
    s.stop().await;
}

#[tokio::test]
async fn columns_basic_gives_only_the_contract_columns_and_xlsx_is_added_on_request() {
    let s = TestServer::start().await;
    let form = file_form(b"+14155552671\nx\n+33612345678\n")
        .text("task_type", "active_check")
        .text("columns", "basic")
        .text("formats", "csv,xlsx");
    let (code, created) = s.create_form(&s.admin_key, form, None).await;
    assert_eq!(code, 200, "{created}");
    let id = created["task_id"].as_str().unwrap().to_owned();
    let v = s.wait(&s.admin_key, &id).await;
    let url = v["result_url"].as_str().unwrap();
    let bytes = s.http.get(url).send().await.unwrap().bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut csv = String::new();
    zip.by_name(&format!("{id}.csv"))
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    assert_eq!(
        csv,
        "Number,ActiveStatus\n+14155552671,unknown\n+33612345678,unknown\n"
    );
    let mut summary = String::new();
    zip.by_name("summary.json")
        .unwrap()
        .read_to_string(&mut summary)
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["success"], 2);
    assert_eq!(summary["failure"], 1);
    assert_eq!(summary["unique_numbers"], 2);
    assert_eq!(summary["by_status"]["unknown"], 2);
    assert_eq!(summary["failures_by_reason"]["not_a_number"], 1);
    // The spreadsheet copy holds the numbers as text.
    let mut xlsx = Vec::new();
    zip.by_name(&format!("{id}.xlsx"))
        .unwrap()
        .read_to_end(&mut xlsx)
        .unwrap();
    let mut book = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut sheet = String::new();
    book.by_name("xl/worksheets/sheet1.xml")
        .unwrap()
        .read_to_string(&mut sheet)
        .unwrap();
    assert!(sheet.contains("+14155552671"), "{sheet}");
    assert!(
        !sheet.contains("<v>14155552671</v>"),
        "numbers must not be numeric cells"
    );

    let bad = file_form(b"+1\n")
        .text("task_type", "active_check")
        .text("formats", "pdf");
    assert_error(
        s.create_form(&s.admin_key, bad, None).await,
        400,
        "invalid_formats",
    );
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
