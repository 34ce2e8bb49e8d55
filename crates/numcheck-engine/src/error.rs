//! The engine's one error type.
//!
//! A refusal of input ([`EngineError::Invalid`], the two size limits) carries a stable machine
//! code and a sentence that says what to fix: the HTTP layer answers it as a 400 or 413 with
//! that code, the command line prints the sentence. Everything else is a fault of the
//! machinery underneath (the database, the blob store, a thread), reported with its cause and
//! never shown to an API client.

use numcheck_blob::BlobError;
use numcheck_store::StoreError;

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Input that cannot be used; `code` is stable (`empty_file`, `invalid_columns`, …).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// An upload (or what a spreadsheet unpacks to) over the byte limit.
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// An upload past another bound on size, with its own stable code (`workbook_too_large`).
    #[error("{message}")]
    TooLargeWith { code: &'static str, message: String },
    /// An upload with more lines than `limits.max_upload_lines`.
    #[error("the upload holds more than {limit} lines (rows); split it into several tasks")]
    TooManyLines { limit: u64 },
    /// No such task for this user (another user's task answers alike).
    #[error("no task with this id for this user")]
    TaskNotFound,
    /// The task has ended and cannot be changed.
    #[error("{0}")]
    TaskEnded(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    /// A refusal of input with a stable code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        EngineError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A fault with a short description of what was being done.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        EngineError::Internal(anyhow::anyhow!("{what}"))
    }

    /// The stable code of a refusal (`None` for faults).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            EngineError::Invalid { code, .. } => Some(code),
            EngineError::TooLarge { .. } => Some("file_too_large"),
            EngineError::TooLargeWith { code, .. } => Some(code),
            EngineError::TooManyLines { .. } => Some("too_many_lines"),
            EngineError::TaskNotFound => Some("task_not_found"),
            EngineError::TaskEnded(_) => Some("task_finished"),
            EngineError::Store(StoreError::InsufficientCredits { .. }) => {
                Some("insufficient_credits")
            }
            EngineError::Store(StoreError::TooManyOpenTasks { .. }) => Some("too_many_tasks"),
            _ => None,
        }
    }
}
