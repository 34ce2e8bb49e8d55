//! The process's counters for `/metrics`: requests by route, completion notices, and the
//! engine's work counters ([`WorkMetrics`]), written in the Prometheus text exposition format
//! 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numcheck_engine::metrics::{Histogram, WorkMetrics};

const REQUEST_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of this process since it started.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The engine's counters (uploads, verdicts, chunk and export times).
    pub work: Arc<WorkMetrics>,
    /// Requests by (route, status), with one latency histogram per route.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_seconds: Mutex<BTreeMap<String, Arc<Histogram>>>,
    pub callbacks_delivered: AtomicU64,
    pub callbacks_retried: AtomicU64,
    pub callbacks_failed: AtomicU64,
}

impl Telemetry {
    /// The completion-notice counters with the names `/metrics` labels them by.
    fn callbacks_by_outcome(&self) -> [(&'static str, &AtomicU64); 3] {
        [
            ("delivered", &self.callbacks_delivered),
            ("retried", &self.callbacks_retried),
            ("failed", &self.callbacks_failed),
        ]
    }
}

/// Writes metric families in the exposition format.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    /// One sample; `labels` is empty or `k="v",k2="v2"`.
    pub fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) -> &mut Self {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
        self
    }

    /// A family of one unlabelled counter.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.family(name, "counter", help).sample(name, "", value)
    }

    /// A counter family with one sample per outcome (label `outcome`).
    pub fn outcomes(&mut self, name: &str, help: &str, counts: &[(&str, &AtomicU64)]) -> &mut Self {
        self.family(name, "counter", help);
        for (outcome, v) in counts {
            self.sample(
                name,
                &format!("outcome=\"{outcome}\""),
                v.load(Ordering::Relaxed),
            );
        }
        self
    }

    /// A family of one histogram.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) -> &mut Self {
        self.family(name, "histogram", help);
        h.write(&mut self.out, name, "");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes a label value (backslash, quote, newline), as the exposition format requires.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Telemetry {
    /// This process's counters around the engine's.
    pub fn new(work: Arc<WorkMetrics>) -> Telemetry {
        Telemetry {
            work,
            ..Telemetry::default()
        }
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
                .or_insert_with(|| Arc::new(Histogram::new(REQUEST_BOUNDS)))
                .clone()
        };
        h.observe(took);
    }

    /// Writes everything here.
    pub fn render(&self, out: &mut Exposition) {
        let work = &self.work;
        out.counter(
            "numcheck_upload_bytes_total",
            "Bytes of accepted uploads since start.",
            work.upload_bytes.load(Ordering::Relaxed),
        )
        .counter(
            "numcheck_uploads_total",
            "Accepted uploads (tasks created) since start.",
            work.uploads.load(Ordering::Relaxed),
        )
        .family(
            "numcheck_numbers_total",
            "counter",
            "Result rows written by this process's workers, by verdict (failure: a line without a number).",
        );
        for (status, n) in work.verdict_counts() {
            out.sample(
                "numcheck_numbers_total",
                &format!("verdict=\"{status}\""),
                n,
            );
        }
        out.histogram(
            "numcheck_chunk_seconds",
            "Time to process one chunk (parse, evidence, lookups, render, store).",
            &work.chunk_seconds,
        )
        .histogram(
            "numcheck_export_seconds",
            "Time to assemble and publish one task's result.",
            &work.export_seconds,
        )
        .family(
            "numcheck_http_requests_total",
            "counter",
            "Answered HTTP requests by route and status.",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for ((route, status), n) in requests {
            out.sample(
                "numcheck_http_requests_total",
                &format!("route=\"{route}\",status=\"{status}\""),
                n,
            );
        }
        out.family(
            "numcheck_http_request_seconds",
            "histogram",
            "Time from request to response headers, by route.",
        );
        let hs: Vec<(String, Arc<Histogram>)> = self
            .request_seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (route, h) in hs {
            h.write(
                &mut out.out,
                "numcheck_http_request_seconds",
                &format!("route=\"{route}\","),
            );
        }
        out.outcomes(
            "numcheck_callbacks_total",
            "Completion notice attempts by outcome since start.",
            &self.callbacks_by_outcome(),
        );
    }
}
