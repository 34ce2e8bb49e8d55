//! The server backend: a PostgreSQL database shared by any number of nodes.
//!
//! The roles' SQL is shared with SQLite (see the crate doc); what is PostgreSQL's own is
//! here, and it is mostly about keeping concurrent writers on several nodes apart:
//!
//! - **Work** is claimed with `FOR UPDATE SKIP LOCKED`: a claimer never waits on a chunk
//!   another node is claiming at the same moment, it takes the next one. The choice is **fair
//!   share**: the next chunk comes from the task whose user holds the fewest live chunk leases
//!   (ties: the oldest task, then the chunk's order), so one user's huge task does not starve
//!   another user's small one. See [`CLAIM_CHUNK`] and the `chunk_queue` SQL function in the
//!   migration, which shows the same order to an operator.
//! - **Credits**: creating a task locks its user's row, so two tasks of one user never both
//!   pass the balance check, and one idempotency key never makes two tasks.
//! - **Evidence** is copied (`COPY … FROM STDIN`) into a session-temporary staging table, then
//!   one `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` keeps the new observations: their
//!   identity goes into `observation_keys` (unpartitioned, keyed by number and dedupe key), their
//!   rows into the month-partitioned `observations` log. Profiles of the touched numbers are
//!   locked `FOR UPDATE` in number order (so concurrent ingests cannot deadlock on them),
//!   merged in Rust with [`Profile::merge`] and written back. Ingests share an advisory lock
//!   that a profile rebuild takes exclusively, so a rebuild sees a still log.
//! - **Lists of numbers** are bound as one array (`= ANY($1)`, `unnest`) rather than as
//!   lists of placeholders.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use numcheck_core::{E164, HalfLives, Observation, Profile};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::{ConnectOptions, Executor, Pool, Postgres, Row, Transaction};

use crate::backend::{Backend, Tx, WorkSignals};
use crate::dialect::{Dialect, Q, RowsAffected};
use crate::evidence::add_delta;
use crate::rows::{number, profile};
use crate::{ChunkSpec, Result, StoreError, dedupe_key};

/// The PostgreSQL store. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// The `LISTEN`/`NOTIFY` channel on which nodes announce work.
const WORK_CHANNEL: &str = "numcheck_work";

/// Connections per store (per node).
const MAX_CONNECTIONS: u32 = 16;

/// Advisory lock (transaction scope) on the evidence: ingests take it shared, a profile
/// rebuild exclusively.
const EVIDENCE_LOCK: i64 = 0x6e63_6b5f_6576_6964;
/// Advisory lock (transaction scope) serialising the creation of log partitions.
const PARTITION_LOCK: i64 = 0x6e63_6b5f_7061_7274;

/// Leases the next chunk, fair share first.
///
/// `load` counts each user's live (unexpired, undone) chunk leases. The candidates are the
/// undone chunks of open tasks whose lease is free or expired, ordered by
/// 1. the user's live leases beyond [`crate::tasks::FAIR_SHARE_GRACE`] (fewest first),
/// 2. the task's age (`created_at_ns`, then id),
/// 3. the chunk's `seq`.
///
/// The first candidate nobody else is locking is locked (`FOR UPDATE OF c SKIP LOCKED`: rows
/// being claimed by another transaction are skipped, not waited for; one whose lease was
/// taken meanwhile fails the re-check of the `WHERE` clause and is skipped too) and leased.
/// Parameters: $1 owner, $2 lease until, $3 now, $4 grace.
const CLAIM_CHUNK: &str = "\
WITH load AS ( \
    SELECT t.user_id, COUNT(*) AS leases \
    FROM chunks c JOIN tasks t ON t.id = c.task_id \
    WHERE NOT c.done AND c.lease_until_ms >= $3 \
    GROUP BY t.user_id \
), next AS ( \
    SELECT c.task_id, c.seq \
    FROM chunks c \
    JOIN tasks t ON t.id = c.task_id \
    LEFT JOIN load l ON l.user_id = t.user_id \
    WHERE NOT c.done AND t.status IN ('pending', 'processing') \
      AND (c.lease_until_ms IS NULL OR c.lease_until_ms < $3) \
    ORDER BY GREATEST(COALESCE(l.leases, 0) - $4, 0), t.created_at_ns, t.id, c.seq \
    LIMIT 1 \
    FOR UPDATE OF c SKIP LOCKED \
) \
UPDATE chunks c SET lease_owner = $1, lease_until_ms = $2 \
FROM next WHERE c.task_id = next.task_id AND c.seq = next.seq \
RETURNING c.task_id, c.seq, c.byte_start, c.byte_end, c.first_line, c.lines";

