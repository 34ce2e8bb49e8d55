//! The API, driven over HTTP against the real server.

mod contract;
mod credits;
mod errors;
mod helpers;
mod processing;
