//! Frames the server sends, why it closes, and its close codes.

use serde::{Deserialize, Serialize};

use super::{ChatMessage, LinkPreview, Member, You, is_false};

/// A room's owner settings, in `welcome` and in `settings` frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRules {
    pub slow_mode_secs: u32,
    pub locked: bool,
}

/// The limits a client should show and respect (sent in `welcome`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_text_chars: u32,
    pub max_frame_bytes: u32,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub history_page_max: u32,
}

/// Why the server is about to close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    RoomExpired,
    RoomDeleted,
    Shutdown,
    /// A newer connection reclaimed this member's token (close 4409): this
    /// one should not reconnect by itself.
    Replaced,
    /// The room moved to another backend (close 1012): join it there (the
    /// `closing` frame's `ws_url`, else ask aux-srv again) with `resume` and
    /// `reclaim`.
    Moved,
    /// A room owner removed this member (a `notice` before it says why).
    Kicked,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        room: String,
        epoch: u64,
        you: You,
        /// Left out (empty here) when `members_unchanged`.
        #[serde(default)]
        members: Vec<Member>,
        /// The list the client kept (`resume.has_members`) is still the
        /// room's: `members` is left out.
        #[serde(default, skip_serializing_if = "is_false")]
        members_unchanged: bool,
        messages: Vec<ChatMessage>,
        last_seq: u64,
        #[serde(default)]
        resumed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
    },
    Message(ChatMessage),
    Joined {
        member: Member,
    },
    Left {
        member: Member,
    },
    Typing {
        member: Member,
    },
    Nick {
        member: Member,
        old: String,
    },
    Edited {
        seq: u64,
        text: String,
    },
    Deleted {
        seq: u64,
    },
    /// The preview of message `seq`'s first link is ready.
    Preview {
        seq: u64,
        #[serde(flatten)]
        preview: LinkPreview,
    },
    /// Message `seq`'s vote counts changed (or a voter's vote stood as it was).
    Votes {
        seq: u64,
        up: u32,
        down: u32,
    },
    History {
        messages: Vec<ChatMessage>,
        /// True when older messages than these are still in the buffer.
        #[serde(default)]
        has_more: bool,
    },
    Notice {
        text: String,
        /// Said by the room's moderation (an owner's act, a report's
        /// receipt), not an operators' announcement.
        #[serde(default, skip_serializing_if = "is_false")]
        moderation: bool,
    },
    /// The room's topic changed (an owner set it; empty = none).
    Topic {
        text: String,
    },
    /// An owner changed slow mode or the lock.
    Settings(RoomRules),
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Closing {
        reason: CloseReason,
        /// With `moved`: the room's websocket URL on the backend it moved to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ws_url: Option<String>,
    },
}

impl ServerFrame {
    /// `closing` for `reason` (a move's names where the room went:
    /// [`ServerFrame::Closing::ws_url`]).
    pub fn closing(reason: CloseReason) -> Self {
        ServerFrame::Closing { reason, ws_url: None }
    }

    /// A `notice` of the room's moderation ("olive set the topic").
    pub fn moderation_notice(text: impl Into<String>) -> Self {
        ServerFrame::Notice { text: text.into(), moderation: true }
    }

    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerFrame::Error { code: code.to_owned(), message: message.into(), retry_after_ms: None }
    }

    /// The frame as JSON text. Serialising these types cannot fail (string
    /// keys, no non-finite floats).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Close codes the backend uses (RFC 6455 section 7.4, and 4000+ of ours).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    /// A websocket protocol violation (reserved opcode or bits, unmasked frame…).
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The room does not exist on this backend (ask aux-srv again).
    pub const ROOM_NOT_FOUND: u16 = 4404;
    /// Join refused for good: wrong password, bad nick, room full.
    pub const JOIN_REFUSED: u16 = 4403;
    /// A newer connection took over this member (`join {reclaim}`).
    pub const REPLACED: u16 = 4409;
    /// The room moved to another backend (RFC 6455 "service restart").
    pub const SERVICE_RESTART: u16 = 1012;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_have_the_contract_shape() {
        let msg = ServerFrame::Message(ChatMessage {
            reply_to: Some(2),
            ..ChatMessage::new(
                3,
                1_700_000_000_000,
                Member { id: 9, nick: "ada".into() },
                "<b>hi</b>",
            )
        });
        let v: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(v["type"], "message");
        assert!(v.get("up").is_none() && v.get("down").is_none(), "no votes, no counts");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["from"]["nick"], "ada");
        assert_eq!(v["reply_to"], 2);
        assert!(v.get("drawing").is_none() && v.get("edited").is_none());
        let back: ServerFrame = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(back, msg);

        let closing = ServerFrame::closing(CloseReason::RoomExpired).to_json();
        assert_eq!(closing, r#"{"type":"closing","reason":"room_expired"}"#);
        let moved = ServerFrame::closing(CloseReason::Moved).to_json();
        assert_eq!(moved, r#"{"type":"closing","reason":"moved"}"#);
        let to = Some("ws://b2:9002/ws/Caf%C3%A9".to_owned());
        let moved = ServerFrame::Closing { reason: CloseReason::Moved, ws_url: to }.to_json();
        assert_eq!(
            moved,
            r#"{"type":"closing","reason":"moved","ws_url":"ws://b2:9002/ws/Caf%C3%A9"}"#
        );
        let err = ServerFrame::Error {
            code: "rate_limited".into(),
            message: "slow down".into(),
            retry_after_ms: Some(120),
        };
        let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(v["retry_after_ms"], 120);
        assert_eq!(v["code"], "rate_limited");

        let preview = ServerFrame::Preview {
            seq: 4,
            preview: LinkPreview {
                url: "https://a.example/".into(),
                title: "A".into(),
                description: None,
                image: Some("https://chat.example/files/ab.png".into()),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&preview.to_json()).unwrap();
        assert_eq!(v["type"], "preview");
        assert_eq!((v["seq"].as_u64(), v["title"].as_str()), (Some(4), Some("A")));
        assert!(v.get("description").is_none());
        assert_eq!(serde_json::from_str::<ServerFrame>(&preview.to_json()).unwrap(), preview);
    }

    #[test]
    fn vote_frames_have_the_contract_shape() {
        let frame = ServerFrame::Votes { seq: 7, up: 2, down: 0 }.to_json();
        assert_eq!(frame, r#"{"type":"votes","seq":7,"up":2,"down":0}"#);
    }
}
