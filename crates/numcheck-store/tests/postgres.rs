//! The storage story against PostgreSQL, plus what only a shared database has: concurrent
//! claimers on several nodes, fair share between users, the partitioned evidence log and
//! concurrent ingests.
//!
//! Each test runs in a database of its own ([`numcheck_testkit::TestDb`]), created on the
//! server named by `NUMCHECK_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! dropped at the end. Without a reachable server these tests fail; they never pass silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{DAY, created, folded, lookups_story, new_task, observation, uid, user};
use numcheck_core::{E164, EvidenceClass, Observation, Policy, Profile};
use numcheck_store::prelude::*;
use numcheck_store::{PgStore, Work};
use numcheck_testkit::TestDb;
use sqlx::{Connection, Executor, Row};

async fn store(db: &TestDb) -> PgStore {
    PgStore::connect(&db.url).await.unwrap()
}

async fn pg() -> (TestDb, PgStore) {
    let db = TestDb::new().await;
    let store = store(&db).await;
    (db, store)
}

/// Two nodes: two stores, each with its own pool, on one database.
async fn two_nodes() -> (TestDb, [PgStore; 2]) {
    let db = TestDb::new().await;
    let nodes = [store(&db).await, store(&db).await];
    (db, nodes)
}

common::story_tests! { pg:
    pg_keys_story => keys_story,
    pg_lease_story => lease_story,
    pg_release_story => release_story,
    pg_controls_story => controls_story,
    pg_task_story => task_story,
    pg_evidence_story => evidence_story,
    pg_fair_share_serves_the_user_with_fewer_leases => fair_share_story,
    pg_progress_story => progress_story,
    pg_one_task_claim_story => one_task_claim_story,
}

