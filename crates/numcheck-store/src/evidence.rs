//! Evidence: the log of observations and the per-number profiles merged from it.
//!
//! How a batch reaches the log and how profiles are looked up is each backend's own (SQLite:
//! direct connections and the presence filter; PostgreSQL: `COPY` into a partitioned log);
//! the statistics, the profile rebuild and the arithmetic on profiles are written here once.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use numcheck_core::{E164, EvidenceClass, EvidenceKind, HalfLives, Observation, Profile};
use sqlx::{Pool, Transaction};

use crate::backend::Backend;
use crate::dialect::{Dialect, QueryExt, RowExt, RowsAffected};
use crate::rows::number;
use crate::{EvidenceStats, IngestOutcome, RebuildReport, Result, StoreError};

/// The evidence log and the profiles merged from it.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Appends observations to the log, skipping ones already there, and merges the new ones
    /// into their numbers' profiles, in one transaction.
    async fn ingest(
        &self,
        batch: Vec<Observation>,
        half_lives: &HalfLives,
        now_ms: i64,
    ) -> Result<IngestOutcome>;
    /// The stored profiles of these numbers (numbers without evidence are absent).
    async fn profiles(&self, numbers: &[E164]) -> Result<HashMap<E164, Profile>>;
    async fn evidence_stats(&self) -> Result<EvidenceStats>;
    /// Recomputes every profile from the log (in one transaction, so ingest waits).
    async fn rebuild_profiles(&self, half_lives: &HalfLives) -> Result<RebuildReport>;
}

/// Numbers per page of a profile rebuild.
const REBUILD_PAGE: i64 = 2000;

#[async_trait]
impl<B: Backend> EvidenceStore for B {
    async fn ingest(
        &self,
        batch: Vec<Observation>,
        half_lives: &HalfLives,
        now_ms: i64,
    ) -> Result<IngestOutcome> {
        if batch.is_empty() {
            return Ok(IngestOutcome::default());
        }
        // Sorted by number (stably: within a number, the batch's order decides which of two
        // copies of a fact is kept), a batch touches neighbouring index and profile pages,
        // the new observations of one number sit together for the merge, and profiles are
        // locked in number order.
        let mut sorted = batch;
        sorted.sort_by_key(|o| o.number);
        let total = sorted.len() as u64;
        let inserted = self.ingest_sorted(sorted, *half_lives, now_ms).await?;
        Ok(IngestOutcome {
            inserted,
            duplicates: total - inserted,
        })
    }

    async fn profiles(&self, numbers: &[E164]) -> Result<HashMap<E164, Profile>> {
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut keys: Vec<i64> = numbers.iter().map(|n| n.as_u64() as i64).collect();
        keys.sort_unstable();
        keys.dedup();
        self.profiles_of(keys).await
    }

    async fn evidence_stats(&self) -> Result<EvidenceStats> {
        let pool = self.pool();
        let head = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(observed_at_ms) AS first, MAX(observed_at_ms) AS last \
             FROM observations",
        )
        .fetch_one(B::Db::pool(pool))
        .await?;
        let numbers: i64 = sqlx::query("SELECT COUNT(*) AS n FROM profiles")
            .fetch_one(B::Db::pool(pool))
            .await?
            .col("n")?;
        Ok(EvidenceStats {
            observations: head.col("n")?,
            numbers,
            by_class: counts(pool, "class", "").await?,
            by_kind: counts(pool, "kind", "").await?,
            by_source: counts(pool, "source", " LIMIT 20").await?,
            first_ms: head.col("first")?,
            last_ms: head.col("last")?,
        })
    }

    async fn rebuild_profiles(&self, half_lives: &HalfLives) -> Result<RebuildReport> {
        let mut tx = self.write().await?;
        self.rebuild_starting(&mut tx).await?;
        let mut report = RebuildReport::default();
        let mut after: i64 = -1;
        loop {
            let numbers: Vec<i64> = sqlx::query(B::Db::EVIDENCE_NUMBERS)
                .arg(after)
                .arg(REBUILD_PAGE)
                .fetch_all(B::Db::conn(&mut tx))
                .await?
                .iter()
                .map(|r| r.col("number"))
                .collect::<Result<_, _>>()?;
            let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
                break;
            };
            let rows = sqlx::query(
                "SELECT number, observed_at_ms, kind, class, weight FROM observations \
                 WHERE number BETWEEN $1 AND $2 ORDER BY number, id",
            )
            .arg(first)
            .arg(last)
            .fetch_all(B::Db::conn(&mut tx))
            .await?;
            let mut rebuilt: BTreeMap<E164, Profile> = BTreeMap::new();
            for r in &rows {
                let n = number(r.col("number")?)?;
                let class: EvidenceClass = r
                    .col::<String>("class")?
                    .parse()
                    .map_err(StoreError::Corrupt)?;
                let kind: EvidenceKind = r
                    .col::<String>("kind")?
                    .parse()
                    .map_err(StoreError::Corrupt)?;
                let single = Profile::of(&Observation {
                    number: n,
                    observed_at_ms: r.col("observed_at_ms")?,
                    source: String::new(),
                    kind,
                    raw_code: String::new(),
                    class,
                    weight: r.col("weight")?,
                    message_id: None,
                });
                rebuilt
                    .entry(n)
                    .and_modify(|p| *p = p.merge(&single, half_lives))
                    .or_insert(single);
            }
            report.observations += rows.len() as i64;
            let keys: Vec<i64> = rebuilt.keys().map(|n| n.as_u64() as i64).collect();
            let stored = stored_profiles(&mut tx, &keys).await?;
            for (n, p) in &rebuilt {
                match stored.get(n) {
                    Some(old) => {
                        let d = max_relative_difference(old, p);
                        report.max_relative_difference = report.max_relative_difference.max(d);
                        if !old.approx_eq(p, 1e-9) {
                            report.changed += 1;
                        }
                    }
                    None => report.changed += 1,
                }
            }
            report.profiles += rebuilt.len() as i64;
            let all: Vec<(E164, Profile)> = rebuilt.into_iter().collect();
            self.upsert_profiles(&mut tx, &all).await?;
            after = last;
        }
        report.removed = sqlx::query(B::Db::DROP_ORPHAN_PROFILES)
            .execute(B::Db::conn(&mut tx))
            .await?
            .rows_affected() as i64;
        self.rebuild_finishing(&mut tx).await?;
        tx.commit().await?;
        self.rebuilt();
        Ok(report)
    }
}

