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
        /// The `token` of an earlier `welcome.you`: join as that member again
        /// (same id, nick unless `nick` is given, and its rights). A wrong or
        /// expired token is ignored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reclaim: Option<String>,
        /// The answer to a proof-of-work challenge (`error {code: "challenge"}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pow: Option<crate::pow::PowSolution>,
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
    /// A member's vote on message `seq`: 1 up, -1 down, 0 takes it back.
    /// Any other number is refused (`bad_vote`) by the room, not the parser,
    /// so the client learns why.
    Vote {
        seq: u64,
        value: i64,
    },
    /// Owner: set the room's topic (empty clears it).
    Topic {
        text: String,
    },
    /// Owner: remove a member, and with `ban_secs` keep it out that long.
    Kick {
        member: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ban_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Owner: one message per `secs` per member (0 = off).
    SlowMode {
        secs: u32,
    },
    /// Owner: refuse (true) or admit (false) new members.
    Lock {
        locked: bool,
    },
    /// Anyone: flag a message for the operators.
    Report {
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Every `type` a client may send, for telling "unknown type" from "malformed".
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "join",
    "send",
    "typing",
    "nick",
    "edit",
    "delete",
    "history",
    "topic",
    "kick",
    "slow_mode",
    "lock",
    "report",
    "vote",
];

/// The optional fields of a `join` that only some clients send, read apart
/// from [`ClientFrame::Join`] so that adding one does not touch every caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinExtras {
    /// The room's owner key: the member joins as an owner when it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<String>,
}

/// A room's owner settings, in `welcome` and in `settings` frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRules {
    pub slow_mode_secs: u32,
    pub locked: bool,
}

/// A member of a room as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub nick: String,
}

/// The joining member itself, in `welcome.you`: as others see it, plus the
/// secret token that lets a later `join {reclaim}` be this member again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct You {
    pub id: u64,
    pub nick: String,
    /// Absent from servers older than member tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// This member joined with the room's owner key.
    #[serde(default, skip_serializing_if = "is_false")]
    pub owner: bool,
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
    /// The preview of the message's first link, once file-srv has made it.
    /// Boxed: one pointer per stored message until there is a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Box<LinkPreview>>,
    /// The message's vote counts, once anyone voted: `"up"` and `"down"`
    /// beside the other fields, both or neither. Inline (8 bytes, no
    /// allocation); who voted what is the backend's business.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub votes: Option<VoteCounts>,
}

/// How many members vote a message up and down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteCounts {
    pub up: u32,
    pub down: u32,
}

impl VoteCounts {
    /// `None` when nobody votes: the message then carries no counts.
    pub fn non_zero(self) -> Option<Self> {
        (self != VoteCounts::default()).then_some(self)
    }
}

/// A link's preview, fetched by file-srv (never by the browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct LinkPreview {
    /// The link as it appears in the message.
    pub url: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A file-srv URL of the re-encoded image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
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
    /// A newer connection reclaimed this member's token (close 4409): this
    /// one should not reconnect by itself.
    Replaced,
    /// The room moved to another backend (close 1012): ask aux-srv again and
    /// join there with `resume` and `reclaim`.
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
    },
}

impl ServerFrame {
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
                resume: Some(Resume { epoch: 7, after_seq: 41 }),
                reclaim: None,
                pow: None,
            }
        );
        let reclaim: ClientFrame =
            serde_json::from_str(r#"{"type":"join","reclaim":"00ff"}"#).unwrap();
        assert!(matches!(reclaim, ClientFrame::Join { reclaim: Some(ref t), .. } if t == "00ff"));
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
            preview: None,
            votes: None,
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

        let closing = ServerFrame::Closing { reason: CloseReason::RoomExpired }.to_json();
        assert_eq!(closing, r#"{"type":"closing","reason":"room_expired"}"#);
        let moved = ServerFrame::Closing { reason: CloseReason::Moved }.to_json();
        assert_eq!(moved, r#"{"type":"closing","reason":"moved"}"#);
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
    fn votes_have_the_contract_shape() {
        let vote: ClientFrame =
            serde_json::from_str(r#"{"type":"vote","seq":7,"value":-1}"#).unwrap();
        assert_eq!(vote, ClientFrame::Vote { seq: 7, value: -1 });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"vote","seq":7}"#).is_err());

        let frame = ServerFrame::Votes { seq: 7, up: 2, down: 0 }.to_json();
        assert_eq!(frame, r#"{"type":"votes","seq":7,"up":2,"down":0}"#);

        // A voted message carries both counts, even a zero one.
        let json = r#"{"type":"message","seq":1,"ts":5,"from":{"id":1,"nick":"a"},"text":"x","up":3,"down":0}"#;
        let ServerFrame::Message(m) = serde_json::from_str::<ServerFrame>(json).unwrap() else {
            panic!("a message")
        };
        assert_eq!(m.votes, Some(VoteCounts { up: 3, down: 0 }));
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::Message(m.clone()).to_json()).unwrap();
        assert_eq!((v["up"].as_u64(), v["down"].as_u64()), (Some(3), Some(0)));
        let unvoted: ChatMessage =
            serde_json::from_str(r#"{"seq":1,"ts":5,"from":{"id":1,"nick":"a"},"text":"x"}"#)
                .unwrap();
        assert_eq!(unvoted.votes, None);
        assert_eq!(VoteCounts::default().non_zero(), None);
    }

    #[test]
    fn a_stored_message_stays_small() {
        // Stored 1000 times per room: votes add 8 bytes, no allocation.
        assert!(std::mem::size_of::<ChatMessage>() <= 160);
    }
}
