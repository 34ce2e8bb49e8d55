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
use crate::intake::tabular;
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
    /// A CSV's or spreadsheet's phone column: a header name or a 1-based number (`None`:
    /// detected, as the server does).
    pub phone_column: Option<String>,
    /// A spreadsheet's worksheet (`None`: the first visible one).
    pub sheet: Option<String>,
}

/// What a local check did.
#[derive(Debug, Clone)]
pub struct LocalReport {
    /// The name of the CSV inside the zip: the input's, without its extension.
    pub name: String,
    /// The phone column of a CSV or spreadsheet (1-based), and whether it had a header.
    pub table: Option<tabular::Converted>,
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
    let scratch = tempfile::tempdir().context("cannot create a scratch folder")?;
    // A CSV or a spreadsheet is first turned into one line per row holding the phone
    // column's cell, as the server does with an upload.
    let (path, table) = match tabular_kind(&check.file)? {
        tabular::Kind::Text => (check.file.clone(), None),
        kind => {
            let text = scratch.path().join("numbers.txt");
            let converted = to_text(kind, check, &text, checker).await?;
            (text, Some(converted))
        }
    };
    // Pass 1: cut the file into chunks (streaming, bounded memory).
    let mut f = tokio::fs::File::open(&path)
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
        if memchr::memchr(0, &buf[..n]).is_some() {
            anyhow::bail!(
                "{file_name} holds a NUL byte, so it is not a text file; give one phone number per line"
            );
        }
        splitter.push(&buf[..n], |line| chunker.line(&line));
    }
    splitter.finish(|line| chunker.line(&line));
    let total = chunker.total();
    anyhow::ensure!(total > 0, "{file_name} holds no phone numbers");
    let chunks = chunker.finish();

    // Pass 2: run each chunk; parts go to a scratch blob store.
    let blobs = BlobStore::local(&scratch.path().join("blobs"))?;
    let name = result_name(&check.file);
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
        table,
        total,
        unique: assembled.unique,
        summary: assembled.summary,
    })
}

/// Writes the zip as a new file of the user's (the usual mode, under their umask), not a
/// copy of the private scratch file.
fn copy_out(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let write = || -> std::io::Result<()> {
        let mut out = std::fs::File::create(to)?;
        std::io::copy(&mut std::fs::File::open(from)?, &mut out)?;
        out.sync_all()
    };
    write().with_context(|| format!("cannot write {}", to.display()))
}

/// The result CSV's name: the input's file name without its extension (`leads.csv` gives
/// `leads.csv` inside the zip), unless that is the name of another file in the zip.
fn result_name(input: &Path) -> String {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .and_then(|s| crate::intake::clean_file_name(&s))
        .filter(|s| !s.is_empty() && s != "-");
    match stem {
        Some(s) if s == "rejected" || s == "summary" => format!("{s}-checked"),
        Some(s) => s,
        None => xid::new().to_string(),
    }
}

/// What kind of file `check` was given, as the server decides for an upload.
fn tabular_kind(file: &Path) -> anyhow::Result<tabular::Kind> {
    use std::io::Read;
    let mut head = Vec::with_capacity(tabular::MAGIC_BYTES);
    std::fs::File::open(file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .take(tabular::MAGIC_BYTES as u64)
        .read_to_end(&mut head)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    tabular::kind_of(name.as_deref(), None, &head)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// Converts a CSV, TSV or spreadsheet into the text file `out`.
async fn to_text(
    kind: tabular::Kind,
    check: &LocalCheck,
    out: &Path,
    checker: &Checker,
) -> anyhow::Result<tabular::Converted> {
    let (input, out) = (check.file.clone(), out.to_owned());
    let (phone_column, sheet, region) = (
        check.phone_column.clone(),
        check.sheet.clone(),
        check.default_region,
    );
    let plan = checker.plan;
    tokio::task::spawn_blocking(move || {
        let options = tabular::Options {
            phone_column: phone_column.as_deref(),
            sheet: sheet.as_deref(),
            region,
            max_output: u64::MAX,
            max_expanded: u64::MAX,
        };
        let reader = std::io::BufReader::new(
            std::fs::File::open(&input)
                .with_context(|| format!("cannot open {}", input.display()))?,
        );
        let writer = std::io::BufWriter::new(std::fs::File::create(&out)?);
        let converted = match kind {
            tabular::Kind::Xlsx => tabular::convert_xlsx(reader, plan, &options, writer),
            kind => {
                tabular::convert_csv(reader, kind == tabular::Kind::Tsv, plan, &options, writer)
            }
        };
        converted.map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))
    })
    .await
    .context("the conversion stopped")?
}
