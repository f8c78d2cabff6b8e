//! Types every instantchat crate shares.
//!
//! **This crate does no I/O and knows nothing of tokio**: it is rules, data and
//! pure functions, so every service (and the load test) agrees on them.
//!
//! - [`names`]: room names, nicknames and drawing ids — validation, Unicode
//!   normalisation, case folding, reserved words, random nicknames.
//! - [`ws`]: the websocket protocol between browsers and backends (JSON frames
//!   tagged by `"type"`).
//! - [`control`]: the binary control protocol between aux-srv and backends
//!   (bincode 2, length-prefixed frames) and its pure framing helpers.
//! - [`config`]: the configuration of every service and how it is layered
//!   (defaults < TOML file < `INSTANTCHAT_*` environment).
//! - [`password`]: the slow salted hash protecting rooms with a password.
//! - [`net`]: trusted proxies and `X-Forwarded-For`, token-bucket rate limits.
//! - [`http_error`]: the JSON error body every HTTP service answers with.

pub mod config;
pub mod control;
pub mod http_error;
pub mod names;
pub mod net;
pub mod password;
pub mod ws;
