//! A task's life outside the workers: created from a checked [`Intake`] (credits held, chunks
//! queued, workers woken), cancelled, or deleted with its files. Another user's task is
//! [`EngineError::TaskNotFound`], exactly like a task that does not exist.

use std::collections::HashSet;

use futures::StreamExt;
use numcheck_core::{LineSplitter, RegionCode, TaskId, TaskStatus};
use numcheck_store::{Created, NewTask, StoreError, Task, User};

use crate::blob_keys::TaskFiles;
use crate::clock::now_ms;
use crate::intake::Intake;
use crate::{Engine, EngineError};

/// Creates a task from a checked request: counts the credits it needs (for a user with a
/// balance), then stores it with its chunks and wakes the workers. A repeated
/// `idempotency_key` answers the first task and drops this upload. On any error the upload is
/// removed.
pub async fn create(
    engine: &Engine,
    user: &User,
    intake: Intake,
    idempotency_key: Option<String>,
) -> Result<Created, EngineError> {
    let upload = intake.upload.clone();
    // A small task is run at once, here, at the API's priority: it skips the queue, its
    // chunks leased to this node from the start (the workers, at the lowest priority, take
    // over whatever this leaves once the lease runs out).
    let worker = &engine.config.worker;
    let now_owner = (worker.concurrency > 0 && upload.total <= worker.small_task_lines as u64)
        .then(|| crate::worker::now_owner(&intake.ticket.id));
    let created = store_task(engine, user, intake, idempotency_key, now_owner.clone()).await;
    let drop_upload = match &created {
        Ok(Created::New(_)) => false,
        Ok(Created::Existing(_)) | Err(_) => true,
    };
    if drop_upload && let Err(e) = engine.blobs.delete(&upload.key).await {
        tracing::warn!(error = %e, "could not delete an upload no task uses");
    }
    if let Ok(Created::New(task)) = &created {
        tracing::info!(task = %task.id, user = %user.name, total = task.total, "task created");
        engine.metrics.upload(upload.bytes);
        match now_owner {
            Some(owner) => {
                tokio::spawn(crate::worker::run_now(
                    engine.clone(),
                    task.clone(),
                    owner,
                    upload.chunks.clone(),
                ));
            }
            None => engine.work.notify_waiters(),
        }
    }
    created
}

async fn store_task(
    engine: &Engine,
    user: &User,
    intake: Intake,
    idempotency_key: Option<String>,
    now_owner: Option<String>,
) -> Result<Created, EngineError> {
    let needs_credits = match engine.store.available_credits(&user.id).await? {
        None => 0,
        Some(available) => {
            count_unique(engine, &intake.upload.key, intake.region, available).await?
        }
    };
    let new = NewTask {
        id: intake.ticket.id,
        user_id: user.id.clone(),
        task_type: intake.task_type,
        total: intake.upload.total as i64,
        default_region: intake.region.map(|r| r.as_str()),
        created_at_ns: intake.ticket.created_at_ns,
        input_key: intake.upload.key,
        input_bytes: intake.upload.bytes as i64,
        needs_credits,
        idempotency_key,
        chunks: intake.upload.chunks,
        options: intake.options.to_json(),
        callback_url: intake.callback_url,
        file_name: intake.upload.file_name,
        leased_to: now_owner.map(|owner| {
            let lease_ms = engine.config.worker.lease_ms();
            (owner, now_ms() + lease_ms)
        }),
        max_open: match engine.config.limits.max_open_tasks {
            0 => None,
            cap => Some(i64::from(cap)),
        },
    };
    Ok(engine.store.create_task(new).await?)
}

