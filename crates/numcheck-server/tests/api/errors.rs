//! Every refusal: the right status, a stable code, a message, nothing charged or stored.

use reqwest::multipart::Form;

use crate::helpers::*;

#[tokio::test]
async fn a_missing_unknown_or_revoked_key_gets_401() {
    let s = TestServer::start().await;
    let url = format!("{}/v1/tasks", s.base);
    let none = s
        .http
        .post(&url)
        .multipart(file_form(b"+1").text("task_type", "active_check"))
        .send()
        .await
        .unwrap();
    assert_error(json(none).await, 401, "missing_api_key");
    assert_error(
        s.create("nck_not_a_real_key", b"+14155552671\n").await,
        401,
        "invalid_api_key",
    );
    let key = s.key("mallory", None).await;
    let prefix = &key[..12];
    s.state.engine.store.revoke_key(prefix, 0).await.unwrap();
    assert_error(
        s.create(&key, b"+14155552671\n").await,
        401,
        "invalid_api_key",
    );
    assert_error(
        s.poll(&key, "d4g8o46p2jvh04o9uolg").await,
        401,
        "invalid_api_key",
    );
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
    let got = s
        .create_form(
            k,
            file_form(b"+14155552671\n").text("task_type", "bogus"),
            None,
        )
        .await;
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
    let k = &s.admin_key;
    assert_error(s.create(k, b"").await, 400, "empty_file");
    assert_error(s.create(k, b"\n\r\n   \n\t\n").await, 400, "empty_file");
    assert_error(
        s.create(k, b"PK\x03\x04\x14\x00\x00\x00\x08\x00").await,
        400,
        "file_not_text",
    );
    assert_error(
        s.create(k, b"\xFF\xFE+\x001\x00").await,
        400,
        "file_not_text",
    );
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(0u8, 20_000));
    assert_error(s.create(k, &png).await, 400, "file_not_text");
    // Nothing was stored for the refused uploads.
    let uploads = s.data_dir.join("blobs").join("uploads");
    let stored = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "refused uploads leave no blobs");
    s.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413_and_leaves_nothing() {
    let s = TestServer::start_with(|c| c.max_upload_bytes = 1000).await;
    let body = "+14155552671\n".repeat(100);
    assert_error(
        s.create(&s.admin_key, body.as_bytes()).await,
        413,
        "file_too_large",
    );
    // Far over the limit: the body limit answers, with the same code.
    let body = "+14155552671\n".repeat(20_000);
    assert_error(
        s.create(&s.admin_key, body.as_bytes()).await,
        413,
        "file_too_large",
    );
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
    let form = file_form(b"030 901820\n")
        .text("task_type", "active_check")
        .text("default_region", "XX");
    assert_error(
        s.create_form(&s.admin_key, form, None).await,
        400,
        "invalid_default_region",
    );
    s.stop().await;
}

#[tokio::test]
async fn a_non_multipart_create_gets_400() {
    let s = TestServer::start().await;
    let resp = s
        .http
        .post(format!("{}/v1/tasks", s.base))
        .header("X-API-Key", &s.admin_key)
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
    let url = format!("{}/v1/gettasks", s.base);
    let empty = s
        .http
        .post(&url)
        .header("X-API-Key", &s.admin_key)
        .send()
        .await
        .unwrap();
    assert_error(json(empty).await, 400, "missing_task_id");
    let blank_json = s
        .http
        .post(&url)
        .header("X-API-Key", &s.admin_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_error(json(blank_json).await, 400, "missing_task_id");
    assert_error(
        s.poll(&s.admin_key, "d4g8o46p2jvh04o9uolg").await,
        404,
        "task_not_found",
    );
    assert_error(
        s.poll(&s.admin_key, "../../etc/passwd").await,
        404,
        "task_not_found",
    );
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
    let r = s
        .http
        .get(format!("{}/v1/nothing", s.base))
        .send()
        .await
        .unwrap();
    assert_error(json(r).await, 404, "not_found");
    let r = s
        .http
        .put(format!("{}/v1/tasks", s.base))
        .send()
        .await
        .unwrap();
    assert_error(json(r).await, 405, "method_not_allowed");
    let r = s
        .http
        .delete(format!("{}/v1/gettasks", s.base))
        .send()
        .await
        .unwrap();
    assert_error(json(r).await, 405, "method_not_allowed");
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
    assert_error(
        json(s.http.get(&tampered).send().await.unwrap()).await,
        403,
        "invalid_signature",
    );
    let unsigned = format!("{}/v1/results/{id}.zip", s.base);
    assert_error(
        json(s.http.get(&unsigned).send().await.unwrap()).await,
        403,
        "invalid_signature",
    );

    // A link for another task id with this task's signature does not open.
    let other = s.create(&s.admin_key, b"+33612345678\n").await.1;
    let other_id = other["task_id"].as_str().unwrap();
    s.wait(&s.admin_key, other_id).await;
    let swapped = url.replace(id, other_id);
    assert_error(
        json(s.http.get(&swapped).send().await.unwrap()).await,
        403,
        "invalid_signature",
    );

    // A correctly signed link whose time has passed.
    let task_id = id.parse().unwrap();
    let past = numcheck_engine::clock::now_ms() / 1000 - 10;
    let expired = format!(
        "{}/v1/results/{id}.zip?{}",
        s.base,
        s.state.signer.query(&task_id, past)
    );
    assert_error(
        json(s.http.get(&expired).send().await.unwrap()).await,
        403,
        "link_expired",
    );
    s.stop().await;
}

#[tokio::test]
async fn rejections_made_by_the_framework_get_the_json_error_body_too() {
    // Found by checking answers against /openapi.json: a path segment that is not UTF-8 and a
    // webhook body over its limit were answered with axum's plain text.
    let s = TestServer::start().await;
    let key = s.key("rejections", None).await;
    for path in ["/v1/tasks/%FF", "/v1/results/%FF.zip", "/assets/%FF"] {
        let resp = s
            .http
            .get(format!("{}{path}", s.base))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        assert_error(json(resp).await, 400, "invalid_request");
    }
    let resp = s
        .http
        .post(format!("{}/v1/webhooks/kannel/smsc-1", s.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(json(resp).await, 413, "file_too_large");
    s.stop().await;
}
