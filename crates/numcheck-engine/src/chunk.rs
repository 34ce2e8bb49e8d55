//! The checker on one chunk: read lines, look up the evidence profiles of the chunk's
//! numbers in one batch, ask live lookups about what is still undecided, decide, and write the
//! chunk's parts to the blob store. Shared by the workers and `numcheck check`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use bytes::Bytes;
use numcheck_blob::BlobStore;
use numcheck_core::connectors::codebook::CodeBook;
use numcheck_core::{NumberingPlan, Policy, RegionCode, TaskId, TaskType};
use numcheck_store::Store;

use crate::blob_keys::{Part, Parts};
use crate::lookup::{LookupCounts, LookupService};
use crate::options::TaskOptions;
use crate::pipeline::{self, RenderSpec, Summary};

/// What decides a chunk: numbering plan, policy, the evidence store and live lookups.
#[derive(Debug, Clone)]
pub struct Checker {
    pub plan: NumberingPlan,
    pub policy: Arc<Policy>,
    pub store: Arc<dyn Store>,
    /// Live-lookup providers (none: no lookups).
    pub lookups: Arc<LookupService>,
    /// Tables that classify lookup answers.
    pub code_book: Arc<CodeBook>,
}

/// How far a running chunk has got: lines checked and lines refused so far. Both only grow,
/// and never past the chunk's final counts (they count a prefix of the same lines).
#[derive(Debug, Default)]
pub struct Progress {
    success: AtomicU64,
    failure: AtomicU64,
}

impl Progress {
    /// `(success, failure)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.success.load(Ordering::Relaxed),
            self.failure.load(Ordering::Relaxed),
        )
    }

    fn set(&self, success: u64, failure: u64) {
        self.success.fetch_max(success, Ordering::Relaxed);
        self.failure.fetch_max(failure, Ordering::Relaxed);
    }
}

/// Numbers whose profiles are read at once; between batches the chunk's progress moves.
const PROFILE_BATCH: usize = 5_000;

/// One chunk to run.
#[derive(Debug, Clone)]
pub struct ChunkJob {
    pub data: Bytes,
    pub byte_start: u64,
    pub first_line: u64,
    pub region: Option<RegionCode>,
    pub task_type: TaskType,
    pub options: TaskOptions,
    pub as_of_ms: i64,
    /// Where the chunk's outputs go.
    pub parts: Parts,
    pub seq: i64,
    /// The task, when the chunk belongs to one (lookups charge its budget).
    pub task: Option<TaskId>,
    /// Where the chunk says how far it has got.
    pub progress: Arc<Progress>,
}

impl Checker {
    /// Processes a chunk and writes its parts (`.csv`, `.rej`, `.nums`, `.sum`). Writing the
    /// same chunk twice writes the same bytes, so a retried chunk is harmless.
    pub async fn run_chunk(&self, blobs: &BlobStore, job: ChunkJob) -> anyhow::Result<Summary> {
        let plan = self.plan;
        let data = job.data.clone();
        let (start, first, region) = (job.byte_start, job.first_line, job.region);
        let items = tokio::task::spawn_blocking(move || {
            pipeline::parse(&plan, &data, start, first, region)
        })
        .await
        .context("chunk parsing panicked")?;
        // Refused lines are final once read; checked lines count as their numbers' evidence
        // comes in, batch by batch.
        let lines = items.len() as u64;
        let numbered = items
            .iter()
            .filter(|i| matches!(i, pipeline::Item::Number { .. }))
            .count() as u64;
        job.progress.set(0, lines - numbered);
        let mut profiles = match job.task_type {
            TaskType::ActiveCheck => {
                let numbers = pipeline::numbers(&items);
                let mut profiles = HashMap::with_capacity(numbers.len() / 2);
                let mut read = 0;
                for batch in numbers.chunks(PROFILE_BATCH) {
                    profiles.extend(self.store.profiles(batch).await?);
                    read += batch.len() as u64;
                    // Half a checked line per line whose evidence has been read; the other
                    // half as it is decided (below).
                    let share = numbered * read / (numbers.len() as u64).max(1);
                    job.progress.set(share / 2, lines - numbered);
                }
                profiles
            }
            TaskType::NumberInfo => HashMap::new(),
        };
        let mut lookup_counts = LookupCounts::default();
        if let (TaskType::ActiveCheck, Some(settings), Some(task)) =
            (job.task_type, job.options.lookup, &job.task)
            && !self.lookups.is_empty()
        {
            let candidates = pipeline::undecided(&items, &profiles, &self.policy, job.as_of_ms);
            if !candidates.is_empty() {
                let (counts, fresh) = self
                    .lookups
                    .run(
                        self.store.as_ref(),
                        &self.code_book,
                        &self.policy.half_lives(),
                        crate::lookup::LookupRequest {
                            task,
                            settings,
                            candidates,
                            now_ms: crate::clock::now_ms(),
                        },
                    )
                    .await?;
                profiles.extend(fresh);
                lookup_counts = counts;
            }
        }
        let policy = self.policy.clone();
        let (task_type, options, as_of_ms) = (job.task_type, job.options, job.as_of_ms);
        let progress = job.progress.clone();
        let refused = lines - numbered;
        // NumberInfo tasks read no evidence: their rows count whole as they are decided.
        let before = match task_type {
            TaskType::ActiveCheck => numbered / 2,
            TaskType::NumberInfo => 0,
        };
        let out = tokio::task::spawn_blocking(move || {
            pipeline::render_with_progress(
                &items,
                &profiles,
                RenderSpec {
                    task_type,
                    options,
                    policy: &policy,
                    plan: &plan,
                    as_of_ms,
                },
                &mut |decided| {
                    let share = before + (numbered - before) * decided / numbered.max(1);
                    progress.set(share.saturating_sub(1), refused);
                },
            )
        })
        .await
        .context("chunk rendering panicked")?;
        let mut out = out;
        out.summary.lookups = lookup_counts;
        let summary_json = serde_json::to_vec(&out.summary)?;
        let key = |part| job.parts.key(job.seq, part);
        blobs.put(&key(Part::Rows), Bytes::from(out.rows)).await?;
        blobs
            .put(&key(Part::Rejected), Bytes::from(out.rejected))
            .await?;
        blobs
            .put(&key(Part::Numbers), Bytes::from(out.numbers))
            .await?;
        blobs
            .put(&key(Part::Summary), Bytes::from(summary_json))
            .await?;
        job.progress.set(out.summary.success, out.summary.failure);
        Ok(out.summary)
    }
}
