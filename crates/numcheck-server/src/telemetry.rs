//! The process's own counters for `/metrics`: uploads, verdicts, chunk and request latency,
//! completion notices. Counters are atomics bumped on the hot path; histograms have fixed
//! buckets, as the Prometheus exposition format wants them (cumulative `le` buckets, `_sum`
//! and `_count`).

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
    fn write(&self, out: &mut String, name: &str, labels: &str) {
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

const CHUNK_BOUNDS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const REQUEST_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of this process since it started.
#[derive(Debug)]
pub struct Telemetry {
    pub upload_bytes: AtomicU64,
    pub uploads: AtomicU64,
    /// Verdicts written, by status (`active`, `inactive`, `unknown`, and `failure` for lines
    /// that gave no number).
    verdicts: Mutex<BTreeMap<String, u64>>,
    pub chunk_seconds: Histogram,
    pub export_seconds: Histogram,
    /// Requests by (route, status class), with one latency histogram per route.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_seconds: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    pub callbacks_delivered: AtomicU64,
    pub callbacks_retried: AtomicU64,
    pub callbacks_failed: AtomicU64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            upload_bytes: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            verdicts: Mutex::default(),
            chunk_seconds: Histogram::new(CHUNK_BOUNDS),
            export_seconds: Histogram::new(CHUNK_BOUNDS),
            requests: Mutex::default(),
            request_seconds: Mutex::default(),
            callbacks_delivered: AtomicU64::new(0),
            callbacks_retried: AtomicU64::new(0),
            callbacks_failed: AtomicU64::new(0),
        }
    }
}

impl Telemetry {
    /// Adds a processed chunk's verdict counts.
    pub fn verdicts(&self, by_status: &BTreeMap<String, u64>, failures: u64) {
        let mut v = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        for (status, n) in by_status {
            *v.entry(status.clone()).or_default() += n;
        }
        *v.entry("failure".to_owned()).or_default() += failures;
    }

    /// Records one answered request. `route` is the matched route pattern (bounded set).
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *r.entry((route.to_owned(), status)).or_default() += 1;
        }
        let h = {
            let mut m = self
                .request_seconds
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            m.entry(route.to_owned())
                .or_insert_with(|| std::sync::Arc::new(Histogram::new(REQUEST_BOUNDS)))
                .clone()
        };
        h.observe(took);
    }

    /// The exposition text of everything here.
    pub fn render(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {v}");
        };
        counter(
            out,
            "numcheck_upload_bytes_total",
            "Bytes of accepted uploads since start.",
            self.upload_bytes.load(Ordering::Relaxed),
        );
        counter(
            out,
            "numcheck_uploads_total",
            "Accepted uploads (tasks created) since start.",
            self.uploads.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP numcheck_numbers_total Result rows written by this process's workers, by verdict (failure: a line without a number)."
        );
        let _ = writeln!(out, "# TYPE numcheck_numbers_total counter");
        for (status, n) in self
            .verdicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "numcheck_numbers_total{{verdict=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP numcheck_chunk_seconds Time to process one chunk (parse, evidence, lookups, render, store)."
        );
        let _ = writeln!(out, "# TYPE numcheck_chunk_seconds histogram");
        self.chunk_seconds.write(out, "numcheck_chunk_seconds", "");
        let _ = writeln!(
            out,
            "# HELP numcheck_export_seconds Time to assemble and publish one task's result."
        );
        let _ = writeln!(out, "# TYPE numcheck_export_seconds histogram");
        self.export_seconds
            .write(out, "numcheck_export_seconds", "");
        let _ = writeln!(
            out,
            "# HELP numcheck_http_requests_total Answered HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE numcheck_http_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "numcheck_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP numcheck_http_request_seconds Time from request to response headers, by route."
        );
        let _ = writeln!(out, "# TYPE numcheck_http_request_seconds histogram");
        let hs: Vec<(String, std::sync::Arc<Histogram>)> = self
            .request_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (route, h) in hs {
            h.write(
                out,
                "numcheck_http_request_seconds",
                &format!("route=\"{route}\","),
            );
        }
        let _ = writeln!(
            out,
            "# HELP numcheck_callbacks_total Completion notice attempts by outcome since start."
        );
        let _ = writeln!(out, "# TYPE numcheck_callbacks_total counter");
        for (outcome, v) in [
            ("delivered", &self.callbacks_delivered),
            ("retried", &self.callbacks_retried),
            ("failed", &self.callbacks_failed),
        ] {
            let _ = writeln!(
                out,
                "numcheck_callbacks_total{{outcome=\"{outcome}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
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
