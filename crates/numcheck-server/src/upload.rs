//! Receiving an upload: stream the `file` field into the blob store while counting its lines
//! and cutting it into chunks, never holding it whole in memory.
//!
//! A text file goes straight to the blob store. A spreadsheet (CSV, TSV, XLSX: see
//! [`crate::tabular`] for how the kind is told) is spooled to a temporary file instead, because
//! the form fields that say how to read it may come after it; once the form is read,
//! [`convert`] streams it into the same text blob, through the same line splitter and chunker,
//! so a task cannot tell the two apart.

use std::collections::VecDeque;
use std::io::Write;

use axum::extract::multipart::Field;
use bytes::Bytes;
use futures::StreamExt;
use numcheck_core::{Chunker, LineSplitter, RegionCode, TaskId, TextCheck, check_text};
use numcheck_store::ChunkSpec;
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::routes::multipart_error;
use crate::state::AppState;
use crate::tabular::{self, Kind, TabularError};

/// Bytes sniffed to tell text from binary.
const SNIFF_BYTES: usize = 8192;

/// An upload stored in the blob store.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: String,
    pub bytes: u64,
    /// Non-blank lines.
    pub total: u64,
    pub chunks: Vec<ChunkSpec>,
    /// The part's file name as the client sent it, without any directory part or control
    /// characters, at most 255 characters.
    pub file_name: Option<String>,
}

/// A client's file name made safe to store and show.
pub fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The blob key of a task's upload.
pub fn input_key(task: &TaskId) -> String {
    format!("uploads/{task}.txt")
}

/// A received `file` field.
#[derive(Debug)]
pub enum Upload {
    /// A text file, already in the blob store.
    Text(Received),
    /// A spreadsheet waiting for [`convert`].
    Table(Spooled),
}

/// A spreadsheet upload in a temporary file (removed when this is dropped).
#[derive(Debug)]
pub struct Spooled {
    pub kind: Kind,
    pub file_name: Option<String>,
    path: tempfile::TempPath,
}

/// How to read a spreadsheet: the form fields `phone_column`, `sheet` and `default_region`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableChoice<'a> {
    pub phone_column: Option<&'a str>,
    pub sheet: Option<&'a str>,
    pub region: Option<RegionCode>,
}

/// The start of a file field, read to tell its kind, and what follows it.
struct Peeked<'a> {
    field: Field<'a>,
    pending: VecDeque<Bytes>,
    file_name: Option<String>,
    kind: Kind,
}

impl Peeked<'_> {
    async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self.pending.pop_front() {
            Some(bytes) => Ok(Some(bytes)),
            None => self.field.chunk().await.map_err(multipart_error),
        }
    }
}

