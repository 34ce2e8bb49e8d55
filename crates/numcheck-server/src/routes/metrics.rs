//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the process's counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Escapes a label value (backslash, quote, newline), as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "The process's counters in the Prometheus text exposition format 0.0.4: \
        requests by route and status, uploads, tasks by status, lookups, evidence filters.",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let t = &state.lookups.totals;
    let _ = writeln!(
        out,
        "# HELP numcheck_lookups_total Live lookups by outcome since start (made: paid for by a task budget; from_cache: asked within the freshness window; skipped_budget: not asked, budget spent; failed: provider error, the number stays unknown)."
    );
    let _ = writeln!(out, "# TYPE numcheck_lookups_total counter");
    for (outcome, v) in [
        ("made", &t.made),
        ("answered", &t.answered),
        ("from_cache", &t.from_cache),
        ("skipped_budget", &t.skipped_budget),
        ("failed", &t.failed),
    ] {
        let _ = writeln!(
            out,
            "numcheck_lookups_total{{outcome=\"{outcome}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    let providers = state.lookups.provider_states();
    let _ = writeln!(
        out,
        "# HELP numcheck_lookup_provider_calls_total Calls made to each lookup provider, retries included."
    );
    let _ = writeln!(out, "# TYPE numcheck_lookup_provider_calls_total counter");
    for (name, _, calls, _) in &providers {
        let _ = writeln!(
            out,
            "numcheck_lookup_provider_calls_total{{provider=\"{}\"}} {calls}",
            label(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP numcheck_lookup_provider_failures_total Lookups that failed after their retries, per provider."
    );
    let _ = writeln!(
        out,
        "# TYPE numcheck_lookup_provider_failures_total counter"
    );
    for (name, _, _, failures) in &providers {
        let _ = writeln!(
            out,
            "numcheck_lookup_provider_failures_total{{provider=\"{}\"}} {failures}",
            label(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP numcheck_lookup_provider_circuit_open 1 while a provider's circuit breaker refuses calls."
    );
    let _ = writeln!(out, "# TYPE numcheck_lookup_provider_circuit_open gauge");
    for (name, open, _, _) in &providers {
        let _ = writeln!(
            out,
            "numcheck_lookup_provider_circuit_open{{provider=\"{}\"}} {}",
            label(name),
            u8::from(*open)
        );
    }
    let _ = writeln!(
        out,
        "# HELP numcheck_evidence_filter_builds_total Evidence presence filters built since start."
    );
    let _ = writeln!(out, "# TYPE numcheck_evidence_filter_builds_total counter");
    let _ = writeln!(
        out,
        "numcheck_evidence_filter_builds_total {}",
        state.store.presence_filter_builds()
    );
    let _ = writeln!(
        out,
        "# HELP numcheck_tasks Tasks in the database by status (every node sees the same)."
    );
    let _ = writeln!(out, "# TYPE numcheck_tasks gauge");
    match state.store.tasks_by_status().await {
        Ok(rows) => {
            for status in ["pending", "processing", "exported", "failed", "cancelled"] {
                let n = rows
                    .iter()
                    .find(|(s, _)| s == status)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                let _ = writeln!(out, "numcheck_tasks{{status=\"{status}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count tasks"),
    }
    state.telemetry.render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
