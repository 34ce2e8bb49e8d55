//! Receipts pushed by real systems, replayed against the running server: each webhook's
//! payload as the system documents it, the verdict its codes mean, retries counted once,
//! tokens and signatures enforced, malformed callbacks refused without losing anything.

use numcheck_engine::config::SourceConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "s3cret-token-0123456789";
const TWILIO_AUTH: &str = "twilio-auth-token-abc";
const FORM: &str = "application/x-www-form-urlencoded";

fn source(name: &str, format: &str) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        format: format.into(),
        token: TOKEN.into(),
        err_table: None,
        default_region: None,
        twilio_auth_token: None,
    }
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.sources = vec![
            source("smsc-map", "kannel"),
            SourceConfig {
                err_table: Some("twilio_smpp".into()),
                ..source("smsc-twilio", "kannel")
            },
            source("jasmin-1", "jasmin"),
            SourceConfig {
                twilio_auth_token: Some(TWILIO_AUTH.into()),
                ..source("twilio", "twilio")
            },
            source("vonage", "vonage"),
            source("infobip", "infobip"),
        ];
    })
    .await
}

/// `YYYY-MM-DD HH:MM:SS` and `YYMMDDhhmm`, `days` ago, UTC.
fn stamps(days: i64) -> (String, String) {
    let t = chrono::Utc::now() - chrono::Duration::days(days);
    (
        t.format("%Y-%m-%d %H:%M:%S").to_string(),
        t.format("%y%m%d%H%M").to_string(),
    )
}