/// Reads the first bytes of a file field and tells its kind.
async fn peek(mut field: Field<'_>) -> Result<Peeked<'_>, ApiError> {
    let file_name = field.file_name().and_then(clean_file_name);
    let content_type = field.content_type().map(str::to_owned);
    let mut pending = VecDeque::new();
    let mut head: Vec<u8> = Vec::with_capacity(tabular::MAGIC_BYTES);
    while head.len() < tabular::MAGIC_BYTES {
        let Some(bytes) = field.chunk().await.map_err(multipart_error)? else {
            break;
        };
        let take = (tabular::MAGIC_BYTES - head.len()).min(bytes.len());
        head.extend_from_slice(&bytes[..take]);
        pending.push_back(bytes);
    }
    let kind = tabular::kind_of(file_name.as_deref(), content_type.as_deref(), &head)?;
    Ok(Peeked {
        field,
        pending,
        file_name,
        kind,
    })
}

/// Receives the file field: a text file is streamed into the blob store, a spreadsheet is
/// spooled for [`convert`].
pub async fn receive(
    state: &AppState,
    task: &TaskId,
    field: Field<'_>,
) -> Result<Upload, ApiError> {
    let mut file = peek(field).await?;
    match file.kind {
        Kind::Text => receive_text(state, task, &mut file).await.map(Upload::Text),
        kind => {
            let limit = spool_limit(state, kind);
            let path = spool(state, &mut file, limit).await?;
            Ok(Upload::Table(Spooled {
                kind,
                file_name: file.file_name,
                path,
            }))
        }
    }
}

/// The most bytes a spreadsheet of this kind may have.
fn spool_limit(state: &AppState, kind: Kind) -> u64 {
    match kind {
        Kind::Xlsx => state
            .config
            .max_upload_bytes
            .min(state.config.max_xlsx_bytes),
        _ => state.config.max_upload_bytes,
    }
}

/// Writes the rest of the field to a temporary file in `tmp_dir`; 413 past `limit`.
async fn spool(
    state: &AppState,
    file: &mut Peeked<'_>,
    limit: u64,
) -> Result<tempfile::TempPath, ApiError> {
    let dir = state.tmp_dir.clone();
    let (std_file, path) = tokio::task::spawn_blocking(move || {
        tempfile::NamedTempFile::new_in(&dir).map(tempfile::NamedTempFile::into_parts)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("spooling task failed: {e}")))?
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating a spool file")))?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(std_file));
    let mut size: u64 = 0;
    while let Some(bytes) = file.next().await? {
        size += bytes.len() as u64;
        if size > limit {
            return Err(ApiError::TooLarge { limit: Some(limit) });
        }
        out.write_all(&bytes)
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling an upload")))?;
    }
    out.flush()
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling an upload")))?;
    Ok(path)
}

/// Streams a text file field into the blob store.
async fn receive_text(
    state: &AppState,
    task: &TaskId,
    field: &mut Peeked<'_>,
) -> Result<Received, ApiError> {
    let key = input_key(task);
    let file_name = field.file_name.clone();
    let limit = state.config.max_upload_bytes;
    let mut writer = state.blobs.writer(&key).await?;
    let mut splitter = LineSplitter::new();
    let mut chunker = Chunker::new(state.config.worker.chunk_lines);
    let mut sample: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut sniffed = false;
    let mut size: u64 = 0;

    let outcome: Result<(), ApiError> = async {
        while let Some(bytes) = field.next().await? {
            size += bytes.len() as u64;
            if size > limit {
                return Err(ApiError::TooLarge { limit: Some(limit) });
            }
            if !sniffed {
                let take = (SNIFF_BYTES - sample.len()).min(bytes.len());
                sample.extend_from_slice(&bytes[..take]);
                if sample.len() >= SNIFF_BYTES {
                    sniff(&sample)?;
                    sniffed = true;
                }
            }
            splitter.push(&bytes, |line| chunker.line(&line));
            check_lines(state, &chunker)?;
            writer.write(&bytes).await?;
        }
        if !sniffed {
            sniff(&sample)?;
        }
        splitter.finish(|line| chunker.line(&line));
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, "could not abort a refused upload");
        }
        return Err(e);
    }
    let total = chunker.total();
    let chunks = chunk_specs(chunker);
    let bytes = writer.finish().await?;
    Ok(Received {
        key,
        bytes,
        total,
        chunks,
        file_name,
    })
}

/// Refuses an upload past `limits.max_upload_lines` as soon as it gets there.
fn check_lines(state: &AppState, chunker: &Chunker) -> Result<(), ApiError> {
    let limit = state.config.limits.max_upload_lines;
    if limit > 0 && chunker.total() > limit {
        return Err(ApiError::TooManyLines { limit });
    }
    Ok(())
}

fn chunk_specs(chunker: Chunker) -> Vec<ChunkSpec> {
    chunker
        .finish()
        .into_iter()
        .map(|c| ChunkSpec {
            byte_start: c.byte_start as i64,
            byte_end: c.byte_end as i64,
            first_line: c.first_line as i64,
            lines: c.lines as i64,
        })
        .collect()
}

/// How many times `max_xlsx_bytes` a workbook may unpack to: calamine keeps the shared strings
/// and any one XML value whole, so this bounds its memory.
const XLSX_EXPANSION: u64 = 16;
/// Bytes handed from the converting thread to the blob writer at a time.
const CONVERT_BATCH: usize = 64 * 1024;

