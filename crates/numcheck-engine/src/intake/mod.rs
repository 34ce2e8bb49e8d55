//! Intake: an upload's bytes into the blob store, counted and cut into chunks, never held whole
//! in memory; and the create request's values checked into one [`Intake`].
//!
//! The bytes come from any stream (a multipart field, a file), so the HTTP layer only adapts
//! its body. A text file goes straight to the blob store. A spreadsheet (CSV, TSV, XLSX: see
//! [`tabular`] for how the kind is told) is spooled to a temporary file instead, because the
//! fields that say how to read it may come after it in the form; once the form is read,
//! [`check`] streams it into the same text blob, through the same line splitter and chunker,
//! so a task cannot tell the two apart.

pub mod tabular;

use std::collections::VecDeque;
use std::io::Write;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use numcheck_core::{Chunker, LineSplitter, RegionCode, TaskId, TaskType, TextCheck, check_text};
use numcheck_store::ChunkSpec;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::blob_keys::TaskFiles;
use crate::options::TaskOptions;
use crate::{Engine, EngineError};
use tabular::{Kind, TabularError};

/// Bytes sniffed to tell text from binary.
const SNIFF_BYTES: usize = 8192;
/// How many times `max_xlsx_bytes` a workbook may unpack to: calamine keeps the shared strings
/// and any one XML value whole, so this bounds its memory.
const XLSX_EXPANSION: u64 = 16;
/// Bytes handed from the converting thread to the blob writer at a time.
const CONVERT_BATCH: usize = 64 * 1024;

/// What the client said about the file: its name and declared media type.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
}

/// An upload stored in the blob store as text.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: String,
    pub bytes: u64,
    /// Non-blank lines.
    pub total: u64,
    pub chunks: Vec<ChunkSpec>,
    /// The file name as the client sent it, without any directory part or control
    /// characters, at most 255 characters.
    pub file_name: Option<String>,
}

/// A received file.
#[derive(Debug)]
pub enum Upload {
    /// A text file, already in the blob store.
    Text(Received),
    /// A spreadsheet waiting for the form's `phone_column`, `sheet` and `default_region`.
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

/// A checker (`task_type`).
#[cfg(feature = "openapi")]
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: requests are read into `TaskType`.
pub enum TaskTypeName {
    /// `Number,ActiveStatus,Reason,Confidence,LastActivity,LineType,Region,PossiblyReassigned,Line`.
    ActiveCheck,
    /// `Number,Valid,LineType,Region,CountryCode,NationalFormat,InternationalFormat,Line`.
    NumberInfo,
}

/// The `POST /v1/tasks` form (`multipart/form-data`); fields may come in any order. Every
/// value is kept as the client sent it until it is checked.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = CreateTaskForm))]
pub struct TaskForm {
    /// The upload: plain text with one number per line, or a `.csv`, `.tsv` or `.xlsx`
    /// spreadsheet (told by the file name, the part's type, else the bytes).
    #[serde(default, deserialize_with = "not_a_text_field")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Binary, required = true)
    )]
    pub file: Option<Upload>,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = TaskTypeName, required = true)
    )]
    pub task_type: Option<String>,
    /// ISO 3166 alpha-2 region for numbers written in national format (`DE`, `GB`, …).
    #[cfg_attr(feature = "openapi", schema(example = "DE"))]
    pub default_region: Option<String>,
    /// `full` (default) or `basic` (only `Number,ActiveStatus`, as the original service).
    #[cfg_attr(feature = "openapi", schema(example = "basic"))]
    pub columns: Option<String>,
    /// `csv` (default), `xlsx` or `csv,xlsx`: an `.xlsx` copy in the zip.
    #[cfg_attr(feature = "openapi", schema(example = "csv,xlsx"))]
    pub formats: Option<String>,
    /// `true` / `false` (also `1`/`0`, `yes`/`no`, `on`/`off`): ask the configured live lookup
    /// providers about numbers the evidence cannot decide.
    #[cfg_attr(feature = "openapi", schema(example = "false"))]
    pub live_lookup: Option<String>,
    /// The task's lookup budget, 0 to 1,000,000,000.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u64>, minimum = 0, maximum = 1_000_000_000, example = 1000)
    )]
    pub max_lookups: Option<String>,
    /// Reuse a cached lookup younger than this many days, 0 to 3650.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 0, maximum = 3650, example = 30)
    )]
    pub max_age_days: Option<String>,
    /// Verdicts less sure than this probability (0 to 1) become `unknown` with reason
    /// `low_confidence`. Default: the server's `policy.min_confidence`.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<f64>, minimum = 0.0, maximum = 1.0, example = 0.95)
    )]
    pub min_confidence: Option<String>,
    /// An absolute public `http(s)` URL POSTed a signed JSON notice when the task ends.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://example.com/numcheck-done")
    )]
    pub callback_url: Option<String>,
    /// The column holding the numbers in a spreadsheet: a header (case-insensitive) or a
    /// 1-based column number. Default: detected.
    #[cfg_attr(feature = "openapi", schema(example = "Phone"))]
    pub phone_column: Option<String>,
    /// The worksheet of an `.xlsx` (default: the first visible one).
    #[cfg_attr(feature = "openapi", schema(example = "Sheet1"))]
    pub sheet: Option<String>,
}

