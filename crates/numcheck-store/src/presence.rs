//! Which numbers have an evidence profile, as a Bloom filter kept in memory by the serving
//! process, so a chunk's lookups skip the numbers that certainly have none (most numbers of a
//! real-world list). A false positive costs one lookup; a false negative would lose evidence,
//! so the filter is only used while it provably covers every stored profile:
//!
//! - the serving process adds every number it ingests before the batch commits;
//! - any other process that changes profiles (the CLI importing next to a running server)
//!   bumps `evidence_meta.epoch` in the same transaction. The filter remembers the epoch it was
//!   built at; while the stored epoch differs, lookups go to the database and a rebuild runs in
//!   the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fastbloom::AtomicBloomFilter;

/// False-positive rate the filter is sized for (about 9.6 bits per number).
const FALSE_POSITIVE_RATE: f64 = 0.01;
/// Smallest number of profiles a filter is sized for.
const MIN_CAPACITY: u64 = 1 << 20;
/// Numbers read per scan statement while building (each statement is its own snapshot, so a
/// rebuild never holds a read transaction that would stop WAL checkpoints).
const SCAN_BATCH: i64 = 100_000;

#[derive(Debug)]
pub(crate) struct Bloom {
    filter: AtomicBloomFilter,
    capacity: u64,
    inserted: AtomicU64,
}

impl Bloom {
    fn new(expected: u64) -> Self {
        let capacity = expected.saturating_add(expected / 4).max(MIN_CAPACITY);
        Bloom {
            filter: AtomicBloomFilter::with_false_pos(FALSE_POSITIVE_RATE)
                .expected_items(capacity as usize),
            capacity,
            inserted: AtomicU64::new(0),
        }
    }

    fn insert(&self, number: i64) {
        self.filter.insert(&number);
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn may_contain(&self, number: i64) -> bool {
        self.filter.contains(&number)
    }

    fn full(&self) -> bool {
        self.inserted.load(Ordering::Relaxed) > self.capacity
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The filter in use and the epoch it covers.
    ready: Option<(Arc<Bloom>, i64)>,
    /// A filter being built; it receives this process's inserts too.
    building: Option<Arc<Bloom>>,
}

#[derive(Debug)]
pub(crate) struct PresenceFilter {
    path: std::path::PathBuf,
    state: RwLock<State>,
    rebuilding: AtomicBool,
    builds: AtomicU64,
}

impl PresenceFilter {
    pub(crate) fn new(path: &std::path::Path) -> Arc<Self> {
        Arc::new(PresenceFilter {
            path: path.to_owned(),
            state: RwLock::new(State::default()),
            rebuilding: AtomicBool::new(false),
            builds: AtomicU64::new(0),
        })
    }

    /// How many filters have been built (for tests and logs).
    pub(crate) fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The filter to use when the stored epoch is `epoch`, or `None` (look everything up). A
    /// missing or outdated filter starts a rebuild.
    pub(crate) fn usable(self: &Arc<Self>, epoch: i64) -> Option<Arc<Bloom>> {
        let found = match self.state.read() {
            Ok(s) => s.ready.clone(),
            Err(_) => None,
        };
        match found {
            Some((bloom, at)) if at == epoch && !bloom.full() => Some(bloom),
            _ => {
                self.rebuild();
                None
            }
        }
    }

    /// Adds numbers this process is about to commit profiles for. The caller keeps the guard
    /// until its transaction has committed, so a rebuild cannot register its new filter between
    /// this insert and the commit (and then miss the numbers in its scan).
    pub(crate) fn add(
        &self,
        numbers: impl Iterator<Item = i64> + Clone,
    ) -> Option<std::sync::RwLockReadGuard<'_, State>> {
        let guard = self.state.read().ok()?;
        let ready = guard.ready.as_ref().map(|r| &r.0);
        for bloom in ready.into_iter().chain(guard.building.iter()) {
            for n in numbers.clone() {
                bloom.insert(n);
            }
        }
        Some(guard)
    }

    /// Starts a background rebuild unless one is running.
    pub(crate) fn rebuild(self: &Arc<Self>) {
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("presence-filter".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match me.build() {
                    Ok(n) => tracing::info!(
                        profiles = n,
                        ms = started.elapsed().as_millis() as u64,
                        "evidence presence filter built"
                    ),
                    Err(e) => tracing::warn!("evidence presence filter not built: {e}"),
                }
                me.rebuilding.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.rebuilding.store(false, Ordering::Release);
        }
    }

    fn build(&self) -> rusqlite::Result<u64> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "cache_size", -2048)?;
        let (epoch, count): (i64, i64) = conn.query_row(
            "SELECT epoch, profiles FROM evidence_meta WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let bloom = Arc::new(Bloom::new(count.max(0) as u64));
        if let Ok(mut s) = self.state.write() {
            s.building = Some(bloom.clone());
        }
        let mut scan =
            conn.prepare("SELECT number FROM profiles WHERE number > ?1 ORDER BY number LIMIT ?2")?;
        let mut after = i64::MIN;
        let mut total = 0u64;
        loop {
            let mut rows = scan.query(rusqlite::params![after, SCAN_BATCH])?;
            let mut seen = 0;
            while let Some(row) = rows.next()? {
                let n: i64 = row.get(0)?;
                bloom.insert(n);
                after = n;
                seen += 1;
            }
            total += seen;
            if seen < SCAN_BATCH as u64 {
                break;
            }
        }
        if let Ok(mut s) = self.state.write() {
            s.building = None;
            s.ready = Some((bloom, epoch));
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        Ok(total)
    }
}
