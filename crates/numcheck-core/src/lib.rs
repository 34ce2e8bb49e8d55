//! numcheck's domain: what a phone number is, how a line of an upload becomes one, the
//! vocabulary of tasks, and the rules that turn what we know about a number into a verdict.
//!
//! This crate does no I/O and has no async code: it is where the product's rules live and are
//! unit-tested. Storage, HTTP and workers depend on it, never the other way round.

pub mod calibration;
pub mod codes;
pub mod connectors;
pub mod e164;
pub mod evidence;
pub mod evidence_rows;
pub mod ids;
pub mod lines;
pub mod normalise;
pub mod plan;
pub mod policy;
pub mod reuse;
pub mod task;
pub mod verdict;
mod vocabulary;

pub use codes::CodeTable;
pub use e164::E164;
pub use evidence::{EvidenceClass, EvidenceKind, HalfLives, Observation, Profile};
pub use evidence_rows::{Row, RowError, RowFormat, RowReader};
pub use ids::{TaskId, UserId};
pub use lines::{ChunkBounds, Chunker, Line, LineSplitter, TextCheck, check_text};
pub use normalise::{Dialled, LineError};
pub use plan::{Checked, LineType, NumberingPlan, RegionCode};
pub use policy::Policy;
pub use task::{ActiveStatus, TaskStatus, TaskType};
pub use verdict::{Reason, Verdict};
