//! What can go wrong in the store, for every role and backend.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("not enough credits: the task needs {needed}, the balance allows {available}")]
    InsufficientCredits { needed: i64, available: i64 },
    /// The user already has `cap` tasks pending or processing.
    #[error("the user already has {cap} tasks pending or processing")]
    TooManyOpenTasks { cap: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// From the database the roles run on (sqlx: SQLite's pools or PostgreSQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From SQLite's direct connections for evidence: the ingest writer and the profile
    /// readers.
    #[error("evidence database error: {0}")]
    EvidenceDatabase(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
