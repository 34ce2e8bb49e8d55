//! Assembling a result: `<name>.zip` holding `<name>.csv` (every checked row in input order),
//! `rejected.csv` (every failure row with its line number and reason), `summary.json` (the
//! counts) and, when asked for, `<name>.xlsx`.
//!
//! The zip is written to a temporary file part by part, so memory stays bounded. Unique
//! numbers — what a task is charged — come from a k-way merge of the chunks' sorted number
//! runs, so no set as large as the task is needed. Nothing in the zip carries a timestamp of
//! its own, so the same input always gives the same bytes.

mod xlsx;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use numcheck_blob::BlobStore;
use numcheck_core::TaskType;
use numcheck_core::plan::METADATA_VERSION;
use serde::Serialize;
use tokio::runtime::Handle;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::blob_keys::{Part, Parts};
use crate::options::{TaskOptions, header};
use crate::pipeline::{REJECTED_HEADER, Summary};
use xlsx::{XLSX_MAX_ROWS, XlsxWriter};

/// What to assemble.
#[derive(Debug, Clone)]
pub struct ResultSpec {
    /// The task id: names the files inside the zip.
    pub name: String,
    pub task_type: TaskType,
    pub options: TaskOptions,
    pub chunk_count: i64,
    /// Where the chunk parts are.
    pub parts: Parts,
    /// Non-blank lines of the upload.
    pub total: u64,
    /// Verdicts' reference time (RFC 3339).
    pub as_of: String,
}

/// An assembled result.
#[derive(Debug)]
pub struct Assembled {
    pub file: tempfile::NamedTempFile,
    /// Distinct numbers checked: the charge.
    pub unique: i64,
    pub summary: Summary,
    /// `summary.json` as written into the zip (kept beside it for the task view).
    pub summary_json: Vec<u8>,
}

#[derive(Serialize)]
struct SummaryFile<'a> {
    task_id: &'a str,
    task_type: &'a str,
    as_of: &'a str,
    numbering_plan: &'a str,
    total: u64,
    unique_numbers: i64,
    duplicates: u64,
    #[serde(flatten)]
    counts: &'a Summary,
    /// What most likely went wrong, when anything did ([`crate::warnings`]).
    warnings: Vec<crate::warnings::Warning>,
}

/// Builds the zip into a temporary file in `tmp_dir`.
pub async fn assemble(
    blobs: &BlobStore,
    tmp_dir: &Path,
    spec: ResultSpec,
) -> anyhow::Result<Assembled> {
    let tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .context("cannot create a temporary file for the result")?;
    let file = tmp.reopen()?;
    let blobs = blobs.clone();
    let handle = Handle::current();
    let tmp_dir = tmp_dir.to_owned();
    let (unique, summary, summary_json) =
        tokio::task::spawn_blocking(move || write_zip(&handle, &blobs, &tmp_dir, &spec, file))
            .await
            .context("result assembly panicked")??;
    Ok(Assembled {
        file: tmp,
        unique,
        summary,
        summary_json,
    })
}

/// The `Input` of the first row of a rejected.csv part (`Line,Input,Reason`, no header).
fn rejected_input(part: &[u8]) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(part);
    let row = reader.records().next()?.ok()?;
    row.get(1).map(str::to_owned)
}