/// How many observations each value of `column` has, most first.
async fn counts<D: Dialect>(
    pool: &Pool<D>,
    column: &str,
    limit: &str,
) -> Result<Vec<(String, i64)>> {
    let sql = format!(
        "SELECT {column} AS k, COUNT(*) AS n FROM observations GROUP BY {column} \
         ORDER BY n DESC{limit}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(D::pool(pool))
        .await?
        .iter()
        .map(|r| Ok((r.col("k")?, r.col("n")?)))
        .collect()
}

/// The stored profiles of `numbers` that can be read, read inside `tx`.
async fn stored_profiles<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    numbers: &[i64],
) -> Result<HashMap<E164, Profile>> {
    let mut out = HashMap::with_capacity(numbers.len());
    for part in numbers.chunks(D::NUMBERS_PER_QUERY) {
        let sql = format!(
            "SELECT number, data FROM profiles WHERE number {}",
            D::numbers_in(1, part.len())
        );
        let query = D::bind_numbers(sqlx::query(sqlx::AssertSqlSafe(sql)), part);
        for r in query.fetch_all(D::conn(tx)).await? {
            let n = number(r.col("number")?)?;
            let data: Vec<u8> = r.col("data")?;
            // A profile this version cannot read (damaged, or of a later format) is what a
            // rebuild is for: it counts as differing and is written afresh.
            if let Some(p) = Profile::from_bytes(&data) {
                out.insert(n, p);
            }
        }
    }
    Ok(out)
}

/// Adds a newly stored observation to a batch's profile deltas. The batch is sorted by
/// number, so a number's new observations are neighbours and merge into one delta.
pub(crate) fn add_delta(deltas: &mut Vec<(E164, Profile)>, obs: &Observation, hl: &HalfLives) {
    let p = Profile::of(obs);
    match deltas.last_mut() {
        Some((n, d)) if *n == obs.number => *d = d.merge(&p, hl),
        _ => deltas.push((obs.number, p)),
    }
}

/// The largest relative difference of a class mass between two profiles.
fn max_relative_difference(a: &Profile, b: &Profile) -> f64 {
    a.classes
        .iter()
        .zip(&b.classes)
        .map(|(x, y)| {
            let scale = x.mass.abs().max(y.mass.abs());
            if scale == 0.0 {
                0.0
            } else {
                (x.mass - y.mass).abs() / scale
            }
        })
        .fold(0.0, f64::max)
}

/// The identity of an observation: the first 16 bytes of SHA-256 of (source, message id)
/// when there is a message id, else of its content. The same fact ingested twice is stored
/// once. 128 bits keep accidental collisions out of reach (about 2^64 facts before one is
/// likely) while keeping the unique index small.
pub fn dedupe_key(obs: &Observation) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match &obs.message_id {
        Some(id) => {
            h.update(b"m\0");
            h.update(obs.source.as_bytes());
            h.update(b"\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"c\0");
            h.update(obs.number.as_u64().to_le_bytes());
            h.update(obs.observed_at_ms.to_le_bytes());
            h.update(obs.source.as_bytes());
            h.update(b"\0");
            h.update(obs.kind.as_str().as_bytes());
            h.update(b"\0");
            h.update(obs.raw_code.as_bytes());
            h.update(b"\0");
            h.update(obs.class.as_str().as_bytes());
            h.update(obs.weight.to_le_bytes());
        }
    }
    let digest: [u8; 32] = h.finalize().into();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}
