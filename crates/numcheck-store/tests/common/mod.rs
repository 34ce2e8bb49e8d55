//! The storage story shared by every backend's tests: one sequence of operations each
//! backend must pass, and the helpers it uses.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use numcheck_core::{
    E164, EvidenceClass, EvidenceKind, HalfLives, Observation, Policy, Profile, TaskId, TaskStatus,
    TaskType, UserId,
};
use numcheck_store::prelude::*;
use numcheck_store::{
    CallbackOutcome, ChunkSpec, Created, KeyRights, NewTask, StoreError, Task, TaskCursor, User,
    Work,
};

/// Declares one test per story, named as given, each on a fresh store from `$fresh` (an
/// async function returning a guard that must outlive the store, such as its temporary
/// folder or test database, and the store).
macro_rules! story_tests {
    ($fresh:ident: $($name:ident => $story:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $fresh().await;
                $crate::common::$story(&store).await;
                store.close().await;
            }
        )+
    };
}
pub(crate) use story_tests;

pub fn uid(n: u8) -> UserId {
    UserId::from_random([n; 20])
}

pub fn new_task(id: &str, user: &UserId, chunks: usize, needs: i64, idem: Option<&str>) -> NewTask {
    NewTask {
        id: id.parse().unwrap(),
        user_id: user.clone(),
        task_type: TaskType::ActiveCheck,
        total: (chunks * 10) as i64,
        default_region: None,
        created_at_ns: 1_700_000_000_123_456_789,
        input_key: format!("uploads/{id}"),
        input_bytes: 100,
        needs_credits: needs,
        idempotency_key: idem.map(str::to_owned),
        options: "{}".into(),
        callback_url: None,
        file_name: Some(format!("{id}.txt")),
        leased_to: None,
        max_open: None,
        chunks: (0..chunks)
            .map(|i| ChunkSpec {
                byte_start: (i * 100) as i64,
                byte_end: ((i + 1) * 100) as i64,
                first_line: (i * 10 + 1) as i64,
                lines: 10,
            })
            .collect(),
    }
}

/// A new user `uid(n)` named `name`; `credits: None` is unlimited.
pub async fn user(store: &dyn Store, n: u8, name: &str, credits: Option<i64>) -> User {
    store
        .create_user(uid(n), name, credits, false, 1)
        .await
        .unwrap()
}

/// Creates `task`, which must be new (no idempotency key seen before), and returns it.
pub async fn created(store: &dyn Store, task: NewTask) -> Task {
    match store.create_task(task).await.unwrap() {
        Created::New(t) => t,
        Created::Existing(t) => panic!("expected a new task, got the existing {}", t.id),
    }
}

/// The profile of `n` folded directly from `facts`: what the stored one must equal.
pub fn folded(facts: &[Observation], n: E164, h: &HalfLives) -> Profile {
    facts
        .iter()
        .filter(|o| o.number == n)
        .fold(Profile::default(), |acc, o| acc.merge(&Profile::of(o), h))
}

