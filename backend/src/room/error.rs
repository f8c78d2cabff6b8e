//! Why a room refused what a member (or the HTTP API) asked of it.

use std::time::Duration;

use common::names::NameError;
use common::ws::ServerFrame;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::frames::encode;

/// What `room_moving` tells a client to wait before sending again: a move
/// takes tens of milliseconds, and the `closing moved` usually comes first.
pub const MOVING_RETRY_MS: u64 = 500;

/// A refusal, sent to the member as an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("this room no longer exists")]
    Closed,
    #[error("this room is full")]
    Full,
    #[error("no message with that seq is kept")]
    NoSuchMessage,
    #[error("you can only change your own messages")]
    NotYours,
    #[error("that message was deleted")]
    Deleted,
    #[error("message text is longer than {0} characters")]
    TextTooLong(usize),
    #[error("message is empty")]
    Empty,
    #[error("drawing id is malformed")]
    BadDrawing,
    #[error("reply_to names no earlier message")]
    BadReply,
    #[error("client_id must be 1 to 64 characters")]
    BadClientId,
    #[error("{0}")]
    BadNick(NameError),
    #[error("this room is moving to another server; try again in a moment")]
    Moving,
    #[error("a vote's value must be 1 (up), -1 (down) or 0 (take it back)")]
    BadVote,
    #[error("this room holds as many votes as it can; take one back first")]
    TooManyVotes,
    #[error("only the room's owners may do that")]
    NotOwner,
    #[error("{}", banned_text(reason.as_deref()))]
    Banned { wait: Duration, reason: Option<String> },
    #[error("this room is locked: it takes no new members")]
    Locked,
    #[error("slow mode is on: one message every {secs} seconds")]
    SlowMode { secs: u32, wait: Duration },
    #[error("no member with that id is here")]
    NoSuchMember,
    #[error("you cannot kick yourself")]
    KickSelf,
    #[error("{0}")]
    BadOwnerAct(String),
    #[error("you reported that message already")]
    AlreadyReported,
    #[error("you have made as many reports as one member may in this room")]
    TooManyReports,
}

fn banned_text(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("you are banned from this room for now: {reason}"),
        None => "you are banned from this room for now".into(),
    }
}

impl RoomError {
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::Closed => "room_not_found",
            RoomError::Full => "room_full",
            RoomError::NoSuchMessage => "no_such_message",
            RoomError::NotYours => "not_your_message",
            RoomError::Deleted => "message_deleted",
            RoomError::TextTooLong(_) => "text_too_long",
            RoomError::Empty => "empty_message",
            RoomError::BadDrawing => "bad_drawing",
            RoomError::BadReply => "bad_reply_to",
            RoomError::BadClientId => "bad_client_id",
            RoomError::BadNick(e) => e.code(),
            RoomError::Moving => "room_moving",
            RoomError::BadVote => "bad_vote",
            RoomError::TooManyVotes => "too_many_votes",
            RoomError::NotOwner => "not_owner",
            RoomError::Banned { .. } => "banned",
            RoomError::Locked => "room_locked",
            RoomError::SlowMode { .. } => "slow_mode",
            RoomError::NoSuchMember => "no_such_member",
            RoomError::KickSelf => "bad_request",
            RoomError::BadOwnerAct(_) => "bad_request",
            RoomError::AlreadyReported => "already_reported",
            RoomError::TooManyReports => "too_many_reports",
        }
    }

    /// How long to wait before trying again, for the refusals that end.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RoomError::Banned { wait, .. } | RoomError::SlowMode { wait, .. } => Some(*wait),
            RoomError::Moving => Some(Duration::from_millis(MOVING_RETRY_MS)),
            _ => None,
        }
    }

    pub fn frame(&self) -> Utf8Bytes {
        encode(&ServerFrame::Error {
            code: self.code().to_owned(),
            message: self.to_string(),
            // Rounded up: a client that waits this long is let through.
            retry_after_ms: self.retry_after().map(|w| w.as_millis() as u64 + 1),
        })
    }
}
