//! What every crate's tests share, in one place (as vector's `test_util` or
//! axum's `test_helpers`): the real services started in-process on
//! `127.0.0.1:0`, real clients, and the small checks tests repeat.
//!
//! - `backend.rs`: a backend ([`TestBackend`]) and its test configs.
//! - `backend_steps.rs`: steps backend tests repeat (create a room and
//!   join it, say something and see it echoed, the counters they read).
//! - `aux.rs`: aux-srv ([`TestAux`]) in front of test backends;
//!   `aux_members.rs`: members who find their room through aux-srv;
//!   `fleet.rs`: backends and aux-srv together ([`TestFleet`]),
//!   `fleet_configured.rs` with a config per backend;
//!   `relay.rs`: one backend behind a TCP relay that can drop every
//!   connection ([`RelayFleet`], [`Relay`]).
//! - `files.rs`: file-srv ([`TestFiles`]), in a temporary folder
//!   ([`files_in_temp`]), and uploads to it, whole or half-sent.
//! - `http.rs`: an HTTP client (hyper) and its [`Reply`];
//!   `raw_http.rs`: hand-written HTTP/1.1 ([`RawReply`]) for what a real
//!   client refuses to send (lying headers, half-sent bodies).
//! - `ws.rs`: a websocket chat client ([`WsClient`]); `roaming.rs`: a
//!   member that follows its room across backends ([`Roamer`]).
//! - `moderation.rs`: members from their own 127.x.y.z ([`connect_from`]),
//!   owned rooms, owner-key calls.
//! - `running.rs`: a service's `run` as a task, stopped as SIGTERM would.
//! - `metrics.rs`: reading samples out of a `/metrics` answer.
//! - `png.rs`: valid PNGs built by hand.
//! - [`eventually`]: polling, with a deadline, for states no event announces.
//!
//! Everything is re-exported flat: a test file says `use test_support::*;`
//! (each crate's `tests/support/mod.rs` is that one line, for `mod support;`).

mod aux;
mod aux_members;
mod backend;
mod backend_steps;
mod files;
mod fleet;
mod fleet_configured;
mod http;
mod metrics;
mod moderation;
mod png;
mod raw_http;
mod relay;
mod roaming;
mod running;
mod ws;

use std::time::Duration;

// Flat, so that `use test_support::*;` brings the helpers and no module
// name that would shadow a crate (`backend`, `http`).
pub use aux::*;
pub use backend::*;
pub use backend_steps::*;
pub use files::*;
pub use fleet::*;
pub use http::*;
pub use metrics::*;
pub use moderation::*;
pub use png::*;
pub use raw_http::*;
pub use relay::*;
pub use roaming::*;
pub use running::*;
pub use ws::*;

/// The backends' control token in tests.
pub const TOKEN: &str = "test-control-token-0123456789";
/// aux-srv's admin token in tests.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Longest any single awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Logs to the test's captured output, at `RUST_LOG` (default `warn`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `check` until it holds or [`WAIT`] passed; for states that no
/// event announces (a poll, a metric updated just after a frame).
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(what, WAIT, check).await;
}

/// [`eventually`] with a deadline of `limit`.
pub async fn eventually_within(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