/// Counts the unique parseable numbers of an upload, for the credit check. Stops counting
/// once the count passes `cap` (the user's available credits), so memory stays bounded by
/// the balance, not by the file.
async fn count_unique(
    engine: &Engine,
    key: &str,
    region: Option<RegionCode>,
    cap: i64,
) -> Result<i64, EngineError> {
    let (_, mut stream) = engine.blobs.stream(key).await?;
    let plan = engine.plan;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let counter = tokio::task::spawn_blocking(move || {
        let mut seen = HashSet::new();
        let mut splitter = LineSplitter::new();
        let cap = usize::try_from(cap.max(0)).unwrap_or(usize::MAX);
        let mut over = false;
        let take = |line: numcheck_core::Line<'_>, seen: &mut HashSet<u64>| {
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
        .map_err(|e| EngineError::internal(format!("credit count failed: {e}")))
}

/// A user's own task; [`EngineError::TaskNotFound`] for a malformed id, a missing task or
/// another user's.
pub async fn own_task(engine: &Engine, user: &User, raw_id: &str) -> Result<Task, EngineError> {
    let id: TaskId = raw_id.parse().map_err(|_| EngineError::TaskNotFound)?;
    engine
        .store
        .task(&id)
        .await?
        .filter(|t| t.user_id == user.id)
        .ok_or(EngineError::TaskNotFound)
}

/// An exported task's `summary.json`, kept beside its zip (`None` before it is exported, and
/// for tasks exported before summaries were kept).
pub async fn summary(
    engine: &Engine,
    task: &Task,
) -> Result<Option<serde_json::Value>, EngineError> {
    if task.status != TaskStatus::Exported {
        return Ok(None);
    }
    match engine.blobs.get(&TaskFiles::of(&task.id).summary()).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(numcheck_blob::BlobError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The first rows of an exported task's result, for a look without downloading it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FirstRows {
    /// The result CSV's header.
    pub columns: Vec<String>,
    /// Its first rows, in input order, each as many fields as `columns`.
    pub rows: Vec<Vec<String>>,
    /// The result has more rows than these.
    pub more: bool,
}

/// Bytes read from the start of a result zip for [`first_rows`]: the result CSV is its first
/// entry, so its first rows sit at the start, whatever the zip's size.
const FIRST_ROWS_BYTES: u64 = 256 * 1024;

/// The first `limit` rows of an exported task's result CSV, read from the first bytes of its
/// zip rather than the whole file. `Ok(None)` before the task is exported.
pub async fn first_rows(
    engine: &Engine,
    task: &Task,
    limit: usize,
) -> Result<Option<FirstRows>, EngineError> {
    if task.status != TaskStatus::Exported {
        return Ok(None);
    }
    let key = TaskFiles::of(&task.id).result();
    let size = engine.blobs.size(&key).await?.unwrap_or(0);
    let head = engine
        .blobs
        .get_range(&key, 0..size.min(FIRST_ROWS_BYTES))
        .await?;
    let whole = head.len() as u64 >= size;
    Ok(Some(rows_of_zip_head(&head, whole, limit)))
}

/// Reads the first entry of a zip from its first bytes (`whole`: all of the zip); a row the
/// end of those bytes may have cut is left out.
fn rows_of_zip_head(head: &[u8], whole: bool, limit: usize) -> FirstRows {
    let mut out = FirstRows {
        columns: Vec::new(),
        rows: Vec::new(),
        more: false,
    };
    let mut cursor = std::io::Cursor::new(head);
    let Ok(Some(entry)) = zip::read::read_zipfile_from_stream(&mut cursor) else {
        return out;
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(entry));
    let mut records = csv.records();
    if let Some(Ok(header)) = records.next() {
        out.columns = header.iter().map(str::to_owned).collect();
    }
    for record in records {
        // An error is the end of the bytes read: the rows before it are whole.
        let Ok(record) = record else { break };
        if record.len() != out.columns.len() {
            break;
        }
        if out.rows.len() == limit {
            out.more = true;
            break;
        }
        out.rows.push(record.iter().map(str::to_owned).collect());
    }
    if !whole && !out.more {
        // Stopped by the end of the bytes read: the last row may be cut short.
        out.rows.pop();
        out.more = true;
    }
    out
}

/// Cancels a user's open task: nothing more is processed or charged, and its files (upload,
/// chunk outputs) are removed; a worker still busy with it removes what it writes after.
pub async fn cancel(engine: &Engine, user: &User, raw_id: &str) -> Result<Task, EngineError> {
    let id: TaskId = raw_id.parse().map_err(|_| EngineError::TaskNotFound)?;
    let task = match engine.store.cancel_task(&user.id, &id, now_ms()).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(EngineError::TaskNotFound),
        Err(StoreError::Conflict(_)) => {
            let status = engine
                .store
                .task(&id)
                .await?
                .map(|t| t.status.as_str())
                .unwrap_or("ended");
            return Err(EngineError::TaskEnded(format!(
                "the task has already ended ({status}); nothing to cancel"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(task = %task.id, user = %user.name, "task cancelled");
    remove_files(engine, &task).await;
    Ok(task)
}

/// Deletes a user's task (cancelling it first when open) with its upload, result and chunk
/// outputs. The ledger keeps its charge.
pub async fn delete(engine: &Engine, user: &User, raw_id: &str) -> Result<Task, EngineError> {
    let id: TaskId = raw_id.parse().map_err(|_| EngineError::TaskNotFound)?;
    let task = match engine.store.delete_task(&user.id, &id, now_ms()).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(EngineError::TaskNotFound),
        Err(e) => return Err(e.into()),
    };
    // The row is gone, so no link or poll reaches these blobs any more.
    remove_files(engine, &task).await;
    tracing::info!(task = %task.id, user = %user.name, "task deleted");
    Ok(task)
}

/// Removes every file of a task that has ended by a user's hand (cancelled or deleted): its
/// upload, chunk outputs, result and summary. Called by the cancel or delete, and again by a
/// worker that was still busy with the task, for what it wrote after. A failure to remove one
/// is logged (the bytes are unreachable, not exposed).
pub async fn remove_files(engine: &Engine, task: &Task) {
    let files = TaskFiles::of(&task.id);
    // A task's result is always at `files.result()` (the export writes it there).
    for key in [task.input_key.clone(), files.result(), files.summary()] {
        match engine.blobs.delete(&key).await {
            Ok(()) | Err(numcheck_blob::BlobError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(task = %task.id, %key, error = %e, "could not remove an ended task's file")
            }
        }
    }
    remove_parts(engine, task).await;
}

/// Whether a task has been cancelled or deleted (by its user) since `task` was read.
pub async fn ended_by_user(engine: &Engine, task: &TaskId) -> Result<bool, EngineError> {
    Ok(match engine.store.task(task).await? {
        None => true,
        Some(t) => t.status == TaskStatus::Cancelled,
    })
}

/// Removes a task's chunk outputs (they are of no use once it has ended).
pub async fn remove_parts(engine: &Engine, task: &Task) {
    let parts = TaskFiles::of(&task.id).parts();
    if let Err(e) = engine.blobs.delete_prefix(parts.prefix()).await {
        tracing::warn!(task = %task.id, error = %e, "could not remove a task's chunk outputs");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(csv: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("t.csv", options).unwrap();
        zip.write_all(csv.as_bytes()).unwrap();
        zip.start_file("rejected.csv", options).unwrap();
        zip.write_all(b"Line,Input,Reason\n").unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn the_first_rows_come_from_the_start_of_the_zip() {
        let mut csv = String::from("Number,ActiveStatus\n");
        for i in 0..5000 {
            csv.push_str(&format!("+1415555{i:04},active\n"));
        }
        let zip = zip_of(&csv);
        let got = rows_of_zip_head(&zip, true, 3);
        assert_eq!(got.columns, ["Number", "ActiveStatus"]);
        assert_eq!(got.rows.len(), 3);
        assert_eq!(got.rows[2], ["+14155550002", "active"]);
        assert!(got.more);
        // All of a small result.
        let small = rows_of_zip_head(&zip_of("Number,ActiveStatus\n+1,unknown\n"), true, 50);
        assert_eq!(small.rows, [["+1", "unknown"]]);
        assert!(!small.more);
        // Only the first bytes of a big one: whole rows, in order, none cut short.
        let part = rows_of_zip_head(&zip[..zip.len() / 3], false, 100_000);
        assert!(
            part.more && !part.rows.is_empty() && part.rows.len() < 5000,
            "{}",
            part.rows.len()
        );
        for (i, row) in part.rows.iter().enumerate() {
            assert_eq!(row[0], format!("+1415555{i:04}"));
            assert_eq!(row[1], "active");
        }
        // Not a zip: nothing.
        assert!(rows_of_zip_head(b"not a zip", true, 5).rows.is_empty());
    }
}
