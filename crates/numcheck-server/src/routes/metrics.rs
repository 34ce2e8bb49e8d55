//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the process's counters.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;
use crate::telemetry::{Exposition, label};

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "The process's counters in the Prometheus text exposition format 0.0.4: \
        requests by route and status, uploads, tasks by status, lookups, evidence filters.",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")),
    security(()),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = Exposition::default();
    out.outcomes(
        "numcheck_lookups_total",
        "Live lookups by outcome since start (made: paid for by a task budget; from_cache: asked within the freshness window; skipped_budget: not asked, budget spent; failed: provider error, the number stays unknown).",
        &state.engine.lookups.totals.by_outcome(),
    );
    let providers = state.engine.lookups.provider_states();
    /// A family per provider: name, type, help, and its value from `provider_states`.
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ProviderState) -> u64,
    );
    type ProviderState = (String, bool, u64, u64);
    let per_provider: [Family; 3] = [
        (
            "numcheck_lookup_provider_calls_total",
            "counter",
            "Calls made to each lookup provider, retries included.",
            |p| p.2,
        ),
        (
            "numcheck_lookup_provider_failures_total",
            "counter",
            "Lookups that failed after their retries, per provider.",
            |p| p.3,
        ),
        (
            "numcheck_lookup_provider_circuit_open",
            "gauge",
            "1 while a provider's circuit breaker refuses calls.",
            |p| u64::from(p.1),
        ),
    ];
    for (name, kind, help, value) in per_provider {
        out.family(name, kind, help);
        for p in &providers {
            out.sample(name, &format!("provider=\"{}\"", label(&p.0)), value(p));
        }
    }
    out.counter(
        "numcheck_evidence_filter_builds_total",
        "Evidence presence filters built since start.",
        state.presence_filter_builds(),
    );
    out.family(
        "numcheck_tasks",
        "gauge",
        "Tasks in the database by status (every node sees the same).",
    );
    match state.engine.store.tasks_by_status().await {
        Ok(rows) => {
            for status in ["pending", "processing", "exported", "failed", "cancelled"] {
                let n = rows
                    .iter()
                    .find(|(s, _)| s == status)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                out.sample("numcheck_tasks", &format!("status=\"{status}\""), n);
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
        out.finish(),
    )
}