/// Users, keys and revocation.
pub async fn keys_story(store: &dyn Store) {
    let alice = user(store, 1, "alice", Some(100)).await;
    assert!(matches!(
        store.create_user(uid(2), "alice", None, false, 1).await,
        Err(StoreError::Conflict(_))
    ));
    let k = store
        .add_key(&alice.id, "nck_abcd", &[7; 32], KeyRights::ALL, 2)
        .await
        .unwrap();
    assert_eq!(k.user_name, "alice");
    assert_eq!(store.count_keys().await.unwrap(), 1);
    let who = store
        .principal_for_key_hash(&[7; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who.user.id, alice.id);
    assert_eq!(who.rights, KeyRights::ALL);
    assert!(
        store
            .principal_for_key_hash(&[8; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.revoke_key("nck_abcd", 3).await.unwrap(), 1);
    assert!(
        store
            .principal_for_key_hash(&[7; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.revoke_key("nck_abcd", 3).await.unwrap(),
        0,
        "already revoked"
    );
    let listed = store.list_keys().await.unwrap();
    assert_eq!(listed[0].revoked_at_ms, Some(3));
    store
        .grant_credits(&alice.id, 50, "top-up", 4)
        .await
        .unwrap();
    assert_eq!(store.available_credits(&alice.id).await.unwrap(), Some(150));
    let ledger = store.ledger(&alice.id).await.unwrap();
    assert_eq!(ledger.iter().map(|r| r.amount).sum::<i64>(), 150);
}

/// A task's life: create, idempotency, credit holds, chunk leases, export and one charge.
pub async fn task_story(store: &dyn Store) {
    let bob = user(store, 3, "bob", Some(25)).await;
    let other = user(store, 4, "carol", None).await;

    // More than the balance: refused, nothing stored.
    let err = store
        .create_task(new_task("d4g8o46p2jvh04o9uol0", &bob.id, 1, 26, None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InsufficientCredits {
            needed: 26,
            available: 25
        }
    ));

    let t = created(
        store,
        new_task("d4g8o46p2jvh04o9uol1", &bob.id, 2, 20, Some("k1")),
    )
    .await;
    assert_eq!(t.status, TaskStatus::Pending);
    assert_eq!(t.reserved, 20);
    // The same idempotency key returns the first task and holds nothing more.
    let again = store
        .create_task(new_task("d4g8o46p2jvh04o9uol2", &bob.id, 2, 20, Some("k1")))
        .await
        .unwrap();
    assert!(matches!(again, Created::Existing(ref e) if e.id == t.id));
    assert_eq!(store.available_credits(&bob.id).await.unwrap(), Some(5));
    // The open-task cap is checked as the task is stored: bob has one open task.
    assert!(matches!(
        store
            .create_task(NewTask {
                max_open: Some(1),
                ..new_task("d4g8o46p2jvh04o9uol6", &bob.id, 1, 1, None)
            })
            .await,
        Err(StoreError::TooManyOpenTasks { cap: 1 })
    ));
    assert!(
        store
            .task(&"d4g8o46p2jvh04o9uol6".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The hold counts against a second task.
    assert!(matches!(
        store
            .create_task(new_task("d4g8o46p2jvh04o9uol3", &bob.id, 1, 6, None))
            .await,
        Err(StoreError::InsufficientCredits { .. })
    ));
    // Another user's idempotency key space is separate.
    assert!(matches!(
        store
            .create_task(new_task(
                "d4g8o46p2jvh04o9uol4",
                &other.id,
                1,
                0,
                Some("k1")
            ))
            .await
            .unwrap(),
        Created::New(_)
    ));

    // Chunks are leased in order; a leased chunk is not handed out twice until it expires.
    let w1 = store.claim_work("w1", 1000, 500).await.unwrap().unwrap();
    let Work::Chunk { task, seq: 0, .. } = &w1 else {
        panic!("{w1:?}")
    };
    assert_eq!(task.id, t.id);
    assert_eq!(
        store.task(&t.id).await.unwrap().unwrap().status,
        TaskStatus::Processing
    );
    let w2 = store.claim_work("w2", 1000, 500).await.unwrap().unwrap();
    assert!(matches!(w2, Work::Chunk { seq: 1, .. }));
    // w1 dies; after its lease expires, w3 takes chunk 0 over. w1's late commit is refused.
    let w3 = store.claim_work("w3", 2000, 500).await.unwrap().unwrap();
    assert!(matches!(&w3, Work::Chunk { task, seq: 0, .. } if task.id == t.id));
    assert!(
        !store
            .commit_chunk(&t.id, 0, "w1", 10, 0, 2001)
            .await
            .unwrap()
    );
    assert!(
        store
            .commit_chunk(&t.id, 0, "w3", 9, 1, 2002)
            .await
            .unwrap()
    );
    assert!(
        !store
            .commit_chunk(&t.id, 0, "w3", 9, 1, 2003)
            .await
            .unwrap(),
        "only once"
    );
    let mid = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!((mid.success, mid.failure, mid.chunks_done), (9, 1, 1));
    // Chunk 1 expired too (w2 took it at 1000); re-claim and commit.
    let next = loop {
        let w = store.claim_work("w3", 3000, 500).await.unwrap().unwrap();
        if matches!(&w, Work::Chunk { task, .. } if task.id == t.id) {
            break w;
        }
        // The other user's task is later in line; finish its chunk too.
        if let Work::Chunk { task, seq, .. } = &w {
            assert!(
                store
                    .commit_chunk(&task.id, *seq, "w3", 10, 0, 3000)
                    .await
                    .unwrap()
            );
        }
    };
    assert!(matches!(next, Work::Chunk { seq: 1, .. }));
    assert!(
        store
            .commit_chunk(&t.id, 1, "w3", 10, 0, 3001)
            .await
            .unwrap()
    );

    // All chunks done: the export is handed out, once.
    let ex = store.claim_work("w4", 3002, 500).await.unwrap().unwrap();
    let Work::Export { task } = ex else {
        panic!("expected export")
    };
    assert_eq!(task.id, t.id);
    assert!(
        !store
            .finish_export(&t.id, "w5", "results/x.zip", 18, 3003)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_export(&t.id, "w4", "results/x.zip", 18, 3003)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_export(&t.id, "w4", "results/x.zip", 18, 3004)
            .await
            .unwrap(),
        "charged once"
    );
    let done = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Exported);
    assert_eq!(
        (done.success, done.failure, done.charged),
        (19, 1, Some(18))
    );
    assert_eq!(store.available_credits(&bob.id).await.unwrap(), Some(7));
    let charges: Vec<_> = store
        .ledger(&bob.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "charge")
        .collect();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount, -18);

    // Failing a task releases its hold and charges nothing.
    let f = created(store, new_task("d4g8o46p2jvh04o9uol5", &bob.id, 1, 7, None)).await;
    assert_eq!(store.available_credits(&bob.id).await.unwrap(), Some(0));
    store.fail_task(&f.id, "input lost", 4000).await.unwrap();
    assert_eq!(store.available_credits(&bob.id).await.unwrap(), Some(7));
    let failed = store.task(&f.id).await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.message.as_deref(), Some("input lost"));
    let unknown: TaskId = "d4g8o46p2jvh04o9uolv".parse().unwrap();
    assert!(store.task(&unknown).await.unwrap().is_none());
}

pub const DAY: i64 = 86_400_000;

pub fn observation(n: u64, t: i64, class: EvidenceClass, msg: Option<&str>) -> Observation {
    Observation {
        number: E164::from_u64(n).unwrap(),
        observed_at_ms: t,
        source: "smsc-1".into(),
        kind: EvidenceKind::SmsDlr,
        raw_code: class.as_str().into(),
        class,
        weight: 1.0,
        message_id: msg.map(str::to_owned),
    }
}

/// Evidence: an append-only log without duplicates, profiles merged incrementally, and a
/// rebuild from the log that equals them.
pub async fn evidence_story(store: &dyn Store) {
    let h = Policy::default().half_lives();
    let classes = [
        EvidenceClass::StrongActive,
        EvidenceClass::WeakInactive,
        EvidenceClass::StrongInactive,
        EvidenceClass::WeakActive,
        EvidenceClass::Neutral,
    ];
    let all: Vec<Observation> = (0..2_000u64)
        .map(|i| {
            let msg = (i % 3 == 0).then(|| format!("m{i}"));
            observation(
                14_155_550_100 + i % 37,
                (i as i64) * DAY / 7,
                classes[(i % 5) as usize],
                msg.as_deref(),
            )
        })
        .collect();
    // Ingest in uneven batches; the second half twice.
    let mut inserted = 0;
    for part in all.chunks(333) {
        inserted += store.ingest(part.to_vec(), &h, 1).await.unwrap().inserted;
    }
    assert_eq!(inserted, 2_000);
    let again = store.ingest(all[1_000..].to_vec(), &h, 2).await.unwrap();
    assert_eq!(
        (again.inserted, again.duplicates),
        (0, 1_000),
        "re-import adds nothing"
    );
    // A batch that repeats a fact inside itself stores it once.
    let twice = vec![observation(4_930_901_820, 5, EvidenceClass::StrongActive, Some("x")); 2];
    let out = store.ingest(twice.clone(), &h, 3).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (1, 1));
    // Same source and message id with different content is the same message.
    let mut retry = twice[0].clone();
    retry.raw_code = "DELIVRD".into();
    assert_eq!(store.ingest(vec![retry], &h, 4).await.unwrap().inserted, 0);

    let numbers: Vec<E164> = (0..37)
        .map(|i| E164::from_u64(14_155_550_100 + i).unwrap())
        .collect();
    let incremental = store.profiles(&numbers).await.unwrap();
    assert_eq!(incremental.len(), 37);
    // The same profiles folded directly from the observations.
    for n in &numbers {
        assert!(incremental[n].approx_eq(&folded(&all, *n, &h), 1e-9), "{n}");
    }
    let stats = store.evidence_stats().await.unwrap();
    assert_eq!((stats.observations, stats.numbers), (2_001, 38));
    assert_eq!(stats.by_class.iter().map(|(_, n)| n).sum::<i64>(), 2_001);

    let report = store.rebuild_profiles(&h).await.unwrap();
    assert_eq!(
        (
            report.observations,
            report.profiles,
            report.changed,
            report.removed
        ),
        (2_001, 38, 0, 0)
    );
    assert!(report.max_relative_difference < 1e-9, "{report:?}");
    let rebuilt = store.profiles(&numbers).await.unwrap();
    for n in &numbers {
        assert!(rebuilt[n].approx_eq(&incremental[n], 1e-9));
    }
}

/// Live lookups: a task's lookup budget, and the per-provider freshness cache.
pub async fn lookups_story(store: &dyn Store) {
    let user = user(store, 5, "erin", None).await;
    let t = created(
        store,
        new_task("d4g8o46p2jvh04o9uol6", &user.id, 1, 0, None),
    )
    .await;
    assert_eq!(store.reserve_lookups(&t.id, 5, 8).await.unwrap(), 5);
    assert_eq!(store.reserve_lookups(&t.id, 5, 8).await.unwrap(), 3);
    assert_eq!(store.reserve_lookups(&t.id, 5, 8).await.unwrap(), 0);
    assert_eq!(store.reserve_lookups(&t.id, 0, 100).await.unwrap(), 0);
    assert_eq!(store.task(&t.id).await.unwrap().unwrap().lookups_made, 8);
    let unknown: TaskId = "d4g8o46p2jvh04o9uolv".parse().unwrap();
    assert!(matches!(
        store.reserve_lookups(&unknown, 1, 10).await,
        Err(StoreError::NotFound)
    ));

    let a = E164::from_u64(14_155_550_001).unwrap();
    let b = E164::from_u64(14_155_550_002).unwrap();
    let c = E164::from_u64(14_155_550_003).unwrap();
    let since = |provider: &'static str, t: i64| async move {
        let found = store.looked_up_since(provider, &[a, b, c], t).await;
        found.unwrap()
    };
    assert!(since("hlr", 0).await.is_empty());
    // A number given twice in one call is recorded once.
    let answers = [(a, "x".into()), (b, String::new()), (a, "y".into())];
    store.record_lookups("hlr", 100, &answers).await.unwrap();
    store.record_lookups("hlr", 100, &[]).await.unwrap();
    assert_eq!(since("hlr", 100).await, [a, b].into_iter().collect());
    assert!(since("hlr", 101).await.is_empty());
    assert!(since("other", 0).await.is_empty());
    // Asking again refreshes the time.
    let again = [(a, "z".into())];
    store.record_lookups("hlr", 200, &again).await.unwrap();
    assert_eq!(since("hlr", 150).await, [a].into_iter().collect());
    let nothing = store.looked_up_since("hlr", &[], 0).await.unwrap();
    assert!(nothing.is_empty());
}

/// Releasing leases: one owner's (a worker shutting down), then everyone's (a single node
/// restarting); released work is handed out again at once.
pub async fn release_story(store: &dyn Store) {
    let fay = user(store, 10, "fay", None).await;
    let t = created(store, new_task("d4g8o46p2jvh04o9ulv2", &fay.id, 3, 0, None)).await;
    for owner in ["w1", "w1", "w2"] {
        assert!(matches!(
            store.claim_work(owner, 1_000, 10_000).await.unwrap(),
            Some(Work::Chunk { .. })
        ));
    }
    assert!(
        store
            .claim_work("w3", 1_000, 10_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.release_leases(Some("w1")).await.unwrap(), 2);
    assert_eq!(store.release_leases(Some("w1")).await.unwrap(), 0);
    // Long before the leases would expire, w1's chunks go to another worker; w2's does not.
    let Some(Work::Chunk { task, .. }) = store.claim_work("w3", 1_001, 10_000).await.unwrap()
    else {
        panic!("expected a released chunk")
    };
    assert_eq!(task.id, t.id);
    assert!(
        store
            .claim_work("w3", 1_001, 10_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .claim_work("w3", 1_001, 10_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.release_leases(None).await.unwrap(), 3);
    assert!(
        store
            .claim_work("w4", 1_002, 10_000)
            .await
            .unwrap()
            .is_some()
    );
}

/// Heartbeats: the holder of a lease extends it, nobody else can, and a finished chunk's or
/// a lost lease cannot be renewed.
pub async fn lease_story(store: &dyn Store) {
    let dave = user(store, 9, "dave", None).await;
    let t = created(
        store,
        new_task("d4g8o46p2jvh04o9ulv1", &dave.id, 1, 0, None),
    )
    .await;
    let Some(Work::Chunk { seq, .. }) = store.claim_work("w1", 1_000, 100).await.unwrap() else {
        panic!("expected a chunk")
    };
    assert!(
        store
            .renew_lease(&t.id, Some(seq), "w1", 5_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease(&t.id, Some(seq), "w2", 5_000)
            .await
            .unwrap()
    );
    // Renewed until 5,000: at 2,000 (past the first lease) nobody may take it.
    assert!(store.claim_work("w2", 2_000, 100).await.unwrap().is_none());
    // Past the renewed lease another worker takes it; the first can no longer renew.
    let Some(Work::Chunk { seq: s2, .. }) = store.claim_work("w2", 6_000, 100).await.unwrap()
    else {
        panic!("expected the expired chunk")
    };
    assert_eq!(s2, seq);
    assert!(
        !store
            .renew_lease(&t.id, Some(seq), "w1", 9_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .commit_chunk(&t.id, seq, "w2", 1, 0, 6_050)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease(&t.id, Some(seq), "w2", 9_000)
            .await
            .unwrap(),
        "done"
    );
    // The export lease renews the same way.
    let Some(Work::Export { .. }) = store.claim_work("w3", 6_100, 100).await.unwrap() else {
        panic!("expected the export")
    };
    assert!(store.renew_lease(&t.id, None, "w3", 9_000).await.unwrap());
    assert!(!store.renew_lease(&t.id, None, "w1", 9_000).await.unwrap());
}

/// Fair share: a user's big task, created first, does not keep a later user's small task
/// waiting once the first user holds more than one live lease.
pub async fn fair_share_story(store: &dyn Store) {
    let a = user(store, 1, "alice", None).await;
    let b = user(store, 2, "bob", None).await;
    let mut big = new_task("d4g8o46p2jvh04o9uol1", &a.id, 20, 0, None);
    big.created_at_ns = 1_000_000_000;
    let mut small = new_task("d4g8o46p2jvh04o9uol2", &b.id, 2, 0, None);
    small.created_at_ns = 2_000_000_000;
    store.create_task(big).await.unwrap();
    store.create_task(small).await.unwrap();
    let claim = |owner: &'static str, now: i64| async move {
        match store.claim_work(owner, now, 1_000).await.unwrap() {
            Some(Work::Chunk { task, seq, .. }) => (task.user_id, seq),
            other => panic!("expected a chunk, got {other:?}"),
        }
    };
    // Alice's task is older: her first chunks go out first (one lease is within the grace).
    assert_eq!(claim("w1", 10_000).await, (a.id.clone(), 0));
    assert_eq!(claim("w2", 10_000).await, (a.id.clone(), 1));
    // Alice now holds two live leases, Bob none: Bob's task is served although younger.
    assert_eq!(claim("w3", 10_000).await, (b.id.clone(), 0));
    assert_eq!(claim("w4", 10_000).await, (b.id.clone(), 1));
    // Bob has nothing left; Alice continues.
    assert_eq!(claim("w5", 10_000).await, (a.id.clone(), 2));
    // Expired leases count for nobody: everything is claimable again, oldest task first.
    assert_eq!(claim("w6", 20_000).await, (a.id.clone(), 0));
}

/// Task controls: the list (paged, per user), cancel, delete, usage, and completion notices
/// queued when a task ends and delivered under a lease.
pub async fn controls_story(store: &dyn Store) {
    let dana = user(store, 21, "dana", Some(100)).await;
    let erin = user(store, 22, "erin", None).await;
    let ids = [
        "d4g8o46p2jvh04o9ua00",
        "d4g8o46p2jvh04o9ua01",
        "d4g8o46p2jvh04o9ua02",
        "d4g8o46p2jvh04o9ua03",
        "d4g8o46p2jvh04o9ua04",
    ];
    for (i, id) in ids.iter().enumerate() {
        let mut t = new_task(id, &dana.id, 2, 10, None);
        // Two tasks share a creation time: the id breaks the tie.
        t.created_at_ns = 1_700_000_000_000_000_000 + (i as i64 / 2) * 1_000;
        t.callback_url = Some(format!("https://example.com/hook/{i}"));
        store.create_task(t).await.unwrap();
    }
    store
        .create_task(new_task("d4g8o46p2jvh04o9ub00", &erin.id, 1, 0, None))
        .await
        .unwrap();

    // Newest first, two at a time, no task twice or missed, only dana's.
    let mut seen = Vec::new();
    let mut after: Option<TaskCursor> = None;
    loop {
        let page = store
            .list_tasks(&dana.id, None, after.as_ref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        after = Some(TaskCursor {
            created_at_ns: last.created_at_ns,
            id: last.id.clone(),
        });
        seen.extend(page.into_iter().map(|t| t.id.to_string()));
        // Paging ends: it never lists more than there is.
        assert!(seen.len() <= ids.len(), "{seen:?}");
    }
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(store.usage(&dana.id).await.unwrap().held, 50);
    assert_eq!(store.available_credits(&dana.id).await.unwrap(), Some(50));

    // Cancel: held credits come back, no chunk is handed out for it, its notice is queued.
    let victim: TaskId = ids[0].parse().unwrap();
    let cancelled = store.cancel_task(&dana.id, &victim, 10).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.reserved, 0);
    assert_eq!(store.available_credits(&dana.id).await.unwrap(), Some(60));
    assert!(matches!(
        store.cancel_task(&dana.id, &victim, 11).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .cancel_task(&erin.id, &ids[1].parse().unwrap(), 11)
            .await,
        Err(StoreError::NotFound)
    ));
    let filtered = store
        .list_tasks(&dana.id, Some(TaskStatus::Cancelled), None, 10)
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].id, victim);
    let mut claimed = Vec::new();
    while let Some(work) = store.claim_work("w", 20, 60_000).await.unwrap() {
        match work {
            Work::Chunk { task, .. } => claimed.push(task.id.to_string()),
            Work::Export { task } => panic!("no task is complete yet: {}", task.id),
        }
    }
    assert!(!claimed.contains(&victim.to_string()));
    assert_eq!(claimed.len(), 4 * 2 + 1);
    // A chunk of a task cancelled while it ran does not count.
    let running: TaskId = ids[1].parse().unwrap();
    assert!(
        store
            .commit_chunk(&running, 0, "w", 10, 0, 30)
            .await
            .unwrap()
    );
    store.cancel_task(&dana.id, &running, 31).await.unwrap();
    assert!(
        !store
            .commit_chunk(&running, 1, "w", 10, 0, 32)
            .await
            .unwrap()
    );
    assert_eq!(store.task(&running).await.unwrap().unwrap().success, 10);

    // The cancelled tasks' notices: leased one at a time, retried, delivered once.
    let claim = |owner: &'static str, now: i64| async move {
        store.claim_callback(owner, now, 30_000).await.unwrap()
    };
    let finish = |task: &TaskId, owner: &'static str, outcome: CallbackOutcome, now: i64| {
        let task = task.clone();
        async move {
            let recorded = store.finish_callback(&task, owner, &outcome, now).await;
            recorded.unwrap()
        }
    };
    let first = claim("s1", 40).await.unwrap();
    assert_eq!(first.task.id, victim);
    assert_eq!(first.url, "https://example.com/hook/0");
    assert_eq!(first.attempts, 0);
    let second = claim("s2", 40).await.unwrap();
    assert_eq!(second.task.id, running);
    assert!(claim("s3", 40).await.is_none());
    let retry = CallbackOutcome::Retry {
        next_at_ms: 1_000,
        status: Some(500),
        error: "HTTP 500".into(),
    };
    assert!(finish(&victim, "s1", retry, 41).await);
    // Not due yet.
    assert!(claim("s3", 999).await.is_none());
    let again = claim("s3", 1_000).await.unwrap();
    assert_eq!(again.task.id, victim);
    assert_eq!(again.attempts, 1);
    // The old lease holder cannot record anything any more.
    let delivered = |status| CallbackOutcome::Delivered { status };
    assert!(!finish(&victim, "s1", delivered(200), 1_001).await);
    assert!(finish(&victim, "s3", delivered(204), 1_002).await);
    let state = store.callback_state(&victim).await.unwrap().unwrap();
    assert_eq!(state.state, "delivered");
    assert_eq!(state.attempts, 2);
    assert_eq!(state.last_status, Some(204));
    assert_eq!(state.delivered_at_ms, Some(1_002));
    let gave_up = CallbackOutcome::GaveUp {
        status: None,
        error: "refused".into(),
    };
    assert!(finish(&running, "s2", gave_up, 1_003).await);
    assert_eq!(
        store.callback_state(&running).await.unwrap().unwrap().state,
        "failed"
    );
    assert!(claim("s4", 10_000_000).await.is_none());

    // Each user's signing secret: made once, kept, replaced only on rotation.
    for (user, offered, rotate, kept) in [
        (&dana.id, "first", false, "first"),
        (&dana.id, "second", false, "first"),
        (&erin.id, "erins", false, "erins"),
        (&dana.id, "third", true, "third"),
        (&dana.id, "x", false, "third"),
    ] {
        let secret = store.callback_secret(user, offered, rotate).await.unwrap();
        assert_eq!(secret, kept, "{offered}, rotate: {rotate}");
    }
    assert!(matches!(
        store.callback_secret(&uid(99), "x", false).await,
        Err(StoreError::NotFound)
    ));

    // A task without a callback URL queues nothing when it fails.
    let erins: TaskId = "d4g8o46p2jvh04o9ub00".parse().unwrap();
    store.fail_task(&erins, "broken", 50).await.unwrap();
    assert!(store.callback_state(&erins).await.unwrap().is_none());

    // Delete: only the owner; an open task goes with its hold; the row is gone.
    let open: TaskId = ids[4].parse().unwrap();
    assert!(matches!(
        store.delete_task(&erin.id, &open, 60).await,
        Err(StoreError::NotFound)
    ));
    let gone = store.delete_task(&dana.id, &open, 60).await.unwrap();
    assert_eq!(gone.id, open);
    assert_eq!(gone.input_key, format!("uploads/{open}"));
    assert!(store.task(&open).await.unwrap().is_none());
    assert!(matches!(
        store.delete_task(&dana.id, &open, 61).await,
        Err(StoreError::NotFound)
    ));
    let usage = store.usage(&dana.id).await.unwrap();
    assert_eq!(usage.tasks, 4);
    assert_eq!(usage.held, 20);
    assert_eq!(usage.credits_charged, 0);
    assert_eq!(store.available_credits(&dana.id).await.unwrap(), Some(80));
    // The ledger, newest first, limited.
    let recent = store.ledger_recent(&dana.id, 1).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].kind, "grant");
}

