//! Evidence: what the operator's traffic says about numbers. Files and request bodies are
//! read line by line into observations ([`ingest`]); webhook callbacks of the configured
//! [`sources`] carry delivery receipts one or a few at a time ([`store_receipts`]). Either way
//! every row is classified by a code table and stored once, however often it is sent.

pub mod ingest;
pub mod sources;

use numcheck_core::connectors::codebook::observe;
use numcheck_core::connectors::{Event, ParseError};
use numcheck_core::{Observation, Row};
use serde::Serialize;

use crate::clock::now_ms;
use crate::{Engine, EngineError};
use sources::Source;

/// What a callback did.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackReport {
    /// Receipts read from the callback.
    pub events: u64,
    pub inserted: u64,
    /// Receipts already stored (a retried callback).
    pub duplicates: u64,
    /// Non-final states (queued, sent, SMSC acknowledgements): read, not evidence.
    pub not_final: u64,
    pub rejected: u64,
    /// Why receipts of a multi-receipt callback were refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub errors: Vec<CallbackError>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackError {
    /// 0-based position of the receipt in the callback.
    pub index: usize,
    pub error: &'static str,
    pub message: String,
}

/// Classifies and stores the callback's receipts. One receipt that cannot be read fails a
/// single-receipt callback with 400; in a multi-receipt callback the good ones are stored
/// and the bad ones listed.
pub async fn store_receipts(
    engine: &Engine,
    src: &Source,
    events: Vec<Result<Event, ParseError>>,
) -> Result<CallbackReport, EngineError> {
    let now = now_ms();
    let single = events.len() == 1;
    let mut report = CallbackReport::default();
    let mut batch: Vec<Observation> = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        report.events += 1;
        let row = event.map_err(|e| (e.code, e.message)).and_then(|e| {
            observe(&engine.code_book, &src.spec, e, now).map_err(|e| (e.code, e.message))
        });
        match row {
            Ok(Row::Observation(o)) => batch.push(o),
            Ok(Row::NotFinal) => report.not_final += 1,
            Ok(Row::Header) => {}
            Err((code, message)) if single => {
                return Err(EngineError::invalid(code, message));
            }
            Err((code, message)) => {
                report.rejected += 1;
                report.errors.push(CallbackError {
                    index,
                    error: code,
                    message,
                });
            }
        }
    }
    if !batch.is_empty() {
        let out = engine
            .store
            .ingest(batch, &engine.config.policy.half_lives(), now)
            .await?;
        report.inserted = out.inserted;
        report.duplicates = out.duplicates;
    }
    Ok(report)
}
