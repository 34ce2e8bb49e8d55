//! The isolation matrix: one user can reach nothing of another's through any endpoint, link
//! or guessed id — tasks, results, summaries, balances, callback secrets and notices.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestServer, assert_error, json};

struct Who {
    key: String,
    task: String,
    view: Value,
}

async fn user_with_a_task(s: &TestServer, name: &str, body: &[u8]) -> Who {
    let key = s.key(name, Some(1000)).await;
    let hook = [("callback_url", "https://hooks.example.com/numcheck")];
    let (code, created) = s.create_with(&key, body, &hook).await;
    assert_eq!(code, 200, "{created}");
    let task = created["task_id"].as_str().unwrap().to_owned();
    let view = s.wait(&key, &task).await;
    Who { key, task, view }
}

#[tokio::test]
async fn no_endpoint_link_or_guessed_id_reaches_another_users_data() {
    let s = TestServer::start().await;
    let a = user_with_a_task(&s, "ann", b"+14155552671\n+33612345678\n").await;
    let b = user_with_a_task(&s, "ben", b"+447700900123\n").await;

    // Every task endpoint, with B's key on A's task: 404 exactly as for a missing task.
    let a_task = &a.task;
    for (method, path) in [
        (Method::GET, format!("/v1/tasks/{a_task}")),
        (Method::POST, format!("/v1/tasks/{a_task}/cancel")),
        (Method::DELETE, format!("/v1/tasks/{a_task}")),
    ] {
        let got = s.call(method.clone(), &path, Some(&b.key)).await;
        assert_error(got.clone(), 404, "task_not_found");
        // Indistinguishable from an id that does not exist.
        let missing = s
            .call(
                method.clone(),
                &path.replace(a_task, "d4g8o46p2jvh04o9uzzz"),
                Some(&b.key),
            )
            .await;
        assert_eq!(got, missing, "{method} {path}");
    }
    assert_error(s.poll(&b.key, a_task).await, 404, "task_not_found");

    // Lists and balances hold only the caller's own.
    let (_, list) = s.get(&b.key, "/v1/tasks?limit=200").await;
    let ids: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.task.as_str()]);
    for status in ["exported", "pending", "failed"] {
        let (_, l) = s.get(&b.key, &format!("/v1/tasks?status={status}")).await;
        assert!(
            l["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["task_id"] != a_task.as_str())
        );
    }
    let (_, bal_b) = s.get(&b.key, "/v1/balance").await;
    assert_eq!(bal_b["name"], "ben");
    assert_eq!(bal_b["usage"]["tasks"], 1);
    assert!(
        bal_b["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["task_id"] != a_task.as_str()),
        "{bal_b}"
    );
    // Callback secrets are per user.
    let (_, sa) = s.get(&a.key, "/v1/callback-secret").await;
    let (_, sb) = s.get(&b.key, "/v1/callback-secret").await;
    assert_ne!(sa["secret"], sb["secret"]);

    // Signed links: A's signature does not open B's result, nor an altered expiry, nor a
    // guessed id; a link minted for a task opens only that task.
    let link_a = a.view["result_url"].as_str().unwrap();
    let link_b = b.view["result_url"].as_str().unwrap();
    let query_a = link_a.split_once('?').unwrap().1;
    let query_b = link_b.split_once('?').unwrap().1;
    let forged = [
        format!("{}/v1/results/{}.zip?{query_a}", s.base, b.task),
        format!("{}/v1/results/{}.zip?{query_b}", s.base, a.task),
        format!("{}/v1/results/{}.zip", s.base, a.task),
        link_a.replace("expires=", "expires=9"),
        format!("{}/v1/results/d4g8o46p2jvh04o9uzzz.zip?{query_a}", s.base),
        format!("{}/v1/results/..%2F..%2Fnumcheck.db?{query_a}", s.base),
    ];
    for url in &forged {
        let resp = s.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{url}");
        assert_error(json(resp).await, 403, "invalid_signature");
    }
    assert_eq!(s.http.get(link_a).send().await.unwrap().status(), 200);
    assert_eq!(s.http.get(link_b).send().await.unwrap().status(), 200);

    // Nothing B did changed A's task.
    let (code, detail) = s.get(&a.key, &format!("/v1/tasks/{a_task}")).await;
    assert_eq!(code, 200);
    assert_eq!(detail["status"], "exported");
    assert_eq!(
        detail["callback"]["url"],
        "https://hooks.example.com/numcheck"
    );
    s.stop().await;
}

#[tokio::test]
async fn path_tricks_never_reach_the_data_folder() {
    let s = TestServer::start().await;
    for path in [
        "/v1/results/..%2Fnumcheck.db",
        "/v1/results/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/assets/..%2F..%2FCargo.toml",
        "/v1/tasks/..%2F..%2Fsecret",
    ] {
        let (status, body) = s.call(Method::GET, path, None).await;
        assert!(matches!(status, 401 | 403 | 404), "{path}: {status}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    s.stop().await;
}
