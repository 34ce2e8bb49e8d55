//! Workers: claim a leased piece of work, do it, commit it; repeat until shutdown.
//!
//! A chunk's outputs are written to the blob store first and committed to the database with
//! the chunk's counters in one transaction after, so a crash at any point either loses the
//! chunk (it is leased again and redone, overwriting the same blobs) or keeps it whole.
//! Counters never go backwards and never count a chunk twice.

use std::time::Duration;

use numcheck_blob::BlobError;
use numcheck_core::RegionCode;
use numcheck_store::{ChunkSpec, Task, Work};

use crate::Engine;
use crate::blob_keys::TaskFiles;
use crate::chunk::{ChunkJob, Progress};
use crate::clock::{now_ms, rfc3339_ms};
use crate::export::{self, ResultSpec};
use crate::options::TaskOptions;

/// Idle workers look for work this often even without a wake-up (expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often a chunk in work records its progress (the task's counters move at least this
/// often while it runs).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Pause after a failed piece of work before claiming again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// One worker's loop. Returns when the server shuts down, after finishing the work in hand.
pub async fn run(engine: Engine, owner: String) {
    let lease_ms = engine.config.worker.lease_ms();
    tracing::debug!(%owner, "worker started");
    loop {
        if engine.shutdown.is_cancelled() {
            break;
        }
        let notified = engine.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match engine.store.claim_work(&owner, now_ms(), lease_ms).await {
            Ok(Some(work)) => {
                if let Err(e) = handle(&engine, &owner, work, true).await {
                    tracing::error!(error = %format!("{e:#}"), %owner, "work failed; it will be retried");
                    give_back(&engine, &owner).await;
                    pause(&engine, ERROR_PAUSE).await;
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = engine.shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim work");
                pause(&engine, ERROR_PAUSE).await;
            }
        }
    }
    tracing::debug!(%owner, "worker stopped");
}

/// The lease owner [`run_now`] works as for `task` on this node.
pub fn now_owner(task: &numcheck_core::TaskId) -> String {
    format!("{}-now-{task}", std::process::id())
}

/// Does one small task's work now, in the caller's runtime, as `owner`, which holds its
/// chunks from its creation ([`numcheck_store::NewTask::leased_to`]): its chunks in order,
/// then its export. Whatever fails here is left to the workers (they take a chunk over once
/// its lease runs out).
pub async fn run_now(engine: Engine, task: Task, owner: String, chunks: Vec<ChunkSpec>) {
    if let Err(e) = work_now(&engine, &task, &owner, chunks).await {
        tracing::warn!(error = %format!("{e:#}"), task = %task.id, "a small task's work failed; the workers will retry it");
        give_back(&engine, &owner).await;
        engine.work.notify_waiters();
    }
}

async fn work_now(
    engine: &Engine,
    task: &Task,
    owner: &str,
    chunks: Vec<ChunkSpec>,
) -> anyhow::Result<()> {
    for (seq, spec) in chunks.into_iter().enumerate() {
        process_chunk(engine, owner, task, seq as i64, spec, false).await?;
    }
    let lease_ms = engine.config.worker.lease_ms();
    match engine
        .store
        .claim_task_work(&task.id, owner, now_ms(), lease_ms)
        .await?
    {
        Some(work @ Work::Export { .. }) => handle(engine, owner, work, false).await,
        // A chunk that came free again (its lease ran out here): done here too; the workers
        // are told when it was the last, and take the export.
        Some(chunk) => handle(engine, owner, chunk, true).await,
        None => Ok(()),
    }
}

/// Gives back every lease `owner` holds, so a retry need not wait for them to expire.
async fn give_back(engine: &Engine, owner: &str) {
    if let Err(e) = engine.store.release_leases(Some(owner)).await {
        tracing::warn!(error = %e, "could not release leases");
    }
}

/// Relays every node's announcements of work (a shared database's notifications) to this
/// node's idle workers, until shutdown: work created on another node starts here at once, not
/// at the next poll. Returns at once where the store has no announcements (the embedded
/// default, where [`crate::tasks`] and the workers wake each other in the process).
pub async fn relay_work_signals(engine: Engine) {
    let mut signals = match engine.store.work_signals().await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for work notifications; workers poll every {IDLE_POLL:?}");
            return;
        }
    };
    tracing::debug!("listening for work notifications");
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(()) => engine.work.notify_waiters(),
                None => break,
            },
            _ = engine.shutdown.cancelled() => break,
        }
    }
}

