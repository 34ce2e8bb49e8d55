//! Task list, detail, cancel, delete and balance.

use reqwest::Method;

use crate::helpers::{TestServer, assert_error};

fn numbers(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("+4477009{:05}\n", i))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn task_list_pages_newest_first_and_shows_only_the_callers_tasks() {
    let s = TestServer::start().await;
    let alice = s.key("alice", None).await;
    let bob = s.key("bob", None).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let (code, body) = s.create(&alice, &numbers(3 + i)).await;
        assert_eq!(code, 200, "{body}");
        created.push(body["task_id"].as_str().unwrap().to_owned());
    }
    let (code, _) = s.create(&bob, &numbers(2)).await;
    assert_eq!(code, 200);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tasks?limit=2&cursor={c}"),
            None => "/v1/tasks?limit=2".to_owned(),
        };
        let (code, page) = s.get(&alice, &path).await;
        assert_eq!(code, 200, "{page}");
        let tasks = page["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2);
        for t in tasks {
            assert_eq!(t["task_type"], "active_check");
            assert_eq!(t["file_name"], "numbers.txt");
            assert!(t["status"].is_string() && t["total"].is_i64());
            seen.push(t["task_id"].as_str().unwrap().to_owned());
        }
        // Paging ends: it never lists more than there is.
        assert!(seen.len() <= created.len(), "{seen:?}");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "every task once, newest first");

    let (_, bobs) = s.get(&bob, "/v1/tasks").await;
    assert_eq!(bobs["tasks"].as_array().unwrap().len(), 1);
    assert!(bobs["next_cursor"].is_null());

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
        ("limit=x", "invalid_limit"),
        ("cursor=nope", "invalid_cursor"),
        ("status=done", "invalid_status"),
        ("sort=asc", "invalid_query"),
    ] {
        let got = s.get(&alice, &format!("/v1/tasks?{query}")).await;
        assert_error(got, 400, code);
    }
    assert_error(s.get("wrong", "/v1/tasks").await, 401, "invalid_api_key");
    s.stop().await;
}

#[tokio::test]
async fn task_detail_holds_the_results_summary_once_exported() {
    let s = TestServer::start().await;
    let key = s.key("carol", None).await;
    let (_, created) = s
        .create(
            &key,
            b"+447700900123\n+447700900123\nnot a number\n+12025550143\n",
        )
        .await;
    let id = created["task_id"].as_str().unwrap();
    let view = s.wait(&key, id).await;
    let (code, detail) = s.get(&key, &format!("/v1/tasks/{id}")).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["task_id"], id);
    assert_eq!(detail["status"], "exported");
    assert_eq!(detail["chunks_done"], detail["chunk_count"]);
    let summary = &detail["summary"];
    assert_eq!(summary["total"], 4);
    assert_eq!(summary["success"], view["success"]);
    assert_eq!(summary["failure"], view["failure"]);
    assert_eq!(summary["unique_numbers"], 2);
    let by_status: i64 = summary["by_status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(by_status, 3, "one verdict per accepted line");
    // The same summary the zip holds.
    assert_eq!(&s.zip(&view).await.summary(), summary);
    s.stop().await;
}

