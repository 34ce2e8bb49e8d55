//! Live lookups for a chunk (DESIGN §5): numbers the evidence leaves `unknown`, that a
//! configured provider covers, are asked of it — within the task's budget, skipping numbers
//! asked within the freshness window — and every answer is stored as an observation, so the
//! next check of the number costs nothing. A failed lookup leaves the number `unknown`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
use numcheck_core::{E164, LineType, Observation, Profile, RegionCode, Row, TaskId};
use numcheck_lookup::Provider;
use numcheck_lookup::guard::Guarded;
use numcheck_store::Store;
use serde::{Deserialize, Serialize};

use crate::config::LookupConfig;

const DAY_MS: i64 = 86_400_000;

/// A task's lookup settings, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLookups {
    pub max_lookups: u64,
    pub max_age_days: u32,
}

/// What lookups did for a chunk or a task (in `summary.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LookupCounts {
    /// Numbers the evidence left undecided that a provider covers.
    pub candidates: u64,
    /// Lookups made (paid for by the budget).
    pub made: u64,
    /// Lookups that came back with a status.
    pub answered: u64,
    /// Numbers asked within the freshness window: answered from the evidence store.
    pub from_cache: u64,
    /// Numbers not asked because the task's budget ran out.
    pub skipped_budget: u64,
    /// Lookups that failed (provider error, timeout, open circuit): the numbers stay unknown.
    pub failed: u64,
}

impl LookupCounts {
    pub fn is_zero(&self) -> bool {
        *self == LookupCounts::default()
    }

    pub fn add(&mut self, o: &LookupCounts) {
        self.candidates += o.candidates;
        self.made += o.made;
        self.answered += o.answered;
        self.from_cache += o.from_cache;
        self.skipped_budget += o.skipped_budget;
        self.failed += o.failed;
    }
}

/// Process-wide counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct LookupTotals {
    pub made: AtomicU64,
    pub answered: AtomicU64,
    pub from_cache: AtomicU64,
    pub skipped_budget: AtomicU64,
    pub failed: AtomicU64,
}

impl LookupTotals {
    /// Each counter with the name `/metrics` labels it by.
    pub fn by_outcome(&self) -> [(&'static str, &AtomicU64); 5] {
        [
            ("made", &self.made),
            ("answered", &self.answered),
            ("from_cache", &self.from_cache),
            ("skipped_budget", &self.skipped_budget),
            ("failed", &self.failed),
        ]
    }
}

/// The configured providers behind their limits.
#[derive(Debug, Default)]
pub struct LookupService {
    providers: Vec<Arc<Guarded<dyn Provider>>>,
    pub totals: LookupTotals,
}

/// A number the evidence leaves undecided.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub number: E164,
    pub line_type: LineType,
    pub region: Option<RegionCode>,
}

/// What one chunk asks of the lookup service.
#[derive(Debug)]
pub struct LookupRequest<'a> {
    pub task: &'a TaskId,
    pub settings: TaskLookups,
    pub candidates: Vec<Candidate>,
    pub now_ms: i64,
}

