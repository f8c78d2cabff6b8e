//! The shared test harness: `instantchat-test-support`, every helper by name.

pub use test_support::*;
