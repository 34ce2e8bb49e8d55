//! Credits: checked at create, charged once at export for unique numbers only.

use crate::helpers::*;

async fn ledger(s: &TestServer, user_id: &str) -> Vec<numcheck_store::LedgerRow> {
    s.state
        .engine
        .store
        .ledger(&user_id.parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_task_is_charged_once_for_its_unique_numbers_not_duplicates_or_failures() {
    let s = TestServer::start().await;
    let key = s.key("payer", Some(10)).await;
    // 7 lines: 3 unique parseable numbers (one invalid), 2 duplicates, 2 failures.
    let file = b"+14155552671\n+1 415 555 2671\ngarbage\n+33612345678\n+4400000000\n+33 6 12 34 56 78\n+999 1\n";
    let (code, created) = s.create(&key, file).await;
    assert_eq!(code, 200, "{created}");
    let v = s.wait(&key, created["task_id"].as_str().unwrap()).await;
    assert_eq!(
        (v["success"].as_i64(), v["failure"].as_i64()),
        (Some(5), Some(2))
    );
    let user = v["user_id"].as_str().unwrap();
    let rows = ledger(&s, user).await;
    let charges: Vec<i64> = rows
        .iter()
        .filter(|r| r.kind == "charge")
        .map(|r| r.amount)
        .collect();
    assert_eq!(charges, [-3]);
    assert_eq!(
        rows.iter().map(|r| r.amount).sum::<i64>(),
        7,
        "ledger balances to 10 - 3"
    );
    let user = s
        .state
        .engine
        .store
        .user(&user.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.credits, Some(7));
    // Polling again charges nothing more.
    s.poll(&key, created["task_id"].as_str().unwrap()).await;
    assert_eq!(
        ledger(&s, v["user_id"].as_str().unwrap()).await.len(),
        rows.len()
    );
    // A task of which no line is a number costs nothing and writes no ledger row.
    let (code, created) = s.create(&key, b"garbage\nmore garbage\n").await;
    assert_eq!(code, 200, "{created}");
    let v = s.wait(&key, created["task_id"].as_str().unwrap()).await;
    assert_eq!(v["failure"], 2);
    assert_eq!(ledger(&s, user.id.as_str()).await.len(), rows.len());
    s.stop().await;
}

#[tokio::test]
async fn create_answers_402_when_the_balance_cannot_cover_the_unique_numbers() {
    let s = TestServer::start().await;
    let key = s.key("poor", Some(2)).await;
    // 3 unique numbers (duplicates and garbage do not count).
    let (code, body) = s
        .create(
            &key,
            b"+14155552671\n+33612345678\n+14155552671\nx\n+4930901820\n",
        )
        .await;
    assert_error((code, body), 402, "insufficient_credits");
    // 2 unique numbers fit.
    let (code, created) = s
        .create(&key, b"+14155552671\n+33612345678\n+14155552671\nx\n")
        .await;
    assert_eq!(code, 200, "{created}");
    // That task holds (or has spent) both credits: another task does not fit.
    assert_error(
        s.create(&key, b"+14155552671\n").await,
        402,
        "insufficient_credits",
    );
    let uploads = s.data_dir.join("blobs").join("uploads");
    let stored = std::fs::read_dir(&uploads).unwrap().count();
    assert!(stored <= 2, "refused uploads are deleted ({stored} stored)");
    s.stop().await;
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_task_and_charges_nothing_again() {
    let s = TestServer::start().await;
    let key = s.key("retrier", Some(100)).await;
    let form = || file_form(b"+14155552671\n+33612345678\n").text("task_type", "active_check");
    let (c1, first) = s.create_form(&key, form(), Some("order-42")).await;
    assert_eq!(c1, 200);
    let v = s.wait(&key, first["task_id"].as_str().unwrap()).await;
    let (c2, second) = s.create_form(&key, form(), Some("order-42")).await;
    assert_eq!(c2, 200);
    assert_eq!(second["task_id"], first["task_id"]);
    assert_eq!(second["created_at"], first["created_at"]);
    assert_eq!(second["total"], first["total"]);
    let (_, third) = s.create_form(&key, form(), Some("order-43")).await;
    assert_ne!(third["task_id"], first["task_id"]);
    s.wait(&key, third["task_id"].as_str().unwrap()).await;
    let charges: Vec<i64> = ledger(&s, v["user_id"].as_str().unwrap())
        .await
        .iter()
        .filter(|r| r.kind == "charge")
        .map(|r| r.amount)
        .collect();
    assert_eq!(charges, [-2, -2], "one charge per task, none for the retry");
    s.stop().await;
}
