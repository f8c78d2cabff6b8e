//! Frames a client sends.

use serde::{Deserialize, Serialize};

/// Where a reconnecting client left off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub epoch: u64,
    pub after_seq: u64,
    /// The client's last connection ended with `closing moved`, and it
    /// holds the member list as it was then (every `joined`, `left` and
    /// `nick` before that frame applied). When that list is still the
    /// room's (nobody came, went or changed nick since), the `welcome`
    /// leaves `members` out and says `members_unchanged`.
    #[serde(default, skip_serializing_if = "crate::ws::is_false")]
    pub has_members: bool,
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
                resume: Some(Resume { epoch: 7, after_seq: 41, has_members: false }),
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
    fn votes_parse_from_contract_examples() {
        let vote: ClientFrame =
            serde_json::from_str(r#"{"type":"vote","seq":7,"value":-1}"#).unwrap();
        assert_eq!(vote, ClientFrame::Vote { seq: 7, value: -1 });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"vote","seq":7}"#).is_err());
    }
}
