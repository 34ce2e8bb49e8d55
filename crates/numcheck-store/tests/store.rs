//! The storage story against the SQLite backend (the story itself is in `common`), and
//! SQLite-only behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{observation, uid};
use numcheck_core::{E164, EvidenceClass, Policy};
use numcheck_store::SqliteStore;
use numcheck_store::prelude::*;
use numcheck_testkit::wait_for;

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("numcheck.db"))
        .await
        .unwrap();
    (dir, store)
}

common::story_tests! { sqlite:
    sqlite_evidence_story => evidence_story,
    sqlite_keys_story => keys_story,
    sqlite_task_story => task_story,
    sqlite_fair_share_story => fair_share_story,
    sqlite_controls_story => controls_story,
    sqlite_lease_story => lease_story,
    sqlite_release_story => release_story,
    sqlite_lookups_story => lookups_story,
    sqlite_progress_story => progress_story,
    sqlite_one_task_claim_story => one_task_claim_story,
}

#[tokio::test]
async fn sqlite_reopens_an_existing_database_without_losing_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numcheck.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .create_user(uid(9), "dave", None, true, 1)
            .await
            .unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(store.user_by_name("dave").await.unwrap().unwrap().is_admin);
}

/// Polls until the store has built at least `n` presence filters.
async fn wait_for_filter(store: &SqliteStore, n: u64) {
    wait_for(format!("presence filter build {n}"))
        .every(Duration::from_millis(10))
        .until(|| async {
            let built = store.presence_filter_builds();
            if built >= n {
                Ok(())
            } else {
                Err(format!("{built} built"))
            }
        })
        .await;
}

/// Ingests one observation of `number` in `class`.
async fn ingest_one(store: &SqliteStore, number: E164, class: EvidenceClass) {
    let hl = Policy::default().half_lives();
    let fact = observation(number.as_u64(), 1_000, class, None);
    store.ingest(vec![fact], &hl, 2_000).await.unwrap();
}

#[tokio::test]
async fn presence_filter_never_hides_evidence_written_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numcheck.db");
    let server = SqliteStore::open(&path).await.unwrap();
    let a = E164::from_u64(14155550001).unwrap();
    let b = E164::from_u64(14155550002).unwrap();
    let c = E164::from_u64(14155550003).unwrap();
    ingest_one(&server, a, EvidenceClass::StrongActive).await;
    server.keep_presence_filter();
    wait_for_filter(&server, 1).await;
    let found = server.profiles(&[a, b, c]).await.unwrap();
    assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![a]);

    // The serving process ingests: the filter learns the number before the commit.
    ingest_one(&server, b, EvidenceClass::StrongInactive).await;
    let found = server.profiles(&[a, b, c]).await.unwrap();
    assert!(found.contains_key(&a) && found.contains_key(&b) && !found.contains_key(&c));
    assert_eq!(server.presence_filter_builds(), 1, "no rebuild needed");

    // Another process (the CLI) ingests next to it: the server must still see the number at
    // once, before and after its filter is rebuilt.
    let cli = SqliteStore::open(&path).await.unwrap();
    ingest_one(&cli, c, EvidenceClass::StrongActive).await;
    let found = server.profiles(&[a, b, c]).await.unwrap();
    assert_eq!(
        found.len(),
        3,
        "evidence from another process hidden: {found:?}"
    );
    wait_for_filter(&server, 2).await;
    let found = server.profiles(&[a, b, c]).await.unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[&c].classes,
        cli.profiles(&[c]).await.unwrap()[&c].classes
    );
}

#[tokio::test]
async fn sqlite_has_no_other_nodes_to_hear_from() {
    let (_dir, store) = sqlite().await;
    assert!(store.work_signals().await.unwrap().is_none());
}
