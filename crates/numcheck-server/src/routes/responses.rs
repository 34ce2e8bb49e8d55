//! Error answers more than one operation documents, written once. Every error answer is an
//! `ErrorBody`; the document's modifier (`openapi.rs`) adds the body, and the answers every
//! keyed operation has (401, 403, 429, 500), so an operation lists only what is its own.

pub(crate) const E401: &str = "`missing_api_key`: no key in `X-API-Key` (or \
    `Authorization: Bearer`); `invalid_api_key`: the key is unknown or revoked. Free.";
pub(crate) const E403: &str = "`check_not_allowed`: the key may only post evidence \
    (`numcheck keys create --ingest`). Free.";
pub(crate) const E404_TASK: &str = "`task_not_found`: no such task, a malformed id, or \
    another user's task (answered alike, so ids cannot be probed).";
pub(crate) const E413: &str = "`file_too_large`: the upload is over `max_upload_bytes` \
    (an `.xlsx` over `max_xlsx_bytes`).";
pub(crate) const E408: &str = "`upload_stalled`: no bytes of the body arrived for \
    `limits.upload_idle_secs`; nothing was stored. Send it again.";
pub(crate) const E429: &str = "`rate_limited`: too many requests for this API key; retry after \
    `Retry-After` seconds. Free.";
pub(crate) const E500: &str = "`internal_error`: a server fault; the details are only in the \
    server log. Retry later. Free.";