/// Converts a spooled spreadsheet into the task's text blob: one line per record holding the
/// phone column's cell, the header a blank line, so line numbers are record numbers (see
/// [`tabular`]). The lines pass through the same splitter and chunker as a text upload's.
/// On any error nothing is left behind: the blob is aborted, the spool file removed.
pub async fn convert(
    state: &AppState,
    task: &TaskId,
    spooled: Spooled,
    choice: TableChoice<'_>,
) -> Result<Received, ApiError> {
    let key = input_key(task);
    let Spooled {
        kind,
        file_name,
        path,
    } = spooled;
    let mut writer = state.blobs.writer(&key).await?;
    let phone_column = choice.phone_column.map(str::to_owned);
    let sheet = choice.sheet.map(str::to_owned);
    let region = choice.region;
    let plan = state.plan;
    let max_output = state.config.max_upload_bytes;
    let max_expanded = state.config.max_xlsx_bytes.saturating_mul(XLSX_EXPANSION);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let job = tokio::task::spawn_blocking(move || {
        let options = tabular::Options {
            phone_column: phone_column.as_deref(),
            sheet: sheet.as_deref(),
            region,
            max_output,
            max_expanded,
        };
        let input = std::io::BufReader::new(std::fs::File::open(&path)?);
        let out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CONVERT_BATCH),
        };
        match kind {
            Kind::Xlsx => tabular::convert_xlsx(input, plan, &options, out),
            kind => tabular::convert_csv(input, kind == Kind::Tsv, plan, &options, out),
        }
    });
    let mut splitter = LineSplitter::new();
    let mut chunker = Chunker::new(state.config.worker.chunk_lines);
    let written: Result<(), ApiError> = async {
        while let Some(bytes) = rx.recv().await {
            splitter.push(&bytes, |line| chunker.line(&line));
            check_lines(state, &chunker)?;
            writer.write(&bytes).await?;
        }
        Ok(())
    }
    .await;
    // A failed write stops the conversion: its next send finds the channel closed.
    drop(rx);
    let converted = job
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the conversion failed: {e}")));
    let outcome = match (written, converted) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(result)) => result.map_err(ApiError::from),
    };
    let converted = match outcome {
        Ok(converted) => converted,
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "could not abort a refused upload");
            }
            return Err(e);
        }
    };
    splitter.finish(|line| chunker.line(&line));
    tracing::debug!(
        task = %task,
        kind = kind.as_str(),
        has_header = converted.has_header,
        phone_column = converted.phone_column,
        lines = converted.lines,
        "spreadsheet converted"
    );
    let total = chunker.total();
    let chunks = chunk_specs(chunker);
    let bytes = writer.finish().await?;
    Ok(Received {
        key,
        bytes,
        total,
        chunks,
        file_name,
    })
}

