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
//!   [`exposition`]: the metric names a `/metrics` answer holds.
//! - [`chat`]: websocket frames; [`node_exporter`]: a live node-exporter.
//! - [`png`]: a small valid PNG to upload.

pub mod chat;
pub mod client;
pub mod compose;
pub mod exposition;
pub mod fleet;
pub mod nginx;
pub mod node_exporter;
pub mod paths;
pub mod png;
pub mod promql;
pub mod tools;

use std::time::Duration;

/// Longest any awaited event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it holds or [`WAIT`] passed (for states that no
/// event announces, such as an nginx reload taking effect).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