/// Progress inside chunks: shown in the task's counters while they run, only ever growing,
/// replaced by the final counts when they commit.
pub async fn progress_story(store: &dyn Store) {
    let erin = user(store, 11, "erin", None).await;
    let t = created(
        store,
        new_task("d4g8o46p2jvh04o9ulp1", &erin.id, 2, 0, None),
    )
    .await;
    let shown = |t: Task| (t.success, t.failure);
    let task = || async { store.task(&t.id).await.unwrap().unwrap() };
    let Some(Work::Chunk { seq: a, .. }) = store.claim_work("w1", 1_000, 100).await.unwrap() else {
        panic!("expected a chunk")
    };
    let Some(Work::Chunk { seq: b, .. }) = store.claim_work("w2", 1_000, 100).await.unwrap() else {
        panic!("expected the second chunk")
    };
    assert!(store.report_progress(&t.id, a, "w1", 3, 1).await.unwrap());
    assert!(store.report_progress(&t.id, b, "w2", 2, 0).await.unwrap());
    assert_eq!(shown(task().await), (5, 1));
    // Not the owner's: refused, nothing shown.
    assert!(!store.report_progress(&t.id, a, "w2", 9, 9).await.unwrap());
    // Lower counts (a redo catching up) change nothing; higher ones add what grew.
    assert!(store.report_progress(&t.id, a, "w1", 1, 0).await.unwrap());
    assert_eq!(shown(task().await), (5, 1));
    assert!(store.report_progress(&t.id, a, "w1", 6, 1).await.unwrap());
    assert_eq!(shown(task().await), (8, 1));
    // The final counts replace the progress shown.
    assert!(
        store
            .commit_chunk(&t.id, a, "w1", 8, 2, 1_050)
            .await
            .unwrap()
    );
    assert_eq!(shown(task().await), (10, 2));
    // A done chunk takes no more progress.
    assert!(!store.report_progress(&t.id, a, "w1", 20, 20).await.unwrap());
    // A chunk whose lease ran out keeps its progress for whoever redoes it.
    let Some(Work::Chunk { seq: b2, .. }) = store.claim_work("w3", 5_000, 100).await.unwrap()
    else {
        panic!("expected the expired chunk")
    };
    assert_eq!(b2, b);
    assert!(store.report_progress(&t.id, b, "w3", 1, 0).await.unwrap());
    assert_eq!(shown(task().await), (10, 2), "never backwards");
    assert!(
        store
            .commit_chunk(&t.id, b, "w3", 9, 1, 5_050)
            .await
            .unwrap()
    );
    let done = task().await;
    assert_eq!(shown(done.clone()), (17, 3));
    assert_eq!(done.success + done.failure, 20);
}