/// Hands the converting thread's output to the async writer in batches.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(CONVERT_BATCH));
        self.tx.blocking_send(Bytes::from(batch)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload writer stopped")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CONVERT_BATCH {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// A file read for a preview: the start of a text or CSV file, or a whole workbook.
#[derive(Debug)]
pub enum PreviewFile {
    Head {
        kind: Kind,
        file_name: Option<String>,
        head: Vec<u8>,
        /// The file goes on past `head`.
        cut: bool,
    },
    Workbook(Spooled),
}

/// Reads a file field for a preview: at most [`tabular::PREVIEW_BYTES`] of text or CSV (the
/// rest is read and dropped), a workbook whole into a spool file (up to `max_xlsx_bytes`).
pub async fn receive_preview(state: &AppState, field: Field<'_>) -> Result<PreviewFile, ApiError> {
    let mut file = peek(field).await?;
    if file.kind == Kind::Xlsx {
        let path = spool(state, &mut file, spool_limit(state, Kind::Xlsx)).await?;
        return Ok(PreviewFile::Workbook(Spooled {
            kind: Kind::Xlsx,
            file_name: file.file_name,
            path,
        }));
    }
    let mut head = Vec::new();
    let mut cut = false;
    while let Some(bytes) = file.next().await? {
        let room = tabular::PREVIEW_BYTES - head.len();
        if bytes.len() > room {
            cut = true;
        }
        head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
    Ok(PreviewFile::Head {
        kind: file.kind,
        file_name: file.file_name,
        head,
        cut,
    })
}

/// The columns of a preview file and the one an upload would read.
pub async fn preview(
    state: &AppState,
    file: PreviewFile,
    choice: TableChoice<'_>,
) -> Result<tabular::Preview, ApiError> {
    let phone_column = choice.phone_column.map(str::to_owned);
    let sheet = choice.sheet.map(str::to_owned);
    let region = choice.region;
    let plan = state.plan;
    let max_output = state.config.max_upload_bytes;
    let max_expanded = state.config.max_xlsx_bytes.saturating_mul(XLSX_EXPANSION);
    tokio::task::spawn_blocking(move || {
        let options = tabular::Options {
            phone_column: phone_column.as_deref(),
            sheet: sheet.as_deref(),
            region,
            max_output,
            max_expanded,
        };
        let (file_name, preview) = match file {
            PreviewFile::Head {
                kind: Kind::Text,
                file_name,
                head,
                cut,
            } => (file_name, tabular::preview_text(&head, cut, plan, region)),
            PreviewFile::Head {
                kind,
                file_name,
                head,
                cut,
            } => (
                file_name,
                tabular::preview_csv(&head, cut, kind == Kind::Tsv, plan, &options),
            ),
            PreviewFile::Workbook(spooled) => {
                let preview = std::fs::File::open(&spooled.path)
                    .map_err(TabularError::from)
                    .and_then(|f| {
                        tabular::preview_xlsx(std::io::BufReader::new(f), plan, &options)
                    });
                (spooled.file_name, preview)
            }
        };
        preview.map(|mut p| {
            p.file_name = file_name;
            p
        })
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("the preview failed: {e}")))?
    .map_err(ApiError::from)
}

fn sniff(sample: &[u8]) -> Result<(), ApiError> {
    match check_text(sample) {
        TextCheck::Text => Ok(()),
        TextCheck::Utf16 => Err(ApiError::bad_request(
            "file_not_text",
            "the file is UTF-16 text; save it as UTF-8 (or plain ASCII), one number per line",
        )),
        TextCheck::Binary => Err(ApiError::bad_request(
            "file_not_text",
            "the file is not a text file; send plain text with one phone number per line",
        )),
    }
}

/// Counts the unique parseable numbers of an upload, for the credit check. Stops counting
/// once the count passes `cap` (the user's available credits), so memory stays bounded by
/// the balance, not by the file.
pub async fn count_unique(
    state: &AppState,
    key: &str,
    region: Option<RegionCode>,
    cap: i64,
) -> Result<i64, ApiError> {
    let (_, mut stream) = state.blobs.stream(key).await?;
    let plan = state.plan;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let counter = tokio::task::spawn_blocking(move || {
        let mut seen = std::collections::HashSet::new();
        let mut splitter = LineSplitter::new();
        let cap = usize::try_from(cap.max(0)).unwrap_or(usize::MAX);
        let mut over = false;
        let take = |line: numcheck_core::Line<'_>, seen: &mut std::collections::HashSet<u64>| {
            if !line.is_blank()
                && !line.truncated
                && let Ok(n) = plan.parse_line(line.text, region)
            {
                seen.insert(n.as_u64());
            }
        };
        while let Some(bytes) = rx.blocking_recv() {
            splitter.push(&bytes, |l| take(l, &mut seen));
            if seen.len() > cap {
                over = true;
                break;
            }
        }
        if !over {
            splitter.finish(|l| take(l, &mut seen));
        }
        seen.len() as i64
    });
    while let Some(bytes) = stream.next().await {
        if tx.send(bytes?).await.is_err() {
            break; // the counter stopped early: over the cap
        }
    }
    drop(tx);
    counter
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("credit count failed: {e}")))
}
