//! The frames a room writes by hand: `welcome` and `history` are spliced
//! from the kept messages' already-encoded frames instead of encoding every
//! message again.

use std::fmt::Write as _;

use common::ws::{Limits, Member, ServerFrame, You};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::state::{RoomState, Stored};

pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

fn json_str(out: &mut String, s: &str) {
    // Serialising a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn push_frames<'a>(out: &mut String, frames: impl Iterator<Item = &'a Stored>) {
    out.push('[');
    for (i, stored) in frames.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(stored.frame.as_str());
    }
    out.push(']');
}

/// What a `welcome` tells a member who joins.
pub(super) struct Welcome<'a> {
    pub room: &'a str,
    pub epoch: u64,
    pub you: &'a Member,
    /// The member's token (`welcome.you.token`).
    pub token: &'a str,
    /// Resend only what came after this seq (a resume); else everything kept.
    pub resumed_after: Option<u64>,
    /// The member's client kept a member list that is still the room's:
    /// `members` is left out.
    pub members_unchanged: bool,
    pub limits: &'a Limits,
}

impl Welcome<'_> {
    pub fn encode(&self, st: &RoomState) -> Utf8Bytes {
        let ring = &st.ring;
        let messages: Box<dyn Iterator<Item = &Stored>> = match self.resumed_after {
            Some(after) => Box::new(ring.after(after)),
            None => Box::new(ring.iter()),
        };
        let mut out =
            String::with_capacity(512 + ring.iter().map(|s| s.frame.len() + 1).sum::<usize>());
        out.push_str(r#"{"type":"welcome","room":"#);
        json_str(&mut out, self.room);
        let _ = write!(out, r#","epoch":{},"you":"#, self.epoch);
        let moderation = &st.moderation;
        let you = You {
            id: self.you.id,
            nick: self.you.nick.clone(),
            token: Some(self.token.into()),
            owner: moderation.is_owner(self.you.id),
        };
        out.push_str(&serde_json::to_string(&you).unwrap_or_default());
        out.push_str(r#","topic":"#);
        json_str(&mut out, &moderation.topic);
        let _ = write!(
            out,
            r#","settings":{}"#,
            serde_json::to_string(&moderation.rules).unwrap_or_default()
        );
        if self.members_unchanged {
            out.push_str(r#","members_unchanged":true"#);
        } else {
            out.push_str(r#","members":"#);
            // Members on their way back after a move are listed too (the one
            // joining now is still among them).
            let arriving = st.arriving.iter().filter(|m| m.id != self.you.id);
            let members: Vec<&Member> =
                st.seats.iter().map(|s| &s.member).chain(arriving).chain([self.you]).collect();
            out.push_str(&serde_json::to_string(&members).unwrap_or_default());
        }
        let _ = write!(
            out,
            r#","last_seq":{},"resumed":{},"limits":{},"messages":"#,
            ring.last_seq(),
            self.resumed_after.is_some(),
            serde_json::to_string(self.limits).unwrap_or_default()
        );
        push_frames(&mut out, messages);
        out.push('}');
        Utf8Bytes::from(out)
    }
}

/// The `history` frame: up to `limit` kept messages before `before`.
pub(super) fn history(st: &RoomState, before: u64, limit: usize) -> Utf8Bytes {
    let (frames, has_more) = st.ring.before(before, limit);
    let mut out = String::from(r#"{"type":"history","messages":"#);
    push_frames(&mut out, frames);
    let _ = write!(out, r#","has_more":{has_more}}}"#);
    Utf8Bytes::from(out)
}
