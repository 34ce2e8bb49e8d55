//! The engine's own counters: uploads accepted, verdicts written, and how long chunks and
//! exports take. Atomics bumped on the hot path; histograms have fixed buckets, as the
//! Prometheus exposition format wants them (cumulative `le` buckets, `_sum` and `_count`).
//! The HTTP layer's `/metrics` renders them beside its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram with fixed upper bounds, in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum of observations, in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Writes the series `name{labels,le=…}`; `labels` is either empty or `k="v",`.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let trimmed = labels.trim_end_matches(',');
        let braces = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{{{trimmed}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

const WORK_BOUNDS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The work this process has done since it started.
#[derive(Debug)]
pub struct WorkMetrics {
    pub upload_bytes: AtomicU64,
    pub uploads: AtomicU64,
    /// Verdicts written, by status (`active`, `inactive`, `unknown`, and `failure` for lines
    /// that gave no number).
    verdicts: Mutex<BTreeMap<String, u64>>,
    pub chunk_seconds: Histogram,
    pub export_seconds: Histogram,
}

impl Default for WorkMetrics {
    fn default() -> Self {
        WorkMetrics {
            upload_bytes: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            verdicts: Mutex::default(),
            chunk_seconds: Histogram::new(WORK_BOUNDS),
            export_seconds: Histogram::new(WORK_BOUNDS),
        }
    }
}

impl WorkMetrics {
    /// Counts an accepted upload.
    pub fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds a processed chunk's verdict counts.
    pub fn verdicts(&self, by_status: &BTreeMap<String, u64>, failures: u64) {
        let mut v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        for (status, n) in by_status {
            *v.entry(status.clone()).or_default() += n;
        }
        *v.entry("failure".to_owned()).or_default() += failures;
    }

    /// The verdict counts so far, by status.
    pub fn verdict_counts(&self) -> BTreeMap<String, u64> {
        self.verdicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.write(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 3.55\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        let mut labelled = String::new();
        h.write(&mut labelled, "y", "route=\"/a\",");
        assert!(labelled.contains("y_bucket{route=\"/a\",le=\"0.1\"} 1\n"));
        assert!(labelled.contains("y_count{route=\"/a\"} 3\n"));
    }
}
