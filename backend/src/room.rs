//! A room: its members, its ring buffer of messages, and what members may do.
//!
//! All state sits behind one short-held mutex. Every outgoing frame is
//! encoded once, under that lock, and the same bytes are queued to each
//! member (see [`crate::link`]), so members see every event in one order.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::control::RoomInfo;
use common::names::{NameError, is_valid_file_id};
use common::ws::{ChatMessage, CloseReason, Limits, Member, Resume, ServerFrame, close_code};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::link::Link;
use crate::metrics::{Disconnect, Metrics};
use crate::ring::RingBuffer;

/// The limits a room enforces, copied from the backend's config.
#[derive(Debug, Clone, Copy)]
pub struct RoomSettings {
    pub max_messages: usize,
    pub max_members: usize,
    pub max_text_chars: usize,
    pub history_page_max: usize,
    pub idle: Duration,
    pub silent: Duration,
}

/// Longest `client_id` kept for de-duplication.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

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
        }
    }

    pub fn frame(&self) -> Utf8Bytes {
        encode(&ServerFrame::error(self.code(), self.to_string()))
    }
}

/// What a member (or the HTTP API) sends.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub text: String,
    pub client_id: Option<String>,
    pub drawing: Option<String>,
    pub reply_to: Option<u64>,
}

struct Stored {
    msg: ChatMessage,
    /// The `message` frame as sent, reused for welcome, history and resends.
    frame: Utf8Bytes,
}

struct Seat {
    member: Member,
    link: Link,
}

struct RoomState {
    seats: Vec<Seat>,
    ring: RingBuffer<Stored>,
    /// client_id → seq, for the messages still in the ring.
    client_ids: HashMap<Box<str>, u64>,
    empty_since: Option<Instant>,
    last_message_at: Option<Instant>,
    /// Set when the room is removed: nobody may join it any more.
    closed: bool,
}

/// One chat room (see the module docs).
pub struct Room {
    name: String,
    key: String,
    epoch: u64,
    password_hash: Option<String>,
    settings: RoomSettings,
    metrics: Arc<Metrics>,
    state: Mutex<RoomState>,
}

pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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

fn check_text(text: &str, max_chars: usize) -> Result<(), RoomError> {
    // Cheap byte bound first: a char is at most 4 bytes.
    if text.len() > max_chars * 4 || text.chars().count() > max_chars {
        return Err(RoomError::TextTooLong(max_chars));
    }
    Ok(())
}

