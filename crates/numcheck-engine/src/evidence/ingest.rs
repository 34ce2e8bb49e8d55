//! Evidence ingest, shared by `POST /v1/evidence` and `numcheck evidence import`: lines in,
//! observations out to the store in batches, every rejected row reported with its line
//! number and reason. One bad row never stops the rest, and because the store skips facts
//! it already has, sending the same data again (say, after a dropped connection) adds
//! nothing.

use std::sync::Arc;

use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
use numcheck_core::connectors::{ConnectorFormat, FileOptions, LineFormat};
use numcheck_core::{
    CodeTable, HalfLives, LineSplitter, Observation, Row, RowError, RowFormat, RowReader,
};
use numcheck_store::Store;
use serde::Serialize;

/// Observations written per store transaction. Large on purpose: with random numbers every
/// row of a batch dirties a profile page and an index page, and a bigger batch shares those
/// pages between more rows (200k rows of about 200 bytes hold some 40 MiB).
const BATCH: usize = 200_000;
/// Longest evidence line: log lines and recorded callbacks run longer than number lists.
pub const MAX_EVIDENCE_LINE_BYTES: usize = 16 * 1024;
/// Rejected rows listed one by one in a report (all are counted).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedRow {
    /// The line of the body.
    pub line: u64,
    /// A stable code, as in the error body.
    pub error: &'static str,
    pub message: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReport {
    /// Data rows read (the CSV header excluded).
    pub rows: u64,
    /// New observations stored.
    pub inserted: u64,
    /// Valid rows already in the log.
    pub duplicates: u64,
    /// Valid rows that are not evidence: non-final delivery states.
    pub not_final: u64,
    pub rejected: u64,
    /// The first rejected rows, with line numbers and reasons.
    pub errors: Vec<RejectedRow>,
    /// More rows were rejected than `errors` lists.
    pub errors_truncated: bool,
}

/// Why an ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The CSV header is unusable, so no row can be read.
    #[error("line {line}: {}", .error.message)]
    Header { line: u64, error: RowError },
    #[error("{0}")]
    Store(#[from] numcheck_store::StoreError),
}

/// What turns a line into a row: numcheck's own evidence rows, or a connector's format
/// (a log, CDRs, recorded callbacks, a list) read for one source.
#[derive(Debug)]
pub enum LineReader {
    Rows(RowReader),
    Connector {
        format: Box<dyn LineFormat>,
        book: Arc<CodeBook>,
        source: SourceSpec,
    },
}

impl LineReader {
    /// A reader of a connector format for `source`.
    pub fn connector(format: ConnectorFormat, book: Arc<CodeBook>, source: SourceSpec) -> Self {
        Self::connector_with(format, book, source, FileOptions::default())
    }

    /// The same, reading the file's times with `options` (CDR times in the switch's local
    /// offset, the time to assume for undated records).
    pub fn connector_with(
        format: ConnectorFormat,
        book: Arc<CodeBook>,
        source: SourceSpec,
        options: FileOptions,
    ) -> Self {
        LineReader::Connector {
            format: format.reader_with(options),
            book,
            source,
        }
    }

    fn line(&mut self, line: &[u8], now_ms: i64) -> Result<Row, RowError> {
        match self {
            LineReader::Rows(r) => r.line(line),
            LineReader::Connector {
                format,
                book,
                source,
            } => match format.line(line) {
                Ok(None) => Ok(Row::Header),
                Ok(Some(event)) => observe(book, source, event, now_ms),
                Err(e) => Err(RowError {
                    code: e.code,
                    message: e.message,
                }),
            },
        }
    }
}

/// An ingest in progress.
#[derive(Debug)]
pub struct Ingestor<'a> {
    store: &'a dyn Store,
    reader: LineReader,
    half_lives: HalfLives,
    splitter: LineSplitter,
    batch: Vec<Observation>,
    report: IngestReport,
    header_error: Option<(u64, RowError)>,
    now_ms: i64,
}

impl<'a> Ingestor<'a> {
    pub fn new(
        store: &'a dyn Store,
        format: RowFormat,
        codes: CodeTable,
        half_lives: HalfLives,
        now_ms: i64,
    ) -> Self {
        Self::with_reader(
            store,
            LineReader::Rows(RowReader::new(format, codes, now_ms)),
            half_lives,
            now_ms,
        )
    }

    /// An ingest with any line reader (a connector format, say).
    pub fn with_reader(
        store: &'a dyn Store,
        reader: LineReader,
        half_lives: HalfLives,
        now_ms: i64,
    ) -> Self {
        Ingestor {
            store,
            reader,
            half_lives,
            splitter: LineSplitter::new().with_max_line(MAX_EVIDENCE_LINE_BYTES),
            batch: Vec::new(),
            report: IngestReport::default(),
            header_error: None,
            now_ms,
        }
    }

    /// Feeds the next piece of the body.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.push(bytes, |line| self.take(line));
        self.splitter = splitter;
        self.check_header()?;
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Ends the body and writes what is left.
    pub async fn finish(mut self) -> Result<IngestReport, IngestError> {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.finish(|line| self.take(line));
        self.check_header()?;
        self.flush().await?;
        Ok(self.report)
    }

    /// The report so far.
    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    fn check_header(&mut self) -> Result<(), IngestError> {
        match self.header_error.take() {
            Some((line, error)) => Err(IngestError::Header { line, error }),
            None => Ok(()),
        }
    }

    fn take(&mut self, line: numcheck_core::Line<'_>) {
        if line.is_blank() || self.header_error.is_some() {
            return;
        }
        let outcome = if line.truncated {
            Err(RowError {
                code: "line_too_long",
                message: format!("the line is longer than {MAX_EVIDENCE_LINE_BYTES} bytes"),
            })
        } else {
            self.reader.line(line.text, self.now_ms)
        };
        match outcome {
            Ok(Row::Header) => {}
            Ok(Row::Observation(o)) => {
                self.report.rows += 1;
                self.batch.push(o);
            }
            Ok(Row::NotFinal) => {
                self.report.rows += 1;
                self.report.not_final += 1;
            }
            // Only a CSV header gives this; without a header no row can be read.
            Err(e) if e.code == "invalid_header" => {
                self.header_error = Some((line.number, e));
            }
            Err(e) => {
                self.report.rows += 1;
                self.report.rejected += 1;
                if self.report.errors.len() < MAX_LISTED_ERRORS {
                    self.report.errors.push(RejectedRow {
                        line: line.number,
                        error: e.code,
                        message: e.message,
                    });
                } else {
                    self.report.errors_truncated = true;
                }
            }
        }
    }

    async fn flush(&mut self) -> Result<(), IngestError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let out = self
            .store
            .ingest(batch, &self.half_lives, self.now_ms)
            .await?;
        self.report.inserted += out.inserted;
        self.report.duplicates += out.duplicates;
        Ok(())
    }
}
