//! Assembling a task's result: `<task_id>.zip` holding `<task_id>.csv` (every checked row in
//! input order) and `rejected.csv` (every failure row with its line number and reason), then
//! publishing it and charging the task once.
//!
//! The zip is written to a temporary file in the data folder, part by part, so memory stays
//! bounded. The charge — one credit per unique number — comes from a k-way merge of the
//! chunks' sorted number runs, so it needs no set as large as the task. The zip carries no
//! timestamps, so the same task always gives the same bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};

use anyhow::Context;
use numcheck_blob::BlobStore;
use numcheck_store::Task;
use tokio::runtime::Handle;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::clock::now_ms;
use crate::pipeline::{REJECTED_HEADER, RESULT_HEADER};
use crate::state::AppState;
use crate::worker::part_key;

/// The blob key of a task's result.
pub fn result_key(task: &Task) -> String {
    format!("results/{}.zip", task.id)
}

/// Builds, publishes and charges a task's result.
pub async fn run(state: &AppState, owner: &str, task: &Task) -> anyhow::Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(&state.tmp_dir)
        .context("cannot create a temporary file for the result")?;
    let file = tmp.reopen()?;
    let blobs = state.blobs.clone();
    let t = task.clone();
    let handle = Handle::current();
    let unique = tokio::task::spawn_blocking(move || write_zip(&handle, &blobs, &t, file))
        .await
        .context("result assembly panicked")??;
    let key = result_key(task);
    state.blobs.put_file(&key, tmp.path()).await?;
    let published = state
        .store
        .finish_export(&task.id, owner, &key, unique, now_ms())
        .await?;
    if published {
        tracing::info!(task = %task.id, success = task.success, failure = task.failure, charged = unique, "task exported");
        if let Err(e) = state
            .blobs
            .delete_prefix(&format!("work/{}", task.id))
            .await
        {
            tracing::warn!(task = %task.id, error = %e, "could not clean up chunk outputs");
        }
    } else {
        tracing::warn!(task = %task.id, "export lease lost; another worker published the result");
    }
    Ok(())
}

fn write_zip(
    rt: &Handle,
    blobs: &BlobStore,
    task: &Task,
    file: std::fs::File,
) -> anyhow::Result<i64> {
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file(format!("{}.csv", task.id), options)?;
    zip.write_all(RESULT_HEADER.as_bytes())?;
    for seq in 0..task.chunk_count {
        let part = rt.block_on(blobs.get(&part_key(task, seq, "csv")))?;
        zip.write_all(&part)?;
    }
    zip.start_file("rejected.csv", options)?;
    zip.write_all(REJECTED_HEADER.as_bytes())?;
    for seq in 0..task.chunk_count {
        let part = rt.block_on(blobs.get(&part_key(task, seq, "rej")))?;
        zip.write_all(&part)?;
    }
    let mut inner = zip.finish()?;
    inner.flush()?;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    count_unique(rt, blobs, task)
}

/// Bytes of a run read at a time.
const RUN_BLOCK: u64 = 64 * 1024;

struct Run {
    key: String,
    size: u64,
    offset: u64,
    buf: Vec<u64>,
    pos: usize,
}

impl Run {
    fn next(&mut self, rt: &Handle, blobs: &BlobStore) -> anyhow::Result<Option<u64>> {
        if self.pos == self.buf.len() {
            if self.offset >= self.size {
                return Ok(None);
            }
            let end = (self.offset + RUN_BLOCK).min(self.size);
            let bytes = rt.block_on(blobs.get_range(&self.key, self.offset..end))?;
            anyhow::ensure!(bytes.len() % 8 == 0, "number run {} is corrupt", self.key);
            self.buf = bytes
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect();
            self.pos = 0;
            self.offset = end;
        }
        let v = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(v))
    }
}

/// Distinct numbers across all chunks: a k-way merge of the sorted runs.
fn count_unique(rt: &Handle, blobs: &BlobStore, task: &Task) -> anyhow::Result<i64> {
    let mut runs = Vec::with_capacity(task.chunk_count as usize);
    for seq in 0..task.chunk_count {
        let key = part_key(task, seq, "nums");
        let size = rt
            .block_on(blobs.size(&key))?
            .with_context(|| format!("number run {key} is missing"))?;
        runs.push(Run {
            key,
            size,
            offset: 0,
            buf: Vec::new(),
            pos: 0,
        });
    }
    let mut heap = BinaryHeap::new();
    for (i, run) in runs.iter_mut().enumerate() {
        if let Some(v) = run.next(rt, blobs)? {
            heap.push(Reverse((v, i)));
        }
    }
    let mut unique = 0i64;
    let mut last = None;
    while let Some(Reverse((v, i))) = heap.pop() {
        if last != Some(v) {
            unique += 1;
            last = Some(v);
        }
        if let Some(next) = runs[i].next(rt, blobs)? {
            heap.push(Reverse((next, i)));
        }
    }
    Ok(unique)
}