/// The `POST /v1/tasks/preview` form (`multipart/form-data`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewForm {
    /// The file, as for `POST /v1/tasks` (the first MiB of a text or CSV file is read).
    #[serde(default, deserialize_with = "not_a_text_field")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Binary, required = true)
    )]
    pub file: Option<PreviewFile>,
    /// As for `POST /v1/tasks`.
    pub phone_column: Option<String>,
    /// As for `POST /v1/tasks`.
    pub sheet: Option<String>,
    /// As for `POST /v1/tasks`.
    pub default_region: Option<String>,
}

/// A new task's id and the time its request arrived (the task's `created_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TaskId,
    pub created_at_ns: i64,
}

impl Ticket {
    pub fn new() -> Result<Ticket, EngineError> {
        let id = xid::new()
            .to_string()
            .parse()
            .map_err(|_| EngineError::internal("xid produced a malformed id"))?;
        Ok(Ticket {
            id,
            created_at_ns: crate::clock::now_ns(),
        })
    }
}

/// The file of a form is streamed, never read as a text field: a text value under its name is
/// dropped.
fn not_a_text_field<'de, D, T>(text: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    serde::de::IgnoredAny::deserialize(text)?;
    Ok(None)
}

/// A create request, checked: everything a task is made of.
#[derive(Debug)]
pub struct Intake {
    pub ticket: Ticket,
    pub task_type: TaskType,
    pub region: Option<RegionCode>,
    pub options: TaskOptions,
    /// Checked against the address policy.
    pub callback_url: Option<String>,
    /// The upload, as text in the blob store.
    pub upload: Received,
}

/// A client's file name made safe to store and show.
pub fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Reads a `task_type` value.
pub fn parse_task_type(value: Option<&str>) -> Result<TaskType, EngineError> {
    let supported = TaskType::supported_list();
    match value.map(str::trim) {
        None | Some("") => Err(EngineError::invalid(
            "missing_task_type",
            format!("the form field task_type is missing; supported: {supported}"),
        )),
        Some(v) => v.parse().map_err(|_| {
            EngineError::invalid(
                "unknown_task_type",
                format!("task_type {v:?} is not supported; supported: {supported}"),
            )
        }),
    }
}

/// Reads a `default_region` value (blank: none).
pub fn parse_region(value: Option<&str>) -> Result<Option<RegionCode>, EngineError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => r
            .parse::<RegionCode>()
            .map(Some)
            .map_err(|e| EngineError::invalid("invalid_default_region", e.to_string())),
    }
}

/// The start of a file, read to tell its kind, and what follows it.
struct Peeked<S> {
    stream: S,
    pending: VecDeque<Bytes>,
    file_name: Option<String>,
    kind: Kind,
}

impl<S, E> Peeked<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    async fn next(&mut self) -> Result<Option<Bytes>, E> {
        match self.pending.pop_front() {
            Some(bytes) => Ok(Some(bytes)),
            None => self.stream.next().await.transpose(),
        }
    }
}

/// Reads the first bytes of a file and tells its kind.
async fn peek<S, E>(meta: FileMeta, mut stream: S) -> Result<Peeked<S>, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<EngineError>,
{
    let file_name = meta.file_name.as_deref().and_then(clean_file_name);
    let mut pending = VecDeque::new();
    let mut head: Vec<u8> = Vec::with_capacity(tabular::MAGIC_BYTES);
    while head.len() < tabular::MAGIC_BYTES {
        let Some(bytes) = stream.next().await.transpose()? else {
            break;
        };
        let take = (tabular::MAGIC_BYTES - head.len()).min(bytes.len());
        head.extend_from_slice(&bytes[..take]);
        pending.push_back(bytes);
    }
    let kind = tabular::kind_of(file_name.as_deref(), meta.content_type.as_deref(), &head)
        .map_err(EngineError::from)?;
    Ok(Peeked {
        stream,
        pending,
        file_name,
        kind,
    })
}

