//! Every refusal: the right status, a stable code, a message, nothing charged or stored.

use reqwest::Method;
use reqwest::multipart::Form;

use crate::helpers::*;

#[tokio::test]
async fn a_missing_unknown_or_revoked_key_gets_401() {
    let s = TestServer::start().await;
    let none = s
        .request(Method::POST, "/v1/tasks", None)
        .multipart(file_form(b"+1").text("task_type", "active_check"))
        .send()
        .await
        .unwrap();
    assert_error(json(none).await, 401, "missing_api_key");
    let key = s.key("mallory", None).await;
    s.state
        .engine
        .store
        .revoke_key(&key[..12], 0)
        .await
        .unwrap();
    for got in [
        s.create("nck_not_a_real_key", b"+14155552671\n").await,
        s.create(&key, b"+14155552671\n").await,
        s.poll(&key, "d4g8o46p2jvh04o9uolg").await,
    ] {
        assert_error(got, 401, "invalid_api_key");
    }
    s.stop().await;
}

#[tokio::test]
async fn missing_file_missing_type_and_unknown_type_get_400() {
    let s = TestServer::start().await;
    let k = &s.admin_key;
    assert_error(
        s.create_form(k, Form::new().text("task_type", "active_check"), None)
            .await,
        400,
        "missing_file",
    );
    assert_error(
        s.create_form(k, file_form(b"+14155552671\n"), None).await,
        400,
        "missing_task_type",
    );
    let bogus = file_form(b"+14155552671\n").text("task_type", "bogus");
    let got = s.create_form(k, bogus, None).await;
    assert!(
        got.1["message"].as_str().unwrap().contains("active_check"),
        "lists the supported types"
    );
    assert_error(got, 400, "unknown_task_type");
    // The type may come first; a bad one is refused before the file is read.
    let form = Form::new().text("task_type", "bogus").part(
        "file",
        reqwest::multipart::Part::bytes(b"+1".to_vec()).file_name("n.txt"),
    );
    assert_error(s.create_form(k, form, None).await, 400, "unknown_task_type");
    s.stop().await;
}

