//! The instantchat load generator: drives a running fleet the way browsers
//! do — rooms opened through aux-srv, members on real websockets — and
//! reports what users feel and what it cost the servers.
//!
//! - [`cli`]: the scenarios (`fanout`, `rooms`, `idle`, `connect`, `aux`)
//!   and their parameters.
//! - [`coordinator`]: one run — limits, room setup, `/metrics` before and
//!   after, workers kept in step, the report; [`services`]: the servers it
//!   watches and what the run cost them; [`progress`]: the line per second.
//! - [`worker`]: a share of the members (tasks here or a child process);
//!   [`member`]: one simulated user; [`aux_load`]: the HTTP clients of `aux`.
//! - [`stats`]: HDR latency histograms and counters, mergeable across
//!   processes; [`report`]: the table and the JSON; [`plot`]: the SVG.
//! - [`net`]: open-file and port limits, source addresses, clients
//!   ([`keep_alive`]: the hand-written HTTP/1.1 client of `aux`);
//!   [`procfs`]: CPU seconds of local server processes.
//!
//! Every message carries its send time (`t=<unix nanos>`) in its text; every
//! receiver records the delay. Gaps and repeats in `seq` are losses and
//! duplicates; so is a message its sender never saw come back.

pub mod aux_load;
pub mod cli;
pub mod coordinator;
pub mod keep_alive;
pub mod member;
pub mod migrate;
pub mod net;
pub mod plot;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod services;
pub mod stats;
pub mod worker;

pub use cli::Scenario;
pub use coordinator::{Workers, run};
pub use report::Report;