/// The entries' time: when the export ran, in UTC (a zip keeps a date and time without a
/// zone). Outside the zip format's 1980–2107 the format's own default stands.
fn zip_time(ms: i64) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    chrono::DateTime::from_timestamp_millis(ms)
        .and_then(|t| {
            let (Ok(year), Ok(month), Ok(day)) = (
                u16::try_from(t.year()),
                u8::try_from(t.month()),
                u8::try_from(t.day()),
            ) else {
                return None;
            };
            zip::DateTime::from_date_and_time(
                year,
                month,
                day,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

fn write_zip(
    rt: &Handle,
    blobs: &BlobStore,
    tmp_dir: &Path,
    spec: &ResultSpec,
    file: std::fs::File,
) -> anyhow::Result<(i64, Summary, Vec<u8>)> {
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    // Level 1: result CSVs are repetitive, so fast deflate still shrinks them about 5x, at
    // several times the speed of the default level; the export runs on one core at the end of
    // every task, where its time is the user's wait.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true)
        .last_modified_time(zip_time(crate::clock::now_ms()))
        .unix_permissions(0o644);
    let csv_header = header(spec.task_type, spec.options.columns);
    zip.start_file(format!("{}.csv", spec.name), options)?;
    zip.write_all(csv_header.as_bytes())?;
    for seq in 0..spec.chunk_count {
        let part = rt.block_on(blobs.get(&spec.parts.key(seq, Part::Rows)))?;
        zip.write_all(&part)?;
    }
    zip.start_file("rejected.csv", options)?;
    zip.write_all(REJECTED_HEADER.as_bytes())?;
    // A task of one refused line: the line, for the warnings (a file name sent as text).
    let mut only_line = None;
    for seq in 0..spec.chunk_count {
        let part = rt.block_on(blobs.get(&spec.parts.key(seq, Part::Rejected)))?;
        if spec.total == 1 && !part.is_empty() {
            only_line = rejected_input(&part);
        }
        zip.write_all(&part)?;
    }

    let unique = count_unique(rt, blobs, spec)?;
    let mut summary = Summary::default();
    for seq in 0..spec.chunk_count {
        let part = rt.block_on(blobs.get(&spec.parts.key(seq, Part::Summary)))?;
        let s: Summary = serde_json::from_slice(&part).context("chunk summary is corrupt")?;
        summary.add(&s);
    }
    let file = SummaryFile {
        task_id: &spec.name,
        task_type: spec.task_type.as_str(),
        as_of: &spec.as_of,
        numbering_plan: METADATA_VERSION,
        total: spec.total,
        unique_numbers: unique,
        duplicates: summary.success.saturating_sub(unique.max(0) as u64),
        counts: &summary,
        warnings: crate::warnings::of_task(&summary, spec.total, only_line.as_deref()),
    };
    let mut summary_json = serde_json::to_vec_pretty(&file)?;
    summary_json.push(b'\n');
    zip.start_file("summary.json", options)?;
    zip.write_all(&summary_json)?;

    if spec.options.xlsx {
        let sheet = tempfile::NamedTempFile::new_in(tmp_dir)?;
        write_xlsx(rt, blobs, spec, csv_header, sheet.path())?;
        zip.start_file(format!("{}.xlsx", spec.name), options)?;
        let mut f = std::fs::File::open(sheet.path())?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            zip.write_all(&buf[..n])?;
        }
    }

    let mut inner = zip.finish()?;
    inner.flush()?;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((unique, summary, summary_json))
}

fn write_xlsx(
    rt: &Handle,
    blobs: &BlobStore,
    spec: &ResultSpec,
    csv_header: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let header: Vec<&str> = csv_header.trim_end().split(',').collect();
    let mut sheet = XlsxWriter::new(path, &header, XLSX_MAX_ROWS)?;
    for seq in 0..spec.chunk_count {
        let part = rt.block_on(blobs.get(&spec.parts.key(seq, Part::Rows)))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(part.as_ref());
        for record in reader.records() {
            let record = record.context("chunk rows are corrupt")?;
            let cells: Vec<&str> = record.iter().collect();
            sheet.push_row(&cells)?;
        }
    }
    sheet.finish()?;
    Ok(())
}

/// Bytes of a run read at a time, at most: fewer per run when there are many runs, so the
/// merge's buffers stay within [`RUN_BUDGET`] (a 1 GiB upload has about 1,650 runs).
const RUN_BLOCK: u64 = 64 * 1024;
/// Bytes of a run read at a time, at least.
const RUN_BLOCK_MIN: u64 = 8 * 1024;
/// The merge's buffers together, up to `RUN_BUDGET / RUN_BLOCK_MIN` runs (2,048 chunks,
/// 100 million lines at the default chunk size).
const RUN_BUDGET: u64 = 16 * 1024 * 1024;

/// The read size for each of `runs` runs: a multiple of 8 bytes (whole numbers).
fn run_block(runs: u64) -> u64 {
    (RUN_BUDGET / runs.max(1)).clamp(RUN_BLOCK_MIN, RUN_BLOCK) / 8 * 8
}

struct Run {
    key: String,
    size: u64,
    block: u64,
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
            let end = (self.offset + self.block).min(self.size);
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
fn count_unique(rt: &Handle, blobs: &BlobStore, spec: &ResultSpec) -> anyhow::Result<i64> {
    let mut runs = Vec::with_capacity(spec.chunk_count as usize);
    let block = run_block(u64::try_from(spec.chunk_count).unwrap_or(1));
    for seq in 0..spec.chunk_count {
        let key = spec.parts.key(seq, Part::Numbers);
        let size = rt
            .block_on(blobs.size(&key))?
            .with_context(|| format!("number run {key} is missing"))?;
        runs.push(Run {
            key,
            size,
            block,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merge_buffers_stay_within_budget_however_many_runs() {
        assert_eq!(run_block(1), RUN_BLOCK);
        assert_eq!(run_block(200), RUN_BLOCK); // 10M lines: 12.5 MiB
        for runs in [257, 1_000, 1_652, 2_048] {
            let b = run_block(runs);
            assert!(b.is_multiple_of(8) && b >= RUN_BLOCK_MIN, "{runs}: {b}");
            assert!(b * runs <= RUN_BUDGET, "{runs}: {b}");
        }
        assert_eq!(run_block(100_000), RUN_BLOCK_MIN);
        assert_eq!(run_block(0), RUN_BLOCK);
    }

    #[test]
    fn zip_entries_carry_the_export_time_in_utc() {
        // 2026-12-07T08:30:17.500Z; the zip format keeps even seconds.
        let t = zip_time(1_796_632_217_500);
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2026, 12, 7, 8, 30, 16)
        );
        // Before 1980 the format cannot say it: its default (1980-01-01).
        assert_eq!(zip_time(0), zip::DateTime::default());
    }
}
