//! The API, driven over HTTP against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod callbacks;
mod contract;
mod controls;
mod credits;
mod dashboard;
mod errors;
mod evidence;
mod helpers;
mod isolation;
mod limits;
mod lookups;
mod openapi;
mod operations;
mod processing;
mod uploads;
mod webhooks;
