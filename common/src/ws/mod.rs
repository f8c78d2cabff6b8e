//! The websocket protocol between browsers (or bots) and a backend.
//!
//! Text frames, one JSON object each, tagged by `"type"`. See
//! `docs/PROTOCOL.md` for the conversation; these types are its vocabulary.
//! Unknown fields are ignored so that older servers accept newer clients.//!
//! `client.rs` holds what a client sends, `server.rs` what the server sends,
//! `message.rs` the chat message and members both speak of.

mod client;
mod message;
mod server;

pub use client::{CLIENT_FRAME_TYPES, ClientFrame, JoinExtras, Resume};
pub use message::{ChatMessage, LinkPreview, Member, VoteCounts, You};
pub use server::{CloseReason, Limits, RoomRules, ServerFrame, close_code};

/// For `skip_serializing_if`: a false flag is left out of the JSON.
fn is_false(b: &bool) -> bool {
    !*b
}
