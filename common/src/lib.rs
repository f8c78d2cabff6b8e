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
//! - [`defences`]: pure parts of the automatic defences (failure back-off,
//!   spam repeats, rate surges); [`pow`]: the proof-of-work join challenge.
//! - [`http_error`]: the JSON error body every HTTP service answers with.
//! - [`owner_key`]: room owner keys, their hash and constant-time check.

pub mod config;
pub mod control;
pub mod defences;
pub mod http_error;
pub mod names;
pub mod net;
pub mod owner_key;
pub mod password;
pub mod pow;
pub mod ws;