#[tokio::test]
async fn pg_lookups_story() {
    let (db, store) = pg().await;
    lookups_story(&store).await;
    // The last status given for a number in one call is the one kept.
    let mut conn = db.connection().await;
    let status: String = sqlx::query(
        "SELECT raw_status FROM lookup_cache WHERE provider = 'hlr' AND number = 14155550001",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get(0);
    assert_eq!(status, "z");
    conn.close().await.ok();
    store.close().await;
}

#[tokio::test]
async fn pg_reconnects_to_an_existing_database_without_losing_data() {
    let db = TestDb::new().await;
    let first = store(&db).await;
    first
        .create_user(uid(9), "dave", None, true, 1)
        .await
        .unwrap();
    first.close().await;
    let second = store(&db).await;
    assert!(second.user_by_name("dave").await.unwrap().unwrap().is_admin);
    second.close().await;
}

/// Two nodes (two stores, two pools), four claimers in parallel on one 50-chunk task: every
/// chunk is handed out exactly once while the leases hold, and the export exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_parallel_claimers_never_share_a_chunk() {
    let (_db, nodes) = two_nodes().await;
    let [node_a, node_b] = &nodes;
    let user = user(node_a, 1, "alice", None).await;
    let task = created(
        node_a,
        new_task("d4g8o46p2jvh04o9uol1", &user.id, 50, 0, None),
    )
    .await;
    let claimers: Vec<_> = (0..4)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move {
                let owner = format!("claimer-{i}");
                let mut got = Vec::new();
                while let Some(work) = store.claim_work(&owner, 1_000, 600_000).await.unwrap() {
                    let Work::Chunk { seq, .. } = work else {
                        panic!("export handed out before the chunks were done: {work:?}")
                    };
                    got.push(seq);
                }
                (owner, got)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut by_owner = Vec::new();
    for c in claimers {
        let (owner, got) = c.await.unwrap();
        all.extend(got.iter().copied());
        by_owner.push((owner, got));
    }
    all.sort_unstable();
    assert_eq!(all, (0..50).collect::<Vec<i64>>(), "claims: {by_owner:?}");
    // Nothing more while the leases hold.
    assert!(
        node_b
            .claim_work("late", 2_000, 1_000)
            .await
            .unwrap()
            .is_none()
    );

    // Each owner commits its chunks; then four claimers race for the export.
    for (owner, seqs) in &by_owner {
        for seq in seqs {
            assert!(
                node_a
                    .commit_chunk(&task.id, *seq, owner, 1, 0, 3_000)
                    .await
                    .unwrap()
            );
        }
    }
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move {
                store
                    .claim_work(&format!("exporter-{i}"), 4_000, 600_000)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut exports = 0;
    for r in racers {
        match r.await.unwrap() {
            Some(Work::Export { task: t }) => {
                assert_eq!(t.id, task.id);
                assert_eq!(t.success, 50);
                exports += 1;
            }
            None => {}
            Some(other) => panic!("unexpected work {other:?}"),
        }
    }
    assert_eq!(exports, 1);
    node_a.close().await;
    node_b.close().await;
}

/// A big task created first does not starve a small task of another user created after it.
fn obs_at(n: u64, t: i64, source: &str, msg: Option<&str>) -> Observation {
    let mut o = observation(n, t, EvidenceClass::StrongActive, msg);
    o.source = source.to_owned();
    o
}

/// Months get partitions on demand, times outside the partitioned years go to the default
/// partition, and text the COPY format must escape survives.
#[tokio::test]
async fn pg_evidence_log_is_partitioned_by_month() {
    let (db, store) = pg().await;
    let h = Policy::default().half_lives();
    // 2024-01-31T23:59:59.999Z, 2024-02-01T00:00:00Z, 2024-03-15, and the year 10000.
    let jan_end = 1_706_745_599_999;
    let odd = "smsc\t\"1\"\\n,\nx";
    let batch = vec![
        obs_at(14_155_550_001, jan_end, odd, Some("m\t1\\")),
        obs_at(14_155_550_001, jan_end + 1, "smsc-1", None),
        obs_at(14_155_550_002, jan_end + 44 * DAY, "smsc-1", None),
        obs_at(14_155_550_003, 253_402_300_800_000, "smsc-1", None),
    ];
    let out = store.ingest(batch.clone(), &h, 1).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (4, 0));
    assert_eq!(store.ingest(batch, &h, 2).await.unwrap().inserted, 0);

    let mut conn = db.connection().await;
    let rows = sqlx::query(
        "SELECT c.relname AS part, COUNT(o.*) AS n \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         LEFT JOIN observations o ON o.tableoid = c.oid \
         WHERE i.inhparent = 'observations'::regclass GROUP BY c.relname ORDER BY c.relname",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let parts: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        parts,
        vec![
            ("observations_default".to_owned(), 1),
            ("observations_y2024m01".to_owned(), 1),
            ("observations_y2024m02".to_owned(), 1),
            ("observations_y2024m03".to_owned(), 1),
        ]
    );
    let (source, msg): (String, String) =
        sqlx::query_as("SELECT source, message_id FROM observations WHERE message_id IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((source.as_str(), msg.as_str()), (odd, "m\t1\\"));
    conn.close().await.ok();

    let stats = store.evidence_stats().await.unwrap();
    assert_eq!((stats.observations, stats.numbers), (4, 3));
    assert!(stats.by_source.iter().any(|(s, n)| s == odd && *n == 1));
    store.close().await;
}

/// Two nodes ingest overlapping batches at the same time: every fact is stored once and every
/// profile holds exactly the facts of its number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_concurrent_ingests_store_each_fact_once() {
    let (_db, nodes) = two_nodes().await;
    let [node_a, node_b] = &nodes;
    let h = Policy::default().half_lives();
    // Within one month (2023-11-01 on, ten minutes apart), so the writers are not serialised
    // by partition creation; new numbers keep coming, so writers race to create profiles.
    let facts: Vec<Observation> = (0..3_000u64)
        .map(|i| {
            let msg = format!("m{i}");
            observation(
                14_155_550_000 + i % 1_009,
                1_698_796_800_000 + (i as i64) * 600_000,
                EvidenceClass::ALL[(i % 5) as usize],
                Some(&msg),
            )
        })
        .collect();
    // Writers 0, 1 and 2 each send one round of the 1,009 numbers (disjoint facts about the
    // same numbers, in the same order, so they race to create and update the same profiles);
    // writer 3 sends round 0 again (every fact a duplicate of writer 0's).
    let writers: Vec<_> = (0..4usize)
        .map(|w| {
            let store = nodes[w % 2].clone();
            let mine: Vec<Observation> = facts
                .iter()
                .enumerate()
                .filter(|(i, _)| i / 1_009 == w % 3)
                .map(|(_, o)| o.clone())
                .collect();
            tokio::spawn(async move {
                let mut inserted = 0;
                for part in mine.chunks(97) {
                    inserted += store.ingest(part.to_vec(), &h, 1).await.unwrap().inserted;
                }
                inserted
            })
        })
        .collect();
    let mut inserted = 0;
    for w in writers {
        inserted += w.await.unwrap();
    }
    assert_eq!(inserted, 3_000);
    let numbers: Vec<E164> = facts
        .iter()
        .map(|o| o.number)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let profiles = node_b.profiles(&numbers).await.unwrap();
    assert_eq!(profiles.len(), 1_009);
    for n in &numbers {
        assert!(profiles[n].approx_eq(&folded(&facts, *n, &h), 1e-9), "{n}");
    }
    let report = node_a.rebuild_profiles(&h).await.unwrap();
    assert_eq!(
        (report.observations, report.profiles, report.changed),
        (3_000, 1_009, 0)
    );
    let distinct: HashSet<E164> = profiles.keys().copied().collect();
    assert_eq!(distinct.len(), 1_009);
    node_a.close().await;
    node_b.close().await;
}

/// An ingest that finds no profile for a number while another transaction is creating it waits
/// for that transaction and merges into its profile instead of overwriting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_ingest_merges_into_a_profile_created_concurrently() {
    let (db, store) = pg().await;
    let h = Policy::default().half_lives();
    // The month's partition exists beforehand, so the ingest below takes no table lock.
    store
        .ingest(vec![obs_at(14_155_550_999, 1_000, "s", None)], &h, 1)
        .await
        .unwrap();
    let theirs = observation(14_155_550_001, 2_000, EvidenceClass::StrongInactive, None);
    let ours = observation(14_155_550_001, 3_000, EvidenceClass::StrongActive, None);
    let mut other = db.connection().await;
    other.execute("BEGIN").await.unwrap();
    sqlx::query("INSERT INTO profiles (number, data) VALUES ($1, $2)")
        .bind(14_155_550_001i64)
        .bind(Profile::of(&theirs).to_bytes())
        .execute(&mut other)
        .await
        .unwrap();
    let ingest = {
        let store = store.clone();
        let ours = ours.clone();
        tokio::spawn(async move { store.ingest(vec![ours], &h, 2).await.unwrap() })
    };
    // The ingest now waits on the uncommitted profile row.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!ingest.is_finished());
    other.execute("COMMIT").await.unwrap();
    assert_eq!(ingest.await.unwrap().inserted, 1);
    let n = ours.number;
    let stored = store.profiles(&[n]).await.unwrap();
    let expected = Profile::of(&theirs).merge(&Profile::of(&ours), &h);
    assert!(stored[&n].approx_eq(&expected, 1e-12), "{:?}", stored[&n]);
    other.close().await.ok();
    store.close().await;
}