/// The staging table an ingest copies its batch into: temporary (one per connection, never
/// logged), emptied at every commit.
const STAGE_DDL: &str = "DO $$ BEGIN \
    IF to_regclass('pg_temp.numcheck_obs_stage') IS NULL THEN \
        CREATE TEMPORARY TABLE numcheck_obs_stage ( \
            ord BIGINT NOT NULL, number BIGINT NOT NULL, observed_at_ms BIGINT NOT NULL, \
            source TEXT NOT NULL, kind TEXT NOT NULL, raw_code TEXT NOT NULL, \
            class TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, message_id TEXT, \
            dedupe_key BYTEA NOT NULL \
        ) ON COMMIT DELETE ROWS; \
    END IF; \
END $$";

const STAGE_COPY: &str = "COPY numcheck_obs_stage (ord, number, observed_at_ms, source, kind, \
    raw_code, class, weight, message_id, dedupe_key) FROM STDIN (FORMAT text)";

/// Keeps the staged observations not already known: the first of each identity in the batch
/// (`uniq`), whose identity is new to `observation_keys` (`new_keys`), goes into the log.
/// Returns the batch positions of the observations stored. Parameter: $1 ingested at.
const STAGE_INSERT: &str = "\
WITH uniq AS MATERIALIZED ( \
    SELECT DISTINCT ON (number, dedupe_key) * FROM numcheck_obs_stage \
    ORDER BY number, dedupe_key, ord \
), new_keys AS ( \
    INSERT INTO observation_keys (number, dedupe_key) \
    SELECT number, dedupe_key FROM uniq ORDER BY number, dedupe_key \
    ON CONFLICT DO NOTHING \
    RETURNING number, dedupe_key \
), fresh AS ( \
    SELECT u.* FROM uniq u JOIN new_keys k USING (number, dedupe_key) \
), logged AS ( \
    INSERT INTO observations (number, observed_at_ms, source, kind, raw_code, class, weight, \
        message_id, dedupe_key, ingested_at_ms) \
    SELECT number, observed_at_ms, source, kind, raw_code, class, weight, message_id, \
        dedupe_key, $1 FROM fresh ORDER BY ord \
) \
SELECT ord FROM fresh ORDER BY ord";

/// Bytes of COPY data sent per message.
const COPY_BUFFER: usize = 1 << 20;

/// Years the log gets monthly partitions for; other times land in the DEFAULT partition.
const PARTITION_YEARS: std::ops::RangeInclusive<i64> = 1900..=9999;

const DAY_MS: i64 = 86_400_000;

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and brings its
    /// schema up to date. Several nodes may connect at once: migrations take a lock.
    pub async fn connect(url: &str) -> Result<PgStore> {
        // Bulk ingest statements take over a second by design (200k rows each): report slow
        // statements only at debug level, past 10 s.
        let options = PgConnectOptions::from_str(url)?
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(10));
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

impl Dialect for Postgres {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const UNDONE: &'static str = "NOT done";
    const LIST_TASKS: &'static str = "WHERE user_id = $1 AND ($2::TEXT IS NULL OR status = $2) \
        AND ($3::BIGINT IS NULL OR (created_at_ns, id) < ($3, $4::TEXT))";
    const CLAIM_CHUNK: &'static str = CLAIM_CHUNK;
    const EVIDENCE_NUMBERS: &'static str =
        "SELECT DISTINCT number FROM observation_keys WHERE number > $1 ORDER BY number LIMIT $2";
    const DROP_ORPHAN_PROFILES: &'static str = "DELETE FROM profiles p WHERE NOT EXISTS \
        (SELECT 1 FROM observation_keys k WHERE k.number = p.number)";
    const NUMBERS_PER_QUERY: usize = usize::MAX;

    fn numbers_in(first: usize, _count: usize) -> String {
        format!("= ANY(${first})")
    }

    fn bind_numbers<'q>(query: Q<'q, Self>, numbers: &[i64]) -> Q<'q, Self> {
        query.bind(numbers)
    }

    fn conn(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        conn
    }

    fn pool(pool: &Pool<Self>) -> impl Executor<'_, Database = Self> {
        pool
    }
}