/// Receives a task's file: a text file is streamed into the blob store, a spreadsheet is
/// spooled until the form is read.
pub async fn receive<S, E>(
    engine: &Engine,
    task: &TaskId,
    meta: FileMeta,
    stream: S,
) -> Result<Upload, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<EngineError>,
{
    let mut file = peek(meta, stream).await?;
    match file.kind {
        Kind::Text => receive_text(engine, task, &mut file)
            .await
            .map(Upload::Text),
        kind => {
            let path = spool(engine, &mut file, spool_limit(engine, kind)).await?;
            Ok(Upload::Table(Spooled {
                kind,
                file_name: file.file_name,
                path,
            }))
        }
    }
}

/// Removes what [`receive`] stored for a request that goes no further.
pub async fn discard(engine: &Engine, upload: Option<Upload>) {
    if let Some(Upload::Text(received)) = upload {
        discard_received(engine, &received).await;
    }
}

async fn discard_received(engine: &Engine, received: &Received) {
    if let Err(e) = engine.blobs.delete(&received.key).await {
        tracing::warn!(error = %e, "could not delete a refused upload");
    }
}

/// Checks a create request, converting a spreadsheet into the task's text upload on the way.
/// On any refusal nothing of the request is left in the blob store.
pub async fn check(
    engine: &Engine,
    ticket: &Ticket,
    mut form: TaskForm,
) -> Result<Intake, EngineError> {
    let upload = form.file.take();
    let result = check_form(engine, ticket, &form, upload).await;
    if let Err((_, Some(received))) = &result {
        discard_received(engine, received).await;
    }
    result.map_err(|(e, _)| e)
}

/// The checks of [`check`], in the order clients have always seen their errors: a
/// spreadsheet that cannot be read first, then the form's fields, then an empty file.
async fn check_form(
    engine: &Engine,
    ticket: &Ticket,
    form: &TaskForm,
    upload: Option<Upload>,
) -> Result<Intake, (EngineError, Option<Received>)> {
    let received = match upload {
        None => None,
        Some(Upload::Text(received)) => Some(received),
        Some(Upload::Table(spooled)) => {
            // A bad region is reported below; reading the table just goes without one.
            let choice = TableChoice {
                phone_column: form.phone_column.as_deref(),
                sheet: form.sheet.as_deref(),
                region: parse_region(form.default_region.as_deref()).ok().flatten(),
            };
            Some(
                convert(engine, &ticket.id, spooled, choice)
                    .await
                    .map_err(|e| (e, None))?,
            )
        }
    };
    let fields = || -> Result<Intake, EngineError> {
        let task_type = parse_task_type(form.task_type.as_deref())?;
        let Some(upload) = received.clone() else {
            return Err(EngineError::invalid(
                "missing_file",
                "the form field file is missing: send the numbers as file=@numbers.txt",
            ));
        };
        let region = parse_region(form.default_region.as_deref())?;
        let mut options = TaskOptions::from_form(form.columns.as_deref(), form.formats.as_deref())?;
        options.lookup = TaskOptions::lookup_from_form(
            form.live_lookup.as_deref(),
            form.max_lookups.as_deref(),
            form.max_age_days.as_deref(),
            &engine.config.lookup,
            !engine.lookups.is_empty(),
        )?;
        options.min_confidence =
            TaskOptions::min_confidence_from_form(form.min_confidence.as_deref())?;
        let callback_url = match form.callback_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                crate::callback_url::check_url(raw, engine.config.callbacks.allow_private)?
                    .to_string(),
            ),
        };
        if upload.total == 0 {
            return Err(EngineError::invalid(
                "empty_file",
                "the file holds no phone numbers: it is empty or only blank lines",
            ));
        }
        Ok(Intake {
            ticket: ticket.clone(),
            task_type,
            region,
            options,
            callback_url,
            upload,
        })
    };
    fields().map_err(|e| (e, received))
}

/// The most bytes a spreadsheet of this kind may have.
fn spool_limit(engine: &Engine, kind: Kind) -> u64 {
    let config = &engine.config;
    match kind {
        Kind::Xlsx => config.max_upload_bytes.min(config.max_xlsx_bytes),
        _ => config.max_upload_bytes,
    }
}