async fn pause(engine: &Engine, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = engine.shutdown.cancelled() => {}
    }
}

/// Does one piece of work. `share` says whether a finished task's export is for the other
/// workers (a worker's loop) or is this caller's next step ([`run_now`]).
async fn handle(engine: &Engine, owner: &str, work: Work, share: bool) -> anyhow::Result<()> {
    match work {
        Work::Chunk { task, seq, spec } => {
            process_chunk(engine, owner, &task, seq, spec, share).await
        }
        Work::Export { task } => export_task(engine, owner, &task).await,
    }
}

async fn process_chunk(
    engine: &Engine,
    owner: &str,
    task: &Task,
    seq: i64,
    spec: ChunkSpec,
    share: bool,
) -> anyhow::Result<()> {
    let range = spec.byte_start as u64..spec.byte_end as u64;
    let data = match engine.blobs.get_range(&task.input_key, range).await {
        Ok(d) => d,
        Err(BlobError::NotFound(_)) if crate::tasks::ended_by_user(engine, &task.id).await? => {
            given_up(engine, task, "reading its upload").await;
            return Ok(());
        }
        Err(BlobError::NotFound(_)) => {
            tracing::error!(task = %task.id, "the task's upload is gone; failing the task");
            engine
                .store
                .fail_task(&task.id, "the uploaded file is no longer stored", now_ms())
                .await?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let region = match &task.default_region {
        Some(r) => Some(
            r.parse::<RegionCode>()
                .map_err(|e| anyhow::anyhow!("stored region: {e}"))?,
        ),
        None => None,
    };
    let progress = std::sync::Arc::new(Progress::default());
    let job = engine.checker.run_chunk(
        &engine.blobs,
        ChunkJob {
            data,
            byte_start: spec.byte_start as u64,
            first_line: spec.first_line as u64,
            region,
            task_type: task.task_type,
            options: TaskOptions::from_json(&task.options),
            as_of_ms: task.created_at_ns / 1_000_000,
            parts: TaskFiles::of(&task.id).parts(),
            seq,
            task: Some(task.id.clone()),
            progress: progress.clone(),
        },
    );
    let started = std::time::Instant::now();
    let summary = match with_heartbeat(engine, owner, task, Some((seq, &progress)), job).await {
        Ok(Some(summary)) => summary,
        Ok(None) if crate::tasks::ended_by_user(engine, &task.id).await? => {
            given_up(engine, task, "processing a chunk").await;
            return Ok(());
        }
        Ok(None) => {
            tracing::warn!(task = %task.id, seq, "chunk lease lost while working; another worker owns it");
            return Ok(());
        }
        Err(e) if crate::tasks::ended_by_user(engine, &task.id).await? => {
            tracing::debug!(task = %task.id, error = %e, "chunk stopped by the task's end");
            given_up(engine, task, "processing a chunk").await;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let committed = engine
        .store
        .commit_chunk(
            &task.id,
            seq,
            owner,
            summary.success as i64,
            summary.failure as i64,
            now_ms(),
        )
        .await?;
    if committed {
        engine.metrics.chunk_seconds.observe(started.elapsed());
        engine.metrics.verdicts(&summary.by_status, summary.failure);
        tracing::debug!(task = %task.id, seq, success = summary.success, failure = summary.failure, "chunk committed");
        if share && seq + 1 == task.chunk_count {
            engine.work.notify_waiters();
        }
    } else if crate::tasks::ended_by_user(engine, &task.id).await? {
        given_up(engine, task, "processing a chunk").await;
    } else {
        tracing::warn!(task = %task.id, seq, "chunk lease lost; another worker owns it");
    }
    Ok(())
}

/// A task cancelled or deleted while this worker was at it: the work is dropped and what it
/// wrote meanwhile removed (the cancel or delete removed what was there before).
async fn given_up(engine: &Engine, task: &Task, step: &str) {
    crate::tasks::remove_files(engine, task).await;
    tracing::info!(task = %task.id, step, "task cancelled or deleted meanwhile; its files are removed");
}

/// Runs `work` while renewing the lease on it every third of the lease time, and, for a chunk,
/// recording its progress every [`PROGRESS_EVERY`] so the task's counters move. `None` when
/// the lease was lost meanwhile (another worker took the work over): the work is abandoned.
async fn with_heartbeat<T>(
    engine: &Engine,
    owner: &str,
    task: &Task,
    chunk: Option<(i64, &Progress)>,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let seq = chunk.map(|(seq, _)| seq);
    let lease_ms = engine.config.worker.lease_ms();
    let every = std::time::Duration::from_millis((lease_ms / 3).max(100) as u64);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut reported = (0, 0);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done.map(Some),
            _ = tick.tick(), if chunk.is_some() => {
                if let Some((seq, progress)) = chunk
                    && progress.get() != reported
                {
                    let (success, failure) = progress.get();
                    match engine.store.report_progress(&task.id, seq, owner, success as i64, failure as i64).await {
                        Ok(_) => reported = (success, failure),
                        // Progress is for people: a failed report waits for the next tick.
                        Err(e) => tracing::debug!(error = %e, task = %task.id, "progress report failed"),
                    }
                }
            }
            _ = beat.tick() => {
                match engine.store.renew_lease(&task.id, seq, owner, now_ms() + lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    // A failed renewal is not a lost lease: keep working, try again next beat.
                    Err(e) => tracing::warn!(error = %e, task = %task.id, "lease renewal failed"),
                }
            }
        }
    }
}

/// Builds, publishes and charges a task's result.
async fn export_task(engine: &Engine, owner: &str, task: &Task) -> anyhow::Result<()> {
    let files = TaskFiles::of(&task.id);
    let spec = ResultSpec {
        name: task.id.to_string(),
        task_type: task.task_type,
        options: TaskOptions::from_json(&task.options),
        chunk_count: task.chunk_count,
        parts: files.parts(),
        total: task.total as u64,
        as_of: rfc3339_ms(task.created_at_ns / 1_000_000),
    };
    let key = files.result();
    let started = std::time::Instant::now();
    let build = async {
        let assembled = export::assemble(&engine.blobs, &engine.tmp_dir, spec).await?;
        engine.blobs.put_file(&key, assembled.file.path()).await?;
        engine
            .blobs
            .put(
                &files.summary(),
                bytes::Bytes::from(assembled.summary_json.clone()),
            )
            .await?;
        // The temporary zip goes now, before the task shows as exported: nothing of an
        // exported task is left in tmp/.
        let unique = assembled.unique;
        drop(assembled);
        anyhow::Ok(unique)
    };
    let unique = match with_heartbeat(engine, owner, task, None, build).await {
        Ok(Some(unique)) => unique,
        // A cancel or delete while the export ran (it may have removed the parts being read).
        Ok(None) | Err(_) if crate::tasks::ended_by_user(engine, &task.id).await? => {
            given_up(engine, task, "exporting").await;
            return Ok(());
        }
        Ok(None) => {
            tracing::warn!(task = %task.id, "export lease lost while assembling; another worker has it");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let published = engine
        .store
        .finish_export(&task.id, owner, &key, unique, now_ms())
        .await?;
    if published {
        engine.metrics.export_seconds.observe(started.elapsed());
        tracing::info!(task = %task.id, success = task.success, failure = task.failure, charged = unique, "task exported");
        crate::tasks::remove_parts(engine, task).await;
    } else if crate::tasks::ended_by_user(engine, &task.id).await? {
        given_up(engine, task, "exporting").await;
    } else {
        tracing::warn!(task = %task.id, "export lease lost; another worker published the result");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineError;
    use crate::intake::{FileMeta, Intake, Ticket, Upload};
    use numcheck_core::{TaskStatus, TaskType};
    use numcheck_store::{Created, User};

    /// An engine on a fresh data folder with no workers of its own, and a user.
    async fn engine() -> (tempfile::TempDir, Engine, User) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        config.worker.concurrency = 0;
        config.worker.chunk_lines = 100;
        let (engine, _data) = Engine::open(config).await.unwrap();
        let user = engine
            .store
            .create_user(
                numcheck_core::UserId::from_random([9; 20]),
                "u",
                None,
                false,
                1,
            )
            .await
            .unwrap();
        (dir, engine, user)
    }

    /// A new task of `lines` numbers.
    async fn new_task(engine: &Engine, user: &User, lines: usize) -> Task {
        let ticket = Ticket::new().unwrap();
        let text: String = (0..lines).map(|i| format!("+1415555{i:04}\n")).collect();
        let stream = futures::stream::iter([Ok::<_, EngineError>(bytes::Bytes::from(text))]);
        let meta = FileMeta {
            file_name: Some("n.txt".into()),
            content_type: Some("text/plain".into()),
        };
        let Upload::Text(upload) = crate::intake::receive(engine, &ticket.id, meta, stream)
            .await
            .unwrap()
        else {
            panic!("a text upload");
        };
        let intake = Intake {
            ticket,
            task_type: TaskType::ActiveCheck,
            region: None,
            options: Default::default(),
            callback_url: None,
            upload,
        };
        match crate::tasks::create(engine, user, intake, None)
            .await
            .unwrap()
        {
            Created::New(task) => task,
            Created::Existing(_) => panic!("a new task"),
        }
    }

    /// A task whose chunks are processed, and its export, held by the worker `w`.
    async fn exportable(engine: &Engine, user: &User) -> (Task, Task) {
        let task = new_task(engine, user, 450).await;
        loop {
            match engine
                .store
                .claim_work("w", now_ms(), 60_000)
                .await
                .unwrap()
            {
                Some(Work::Chunk { task, seq, spec }) => {
                    process_chunk(engine, "w", &task, seq, spec, false)
                        .await
                        .unwrap()
                }
                Some(Work::Export { task: held }) => return (task, held),
                None => panic!("no export"),
            }
        }
    }

    /// The files of the task left in the blob store.
    async fn files_left(engine: &Engine, task: &Task) -> Vec<String> {
        let mut left: Vec<String> = engine
            .blobs
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .filter(|k| k.contains(task.id.as_str()))
            .collect();
        left.sort();
        left
    }

    #[tokio::test]
    async fn a_task_cancelled_or_deleted_during_its_export_leaves_no_file() {
        let (_dir, engine, user) = engine().await;
        // Cancelled after the parts were read: the result is written, then refused.
        let (task, held) = exportable(&engine, &user).await;
        assert!(!files_left(&engine, &task).await.is_empty());
        engine
            .store
            .cancel_task(&user.id, &task.id, now_ms())
            .await
            .unwrap();
        export_task(&engine, "w", &held).await.unwrap();
        assert_eq!(files_left(&engine, &task).await, Vec::<String>::new());
        let stored = engine.store.task(&task.id).await.unwrap().unwrap();
        assert_eq!(stored.status, TaskStatus::Cancelled);

        // Cancelled the way users do, its parts removed before the export reads them: the
        // export stops without an error.
        let (task, held) = exportable(&engine, &user).await;
        crate::tasks::cancel(&engine, &user, task.id.as_str())
            .await
            .unwrap();
        export_task(&engine, "w", &held).await.unwrap();
        assert_eq!(files_left(&engine, &task).await, Vec::<String>::new());

        // Deleted during the export.
        let (task, held) = exportable(&engine, &user).await;
        engine
            .store
            .delete_task(&user.id, &task.id, now_ms())
            .await
            .unwrap();
        export_task(&engine, "w", &held).await.unwrap();
        assert_eq!(files_left(&engine, &task).await, Vec::<String>::new());

        // Not ended: the export publishes as before.
        let (task, held) = exportable(&engine, &user).await;
        export_task(&engine, "w", &held).await.unwrap();
        let stored = engine.store.task(&task.id).await.unwrap().unwrap();
        assert_eq!(stored.status, TaskStatus::Exported);
        let left = files_left(&engine, &task).await;
        assert_eq!(left.len(), 3, "upload, result, summary: {left:?}");
    }

    #[tokio::test]
    async fn a_chunk_of_a_task_cancelled_meanwhile_leaves_no_part() {
        let (_dir, engine, user) = engine().await;
        let task = new_task(&engine, &user, 300).await;
        let Some(Work::Chunk {
            task: held,
            seq,
            spec,
        }) = engine
            .store
            .claim_work("w", now_ms(), 60_000)
            .await
            .unwrap()
        else {
            panic!("a chunk");
        };
        crate::tasks::cancel(&engine, &user, task.id.as_str())
            .await
            .unwrap();
        process_chunk(&engine, "w", &held, seq, spec, false)
            .await
            .unwrap();
        assert_eq!(files_left(&engine, &task).await, Vec::<String>::new());
    }
}
