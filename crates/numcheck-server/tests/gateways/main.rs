//! Real SMS gateways in the loop: a real Kannel (bearerbox and smsbox) and a real Jasmin,
//! configured with the snippets of `docs/gateways.md` as written, send messages over SMPP to
//! an SMSC stand-in ([`numcheck_testkit::smsc`]) that answers with the receipts each test
//! chooses, and the gateway itself calls numcheck's webhook with each report. The tests check
//! what numcheck stored and how the verdicts moved.
//!
//! The gateways are peers the tests never install: `.ci/run` does (Debian's `kannel`; Jasmin
//! from PyPI into a virtualenv). When one is missing, its test fails naming the install command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

mod docs;
mod jasmin;

mod kannel;
mod recorder;
mod support;
