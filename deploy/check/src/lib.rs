//! Test support for `deploy/`: everything the tests in `tests/` share.
//!
//! The tests prove the files in `deploy/` with the real tools, not copies:
//! nginx runs the shipped snippets and templates in front of the real
//! services, promtool checks the shipped Prometheus files and the live
//! `/metrics`, check-jsonschema the compose files, systemd-analyze the units.
//!
//! - [`paths`]: where the repository's files are.
//! - [`tools`]: finding and running the external tools (a missing tool
//!   fails the test, naming the package that brings it).
//! - [`fleet`]: aux-srv, backends and file-srv started in-process on
//!   `127.0.0.1:0`.
//! - [`nginx`]: renders the shipped templates and runs real nginx.
//! - [`client`]: HTTP and websocket clients, plain or over TLS, and a test
//!   certificate authority made with openssl.
//! - [`compose`]: `.env` files, compose's `${VAR}` interpolation, and the
//!   `INSTANTCHAT_*` environment of each compose service.
//! - [`promql`]: the metric names a PromQL expression reads;
//!   [`shipped_metrics`]: the dashboards and alerts against live `/metrics`.
//! - [`chat`]: websocket frames; [`node_exporter`]: a live node-exporter.
//!
//! What every crate's tests share (PNGs, metric parsing, polling) comes
//! from `instantchat-test-support`. `src/bin/stack-chat.rs` uses the same
//! clients against a running compose stack, for `deploy/test-containers.sh`.

pub mod chat;
pub mod client;
pub mod compose;
pub mod fleet;
pub mod nginx;
pub mod node_exporter;
pub mod paths;
pub mod promql;
pub mod shipped_metrics;
pub mod tools;

use std::time::Duration;

/// Longest any awaited event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it holds or [`WAIT`] passed (for states that no
/// event announces, such as an nginx reload taking effect).
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    test_support::eventually_within(what, WAIT, check).await;
}
