//! `instantchat-cli`: an instantchat room from a terminal.
//!
//! - [`options`]: the command line (clap), turned into a [`session::SessionConfig`].
//! - [`room_url`]: a room link → aux-srv's API address and the room name.
//! - [`tls`], [`transport`]: TLS set-up (system roots + `--ca-file`), streams,
//!   one-shot HTTP requests, websocket handshakes.
//! - [`locate`]: `PUT /api/rooms/{room}` → the room's `ws_url`.
//! - [`session`]: join, relay, and follow moves and drops (resume, reclaim,
//!   [`backoff`]); [`handshake`] the edges of one connection; [`outbox`]
//!   the sends not yet confirmed; [`frames`] lenient reading of server frames.
//! - [`input`]: typed lines and slash commands; [`line`]: messages as text.
//! - [`plain`]: `--plain`, stdin lines in, message lines out.
//! - [`tui`]: the full-screen client.
//!
//! `main.rs` only parses options and picks a mode, so tests run the same code.

pub mod backoff;
pub mod error;
pub mod frames;
pub mod handshake;
pub mod input;
pub mod line;
pub mod locate;
pub mod options;
pub mod outbox;
pub mod plain;
pub mod room_url;
pub mod session;
pub mod tls;
pub mod transport;
pub mod tui;

pub use error::CliError;
pub use options::Options;
