//! What members write: posting (once per `client_id`), renaming, editing
//! and deleting their own messages, previews, and reading the kept ones.

use std::time::Instant;

use common::names::is_valid_file_id;
use common::ws::{ChatMessage, LinkPreview, Member, ServerFrame};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::state::{RoomState, Stored};
use super::{Room, RoomError, encode, frames};
use crate::conn::Conn;

/// Longest `client_id` kept for de-duplication.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// What a member (or the HTTP API) sends.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub text: String,
    pub client_id: Option<String>,
    pub drawing: Option<String>,
    pub reply_to: Option<u64>,
}

/// Who posts a message.
#[derive(Debug, Clone)]
pub enum Poster<'a> {
    /// A seated member, by id: the room knows its nick.
    Member(u64),
    /// Not a member (the HTTP API): id 0 and this nick.
    Guest(&'a str),
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn check_text(text: &str, max_chars: usize) -> Result<(), RoomError> {
    // Cheap byte bound first: a char is at most 4 bytes.
    if text.len() > max_chars * 4 || text.chars().count() > max_chars {
        return Err(RoomError::TextTooLong(max_chars));
    }
    Ok(())
}

/// Checks what does not need the room's state, before taking its lock.
fn check_outgoing(out: &Outgoing, max_text_chars: usize) -> Result<(), RoomError> {
    check_text(&out.text, max_text_chars)?;
    if out.text.trim().is_empty() && out.drawing.is_none() {
        return Err(RoomError::Empty);
    }
    if out.drawing.as_deref().is_some_and(|d| !is_valid_file_id(d)) {
        return Err(RoomError::BadDrawing);
    }
    if out
        .client_id
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS)
    {
        return Err(RoomError::BadClientId);
    }
    Ok(())
}

impl Room {
    /// Stores and broadcasts a message from `from`, or — for a `client_id`
    /// already stored — returns the stored message without storing it twice
    /// (and resends it to `reply_to_sender`). `Ok((message, true))` when it
    /// was new.
    pub fn post(
        &self,
        from: Poster<'_>,
        out: Outgoing,
        reply_to_sender: Option<&Conn>,
    ) -> Result<(ChatMessage, bool), RoomError> {
        check_outgoing(&out, self.settings.max_text_chars)?;
        let mut st = self.lock();
        if st.closed {
            return Err(RoomError::Closed);
        }
        if let Some(seq) = out.client_id.as_deref().and_then(|c| st.client_ids.get(c)) {
            let stored = st.ring.get(*seq).expect("client_ids only names kept messages");
            if let Some(conn) = reply_to_sender {
                conn.push(&stored.frame);
            }
            return Ok((stored.msg.clone(), false));
        }
        // A resend of a kept message is answered above even while frozen; a
        // new one waits for the move.
        if st.is_frozen(Instant::now()) {
            return Err(RoomError::Moving);
        }
        let seq = st.ring.next_seq();
        if out.reply_to.is_some_and(|r| r == 0 || r >= seq) {
            return Err(RoomError::BadReply);
        }
        let from = match from {
            Poster::Member(id) => {
                let member = st.seat(id).ok_or(RoomError::Closed)?.member.clone();
                // One branch while slow mode is off (moderation.rs).
                if st.moderation.rules.slow_mode_secs > 0 {
                    st.moderation.slow_mode(id, Instant::now()).map_err(|wait| {
                        RoomError::SlowMode { secs: st.moderation.rules.slow_mode_secs, wait }
                    })?;
                }
                member
            }
            Poster::Guest(nick) => Member { id: 0, nick: nick.to_owned() },
        };
        let msg = ChatMessage {
            seq,
            ts: now_ms(),
            from,
            text: out.text,
            drawing: out.drawing,
            reply_to: out.reply_to,
            client_id: out.client_id,
            edited: false,
            deleted: false,
            preview: None,
            votes: None,
        };
        let frame = encode(&ServerFrame::Message(msg.clone()));
        st.keep(Stored { msg: msg.clone(), frame: frame.clone() });
        st.last_message_at = Some(Instant::now());
        self.broadcast(&st, &frame, None);
        self.metrics.messages_received.inc();
        Ok((msg, true))
    }

