//! `numcheck check`: the same engine on a local file, without a server, writing the same zip.

use std::path::{Path, PathBuf};

use anyhow::Context;
use numcheck_blob::BlobStore;
use numcheck_core::{Chunker, LineSplitter, RegionCode, TaskType};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::blob_keys::Parts;
use crate::chunk::{Checker, ChunkJob};
use crate::clock::{now_ms, rfc3339_ms};
use crate::export::{self, ResultSpec};
use crate::options::TaskOptions;
use crate::pipeline::Summary;

pub use crate::options::Columns;

/// What to check and how.
#[derive(Debug, Clone)]
pub struct LocalCheck {
    pub file: PathBuf,
    pub out: PathBuf,
    pub default_region: Option<RegionCode>,
    pub task_type: TaskType,
    pub columns: Columns,
    pub xlsx: bool,
    pub chunk_lines: usize,
    /// The confidence floor (`None`: the policy's own).
    pub min_confidence: Option<f64>,
}

/// What a local check did.
#[derive(Debug, Clone)]
pub struct LocalReport {
    /// The name of the CSV inside the zip (an id like a task's).
    pub name: String,
    pub total: u64,
    pub unique: i64,
    pub summary: Summary,
}

/// Checks a file. `progress(done, total)` is called with non-blank lines processed.
pub async fn check_file(
    checker: &Checker,
    check: &LocalCheck,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<LocalReport> {
    let file_name = check.file.display().to_string();
    // Pass 1: cut the file into chunks (streaming, bounded memory).
    let mut f = tokio::fs::File::open(&check.file)
        .await
        .with_context(|| format!("cannot open {file_name}"))?;
    let mut splitter = LineSplitter::new();
    let mut chunker = Chunker::new(check.chunk_lines);
    let mut buf = vec![0u8; 1 << 20];
    let mut sniffed = false;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if !sniffed {
            sniffed = true;
            match numcheck_core::check_text(&buf[..n.min(8192)]) {
                numcheck_core::TextCheck::Text => {}
                numcheck_core::TextCheck::Utf16 => {
                    anyhow::bail!(
                        "{file_name} is UTF-16 text; save it as UTF-8, one number per line"
                    )
                }
                numcheck_core::TextCheck::Binary => {
                    anyhow::bail!("{file_name} is not a text file; give one phone number per line")
                }
            }
        }
        splitter.push(&buf[..n], |line| chunker.line(&line));
    }
    splitter.finish(|line| chunker.line(&line));
    let total = chunker.total();
    anyhow::ensure!(total > 0, "{file_name} holds no phone numbers");
    let chunks = chunker.finish();

    // Pass 2: run each chunk; parts go to a scratch blob store.
    let scratch = tempfile::tempdir().context("cannot create a scratch folder")?;
    let blobs = BlobStore::local(&scratch.path().join("blobs"))?;
    let name = xid::new().to_string();
    let as_of_ms = now_ms();
    let options = TaskOptions {
        columns: check.columns,
        xlsx: check.xlsx,
        lookup: None,
        min_confidence: check.min_confidence,
    };
    let mut done = 0;
    progress(0, total);
    for (seq, c) in chunks.iter().enumerate() {
        let mut data = vec![0u8; (c.byte_end - c.byte_start) as usize];
        f.seek(std::io::SeekFrom::Start(c.byte_start)).await?;
        f.read_exact(&mut data).await?;
        checker
            .run_chunk(
                &blobs,
                ChunkJob {
                    data: data.into(),
                    byte_start: c.byte_start,
                    first_line: c.first_line,
                    region: check.default_region,
                    task_type: check.task_type,
                    options,
                    as_of_ms,
                    parts: Parts::scratch(),
                    seq: seq as i64,
                    task: None,
                    progress: Default::default(),
                },
            )
            .await?;
        done += c.lines;
        progress(done, total);
    }
    let assembled = export::assemble(
        &blobs,
        scratch.path(),
        ResultSpec {
            name: name.clone(),
            task_type: check.task_type,
            options,
            chunk_count: chunks.len() as i64,
            parts: Parts::scratch(),
            total,
            as_of: rfc3339_ms(as_of_ms),
        },
    )
    .await?;
    copy_out(assembled.file.path(), &check.out)?;
    Ok(LocalReport {
        name,
        total,
        unique: assembled.unique,
        summary: assembled.summary,
    })
}

fn copy_out(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to).with_context(|| format!("cannot write {}", to.display()))?;
    Ok(())
}