#[tokio::test]
async fn pg_nodes_hear_of_work_made_on_other_nodes() {
    let (_db, nodes) = two_nodes().await;
    let [node_a, node_b] = &nodes;
    let mut heard = node_b
        .work_signals()
        .await
        .unwrap()
        .expect("PostgreSQL announces work");
    let user = user(node_a, 1, "alice", None).await;
    let task = created(
        node_a,
        new_task("d4g8o46p2jvh04o9uol7", &user.id, 1, 0, None),
    )
    .await;
    hear(&mut heard)
        .await
        .expect("a task created on A is heard on B")
        .unwrap();
    // A chunk committed on A (here: the last, which makes the export claimable) is heard too.
    let Some(Work::Chunk { seq, .. }) = node_a.claim_work("a-1", 1_000, 600_000).await.unwrap()
    else {
        panic!("a chunk to claim")
    };
    assert!(
        node_a
            .commit_chunk(&task.id, seq, "a-1", 5, 0, 1_001)
            .await
            .unwrap()
    );
    hear(&mut heard)
        .await
        .expect("a committed chunk is heard")
        .unwrap();
    assert!(matches!(
        node_b.claim_work("b-1", 1_002, 600_000).await.unwrap(),
        Some(Work::Export { .. })
    ));
    // Leases given back are heard; nothing is announced when nothing was released.
    assert_eq!(node_b.release_leases(Some("b-1")).await.unwrap(), 1);
    hear(&mut heard)
        .await
        .expect("released leases are heard")
        .unwrap();
    assert_eq!(node_b.release_leases(Some("b-1")).await.unwrap(), 0);
    assert!(heard.try_recv().is_err(), "nothing more was announced");
}

/// The next announcement; the bound only ends a failing test (one arrives in milliseconds).
async fn hear(
    heard: &mut numcheck_store::WorkSignals,
) -> Result<Option<()>, tokio::time::error::Elapsed> {
    tokio::time::timeout(std::time::Duration::from_secs(20), heard.recv()).await
}
