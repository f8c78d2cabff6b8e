//! A room as it travels between backends: its snapshot, members and messages.

use bincode::{Decode, Encode};

use crate::ws::{ChatMessage, LinkPreview, Member, VoteCounts};

/// A member as a room remembers it, by token (`join {reclaim}`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MemberRecord {
    pub token: String,
    pub id: u64,
    pub nick: String,
    /// How long ago it left; `None` while it was connected.
    pub gone_ms: Option<u64>,
}

/// Everything a room is, as it moves from one backend to another. Times are
/// ages (milliseconds before the export), since the two processes share no
/// clock.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RoomSnapshot {
    /// As its creator typed it.
    pub name: String,
    pub key: String,
    pub epoch: u64,
    pub password_hash: Option<String>,
    /// The seq the next message gets (the ring may be empty).
    pub next_seq: u64,
    /// The ring buffer, oldest first, with edits, deletions, client ids and
    /// previews.
    pub messages: Vec<MessageRecord>,
    pub next_member_id: u64,
    pub members: Vec<MemberRecord>,
    /// How long the room has had no members (`None`: it has members).
    pub empty_ms: Option<u64>,
    /// How long ago its last message came (`None`: never).
    pub last_message_ms: Option<u64>,
    /// What later features keep per room (owner key hash, topic, settings,
    /// votes, bans…), by name, each in its own encoding: a backend that does
    /// not know a name keeps the bytes and passes them on.
    pub extensions: Vec<(String, Vec<u8>)>,
}

/// A message as the control protocol carries it (bincode cannot carry the
/// optional-field JSON shape of [`ChatMessage`] directly).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MessageRecord {
    pub seq: u64,
    pub ts: u64,
    pub from_id: u64,
    pub from_nick: String,
    pub text: String,
    pub drawing: Option<String>,
    pub reply_to: Option<u64>,
    pub client_id: Option<String>,
    pub edited: bool,
    pub deleted: bool,
    pub preview: Option<Box<LinkPreview>>,
    /// Vote counts (0 and 0 when nobody voted).
    pub up: u32,
    pub down: u32,
}

impl From<&ChatMessage> for MessageRecord {
    fn from(m: &ChatMessage) -> Self {
        MessageRecord {
            seq: m.seq,
            ts: m.ts,
            from_id: m.from.id,
            from_nick: m.from.nick.clone(),
            text: m.text.clone(),
            drawing: m.drawing.clone(),
            reply_to: m.reply_to,
            client_id: m.client_id.clone(),
            edited: m.edited,
            deleted: m.deleted,
            preview: m.preview.clone(),
            up: m.votes.map_or(0, |v| v.up),
            down: m.votes.map_or(0, |v| v.down),
        }
    }
}

impl From<MessageRecord> for ChatMessage {
    fn from(r: MessageRecord) -> Self {
        ChatMessage {
            seq: r.seq,
            ts: r.ts,
            from: Member { id: r.from_id, nick: r.from_nick },
            text: r.text,
            drawing: r.drawing,
            reply_to: r.reply_to,
            client_id: r.client_id,
            edited: r.edited,
            deleted: r.deleted,
            preview: r.preview,
            votes: VoteCounts { up: r.up, down: r.down }.non_zero(),
        }
    }
}