    /// Renames a member; everyone (the member too) gets `nick`.
    pub fn rename(&self, id: u64, nick: String) -> Result<(), RoomError> {
        let mut st = self.lock();
        if st.is_frozen(Instant::now()) {
            return Err(RoomError::Moving);
        }
        st.roster_changed();
        let seat = st.seat_mut(id).ok_or(RoomError::Closed)?;
        let old = std::mem::replace(&mut seat.member.nick, nick);
        let frame = encode(&ServerFrame::Nick { member: seat.member.clone(), old });
        self.broadcast(&st, &frame, None);
        Ok(())
    }

    fn own_message(st: &mut RoomState, seq: u64, author: u64) -> Result<&mut Stored, RoomError> {
        if st.is_frozen(Instant::now()) {
            return Err(RoomError::Moving);
        }
        let stored = st.ring.get_mut(seq).ok_or(RoomError::NoSuchMessage)?;
        if stored.msg.from.id != author {
            return Err(RoomError::NotYours);
        }
        if stored.msg.deleted {
            return Err(RoomError::Deleted);
        }
        Ok(stored)
    }

    pub fn edit(&self, author: u64, seq: u64, text: String) -> Result<(), RoomError> {
        check_text(&text, self.settings.max_text_chars)?;
        let mut st = self.lock();
        let stored = Self::own_message(&mut st, seq, author)?;
        if text.trim().is_empty() && stored.msg.drawing.is_none() {
            return Err(RoomError::Empty);
        }
        stored.msg.text = text.clone();
        stored.msg.edited = true;
        stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
        self.broadcast(&st, &encode(&ServerFrame::Edited { seq, text }), None);
        Ok(())
    }

    /// Deletes a message: the seq stays (as a tombstone) so clients see no gap.
    pub fn delete(&self, author: u64, seq: u64) -> Result<(), RoomError> {
        let mut st = self.lock();
        let stored = Self::own_message(&mut st, seq, author)?;
        stored.msg.text.clear();
        stored.msg.drawing = None;
        stored.msg.reply_to = None;
        stored.msg.deleted = true;
        // A tombstone has nothing to vote on: its votes go with its text.
        let voted = stored.msg.votes.take().is_some();
        stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
        if voted {
            st.votes.forget(seq);
        }
        self.broadcast(&st, &encode(&ServerFrame::Deleted { seq }), None);
        Ok(())
    }

    /// Attaches a link preview to message `seq`, if it is still kept and not
    /// deleted, and tells everyone ([`crate::preview`]).
    pub fn set_preview(&self, seq: u64, preview: LinkPreview) {
        let mut st = self.lock();
        if st.is_frozen(Instant::now()) {
            return; // the snapshot is taken: a preview now would be lost anyway
        }
        let Some(stored) = st.ring.get_mut(seq).filter(|s| !s.msg.deleted) else { return };
        stored.msg.preview = Some(Box::new(preview.clone()));
        stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
        self.broadcast(&st, &encode(&ServerFrame::Preview { seq, preview }), None);
    }

    /// The `history` frame: up to `limit` messages before `before`.
    pub fn history(&self, before: u64, limit: Option<u32>) -> Utf8Bytes {
        let limit = limit.map_or(50, |l| l as usize).clamp(1, self.settings.history_page_max);
        frames::history(&self.lock(), before, limit)
    }

    /// Messages for the HTTP API: the oldest `limit` after `after`, or the
    /// newest `limit` when `after` is `None`. Also returns the last seq.
    pub fn read(&self, after: Option<u64>, limit: usize) -> (Vec<ChatMessage>, u64) {
        let st = self.lock();
        let messages = match after {
            Some(after) => st.ring.after(after).take(limit).map(|s| s.msg.clone()).collect(),
            None => {
                let skip = st.ring.len().saturating_sub(limit);
                st.ring.iter().skip(skip).map(|s| s.msg.clone()).collect()
            }
        };
        (messages, st.ring.last_seq())
    }
}
