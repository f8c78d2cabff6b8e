//! A chat message and the members who write it, as both sides speak of them.

use serde::{Deserialize, Serialize};

use super::is_false;

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

impl ChatMessage {
    /// A text message as it is first posted: no drawing, reply, client id,
    /// edit, preview or votes (struct update syntax adds those).
    pub fn new(seq: u64, ts: u64, from: Member, text: impl Into<String>) -> Self {
        ChatMessage {
            seq,
            ts,
            from,
            text: text.into(),
            drawing: None,
            reply_to: None,
            client_id: None,
            edited: false,
            deleted: false,
            preview: None,
            votes: None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::ServerFrame;

    #[test]
    fn voted_messages_carry_both_counts() {
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
