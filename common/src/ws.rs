//! The websocket protocol between browsers (or bots) and a backend.
//!
//! Text frames, one JSON object each, tagged by `"type"`. See
//! `docs/PROTOCOL.md` for the conversation; these types are its vocabulary.
//! Unknown fields are ignored so that older servers accept newer clients.

use serde::{Deserialize, Serialize};

/// Where a reconnecting client left off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub epoch: u64,
    pub after_seq: u64,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Join {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    Send {
        #[serde(default)]
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drawing: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    Typing,
    Nick {
        nick: String,
    },
    Edit {
        seq: u64,
        text: String,
    },
    Delete {
        seq: u64,
    },
    History {
        before: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

/// Every `type` a client may send, for telling "unknown type" from "malformed".
pub const CLIENT_FRAME_TYPES: &[&str] =
    &["join", "send", "typing", "nick", "edit", "delete", "history"];

/// A member of a room as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub nick: String,
}

/// A chat message as stored in the ring buffer and sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    pub from: Member,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The author changed the text after sending it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub edited: bool,
    /// The author deleted it: `text` is empty and `drawing` gone, but the seq
    /// stays so that clients see no gap.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        room: String,
        epoch: u64,
        you: Member,
        members: Vec<Member>,
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
    History {
        messages: Vec<ChatMessage>,
        /// True when older messages than these are still in the buffer.
        #[serde(default)]
        has_more: bool,
    },
    Notice {
        text: String,
    },
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Closing {
        reason: CloseReason,
    },
}

impl ServerFrame {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_from_contract_examples() {
        let join: ClientFrame = serde_json::from_str(
            r#"{"type":"join","nick":"ada","resume":{"epoch":7,"after_seq":41}}"#,
        )
        .unwrap();
        assert_eq!(
            join,
            ClientFrame::Join {
                nick: Some("ada".into()),
                password: None,
                resume: Some(Resume { epoch: 7, after_seq: 41 })
            }
        );
        let bare: ClientFrame = serde_json::from_str(r#"{"type":"join"}"#).unwrap();
        assert!(matches!(bare, ClientFrame::Join { nick: None, .. }));
        let send: ClientFrame =
            serde_json::from_str(r#"{"type":"send","text":"hi","client_id":"c1","extra":1}"#)
                .unwrap();
        assert!(matches!(send, ClientFrame::Send { ref text, .. } if text == "hi"));
        let typing: ClientFrame = serde_json::from_str(r#"{"type":"typing"}"#).unwrap();
        assert_eq!(typing, ClientFrame::Typing);
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"edit","seq":"x"}"#).is_err());
    }

    #[test]
    fn server_frames_have_the_contract_shape() {
        let msg = ServerFrame::Message(ChatMessage {
            seq: 3,
            ts: 1_700_000_000_000,
            from: Member { id: 9, nick: "ada".into() },
            text: "<b>hi</b>".into(),
            drawing: None,
            reply_to: Some(2),
            client_id: None,
            edited: false,
            deleted: false,
        });
        let v: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["from"]["nick"], "ada");
        assert_eq!(v["reply_to"], 2);
        assert!(v.get("drawing").is_none() && v.get("edited").is_none());
        let back: ServerFrame = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(back, msg);

        let closing = ServerFrame::Closing { reason: CloseReason::RoomExpired }.to_json();
        assert_eq!(closing, r#"{"type":"closing","reason":"room_expired"}"#);
        let err = ServerFrame::Error {
            code: "rate_limited".into(),
            message: "slow down".into(),
            retry_after_ms: Some(120),
        };
        let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(v["retry_after_ms"], 120);
        assert_eq!(v["code"], "rate_limited");
    }
}
