//! The crate's types read out of result rows, and stored values parsed back, for both
//! backends.

use std::str::FromStr;

use numcheck_core::{E164, Profile};
use sqlx::Row;

use crate::dialect::{Dialect, RowExt};
use crate::{CallbackState, KeyInfo, KeyRights, LedgerRow, Result, StoreError, Task, User};

/// The columns [`task_from_row`] reads, in the order of the table.
/// `success` and `failure` include the progress of chunks still in work.
pub(crate) const TASK_COLUMNS: &str = "id, user_id, task_type, status, total, \
    success + progress_success AS success, failure + progress_failure AS failure, \
    default_region, created_at_ns, updated_at_ms, input_key, input_bytes, result_key, reserved, \
    charged, message, chunk_count, chunks_done, options, lookups_made, callback_url, file_name";

/// The columns [`key_from_row`] reads, from `api_keys k JOIN users u`.
pub(crate) const KEY_COLUMNS: &str = "k.id, u.name, u.credits, k.prefix, k.can_check, k.can_ingest, k.created_at_ms, k.revoked_at_ms";

/// The columns [`ledger_from_row`] reads.
pub(crate) const LEDGER_COLUMNS: &str = "id, at_ms, amount, kind, task_id, note";

pub(crate) fn parse<T: FromStr>(value: String, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {value:?}")))
}

/// A number as stored (its E.164 digits as an integer).
pub(crate) fn number(raw: i64) -> Result<E164> {
    E164::from_u64(raw as u64).ok_or_else(|| StoreError::Corrupt(format!("bad number {raw}")))
}

/// A profile as stored ([`Profile::to_bytes`]).
pub(crate) fn profile(n: impl std::fmt::Display, bytes: &[u8]) -> Result<Profile> {
    Profile::from_bytes(bytes).ok_or_else(|| StoreError::Corrupt(format!("bad profile for {n}")))
}

pub(crate) fn user_from_row<R: Row<Database: Dialect>>(row: &R) -> Result<User> {
    Ok(User {
        id: parse(row.col("id")?, "user id")?,
        name: row.col("name")?,
        credits: row.col("credits")?,
        is_admin: row.col("is_admin")?,
        created_at_ms: row.col("created_at_ms")?,
    })
}

pub(crate) fn task_from_row<R: Row<Database: Dialect>>(row: &R) -> Result<Task> {
    Ok(Task {
        id: parse(row.col("id")?, "task id")?,
        user_id: parse(row.col("user_id")?, "user id")?,
        task_type: parse(row.col("task_type")?, "task type")?,
        status: parse(row.col("status")?, "task status")?,
        total: row.col("total")?,
        success: row.col("success")?,
        failure: row.col("failure")?,
        default_region: row.col("default_region")?,
        created_at_ns: row.col("created_at_ns")?,
        updated_at_ms: row.col("updated_at_ms")?,
        input_key: row.col("input_key")?,
        input_bytes: row.col("input_bytes")?,
        result_key: row.col("result_key")?,
        reserved: row.col("reserved")?,
        charged: row.col("charged")?,
        message: row.col("message")?,
        chunk_count: row.col("chunk_count")?,
        chunks_done: row.col("chunks_done")?,
        options: row.col("options")?,
        lookups_made: row.col("lookups_made")?,
        callback_url: row.col("callback_url")?,
        file_name: row.col("file_name")?,
    })
}

pub(crate) fn key_from_row<R: Row<Database: Dialect>>(row: &R) -> Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.col("id")?,
        user_name: row.col("name")?,
        prefix: row.col("prefix")?,
        rights: KeyRights {
            check: row.col("can_check")?,
            ingest: row.col("can_ingest")?,
        },
        credits: row.col("credits")?,
        created_at_ms: row.col("created_at_ms")?,
        revoked_at_ms: row.col("revoked_at_ms")?,
    })
}

pub(crate) fn ledger_from_row<R: Row<Database: Dialect>>(row: &R) -> Result<LedgerRow> {
    Ok(LedgerRow {
        id: row.col("id")?,
        at_ms: row.col("at_ms")?,
        amount: row.col("amount")?,
        kind: row.col("kind")?,
        task_id: row.col("task_id")?,
        note: row.col("note")?,
    })
}

pub(crate) fn callback_state_from_row<R: Row<Database: Dialect>>(row: &R) -> Result<CallbackState> {
    Ok(CallbackState {
        state: row.col("state")?,
        attempts: row.col("attempts")?,
        next_at_ms: row.col("next_at_ms")?,
        last_status: row.col("last_status")?,
        last_error: row.col("last_error")?,
        delivered_at_ms: row.col("delivered_at_ms")?,
    })
}
