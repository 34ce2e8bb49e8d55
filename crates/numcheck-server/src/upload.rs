//! Receiving an upload: stream the `file` field into the blob store while counting its lines
//! and cutting it into chunks, never holding it whole in memory.

use axum::extract::multipart::Field;
use futures::StreamExt;
use numcheck_core::{Chunker, LineSplitter, RegionCode, TaskId, TextCheck, check_text};
use numcheck_store::ChunkSpec;

use crate::error::ApiError;
use crate::routes::multipart_error;
use crate::state::AppState;

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
}

/// The blob key of a task's upload.
pub fn input_key(task: &TaskId) -> String {
    format!("uploads/{task}.txt")
}

/// Streams the file field into the blob store.
pub async fn receive(
    state: &AppState,
    task: &TaskId,
    mut field: Field<'_>,
) -> Result<Received, ApiError> {
    let key = input_key(task);
    let limit = state.config.max_upload_bytes;
    let mut writer = state.blobs.writer(&key).await?;
    let mut splitter = LineSplitter::new();
    let mut chunker = Chunker::new(state.config.worker.chunk_lines);
    let mut sample: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut sniffed = false;
    let mut size: u64 = 0;

    let outcome: Result<(), ApiError> = async {
        while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
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
    let chunks = chunker
        .finish()
        .into_iter()
        .map(|c| ChunkSpec {
            byte_start: c.byte_start as i64,
            byte_end: c.byte_end as i64,
            first_line: c.first_line as i64,
            lines: c.lines as i64,
        })
        .collect();
    let bytes = writer.finish().await?;
    Ok(Received {
        key,
        bytes,
        total,
        chunks,
    })
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