#[tokio::test]
async fn empty_blank_only_and_binary_files_get_400() {
    let s = TestServer::start().await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(0u8, 20_000));
    // Text for well past the sniffed 8 KiB, then a NUL byte.
    let mut late_nul = "+14155552671\n".repeat(5_000).into_bytes();
    late_nul.extend_from_slice(b"x\x00y\n+14155552672\n");
    let refused: [(&[u8], &str); 6] = [
        (&late_nul[..], "file_not_text"),
        (b"", "empty_file"),
        (b"\n\r\n   \n\t\n", "empty_file"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "file_not_text"),
        (b"\xFF\xFE+\x001\x00", "file_not_text"),
        (&png[..], "file_not_text"),
    ];
    for (body, code) in refused {
        assert_error(s.create(&s.admin_key, body).await, 400, code);
    }
    // Nothing was stored for the refused uploads.
    let uploads = s.data_dir.join("blobs").join("uploads");
    let stored = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "refused uploads leave no blobs");
    s.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413_and_leaves_nothing() {
    let s = TestServer::start_with(|c| c.max_upload_bytes = 1000).await;
    // Just over, and far over the limit (where the body limit answers, with the same code).
    for lines in [100, 20_000] {
        let body = "+14155552671\n".repeat(lines);
        let got = s.create(&s.admin_key, body.as_bytes()).await;
        assert_error(got, 413, "file_too_large");
    }
    // Just under is fine.
    let body = "+14155552671\n".repeat(70);
    assert_eq!(s.create(&s.admin_key, body.as_bytes()).await.0, 200);
    let uploads = s.data_dir.join("blobs").join("uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_default_region_gets_400() {
    let s = TestServer::start().await;
    let region = [("default_region", "XX")];
    let got = s.create_with(&s.admin_key, b"030 901820\n", &region).await;
    assert_error(got, 400, "invalid_default_region");
    s.stop().await;
}

#[tokio::test]
async fn a_non_multipart_create_gets_400() {
    let s = TestServer::start().await;
    let resp = s
        .request(Method::POST, "/v1/tasks", Some(&s.admin_key))
        .json(&serde_json::json!({"task_type": "active_check"}))
        .send()
        .await
        .unwrap();
    assert_error(json(resp).await, 400, "invalid_multipart");
    s.stop().await;
}

#[tokio::test]
async fn gettasks_without_task_id_gets_400_and_unknown_ids_get_404() {
    let s = TestServer::start().await;
    let k = &s.admin_key;
    let empty = s.post(k, "/v1/gettasks").await;
    assert_error(empty, 400, "missing_task_id");
    let blank_json = s
        .request(Method::POST, "/v1/gettasks", Some(k))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_error(json(blank_json).await, 400, "missing_task_id");
    for id in ["d4g8o46p2jvh04o9uolg", "../../etc/passwd"] {
        assert_error(s.poll(k, id).await, 404, "task_not_found");
    }
    s.stop().await;
}

#[tokio::test]
async fn gettasks_returns_404_for_another_users_task() {
    let s = TestServer::start().await;
    let alice = s.key("alice", None).await;
    let bob = s.key("bob", None).await;
    let (_, created) = s.create(&alice, b"+14155552671\n").await;
    let id = created["task_id"].as_str().unwrap();
    assert_error(s.poll(&bob, id).await, 404, "task_not_found");
    assert_eq!(s.poll(&alice, id).await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_the_json_error_shape() {
    let s = TestServer::start().await;
    for (method, path, status, code) in [
        (Method::GET, "/v1/nothing", 404, "not_found"),
        (Method::PUT, "/v1/tasks", 405, "method_not_allowed"),
        (Method::DELETE, "/v1/gettasks", 405, "method_not_allowed"),
    ] {
        assert_error(s.call(method, path, None).await, status, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn forged_tampered_and_expired_result_links_get_403() {
    let s = TestServer::start().await;
    let (_, created) = s.create(&s.admin_key, b"+14155552671\n").await;
    let id = created["task_id"].as_str().unwrap();
    let v = s.wait(&s.admin_key, id).await;
    let url = v["result_url"].as_str().unwrap().to_owned();
    // A fresh link works without any API key.
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 200);

    let (head, sig) = url.split_once("signature=").unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}signature={flipped}{}", &sig[1..]);
    let unsigned = format!("{}/v1/results/{id}.zip", s.base);
    // A link for another task id with this task's signature does not open.
    let other = s.create(&s.admin_key, b"+33612345678\n").await.1;
    let other_id = other["task_id"].as_str().unwrap();
    s.wait(&s.admin_key, other_id).await;
    let swapped = url.replace(id, other_id);
    // A correctly signed link whose time has passed.
    let task_id = id.parse().unwrap();
    let past = numcheck_engine::clock::now_ms() / 1000 - 10;
    let query = s.state.signer.query(&task_id, past);
    let expired = format!("{}/v1/results/{id}.zip?{query}", s.base);
    // The same valid link spelled another way: one canonical form only.
    let (_, query) = url.split_once('?').unwrap();
    let (expires, signature) = query.split_once('&').unwrap();
    let n = expires.trim_start_matches("expires=");
    let respelled: Vec<String> = [
        format!("expires=%2B{n}&{signature}"),
        format!("expires=0{n}&{signature}"),
        format!("{expires}&{signature}%3D"),
        format!("{expires}&{signature}=="),
        format!("{expires}&{expires}&{signature}"),
    ]
    .iter()
    .map(|q| format!("{}/v1/results/{id}.zip?{q}", s.base))
    .collect();
    for link in respelled {
        let got = json(s.http.get(&link).send().await.unwrap()).await;
        assert_error(got, 403, "invalid_signature");
    }
    for (link, code) in [
        (tampered, "invalid_signature"),
        (unsigned, "invalid_signature"),
        (swapped, "invalid_signature"),
        (expired, "link_expired"),
    ] {
        let got = json(s.http.get(&link).send().await.unwrap()).await;
        assert_error(got, 403, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn rejections_made_by_the_framework_get_the_json_error_body_too() {
    // Found by checking answers against /openapi.json: a path segment that is not UTF-8 and a
    // webhook body over its limit were answered with axum's plain text.
    let s = TestServer::start().await;
    let key = s.key("rejections", None).await;
    for path in ["/v1/tasks/%FF", "/v1/results/%FF.zip", "/assets/%FF"] {
        let resp = s.request(Method::GET, path, Some(&key)).send().await;
        let resp = resp.unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        assert_error(json(resp).await, 400, "invalid_request");
    }
    let resp = s
        .request(Method::POST, "/v1/webhooks/kannel/smsc-1", None)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(json(resp).await, 413, "file_too_large");
    // A poll body over 64 KiB, as JSON or urlencoded: 413, as the OpenAPI says.
    let padding = "x".repeat(70 * 1024);
    for (content_type, body) in [
        (
            "application/json",
            format!("{{\"task_id\":\"a\",\"pad\":\"{padding}\"}}"),
        ),
        (
            "application/x-www-form-urlencoded",
            format!("task_id=a&pad={padding}"),
        ),
    ] {
        let resp = s
            .request(Method::POST, "/v1/gettasks", Some(&key))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(json(resp).await, 413, "file_too_large");
    }
    s.stop().await;
}