async fn call(
    s: &TestServer,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    let mut req = s
        .http
        .request(method, format!("{}{path_and_query}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("Content-Type", content_type).body(bytes);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.text().await.unwrap())
}

/// `GET path` (a webhook, its fields in the query).
async fn hook_get(s: &TestServer, path: &str) -> (u16, String) {
    call(s, Method::GET, path, &[], None).await
}

/// `POST path` (a webhook) with a body of `content_type`.
async fn hook_post(s: &TestServer, path: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    call(s, Method::POST, path, &[], Some((content_type, body))).await
}

/// `POST path` (an evidence import) with the admin key and a body of `content_type`.
async fn import(s: &TestServer, path: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let key = [("X-API-Key", s.admin_key.as_str())];
    call(s, Method::POST, path, &key, Some((content_type, body))).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A verdict as [`TestServer::verdicts`] gives it: (ActiveStatus, Reason).
fn verdict(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

/// An SMPP delivery receipt's text (one message, delivered when `stat` is DELIVRD), done
/// at `date` (`YYMMDDhhmm`).
fn receipt(id: &str, stat: &str, err: &str, date: &str) -> String {
    let dlvrd = if stat == "DELIVRD" { "001" } else { "000" };
    format!(
        "id:{id} sub:001 dlvrd:{dlvrd} submit date:{date} done date:{date} stat:{stat} err:{err} text:Hi"
    )
}

/// The Kannel webhook of the `smsc-map` source, with `query`.
fn smsc_map(query: &str) -> String {
    format!("/v1/webhooks/kannel/smsc-map?{query}")
}

fn kannel_query(to: &str, id: &str, dlr_type: &str, receipt: &str, at: &str) -> String {
    form(&[
        ("token", TOKEN),
        ("type", dlr_type),
        ("to", to),
        ("id", id),
        ("smsc", "smsc1"),
        ("at", at),
        ("receipt", receipt),
    ])
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn kannel_receipts_count_once_and_the_routes_err_table_decides() {
    let s = server().await;
    let (at, d) = stamps(2);
    let delivered = receipt("0A1B2C", "DELIVRD", "000", &d);
    let q = kannel_query("+14155550101", "0A1B2C", "1", &delivered, &at);
    let url = smsc_map(&q);
    let (code, body) = hook_get(&s, &url).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["inserted"], 1);
    // Kannel retries a callback whose answer it did not get: the same receipt adds nothing.
    let (code, body) = hook_get(&s, &url).await;
    assert_eq!(code, 200);
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["duplicates"].as_i64()),
        (Some(0), Some(1))
    );
    // An SMSC acknowledgement (type 8) is not a final state.
    let q = kannel_query("+14155550102", "0A1B2D", "8", "ACK/", &at);
    let (_, body) = hook_get(&s, &smsc_map(&q)).await;
    assert_eq!(parse(&body)["not_final"], 1);

    // err:001 is "unknown subscriber" on a MAP route and "absent subscriber" on Twilio's.
    let undeliv = receipt("77", "UNDELIV", "001", &d);
    let q = kannel_query("+14155550103", "77", "2", &undeliv, &at);
    let (code, _) = hook_get(&s, &smsc_map(&q)).await;
    assert_eq!(code, 200);
    let q = kannel_query(
        "+14155550104",
        "78",
        "2",
        &undeliv.replace("id:77", "id:78"),
        &at,
    )
    .replace(&format!("token={TOKEN}&"), "");
    // POSTed as a form this time, the token in the URL.
    let (code, body) = hook_post(
        &s,
        &format!("/v1/webhooks/kannel/smsc-twilio?token={TOKEN}"),
        FORM,
        q.into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let v = s
        .verdicts(&[
            "+14155550101",
            "+14155550102",
            "+14155550103",
            "+14155550104",
        ])
        .await;
    assert_eq!(v["+14155550101"].0, "active");
    assert_eq!(v["+14155550102"], verdict("unknown", "no_evidence"));
    assert_eq!(v["+14155550103"], verdict("inactive", "disconnected"));
    assert_eq!(
        v["+14155550104"].0, "unknown",
        "an absent subscriber is temporary"
    );
    s.stop().await;
}

#[tokio::test]
async fn webhooks_refuse_wrong_tokens_unknown_sources_and_malformed_callbacks() {
    let s = server().await;
    let (at, d) = stamps(1);
    let receipt = format!("id:9 submit date:{d} done date:{d} stat:DELIVRD err:000");
    let good = kannel_query("+14155550111", "9", "1", &receipt, &at);
    let wrong = good.replace(TOKEN, "not-the-token-at-all");
    for path in [
        smsc_map(&wrong),
        format!("/v1/webhooks/kannel/nobody?{good}"),
        "/v1/webhooks/kannel/smsc-map".to_owned(),
    ] {
        let (code, body) = hook_get(&s, &path).await;
        assert_eq!(code, 401, "{path}: {body}");
        assert_eq!(parse(&body)["error"], "invalid_source_token");
    }
    // The token may come as a header instead.
    let no_token = good.replace(&format!("token={TOKEN}&"), "");
    let (code, body) = call(
        &s,
        Method::GET,
        &smsc_map(&no_token),
        &[("X-Numcheck-Token", TOKEN)],
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // A source answers on its own webhook only; unknown webhooks are 404.
    let (code, body) = hook_get(&s, &format!("/v1/webhooks/jasmin/smsc-map?{good}")).await;
    assert_error((code, parse(&body)), 404, "unknown_webhook");
    let (code, _) = hook_get(&s, &format!("/v1/webhooks/fax/smsc-map?{good}")).await;
    assert_eq!(code, 404);
    // Malformed callbacks: 400 with a stable code, and nothing stored.
    for bad in [
        form(&[
            ("token", TOKEN),
            ("type", "1"),
            ("id", "10"),
            ("receipt", &receipt),
        ]),
        kannel_query("+14155550112", "11", "1", &receipt, "yesterday at noon"),
        kannel_query("not a number", "12", "1", &receipt, &at),
    ] {
        let (code, body) = hook_get(&s, &smsc_map(&bad)).await;
        assert_eq!(code, 400, "{bad}: {body}");
        let e = parse(&body);
        assert!(e["error"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let v = s.verdicts(&["+14155550111", "+14155550112"]).await;
    assert_eq!(v["+14155550111"].0, "active");
    assert_eq!(v["+14155550112"], verdict("unknown", "no_evidence"));
    s.stop().await;
}

#[tokio::test]
async fn jasmin_gets_its_ack_and_level_one_reports_are_not_evidence() {
    let s = server().await;
    let (_, d) = stamps(1);
    let path = format!(
        "/v1/webhooks/jasmin/jasmin-1?{}",
        form(&[("token", TOKEN), ("to", "+14155550121")])
    );
    let level1 = form(&[
        ("id", "5d3c-01"),
        ("message_status", "ESME_ROK"),
        ("level", "1"),
    ]);
    let (code, body) = hook_post(&s, &path, FORM, level1.into_bytes()).await;
    assert_eq!((code, body.as_str()), (200, "ACK/Jasmin"));
    let level2 = form(&[
        ("id", "5d3c-01"),
        ("id_smsc", "A1B2"),
        ("message_status", "UNDELIV"),
        ("level", "2"),
        ("subdate", &d),
        ("donedate", &d),
        ("sub", "001"),
        ("dlvrd", "000"),
        ("err", "001"),
        ("text", "Hello"),
    ]);
    let (code, body) = hook_post(&s, &path, FORM, level2.into_bytes()).await;
    assert_eq!((code, body.as_str()), (200, "ACK/Jasmin"));
    let v = s.verdicts(&["+14155550121"]).await;
    assert_eq!(v["+14155550121"], verdict("inactive", "disconnected"));
    s.stop().await;
}

#[tokio::test]
async fn twilio_callbacks_need_a_valid_signature() {
    let s = server().await;
    let path = format!("/v1/webhooks/twilio/twilio?token={TOKEN}");
    let url = format!("{}{path}", s.base);
    let fields = |sid: &str, to: &str, status: &str, error: &str| -> Vec<(String, String)> {
        let mut v = vec![
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("ApiVersion", "2010-04-01"),
            ("From", "+15005550006"),
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("To", to),
        ];
        if !error.is_empty() {
            v.push(("ErrorCode", error));
        }
        v.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let send = |pairs: Vec<(String, String)>, signature: String| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let (s, path) = (&s, path.clone());
        async move {
            call(
                s,
                Method::POST,
                &path,
                &[("X-Twilio-Signature", &signature)],
                Some((FORM, body.into_bytes())),
            )
            .await
        }
    };
    let unknown = fields("SM01", "+14155550131", "undelivered", "30005");
    let sig = numcheck_core::connectors::twilio::signature(TWILIO_AUTH, &url, &unknown);
    let (code, body) = send(unknown.clone(), sig.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["inserted"], 1);
    // A forged or altered callback is refused.
    let delivered = fields("SM02", "+14155550132", "delivered", "");
    let (code, body) = send(delivered.clone(), sig).await;
    assert_error((code, parse(&body)), 401, "invalid_signature");
    let (code, _) = hook_post(&s, &path, FORM, b"To=%2B14155550132".to_vec()).await;
    assert_eq!(code, 401);
    let sig = numcheck_core::connectors::twilio::signature(TWILIO_AUTH, &url, &delivered);
    let (code, _) = send(delivered, sig).await;
    assert_eq!(code, 200);
    // `sent` is not final.
    let sent = fields("SM03", "+14155550133", "sent", "");
    let sig = numcheck_core::connectors::twilio::signature(TWILIO_AUTH, &url, &sent);
    let (_, body) = send(sent, sig).await;
    assert_eq!(parse(&body)["not_final"], 1);
    let v = s
        .verdicts(&["+14155550131", "+14155550132", "+14155550133"])
        .await;
    assert_eq!(v["+14155550131"], verdict("inactive", "disconnected"));
    assert_eq!(v["+14155550132"].0, "active");
    assert_eq!(v["+14155550133"].1, "no_evidence");
    s.stop().await;
}

#[tokio::test]
async fn vonage_and_infobip_receipts_as_json() {
    let s = server().await;
    let (at, d) = stamps(1);
    let receipt = json!({
        "msisdn": "14155550141", "to": "AcmeInc", "network-code": "310090",
        "messageId": "0A0000001234567B", "price": "0.03330000", "status": "delivered",
        "scts": d, "err-code": "0", "api-key": "abcd1234", "message-timestamp": at
    });
    let (code, body) = hook_post(
        &s,
        &format!("/v1/webhooks/vonage/vonage?token={TOKEN}"),
        "application/json",
        receipt.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["inserted"], 1);
    // Vonage's GET receipts carry the same fields in the query.
    let q = form(&[
        ("token", TOKEN),
        ("msisdn", "14155550142"),
        ("to", "AcmeInc"),
        ("messageId", "0A0000001234567C"),
        ("status", "failed"),
        ("err-code", "3"),
        ("message-timestamp", &at),
    ]);
    let (code, body) = hook_get(&s, &format!("/v1/webhooks/vonage/vonage?{q}")).await;
    assert_eq!(code, 200, "{body}");

    let done = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let report = json!({"results": [
        {"bulkId": "b1", "messageId": "ib-1", "to": "14155550143", "sentAt": done, "doneAt": done,
         "smsCount": 1, "price": {"pricePerMessage": 0.01, "currency": "EUR"},
         "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET", "description": "Message delivered to handset"},
         "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error", "permanent": false}},
        {"bulkId": "b1", "messageId": "ib-2", "sentAt": done, "doneAt": done,
         "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}}
    ]});
    let (code, body) = hook_post(
        &s,
        &format!("/v1/webhooks/infobip/infobip?token={TOKEN}"),
        "application/json",
        report.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["rejected"].as_i64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(r["errors"][0]["index"], 1);
    let (code, body) = hook_post(
        &s,
        &format!("/v1/webhooks/infobip/infobip?token={TOKEN}"),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_error((code, parse(&body)), 400, "invalid_json");

    let v = s
        .verdicts(&["+14155550141", "+14155550142", "+14155550143"])
        .await;
    assert_eq!(v["+14155550141"].0, "active");
    assert_eq!(v["+14155550143"].0, "active");
    assert_ne!(v["+14155550142"].0, "active");
    s.stop().await;
}

#[tokio::test]
async fn connector_files_import_over_http_and_count_once() {
    let s = server().await;
    let day = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let t = format!("{day} 10:00:00");
    // FreeSWITCH mod_cdr_csv, default template: caller name, caller number, destination,
    // context, start, answer, end, duration, billsec, hangup cause, uuid, b-leg uuid,
    // account code, codecs.
    let cdrs = format!(
        "\"Acme\",\"1000\",\"+14155550151\",\"default\",\"{t}\",\"{t}\",\"{t}\",\"65\",\"60\",\"NORMAL_CLEARING\",\"u-1\",\"\",\"\",\"PCMU\",\"PCMU\"\n\
         \"Acme\",\"1000\",\"+14155550152\",\"default\",\"{t}\",\"\",\"{t}\",\"3\",\"0\",\"UNALLOCATED_NUMBER\",\"u-2\",\"\",\"\",\"PCMU\",\"PCMU\"\n\
         garbage line without the columns\n"
    );
    let path = "/v1/evidence?format=freeswitch&source=pbx-1";
    let (code, body) = import(&s, path, "text/csv", cdrs.clone().into_bytes()).await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["rejected"].as_i64()),
        (Some(2), Some(1)),
        "{body}"
    );
    assert_eq!(r["errors"][0]["line"], 3);
    let (_, body) = import(&s, path, "text/csv", cdrs.into_bytes()).await;
    assert_eq!(parse(&body)["duplicates"], 2);
    // Deactivation list.
    let list = format!("number,date\n+14155550153,{day}\n");
    let (code, body) = import(
        &s,
        "/v1/evidence?format=deactivation&source=carrier-x",
        "text/csv",
        list.into_bytes(),
    )
    .await;
    assert_eq!(
        (code, parse(&body)["inserted"].as_i64()),
        (200, Some(1)),
        "{body}"
    );
    // A connector format needs a source name.
    let (code, body) = import(
        &s,
        "/v1/evidence?format=asterisk",
        "text/csv",
        b"x".to_vec(),
    )
    .await;
    assert_error((code, parse(&body)), 400, "missing_source");
    let v = s
        .verdicts(&["+14155550151", "+14155550152", "+14155550153"])
        .await;
    assert_eq!(v["+14155550151"].0, "active");
    assert_eq!(v["+14155550152"], verdict("inactive", "disconnected"));
    assert_eq!(v["+14155550153"], verdict("inactive", "disconnected"));
    s.stop().await;
}

#[tokio::test]
async fn long_log_lines_are_read_and_oversized_ones_refused_alone() {
    let s = server().await;
    let (d, smpp) = stamps(1);
    // A bearerbox access-log DLR line with a long message text (2 KiB): longer than an upload
    // line may be, well within an evidence line.
    let text = "x".repeat(2048);
    let receipt = format!(
        "id:4f2a sub:001 dlvrd:001 submit date:{smpp} done date:{smpp} stat:DELIVRD err:000 text:{text}"
    );
    let line = |to: &str, fid: &str| {
        format!(
            "{d} Receive DLR [SMSC:smsc1] [SVC:web] [ACT:] [BINF:] [FID:{fid}] [META:] [from:Acme] [to:{to}] [flags:-1:0:-1:0:1] [msg:{}:{receipt}] [udh:0:]\n",
            receipt.len()
        )
    };
    let huge = format!(
        "{} [pad:{}]\n",
        line("+14155550161", "4f2b").trim_end(),
        "y".repeat(20_000)
    );
    let body = format!(
        "{d} Sent SMS [SMSC:smsc1] [SVC:web] [ACT:] [BINF:] [FID:4f2a] [from:Acme] [to:+14155550160] [flags:-1:0:-1:0:19] [msg:5:Hello] [udh:0:]\n{}{huge}",
        line("+14155550160", "4f2a")
    );
    let (code, body) = import(
        &s,
        "/v1/evidence?format=kannel&source=smsc1",
        "text/plain",
        body.into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["rejected"].as_i64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(r["errors"][0]["error"], "line_too_long");
    assert_eq!(r["errors"][0]["line"], 3);
    let v = s.verdicts(&["+14155550160"]).await;
    assert_eq!(v["+14155550160"].0, "active");
    s.stop().await;
}

#[tokio::test]
async fn a_webhook_answers_get_and_post_and_refuses_other_methods_storing_nothing() {
    // Found by schemathesis: the route took any method, so a TRACE or DELETE carrying a
    // receipt's fields was stored as evidence.
    let s = server().await;
    let (at, d) = stamps(1);
    let delivered = receipt("0A1B2D", "DELIVRD", "000", &d);
    let q = kannel_query("+14155550102", "0A1B2D", "1", &delivered, &at);
    let url = smsc_map(&q);
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::TRACE] {
        let (code, body) = call(&s, method.clone(), &url, &[], None).await;
        assert_eq!(code, 405, "{method}: {body}");
        assert_eq!(parse(&body)["error"], "method_not_allowed", "{method}");
    }
    let (code, body) = hook_get(&s, &url).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        parse(&body)["inserted"],
        1,
        "the refused calls stored nothing"
    );
    s.stop().await;
}

#[tokio::test]
async fn twilio_files_are_dated_by_their_records_and_generic_rows_name_their_table() {
    let s = server().await;
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(400)).to_rfc2822();
    let record = |to: &str, sid: &str, date: Option<&str>| {
        let mut pairs = vec![
            ("MessageSid", sid),
            ("MessageStatus", "delivered"),
            ("To", to),
        ];
        if let Some(d) = date {
            pairs.push(("DateUpdated", d));
        }
        form(&pairs)
    };
    // An old delivery keeps its own date; an undated record is refused, naming the way out.
    let file = format!(
        "{}\n{}\n",
        record("+14155550170", "SM170", Some(&long_ago)),
        record("+14155550171", "SM171", None)
    );
    let (code, body) = import(
        &s,
        "/v1/evidence?format=twilio&source=tw-export",
        "text/plain",
        file.clone().into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["rejected"].as_i64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(
        (
            r["errors"][0]["line"].as_i64(),
            r["errors"][0]["error"].as_str()
        ),
        (Some(2), Some("missing_time"))
    );
    // Saying which time to assume takes the undated record (the dated one is already there).
    let (code, body) = import(
        &s,
        "/v1/evidence?format=twilio&source=tw-export&assume_time=now",
        "text/plain",
        file.into_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["duplicates"].as_i64()),
        (Some(1), Some(1)),
        "{body}"
    );
    let (code, body) = import(
        &s,
        "/v1/evidence?format=twilio&source=tw-export&assume_time=tomorrow",
        "text/plain",
        Vec::new(),
    )
    .await;
    assert_error((code, parse(&body)), 400, "invalid_parameter");

    // A generic row from a MAP-coded route names its table; without it the code is unknown.
    let (at, _) = stamps(2);
    let rows = format!(
        "number,observed_at,source,kind,raw_code,code_table\n\
         +14155550172,{at},smsc-eu,sms_dlr,UNDELIV:001,map\n\
         +14155550173,{at},smsc-eu,sms_dlr,UNDELIV:001,\n"
    );
    let (code, body) = import(&s, "/v1/evidence", "text/csv", rows.into_bytes()).await;
    assert_eq!(code, 200, "{body}");
    let r = parse(&body);
    assert_eq!(
        (r["inserted"].as_i64(), r["errors"][0]["error"].as_str()),
        (Some(1), Some("unknown_code")),
        "{body}"
    );

    let v = s
        .verdicts(&["+14155550170", "+14155550171", "+14155550172"])
        .await;
    // A delivery 400 days ago is not today's activity.
    assert_eq!(
        v["+14155550170"],
        ("unknown".into(), "insufficient_evidence".into())
    );
    assert_eq!(v["+14155550171"].0, "active");
    assert_eq!(
        v["+14155550172"],
        ("inactive".into(), "disconnected".into())
    );
    s.stop().await;
}