impl LookupService {
    pub fn build(config: &LookupConfig) -> anyhow::Result<LookupService> {
        config.validate().map_err(anyhow::Error::msg)?;
        let mut providers: Vec<Arc<Guarded<dyn Provider>>> = Vec::new();
        for p in &config.providers {
            let provider: Box<dyn Provider> = match (&p.http, &p.osmo_hlr) {
                (Some(h), _) => Box::new(
                    numcheck_lookup::http::HttpProvider::new(h)
                        .map_err(|e| anyhow::anyhow!("lookup provider {}: {e}", h.name))?,
                ),
                (_, Some(o)) => Box::new(
                    numcheck_lookup::osmo::OsmoHlrProvider::new(o.clone())
                        .map_err(|e| anyhow::anyhow!("lookup provider {}: {e}", o.name))?,
                ),
                _ => anyhow::bail!("a lookup provider has no kind"),
            };
            providers.push(Arc::new(
                Guarded::new(provider, p.limits.clone()).map_err(anyhow::Error::msg)?,
            ));
        }
        Ok(LookupService {
            providers,
            totals: LookupTotals::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Provider names and whether each circuit is open (for `/metrics`).
    pub fn provider_states(&self) -> Vec<(String, bool, u64, u64)> {
        self.providers
            .iter()
            .map(|g| {
                (
                    g.provider().name().to_owned(),
                    g.is_open(),
                    g.counters.calls.load(Ordering::Relaxed),
                    g.counters.failures.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Looks the candidates up for task `task` and stores the answers as evidence; returns
    /// the counts and the profiles of the numbers that got new evidence.
    pub async fn run(
        &self,
        store: &dyn Store,
        book: &CodeBook,
        half_lives: &numcheck_core::HalfLives,
        request: LookupRequest<'_>,
    ) -> anyhow::Result<(LookupCounts, HashMap<E164, Profile>)> {
        let LookupRequest {
            task,
            settings,
            candidates,
            now_ms,
        } = request;
        let mut counts = LookupCounts::default();
        let mut open: Vec<Candidate> = candidates;
        let mut touched: Vec<E164> = Vec::new();
        let since = now_ms - i64::from(settings.max_age_days) * DAY_MS;
        let mut counted = std::collections::HashSet::new();
        for guarded in &self.providers {
            let provider = guarded.provider();
            let covered: Vec<E164> = open
                .iter()
                .filter(|c| provider.covers(c.number, c.line_type, c.region))
                .map(|c| c.number)
                .collect();
            if covered.is_empty() {
                continue;
            }
            for n in &covered {
                if counted.insert(*n) {
                    counts.candidates += 1;
                }
            }
            let name = provider.name().to_owned();
            let fresh = store.looked_up_since(&name, &covered, since).await?;
            counts.from_cache += fresh.len() as u64;
            let ask: Vec<E164> = covered
                .iter()
                .copied()
                .filter(|n| !fresh.contains(n))
                .collect();
            let granted = store
                .reserve_lookups(task, ask.len() as i64, settings.max_lookups as i64)
                .await? as usize;
            counts.skipped_budget += (ask.len() - granted.min(ask.len())) as u64;
            let ask = &ask[..granted.min(ask.len())];
            counts.made += ask.len() as u64;
            let (observations, asked, failed) = self.ask(guarded, book, &name, ask, now_ms).await;
            counts.failed += failed;
            counts.answered += observations.len() as u64;
            touched.extend(observations.iter().map(|o| o.number));
            if !observations.is_empty() {
                store.ingest(observations, half_lives, now_ms).await?;
            }
            store.record_lookups(&name, now_ms, &asked).await?;
            // A number this provider answered, or that it was asked recently, is settled.
            let settled: std::collections::HashSet<E164> = asked
                .iter()
                .filter(|(_, status)| !status.is_empty())
                .map(|(n, _)| *n)
                .chain(fresh.iter().copied())
                .collect();
            open.retain(|c| !settled.contains(&c.number));
        }
        let t = &self.totals;
        t.made.fetch_add(counts.made, Ordering::Relaxed);
        t.answered.fetch_add(counts.answered, Ordering::Relaxed);
        t.from_cache.fetch_add(counts.from_cache, Ordering::Relaxed);
        t.skipped_budget
            .fetch_add(counts.skipped_budget, Ordering::Relaxed);
        t.failed.fetch_add(counts.failed, Ordering::Relaxed);
        let profiles = if touched.is_empty() {
            HashMap::new()
        } else {
            store.profiles(&touched).await?
        };
        Ok((counts, profiles))
    }

    /// Calls one provider in batches, concurrently up to its limit. Returns the observations,
    /// the numbers asked with their raw status (empty: no answer) and how many failed.
    async fn ask(
        &self,
        guarded: &Arc<Guarded<dyn Provider>>,
        book: &CodeBook,
        name: &str,
        numbers: &[E164],
        now_ms: i64,
    ) -> (Vec<Observation>, Vec<(E164, String)>, u64) {
        let batch = guarded.provider().batch_size().max(1);
        let mut calls = tokio::task::JoinSet::new();
        for part in numbers.chunks(batch) {
            let g = guarded.clone();
            let part = part.to_vec();
            calls.spawn(async move {
                let result = g.lookup(&part).await;
                (part, result)
            });
        }
        let source = SourceSpec::new(name);
        let mut observations = Vec::new();
        let mut asked = Vec::new();
        let mut failed = 0u64;
        while let Some(joined) = calls.join_next().await {
            let Ok((part, result)) = joined else {
                continue;
            };
            match result {
                Ok(answers) => {
                    let mut by_number: HashMap<E164, String> = HashMap::new();
                    for a in answers {
                        let Some(event) = a.event else { continue };
                        let raw = event.raw_code.clone();
                        match observe(book, &source, event, now_ms) {
                            Ok(Row::Observation(o)) => {
                                by_number.insert(a.number, raw);
                                observations.push(o);
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(
                                provider = name,
                                "lookup answer for {} not used: {} ({})",
                                a.number,
                                e.message,
                                e.code
                            ),
                        }
                    }
                    for n in part {
                        let status = by_number.remove(&n).unwrap_or_default();
                        asked.push((n, status));
                    }
                }
                Err(_) => failed += part.len() as u64,
            }
        }
        (observations, asked, failed)
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Toml};

    use crate::config::Config;

    /// The README's example, as a user pastes it, loads and builds.
    #[test]
    fn the_documented_provider_config_loads() {
        let text = r#"
[lookup]
max_age_days = 30

[[lookup.providers]]
[lookup.providers.http]
name = "hlr-lookups"
preset = "connectivity"
url = "http://127.0.0.1:9/api/v2/hlr-lookup"
auth_header = "X-Api-Key"
auth_value = "k"
regions = ["GB", "DE"]
[lookup.providers.limits]
rate_per_second = 5
concurrency = 2

[[lookup.providers]]
[lookup.providers.http]
name = "hlrlookup"
preset = "live"
url = "http://127.0.0.1:9/apiv2/hlr"
body_fields = { api_key = "a", api_secret = "b" }
batch_size = 20

[[lookup.providers]]
[lookup.providers.osmo_hlr]
name = "own-hlr"
address = "127.0.0.1:4259"
ranges = ["4915", "4916"]
recent_lu_days = 7
[lookup.providers.osmo_hlr.msisdn_rule]
strip_prefix = "49"
add_prefix = "0"
"#;
        let config: Config =
            Figment::from(figment::providers::Serialized::defaults(Config::default()))
                .merge(Toml::string(text))
                .extract()
                .unwrap();
        config.validate().unwrap();
        assert_eq!(config.lookup.providers.len(), 3);
        assert_eq!(config.lookup.providers[0].limits.rate_per_second, 5);
        let service = super::LookupService::build(&config.lookup).unwrap();
        assert_eq!(service.provider_states().len(), 3);

        let both = text.replace(
            "[lookup.providers.osmo_hlr.msisdn_rule]",
            "[lookup.providers.http]\nname = \"x\"\npreset = \"live\"\n[lookup.providers.osmo_hlr.msisdn_rule]",
        );
        let err = Figment::from(figment::providers::Serialized::defaults(Config::default()))
            .merge(Toml::string(&both))
            .extract::<Config>()
            .map_err(|e| e.to_string())
            .and_then(|c| c.validate().map_err(|e| e.to_string()))
            .unwrap_err();
        assert!(
            err.contains("exactly one") || err.contains("duplicate"),
            "{err}"
        );
    }
}
