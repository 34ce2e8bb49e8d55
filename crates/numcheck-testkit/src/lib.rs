//! What numcheck's tests share and nothing ships: locating the peer programs a test talks to
//! (failing with the command that installs them, never installing anything), bounded waits
//! for poll loops, a real S3-compatible server, a PostgreSQL database of a test's own, the
//! API's JSON answers and result zips.
//!
//! A dev-dependency only. It depends on no numcheck crate, so every crate's tests can use it
//! without a dependency cycle; what needs a crate's own types stays in that crate's tests.

// Test code: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod evidence_story;
pub mod http;
pub mod peer;
pub mod postgres;
pub mod result_zip;
pub mod s3;
pub mod smsc;
pub mod wait;

pub use http::{assert_error, json};
pub use peer::Peer;
pub use postgres::TestDb;
pub use result_zip::ResultZip;
pub use s3::S3Server;
pub use wait::{PATIENCE, wait_for};