#[tokio::test]
async fn cancelling_an_open_task_releases_its_credits_and_charges_nothing() {
    // No workers: the task stays pending until cancelled.
    let s = TestServer::start_with(|c| c.worker.concurrency = 0).await;
    let key = s.key("dave", Some(100)).await;
    let (_, created) = s.create(&key, &numbers(10)).await;
    let id = created["task_id"].as_str().unwrap();
    let (_, balance) = s.get(&key, "/v1/balance").await;
    assert_eq!(balance["balance"], 100);
    assert_eq!(balance["held"], 10);
    assert_eq!(balance["available"], 90);

    let (code, cancelled) = s.post(&key, &format!("/v1/tasks/{id}/cancel")).await;
    assert_eq!(code, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, polled) = s.poll(&key, id).await;
    assert_eq!(polled["status"], "cancelled");
    assert!(polled.get("result_url").is_none());
    let (_, balance) = s.get(&key, "/v1/balance").await;
    assert_eq!(balance["held"], 0);
    assert_eq!(balance["available"], 100);
    assert_eq!(balance["usage"]["credits_charged"], 0);
    assert_error(
        s.post(&key, &format!("/v1/tasks/{id}/cancel")).await,
        409,
        "task_finished",
    );
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_task_removes_it_its_upload_and_its_result() {
    let s = TestServer::start().await;
    let key = s.key("erin", None).await;
    let (_, created) = s.create(&key, &numbers(20)).await;
    let id = created["task_id"].as_str().unwrap().to_owned();
    let view = s.wait(&key, &id).await;
    let link = view["result_url"].as_str().unwrap().to_owned();
    assert_eq!(s.http.get(&link).send().await.unwrap().status(), 200);
    let blobs = s.data_dir.join("blobs");
    let files_of = |id: &str| {
        walk(&blobs)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(id))
            .count()
    };
    assert!(files_of(&id) >= 3, "upload, result and summary are stored");

    let path = format!("/v1/tasks/{id}");
    let (code, body) = s.delete(&key, &path).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["deleted"], true);
    assert_eq!(files_of(&id), 0, "no file of the task is left");
    assert_error(s.poll(&key, &id).await, 404, "task_not_found");
    assert_error(s.get(&key, &path).await, 404, "task_not_found");
    // The signed link, still within its validity, finds nothing.
    assert_eq!(s.http.get(&link).send().await.unwrap().status(), 404);
    assert_error(s.delete(&key, &path).await, 404, "task_not_found");
    // The charge stays in the ledger.
    let (_, balance) = s.get(&key, "/v1/balance").await;
    assert_eq!(balance["usage"]["tasks"], 0);
    assert_eq!(balance["usage"]["credits_charged"], 20);
    assert!(balance["unlimited"].as_bool().unwrap());
    s.stop().await;
}

#[tokio::test]
async fn another_users_task_cannot_be_seen_cancelled_or_deleted() {
    let s = TestServer::start_with(|c| c.worker.concurrency = 0).await;
    let owner = s.key("fay", None).await;
    let other = s.key("gus", None).await;
    let (_, created) = s.create(&owner, &numbers(3)).await;
    let id = created["task_id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1/tasks/{id}")),
        (Method::POST, format!("/v1/tasks/{id}/cancel")),
        (Method::DELETE, format!("/v1/tasks/{id}")),
        (Method::GET, "/v1/tasks/not-an-id".to_owned()),
    ] {
        let got = s.call(method, &path, Some(&other)).await;
        assert_error(got, 404, "task_not_found");
    }
    // Still there, untouched, for its owner.
    let (code, detail) = s.get(&owner, &format!("/v1/tasks/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(detail["status"], "pending");
    s.stop().await;
}

#[tokio::test]
async fn balance_shows_the_ledger_newest_first() {
    let s = TestServer::start().await;
    let key = s.key("hal", Some(50)).await;
    let (_, created) = s.create(&key, &numbers(7)).await;
    s.wait(&key, created["task_id"].as_str().unwrap()).await;
    let (code, b) = s.get(&key, "/v1/balance").await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["name"], "hal");
    assert_eq!(b["unlimited"], false);
    assert_eq!(b["balance"], 43);
    assert_eq!(b["available"], 43);
    assert_eq!(b["usage"]["numbers_checked"], 7);
    assert_eq!(b["usage"]["credits_charged"], 7);
    let ledger = b["ledger"].as_array().unwrap();
    assert_eq!(ledger[0]["kind"], "charge");
    assert_eq!(ledger[0]["amount"], -7);
    assert_eq!(ledger[0]["task_id"], created["task_id"]);
    assert_eq!(ledger[1]["kind"], "grant");
    assert_eq!(ledger[1]["amount"], 50);
    s.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