/// Writes the rest of the stream to a temporary file in `tmp_dir`; refused past `limit`.
async fn spool<S, E>(
    engine: &Engine,
    file: &mut Peeked<S>,
    limit: u64,
) -> Result<tempfile::TempPath, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<EngineError>,
{
    let io = |e: std::io::Error| {
        EngineError::Internal(anyhow::Error::new(e).context("spooling an upload"))
    };
    let dir = engine.tmp_dir.clone();
    let (std_file, path) = tokio::task::spawn_blocking(move || {
        tempfile::NamedTempFile::new_in(&dir).map(tempfile::NamedTempFile::into_parts)
    })
    .await
    .map_err(|e| EngineError::internal(format!("spooling task failed: {e}")))?
    .map_err(io)?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(std_file));
    let mut size: u64 = 0;
    while let Some(bytes) = file.next().await? {
        size += bytes.len() as u64;
        if size > limit {
            return Err(EngineError::TooLarge { limit }.into());
        }
        out.write_all(&bytes).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(path)
}

/// Streams a text file into the blob store.
async fn receive_text<S, E>(
    engine: &Engine,
    task: &TaskId,
    file: &mut Peeked<S>,
) -> Result<Received, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<EngineError>,
{
    let key = TaskFiles::of(task).upload();
    let limit = engine.config.max_upload_bytes;
    let mut writer = engine.blobs.writer(&key).await.map_err(EngineError::from)?;
    let mut counter = LineCounter::new(engine);
    let mut sample: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut sniffed = false;
    let mut size: u64 = 0;

    let outcome: Result<(), E> = async {
        while let Some(bytes) = file.next().await? {
            size += bytes.len() as u64;
            if size > limit {
                return Err(EngineError::TooLarge { limit }.into());
            }
            if !sniffed {
                let take = (SNIFF_BYTES - sample.len()).min(bytes.len());
                sample.extend_from_slice(&bytes[..take]);
                if sample.len() >= SNIFF_BYTES {
                    sniff(&sample)?;
                    sniffed = true;
                }
            }
            counter.push(&bytes)?;
            writer.write(&bytes).await.map_err(EngineError::from)?;
        }
        if !sniffed {
            sniff(&sample)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, "could not abort a refused upload");
        }
        return Err(e);
    }
    let (total, chunks) = counter.finish();
    let bytes = writer.finish().await.map_err(EngineError::from)?;
    Ok(Received {
        key,
        bytes,
        total,
        chunks,
        file_name: file.file_name.clone(),
    })
}

/// Splits an upload's text into lines as it streams by, counts them and cuts them into
/// chunks; refuses an upload past `limits.max_upload_lines` as soon as it gets there.
struct LineCounter {
    splitter: LineSplitter,
    chunker: Chunker,
    max_lines: u64,
}