impl Room {
    pub fn new(
        name: String,
        key: String,
        epoch: u64,
        password_hash: Option<String>,
        settings: RoomSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let state = RoomState {
            seats: Vec::new(),
            ring: RingBuffer::new(settings.max_messages),
            client_ids: HashMap::new(),
            empty_since: Some(Instant::now()),
            last_message_at: None,
            closed: false,
        };
        Room { name, key, epoch, password_hash, settings, metrics, state: Mutex::new(state) }
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // A panic while holding the lock cannot leave the state half-changed
        // in a way worse than refusing the room forever; keep serving it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }

    pub fn info(&self) -> RoomInfo {
        let st = self.lock();
        RoomInfo {
            name: self.name.clone(),
            key: self.key.clone(),
            epoch: self.epoch,
            has_password: self.password_hash.is_some(),
            members: st.seats.len() as u32,
            last_seq: st.ring.last_seq(),
        }
    }

    /// Queues `frame` to every member but `except`.
    fn broadcast(&self, st: &RoomState, frame: &Utf8Bytes, except: Option<u64>) {
        let started = Instant::now();
        let mut delivered = 0u64;
        for seat in &st.seats {
            if Some(seat.member.id) != except && seat.link.push(frame) {
                delivered += 1;
            }
        }
        self.metrics.messages_delivered.inc_by(delivered);
        self.metrics.bytes_sent.inc_by(delivered * frame.len() as u64);
        self.metrics.broadcast_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Seats `member`, queues its `welcome` and tells the others.
    pub fn join(
        &self,
        member: Member,
        resume: Option<Resume>,
        link: Link,
        limits: &Limits,
    ) -> Result<(), RoomError> {
        let mut st = self.lock();
        if st.closed {
            return Err(RoomError::Closed);
        }
        if st.seats.len() >= self.settings.max_members {
            return Err(RoomError::Full);
        }
        let ring = &st.ring;
        // Resume only when nothing the client missed has left the buffer.
        let resumed_after = resume.filter(|r| {
            r.epoch == self.epoch
                && r.after_seq <= ring.last_seq()
                && r.after_seq + 1 >= ring.first_seq()
        });
        let messages: Box<dyn Iterator<Item = &Stored>> = match &resumed_after {
            Some(r) => Box::new(ring.after(r.after_seq)),
            None => Box::new(ring.iter()),
        };
        let mut out =
            String::with_capacity(512 + ring.iter().map(|s| s.frame.len() + 1).sum::<usize>());
        out.push_str(r#"{"type":"welcome","room":"#);
        json_str(&mut out, &self.name);
        let _ = write!(out, r#","epoch":{},"you":"#, self.epoch);
        out.push_str(&serde_json::to_string(&member).unwrap_or_default());
        out.push_str(r#","members":"#);
        let members: Vec<&Member> = st.seats.iter().map(|s| &s.member).chain([&member]).collect();
        out.push_str(&serde_json::to_string(&members).unwrap_or_default());
        let _ = write!(
            out,
            r#","last_seq":{},"resumed":{},"limits":{},"messages":"#,
            ring.last_seq(),
            resumed_after.is_some(),
            serde_json::to_string(limits).unwrap_or_default()
        );
        push_frames(&mut out, messages);
        out.push('}');
        if !link.push(&Utf8Bytes::from(out)) {
            return Err(RoomError::Full);
        }
        let joined = encode(&ServerFrame::Joined { member: member.clone() });
        self.broadcast(&st, &joined, Some(member.id));
        st.seats.push(Seat { member, link });
        st.empty_since = None;
        Ok(())
    }

    /// Removes a member and tells the others.
    pub fn leave(&self, id: u64) {
        let mut st = self.lock();
        let Some(index) = st.seats.iter().position(|s| s.member.id == id) else {
            return;
        };
        let seat = st.seats.swap_remove(index);
        if st.seats.is_empty() {
            st.empty_since = Some(Instant::now());
        } else if !st.closed {
            self.broadcast(&st, &encode(&ServerFrame::Left { member: seat.member }), None);
        }
    }

    /// Stores and broadcasts a message from `from`, or — for a `client_id`
    /// already stored — returns the stored message without storing it twice.
    /// `Ok((message, true))` when it was new.
    pub fn post(
        &self,
        from: &Member,
        out: Outgoing,
        reply_to_sender: Option<&Link>,
    ) -> Result<(ChatMessage, bool), RoomError> {
        check_text(&out.text, self.settings.max_text_chars)?;
        if out.text.trim().is_empty() && out.drawing.is_none() {
            return Err(RoomError::Empty);
        }
        if let Some(d) = &out.drawing {
            if !is_valid_file_id(d) {
                return Err(RoomError::BadDrawing);
            }
        }
        if let Some(c) = &out.client_id {
            if c.is_empty() || c.chars().count() > MAX_CLIENT_ID_CHARS {
                return Err(RoomError::BadClientId);
            }
        }
        let mut st = self.lock();
        if st.closed {
            return Err(RoomError::Closed);
        }
        if let Some(seq) = out.client_id.as_deref().and_then(|c| st.client_ids.get(c)) {
            let stored = st.ring.get(*seq).expect("client_ids only names kept messages");
            if let Some(link) = reply_to_sender {
                link.push(&stored.frame);
            }
            return Ok((stored.msg.clone(), false));
        }
        let seq = st.ring.next_seq();
        if out.reply_to.is_some_and(|r| r == 0 || r >= seq) {
            return Err(RoomError::BadReply);
        }
        let msg = ChatMessage {
            seq,
            ts: now_ms(),
            from: from.clone(),
            text: out.text,
            drawing: out.drawing,
            reply_to: out.reply_to,
            client_id: out.client_id,
            edited: false,
            deleted: false,
        };
        let frame = encode(&ServerFrame::Message(msg.clone()));
        if let Some(c) = &msg.client_id {
            st.client_ids.insert(c.as_str().into(), seq);
        }
        if let Some(evicted) = st.ring.push(Stored { msg: msg.clone(), frame: frame.clone() }) {
            if let Some(c) = evicted.msg.client_id {
                st.client_ids.remove(c.as_str());
            }
        }
        st.last_message_at = Some(Instant::now());
        self.broadcast(&st, &frame, None);
        self.metrics.messages_received.inc();
        Ok((msg, true))
    }

    /// Tells the other members that `member` is typing.
    pub fn typing(&self, member: &Member) {
        let st = self.lock();
        if st.seats.len() > 1 {
            let frame = encode(&ServerFrame::Typing { member: member.clone() });
            self.broadcast(&st, &frame, Some(member.id));
        }
    }

    /// Renames a member; everyone (the member too) gets `nick`.
    pub fn rename(&self, id: u64, nick: String) -> Result<Member, RoomError> {
        let mut st = self.lock();
        let seat = st.seats.iter_mut().find(|s| s.member.id == id).ok_or(RoomError::Closed)?;
        let old = std::mem::replace(&mut seat.member.nick, nick);
        let member = seat.member.clone();
        let frame = encode(&ServerFrame::Nick { member: member.clone(), old });
        self.broadcast(&st, &frame, None);
        Ok(member)
    }

    fn own_message(st: &mut RoomState, seq: u64, author: u64) -> Result<&mut Stored, RoomError> {
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
        stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
        self.broadcast(&st, &encode(&ServerFrame::Deleted { seq }), None);
        Ok(())
    }

    /// The `history` frame: up to `limit` messages before `before`.
    pub fn history(&self, before: u64, limit: Option<u32>) -> Utf8Bytes {
        let limit = limit.map_or(50, |l| l as usize).clamp(1, self.settings.history_page_max);
        let st = self.lock();
        let (frames, has_more) = st.ring.before(before, limit);
        let mut out = String::from(r#"{"type":"history","messages":"#);
        push_frames(&mut out, frames);
        let _ = write!(out, r#","has_more":{has_more}}}"#);
        Utf8Bytes::from(out)
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

    /// Sends `frame` to every member.
    pub fn announce(&self, frame: &Utf8Bytes) {
        let st = self.lock();
        self.broadcast(&st, frame, None);
    }

    /// True when the room is empty and has been idle long enough to go.
    pub fn is_expired(&self, now: Instant) -> bool {
        let st = self.lock();
        let Some(empty_since) = st.empty_since else {
            return false;
        };
        let silent_long_enough =
            st.last_message_at.is_none_or(|at| now.duration_since(at) >= self.settings.silent);
        st.seats.is_empty()
            && now.duration_since(empty_since) >= self.settings.idle
            && silent_long_enough
    }

    /// Marks the room closed and asks every member's connection to close
    /// after a `closing` frame.
    pub fn close(&self, reason: CloseReason) {
        let mut st = self.lock();
        st.closed = true;
        let code = match reason {
            CloseReason::Shutdown => close_code::GOING_AWAY,
            CloseReason::RoomExpired | CloseReason::RoomDeleted => close_code::NORMAL,
        };
        let frame = encode(&ServerFrame::Closing { reason });
        for seat in &st.seats {
            seat.link.push_and_close(&frame, code, Disconnect::RoomClosed);
        }
    }
}
