//! The shared test harness, and the built `instantchat-cli` binary.

pub use test_support::{RelayFleet as Fleet, WAIT};

pub const CLI: &str = env!("CARGO_BIN_EXE_instantchat-cli");