#[async_trait]
impl Backend for PgStore {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reads(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> Result<Tx<Self>> {
        Ok(self.pool.begin().await?)
    }

    async fn write_one(&self, statement: Q<'_, Postgres>) -> Result<PgQueryResult> {
        Ok(statement.execute(&self.pool).await?)
    }

    async fn write_one_returning(&self, statement: Q<'_, Postgres>) -> Result<Option<PgRow>> {
        Ok(statement.fetch_optional(&self.pool).await?)
    }

    async fn close(&self) {
        PgStore::close(self).await;
    }

    async fn announce_work(&self, tx: &mut Tx<Self>) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn work_signals(&self) -> Result<Option<WorkSignals>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    _ = tx.closed() => break,
                    got = listener.recv() => got,
                };
                match got {
                    // Full: a signal is already waiting to be read, which says the same.
                    Ok(_) => {
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) =
                            tx.try_send(())
                        {
                            break;
                        }
                    }
                    // The listener reconnects on the next call; announcements made meanwhile
                    // are lost, which the workers' polling covers.
                    Err(e) => {
                        tracing::warn!(error = %e, "work notifications: connection lost; reconnecting");
                        tokio::select! {
                            _ = tx.closed() => break,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    async fn insert_chunks(
        &self,
        tx: &mut Tx<Self>,
        task: &str,
        chunks: &[ChunkSpec],
    ) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = (0..chunks.len() as i64).collect();
        let col = |f: fn(&ChunkSpec) -> i64| chunks.iter().map(f).collect::<Vec<i64>>();
        sqlx::query(
            "INSERT INTO chunks (task_id, seq, byte_start, byte_end, first_line, lines) \
             SELECT $1, u.* FROM unnest($2::BIGINT[], $3::BIGINT[], $4::BIGINT[], \
               $5::BIGINT[], $6::BIGINT[]) AS u",
        )
        .bind(task)
        .bind(seqs)
        .bind(col(|c| c.byte_start))
        .bind(col(|c| c.byte_end))
        .bind(col(|c| c.first_line))
        .bind(col(|c| c.lines))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn upsert_lookups(&self, provider: &str, at: i64, rows: &[(E164, String)]) -> Result<()> {
        // One row per number (the last given wins, as with row-by-row upserts; one statement
        // may not update a row twice), in number order so concurrent upserts do not deadlock.
        let latest: BTreeMap<i64, &str> = rows
            .iter()
            .map(|(n, s)| (n.as_u64() as i64, s.as_str()))
            .collect();
        let numbers: Vec<i64> = latest.keys().copied().collect();
        let statuses: Vec<&str> = latest.values().copied().collect();
        sqlx::query(
            "INSERT INTO lookup_cache (number, provider, looked_up_at_ms, raw_status) \
             SELECT u.n, $1, $2, u.s FROM unnest($3::BIGINT[], $4::TEXT[]) AS u(n, s) \
             ON CONFLICT (number, provider) DO UPDATE \
               SET looked_up_at_ms = excluded.looked_up_at_ms, raw_status = excluded.raw_status",
        )
        .bind(provider)
        .bind(at)
        .bind(numbers)
        .bind(statuses)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ingest_sorted(
        &self,
        sorted: Vec<Observation>,
        half_lives: HalfLives,
        now_ms: i64,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(EVIDENCE_LOCK)
            .execute(&mut *tx)
            .await?;
        ensure_partitions(&mut tx, &sorted).await?;
        sqlx::query(STAGE_DDL).execute(&mut *tx).await?;
        copy_to_stage(&mut tx, &sorted).await?;
        let stored: Vec<i64> = sqlx::query(STAGE_INSERT)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("ord"))
            .collect::<Result<_, _>>()?;
        let mut deltas: Vec<(E164, Profile)> = Vec::new();
        for ord in &stored {
            let obs = usize::try_from(*ord)
                .ok()
                .and_then(|i| sorted.get(i))
                .ok_or_else(|| StoreError::Corrupt(format!("staged row {ord} out of range")))?;
            add_delta(&mut deltas, obs, &half_lives);
        }
        merge_profiles(&mut tx, &deltas, &half_lives).await?;
        tx.commit().await?;
        Ok(stored.len() as u64)
    }

    async fn profiles_of(&self, numbers: Vec<i64>) -> Result<HashMap<E164, Profile>> {
        let rows = sqlx::query("SELECT number, data FROM profiles WHERE number = ANY($1)")
            .bind(numbers)
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let n = number(r.try_get("number")?)?;
            let data: Vec<u8> = r.try_get("data")?;
            out.insert(n, profile(n, &data)?);
        }
        Ok(out)
    }

    async fn upsert_profiles(&self, tx: &mut Tx<Self>, profiles: &[(E164, Profile)]) -> Result<()> {
        let keys: Vec<i64> = profiles.iter().map(|(n, _)| n.as_u64() as i64).collect();
        let data: Vec<Vec<u8>> = profiles.iter().map(|(_, p)| p.to_bytes()).collect();
        sqlx::query(
            "INSERT INTO profiles (number, data) \
             SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[]) \
             ON CONFLICT (number) DO UPDATE SET data = excluded.data",
        )
        .bind(keys)
        .bind(data)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn rebuild_starting(&self, tx: &mut Tx<Self>) -> Result<()> {
        // Ingests wait until the rebuild commits.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVIDENCE_LOCK)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Creates the monthly log partitions the batch needs and does not have yet. Partition
/// creation is serialised by an advisory lock, so two ingests needing the same new month do
/// not race on the catalog; batches whose months all exist (nearly all) skip it.
async fn ensure_partitions(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[Observation],
) -> Result<()> {
    let months: BTreeSet<(i64, i64)> = batch
        .iter()
        .filter_map(|o| month_of(o.observed_at_ms))
        .collect();
    if months.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = months.iter().map(|&(y, m)| partition_name(y, m)).collect();
    let missing: HashSet<String> =
        sqlx::query("SELECT n FROM unnest($1::TEXT[]) AS n WHERE to_regclass(n) IS NULL")
            .bind(&names)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get("n"))
            .collect::<Result<_, _>>()?;
    if missing.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut **tx)
        .await?;
    for &(y, m) in &months {
        let name = partition_name(y, m);
        if !missing.contains(&name) {
            continue;
        }
        let (next_y, next_m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let from = days_from_civil(y, m, 1) * DAY_MS;
        let to = days_from_civil(next_y, next_m, 1) * DAY_MS;
        // Only integers computed here go into the statement.
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF observations \
             FOR VALUES FROM ({from}) TO ({to})"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
        tracing::info!(partition = %name, "created an observation log partition");
    }
    Ok(())
}

fn partition_name(year: i64, month: i64) -> String {
    format!("observations_y{year:04}m{month:02}")
}

/// The (year, month) of a time, UTC; `None` outside [`PARTITION_YEARS`].
fn month_of(ms: i64) -> Option<(i64, i64)> {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    PARTITION_YEARS.contains(&y).then_some((y, m))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Streams the batch into the staging table in COPY text format; `ord` is the position in
/// the sorted batch.
async fn copy_to_stage(
    tx: &mut Transaction<'static, Postgres>,
    sorted: &[Observation],
) -> Result<()> {
    let mut copy = tx.copy_in_raw(STAGE_COPY).await?;
    let mut buf = String::with_capacity(COPY_BUFFER + 4096);
    let mut sent: std::result::Result<(), sqlx::Error> = Ok(());
    for (ord, obs) in sorted.iter().enumerate() {
        copy_row(&mut buf, ord, obs);
        if buf.len() >= COPY_BUFFER {
            let chunk = std::mem::replace(&mut buf, String::with_capacity(COPY_BUFFER + 4096));
            if let Err(e) = copy.send(chunk.into_bytes()).await {
                sent = Err(e);
                break;
            }
        }
    }
    if sent.is_ok() && !buf.is_empty() {
        sent = copy.send(buf.into_bytes()).await.map(|_| ());
    }
    match sent {
        Ok(()) => {
            copy.finish().await?;
            Ok(())
        }
        Err(e) => {
            // Leave the connection usable; the transaction is rolled back by the caller.
            if let Err(abort) = copy.abort("numcheck: evidence copy failed").await {
                tracing::debug!(error = %abort, "aborting COPY");
            }
            Err(e.into())
        }
    }
}

/// One observation as a line of COPY text format.
fn copy_row(buf: &mut String, ord: usize, obs: &Observation) {
    buf.push_str(&ord.to_string());
    buf.push('\t');
    buf.push_str(&(obs.number.as_u64() as i64).to_string());
    buf.push('\t');
    buf.push_str(&obs.observed_at_ms.to_string());
    buf.push('\t');
    copy_text(buf, &obs.source);
    buf.push('\t');
    copy_text(buf, obs.kind.as_str());
    buf.push('\t');
    copy_text(buf, &obs.raw_code);
    buf.push('\t');
    copy_text(buf, obs.class.as_str());
    buf.push('\t');
    // Rust prints the shortest form that reads back to the same f64 (NaN and inf included,
    // both of which PostgreSQL reads).
    buf.push_str(&obs.weight.to_string());
    buf.push('\t');
    match &obs.message_id {
        Some(id) => copy_text(buf, id),
        None => buf.push_str("\\N"),
    }
    buf.push('\t');
    // bytea hex input, its backslash escaped for the COPY text format.
    buf.push_str("\\\\x");
    for b in dedupe_key(obs) {
        buf.push(HEX[usize::from(b >> 4)]);
        buf.push(HEX[usize::from(b & 0xf)]);
    }
    buf.push('\n');
}

const HEX: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

/// A text value escaped for the COPY text format.
fn copy_text(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

/// Merges the batch's new evidence (`deltas`, ascending by number) into the stored profiles.
///
/// The touched profiles are locked `FOR UPDATE` in number order, so concurrent ingests take
/// their row locks in one global order and cannot deadlock. A number without a profile is
/// inserted with `ON CONFLICT DO NOTHING`; if another ingest inserted it meanwhile, that row
/// is locked and merged into like the others.
async fn merge_profiles(
    tx: &mut Transaction<'static, Postgres>,
    deltas: &[(E164, Profile)],
    half_lives: &HalfLives,
) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = deltas.iter().map(|(n, _)| n.as_u64() as i64).collect();
    let stored = lock_profiles(tx, &numbers).await?;
    let mut updates: Vec<(i64, Profile)> = Vec::new();
    let mut fresh: Vec<(i64, Profile)> = Vec::new();
    for (n, delta) in deltas {
        let key = n.as_u64() as i64;
        match stored.get(&key) {
            Some(old) => updates.push((key, old.merge(delta, half_lives))),
            None => fresh.push((key, *delta)),
        }
    }
    if !fresh.is_empty() {
        let keys: Vec<i64> = fresh.iter().map(|(n, _)| *n).collect();
        let data: Vec<Vec<u8>> = fresh.iter().map(|(_, p)| p.to_bytes()).collect();
        let inserted: HashSet<i64> = sqlx::query(
            "INSERT INTO profiles (number, data) \
             SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[]) \
             ON CONFLICT (number) DO NOTHING RETURNING number",
        )
        .bind(&keys)
        .bind(data)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("number"))
        .collect::<Result<_, _>>()?;
        let raced: Vec<(i64, Profile)> = fresh
            .into_iter()
            .filter(|(n, _)| !inserted.contains(n))
            .collect();
        if !raced.is_empty() {
            let keys: Vec<i64> = raced.iter().map(|(n, _)| *n).collect();
            let now = lock_profiles(tx, &keys).await?;
            for (n, delta) in raced {
                let old = now.get(&n).ok_or_else(|| {
                    StoreError::Corrupt(format!("profile of {n} vanished during ingest"))
                })?;
                updates.push((n, old.merge(&delta, half_lives)));
            }
        }
    }
    if !updates.is_empty() {
        let keys: Vec<i64> = updates.iter().map(|(n, _)| *n).collect();
        let data: Vec<Vec<u8>> = updates.iter().map(|(_, p)| p.to_bytes()).collect();
        sqlx::query(
            "UPDATE profiles p SET data = u.data \
             FROM unnest($1::BIGINT[], $2::BYTEA[]) AS u(number, data) \
             WHERE p.number = u.number",
        )
        .bind(keys)
        .bind(data)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Locks and reads the stored profiles of `numbers`, in number order.
async fn lock_profiles(
    tx: &mut Transaction<'static, Postgres>,
    numbers: &[i64],
) -> Result<HashMap<i64, Profile>> {
    let rows = sqlx::query(
        "SELECT number, data FROM profiles WHERE number = ANY($1) ORDER BY number FOR UPDATE",
    )
    .bind(numbers)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let n: i64 = r.try_get("number")?;
        let data: Vec<u8> = r.try_get("data")?;
        out.insert(n, profile(n, &data)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn calendar_round_trips_and_months_have_the_right_bounds() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for day in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        // 2024-02-29 23:59:59.999 is in February, the next millisecond in March.
        let march = days_from_civil(2024, 3, 1) * DAY_MS;
        assert_eq!(month_of(march - 1), Some((2024, 2)));
        assert_eq!(month_of(march), Some((2024, 3)));
        assert_eq!(month_of(-1), Some((1969, 12)));
        assert_eq!(month_of(i64::MAX), None);
    }

    #[test]
    fn copy_text_escapes_what_the_format_needs() {
        let mut s = String::new();
        copy_text(&mut s, "a\\b\tc\nd\re");
        assert_eq!(s, "a\\\\b\\tc\\nd\\re");
    }
}