impl LineCounter {
    fn new(engine: &Engine) -> Self {
        LineCounter {
            splitter: LineSplitter::new(),
            chunker: Chunker::new(engine.config.worker.chunk_lines),
            max_lines: engine.config.limits.max_upload_lines,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        // The sniff reads the first 8 KiB; a NUL byte anywhere later also makes the upload
        // binary, and nothing of it is stored or echoed back.
        if let Some(at) = memchr::memchr(0, bytes) {
            let line =
                self.chunker.total() + 1 + memchr::memchr_iter(b'\n', &bytes[..at]).count() as u64;
            return Err(EngineError::invalid(
                "file_not_text",
                format!(
                    "the file holds a NUL byte (near line {line}), so it is not a text file; send \
                     plain text with one phone number per line"
                ),
            ));
        }
        let chunker = &mut self.chunker;
        self.splitter.push(bytes, |line| chunker.line(&line));
        if self.max_lines > 0 && self.chunker.total() > self.max_lines {
            return Err(EngineError::TooManyLines {
                limit: self.max_lines,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> (u64, Vec<ChunkSpec>) {
        let chunker = &mut self.chunker;
        self.splitter.finish(|line| chunker.line(&line));
        let total = self.chunker.total();
        let chunks = self
            .chunker
            .finish()
            .into_iter()
            .map(|c| ChunkSpec {
                byte_start: c.byte_start as i64,
                byte_end: c.byte_end as i64,
                first_line: c.first_line as i64,
                lines: c.lines as i64,
            })
            .collect();
        (total, chunks)
    }
}

/// How a spreadsheet is read: the column, sheet and region chosen, within the engine's
/// bounds. Owned, so the blocking task that reads the file can take it.
struct TableRead {
    phone_column: Option<String>,
    sheet: Option<String>,
    region: Option<RegionCode>,
    max_output: u64,
    max_expanded: u64,
}

impl TableRead {
    fn new(
        engine: &Engine,
        phone_column: Option<String>,
        sheet: Option<String>,
        region: Option<RegionCode>,
    ) -> Self {
        TableRead {
            phone_column,
            sheet,
            region,
            max_output: engine.config.max_upload_bytes,
            max_expanded: engine.config.max_xlsx_bytes.saturating_mul(XLSX_EXPANSION),
        }
    }

    fn options(&self) -> tabular::Options<'_> {
        tabular::Options {
            phone_column: self.phone_column.as_deref(),
            sheet: self.sheet.as_deref(),
            region: self.region,
            max_output: self.max_output,
            max_expanded: self.max_expanded,
        }
    }
}

/// Converts a spooled spreadsheet into the task's text blob: one line per record holding the
/// phone column's cell, the header a blank line, so line numbers are record numbers (see
/// [`tabular`]). The lines pass through the same splitter and chunker as a text upload's.
/// On any error nothing is left behind: the blob is aborted, the spool file removed.
async fn convert(
    engine: &Engine,
    task: &TaskId,
    spooled: Spooled,
    choice: TableChoice<'_>,
) -> Result<Received, EngineError> {
    let key = TaskFiles::of(task).upload();
    let Spooled {
        kind,
        file_name,
        path,
    } = spooled;
    let mut writer = engine.blobs.writer(&key).await?;
    let read = TableRead::new(
        engine,
        choice.phone_column.map(str::to_owned),
        choice.sheet.map(str::to_owned),
        choice.region,
    );
    let plan = engine.plan;
    let permit = match kind {
        Kind::Xlsx => Some(workbook_turn(engine).await?),
        _ => None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let options = read.options();
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
    let mut counter = LineCounter::new(engine);
    let written: Result<(), EngineError> = async {
        while let Some(bytes) = rx.recv().await {
            counter.push(&bytes)?;
            writer.write(&bytes).await?;
        }
        Ok(())
    }
    .await;
    // A failed write stops the conversion: its next send finds the channel closed.
    drop(rx);
    let converted = job
        .await
        .map_err(|e| EngineError::internal(format!("the conversion failed: {e}")));
    let outcome = match (written, converted) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(result)) => result.map_err(EngineError::from),
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
    tracing::debug!(
        task = %task,
        kind = kind.as_str(),
        has_header = converted.has_header,
        phone_column = converted.phone_column,
        lines = converted.lines,
        "spreadsheet converted"
    );
    let (total, chunks) = counter.finish();
    let bytes = writer.finish().await?;
    Ok(Received {
        key,
        bytes,
        total,
        chunks,
        file_name,
    })
}

/// Waits for this node's turn to read a workbook ([`crate::WORKBOOKS_AT_ONCE`]).
async fn workbook_turn(engine: &Engine) -> Result<tokio::sync::OwnedSemaphorePermit, EngineError> {
    engine
        .workbooks
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| EngineError::internal("the workbook queue is closed"))
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

/// Reads a file for a preview: at most [`tabular::PREVIEW_BYTES`] of text or CSV (the rest is
/// read and dropped), a workbook whole into a spool file (up to `max_xlsx_bytes`).
pub async fn receive_preview<S, E>(
    engine: &Engine,
    meta: FileMeta,
    stream: S,
) -> Result<PreviewFile, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<EngineError>,
{
    let mut file = peek(meta, stream).await?;
    if file.kind == Kind::Xlsx {
        let path = spool(engine, &mut file, spool_limit(engine, Kind::Xlsx)).await?;
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

/// The columns of a preview's file and the one an upload would read.
pub async fn preview(engine: &Engine, form: PreviewForm) -> Result<tabular::Preview, EngineError> {
    let Some(file) = form.file else {
        return Err(EngineError::invalid(
            "missing_file",
            "the form field file is missing: send the file as file=@leads.csv",
        ));
    };
    let region = parse_region(form.default_region.as_deref())?;
    let read = TableRead::new(engine, form.phone_column, form.sheet, region);
    let plan = engine.plan;
    let permit = match &file {
        PreviewFile::Workbook(_) => Some(workbook_turn(engine).await?),
        PreviewFile::Head { .. } => None,
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let options = read.options();
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
    .map_err(|e| EngineError::internal(format!("the preview failed: {e}")))?
    .map_err(EngineError::from)
}

fn sniff(sample: &[u8]) -> Result<(), EngineError> {
    match check_text(sample) {
        TextCheck::Text => Ok(()),
        TextCheck::Utf16 => Err(EngineError::invalid(
            "file_not_text",
            "the file is UTF-16 text; save it as UTF-8 (or plain ASCII), one number per line",
        )),
        TextCheck::Binary => Err(EngineError::invalid(
            "file_not_text",
            "the file is not a text file; send plain text with one phone number per line",
        )),
    }
}
