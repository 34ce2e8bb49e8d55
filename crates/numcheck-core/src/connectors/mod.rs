//! Connectors: readers of what real systems emit — SMPP delivery receipts, Kannel and Jasmin
//! logs and callbacks, Twilio / Vonage / Infobip status callbacks, FreeSWITCH and Asterisk
//! CDRs, deactivation lists and reassigned-number answers — turned into [`Event`]s, which the
//! [`codebook::CodeBook`] classifies into observations.
//!
//! Parsers here read untrusted bytes: they never panic, bound what they keep, and say what
//! is wrong with a [`ParseError`] that has a stable code.

pub mod cdr;
pub mod codebook;
mod event;
mod format;
pub mod infobip;
pub mod jasmin;
pub mod kannel;
pub mod lists;
mod record;
pub mod smpp;
pub mod twilio;
pub mod vonage;

pub use event::{Code, Event, LineFormat, MAX_FIELD, ParseError, bounded, field, form_pairs};
pub(crate) use event::{error_code, international, json_object, json_text, status_codes};
pub use format::{ConnectorFormat, FileOptions};
pub(crate) use record::split_record;