/// One task's work, claimed where the task was made: its chunks in order, then its export,
/// never another task's, never what someone else holds.
pub async fn one_task_claim_story(store: &dyn Store) {
    let fay = user(store, 12, "fay", None).await;
    let older = created(store, new_task("d4g8o46p2jvh04o9ulq1", &fay.id, 1, 0, None)).await;
    let small = created(store, new_task("d4g8o46p2jvh04o9ulq2", &fay.id, 2, 0, None)).await;
    let claim = |owner: &'static str, at: i64| {
        let id = small.id.clone();
        async move { store.claim_task_work(&id, owner, at, 100).await.unwrap() }
    };
    let Some(Work::Chunk { task, seq: 0, .. }) = claim("inline", 1_000).await else {
        panic!("the small task's first chunk")
    };
    assert_eq!(
        (task.id.clone(), task.status),
        (small.id.clone(), TaskStatus::Processing)
    );
    let Some(Work::Chunk { seq: 1, .. }) = claim("inline", 1_000).await else {
        panic!("its second chunk")
    };
    // Both held: nothing more of this task for anyone; a worker gets the older task's chunk.
    assert!(claim("other", 1_010).await.is_none());
    let Some(Work::Chunk { task, .. }) = store.claim_work("w1", 1_010, 100).await.unwrap() else {
        panic!("the older task's chunk")
    };
    assert_eq!(task.id, older.id);
    for seq in [0, 1] {
        assert!(
            store
                .commit_chunk(&small.id, seq, "inline", 10, 0, 1_020)
                .await
                .unwrap()
        );
    }
    let Some(Work::Export { task }) = claim("inline", 1_030).await else {
        panic!("its export")
    };
    assert_eq!(task.id, small.id);
    assert!(claim("other", 1_040).await.is_none(), "the export is held");

    // A task stored with its chunks leased to the node that runs it: no one else gets them
    // while the lease lasts, the holder commits them, and after the lease anyone may take them.
    let held = created(
        store,
        NewTask {
            leased_to: Some(("here".into(), 60_000)),
            ..new_task("d4g8o46p2jvh04o9ulq3", &fay.id, 2, 0, None)
        },
    )
    .await;
    while let Some(work) = store.claim_work("w2", 2_000, 100_000).await.unwrap() {
        assert!(
            !matches!(&work, Work::Chunk { task, .. } if task.id == held.id),
            "{work:?}"
        );
    }
    assert!(
        store
            .claim_task_work(&held.id, "there", 2_000, 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .commit_chunk(&held.id, 0, "here", 10, 0, 2_010)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.claim_work("w2", 70_000, 100).await.unwrap(),
        Some(Work::Chunk { .. })
    ));
}
