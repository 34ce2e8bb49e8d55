//! Workers: claim a leased piece of work, do it, commit it; repeat until shutdown.
//!
//! A chunk's outputs are written to the blob store first and committed to the database with
//! the chunk's counters in one transaction after, so a crash at any point either loses the
//! chunk (it is leased again and redone, overwriting the same blobs) or keeps it whole.
//! Counters never go backwards and never count a chunk twice.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use numcheck_blob::BlobError;
use numcheck_core::RegionCode;
use numcheck_store::{ChunkSpec, Task, Work};

use crate::clock::now_ms;
use crate::export;
use crate::pipeline;
use crate::state::AppState;

/// Idle workers look for work this often even without a wake-up (expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause after a failed piece of work before claiming again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The blob key of one output part of a chunk.
pub fn part_key(task: &Task, seq: i64, ext: &str) -> String {
    format!("work/{}/{seq:08}.{ext}", task.id)
}

/// One worker's loop. Returns when the server shuts down, after finishing the work in hand.
pub async fn run(state: AppState, owner: String) {
    let lease_ms = (state.config.worker.lease_secs * 1000) as i64;
    tracing::debug!(%owner, "worker started");
    loop {
        if state.shutdown.is_cancelled() {
            break;
        }
        let notified = state.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match state.store.claim_work(&owner, now_ms(), lease_ms).await {
            Ok(Some(work)) => {
                if let Err(e) = handle(&state, &owner, work).await {
                    tracing::error!(error = %format!("{e:#}"), %owner, "work failed; it will be retried");
                    // Give the lease back so the retry need not wait for it to expire.
                    if let Err(e) = state.store.release_leases(Some(&owner)).await {
                        tracing::warn!(error = %e, "could not release leases");
                    }
                    pause(&state, ERROR_PAUSE).await;
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = state.shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim work");
                pause(&state, ERROR_PAUSE).await;
            }
        }
    }
    tracing::debug!(%owner, "worker stopped");
}

async fn pause(state: &AppState, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = state.shutdown.cancelled() => {}
    }
}

async fn handle(state: &AppState, owner: &str, work: Work) -> anyhow::Result<()> {
    match work {
        Work::Chunk { task, seq, spec } => process_chunk(state, owner, &task, seq, spec).await,
        Work::Export { task } => export::run(state, owner, &task).await,
    }
}

async fn process_chunk(
    state: &AppState,
    owner: &str,
    task: &Task,
    seq: i64,
    spec: ChunkSpec,
) -> anyhow::Result<()> {
    let range = spec.byte_start as u64..spec.byte_end as u64;
    let data = match state.blobs.get_range(&task.input_key, range).await {
        Ok(d) => d,
        Err(BlobError::NotFound(_)) => {
            tracing::error!(task = %task.id, "the task's upload is gone; failing the task");
            state
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
    let plan = state.plan;
    let out = tokio::task::spawn_blocking(move || {
        pipeline::process(
            &plan,
            &data,
            spec.byte_start as u64,
            spec.first_line as u64,
            region,
        )
    })
    .await
    .context("chunk processing panicked")?;
    state
        .blobs
        .put(&part_key(task, seq, "csv"), Bytes::from(out.rows))
        .await?;
    state
        .blobs
        .put(&part_key(task, seq, "rej"), Bytes::from(out.rejected))
        .await?;
    state
        .blobs
        .put(&part_key(task, seq, "nums"), Bytes::from(out.numbers))
        .await?;
    let committed = state
        .store
        .commit_chunk(&task.id, seq, owner, out.success, out.failure, now_ms())
        .await?;
    if committed {
        tracing::debug!(task = %task.id, seq, success = out.success, failure = out.failure, "chunk committed");
        if seq + 1 == task.chunk_count {
            state.work.notify_waiters();
        }
    } else {
        tracing::warn!(task = %task.id, seq, "chunk lease lost; another worker owns it");
    }
    Ok(())
}
