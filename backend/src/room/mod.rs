//! A room: its members, its ring buffer of messages, and what members may do.
//!
//! All state ([`state::RoomState`]) sits behind one short-held mutex. Every
//! outgoing frame is encoded once, under that lock, and the same bytes are
//! queued to each member (see [`crate::conn`]), so members see every event in
//! one order. [`frames`] builds `welcome` and `history`; [`RoomError`] is
//! what a room refuses.

mod carry;
mod error;
mod frames;
pub mod moderation;
mod moving;
mod owner;
mod state;
pub mod votes;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::control::RoomInfo;
use common::names::{is_valid_file_id, random_nick};
use common::ws::{ChatMessage, CloseReason, Limits, LinkPreview, Member, Resume, ServerFrame};
use rand::Rng;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use self::error::RoomError;
use self::frames::Welcome;
pub use self::frames::encode;
pub use self::owner::Actor;
use self::state::{Record, RoomState, Seat, Stored};
pub use self::votes::Ballot;
use self::votes::Cast;
use crate::conn::Conn;
use crate::disconnect::Disconnect;
use crate::metrics::Metrics;
use crate::registry::Removal;

/// The limits a room enforces, copied from the backend's config.
#[derive(Debug, Clone, Copy)]
pub struct RoomSettings {
    pub max_messages: usize,
    pub max_members: usize,
    pub max_text_chars: usize,
    pub history_page_max: usize,
    pub idle: Duration,
    pub silent: Duration,
    /// Ballots a room holds over all its kept messages.
    pub max_votes: usize,
    /// How long a moved room's members count as present while they come
    /// back (see [`state::RoomState::arriving`]).
    pub arrival: Duration,
}

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

/// Longest `reclaim` token looked up (ours are 32 hex digits).
pub const MAX_TOKEN_CHARS: usize = 64;

/// Who joins: the nick asked for (none: the reclaimed member's, or a random
/// one), a member token to reclaim, where a reconnecting client left off,
/// the owner key offered and the client's address.
#[derive(Debug, Clone)]
pub struct JoinAs {
    pub nick: Option<String>,
    pub reclaim: Option<String>,
    pub resume: Option<Resume>,
    /// The room's owner key, when the member offers one.
    pub owner_key: Option<String>,
    /// Where the member connects from (room bans are by address too).
    pub ip: IpAddr,
}

/// How many member records a room with `max_members` seats keeps.
pub fn max_records(max_members: usize) -> usize {
    RoomState::max_records(max_members)
}

/// A new member token: 128 random bits as 32 hex digits.
fn new_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// Who posts a message.
#[derive(Debug, Clone)]
pub enum Poster<'a> {
    /// A seated member, by id: the room knows its nick.
    Member(u64),
    /// Not a member (the HTTP API): id 0 and this nick.
    Guest(&'a str),
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
    /// The room's share of the abuse defences (its own lock).
    pub guard: crate::defences::RoomGuard,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn check_text(text: &str, max_chars: usize) -> Result<(), RoomError> {
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
    pub fn new(
        name: String,
        key: String,
        epoch: u64,
        password_hash: Option<String>,
        owner_key_hash: Option<[u8; 32]>,
        settings: RoomSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let moderation = moderation::Moderation::new(owner_key_hash);
        let state = Mutex::new(RoomState::new(settings.max_messages, moderation));
        let guard = crate::defences::RoomGuard::default();
        Room { name, key, epoch, password_hash, settings, metrics, state, guard }
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
            if Some(seat.member.id) != except && seat.conn.push(frame) {
                delivered += 1;
            }
        }
        self.metrics.messages_delivered.inc_by(delivered);
        self.metrics.bytes_sent.inc_by(delivered * frame.len() as u64);
        self.metrics.broadcast_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Seats a member, queues its `welcome` and tells the others; returns
    /// the member's id. With a `reclaim` token the room knows, it is that
    /// member again (same id; its nick unless `nick` is given), and an older
    /// connection still holding the token is closed (`closing replaced`).
    /// An unknown token is ignored: a new member.
    pub fn join(
        &self,
        request: JoinAs,
        conn: Arc<Conn>,
        limits: &Limits,
    ) -> Result<u64, RoomError> {
        let JoinAs { nick, reclaim, resume, owner_key, ip } = request;
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(RoomError::Closed);
        }
        // A member that joins now would not be in the exported snapshot.
        if st.is_frozen(Instant::now()) {
            return Err(RoomError::Moving);
        }
        let known = reclaim
            .filter(|t| t.len() <= MAX_TOKEN_CHARS)
            .and_then(|t| st.records.get_key_value(t.as_str()))
            .map(|(token, record)| (token.clone(), record.clone()));
        let live =
            known.as_ref().and_then(|(_, r)| st.seats.iter().position(|s| s.member.id == r.id));
        // Back after a move: the others still see this member.
        let arriving = known.as_ref().and_then(|(_, r)| st.arriving_index(r.id));
        if live.is_none()
            && arriving.is_none()
            && st.seats.len() + st.arriving.len() >= self.settings.max_members
        {
            return Err(RoomError::Full);
        }
        let reclaimed = known.is_some();
        let (token, member) = match known {
            Some((token, record)) => {
                let old_nick = match live {
                    Some(i) => st.seats[i].member.nick.clone(),
                    None => record.nick,
                };
                (token, Member { id: record.id, nick: nick.unwrap_or(old_nick) })
            }
            None => {
                let max = RoomState::max_records(self.settings.max_members);
                st.prune_records(max, self.settings.idle, Instant::now());
                let id = st.next_member_id;
                st.next_member_id += 1;
                let token: Box<str> = new_token().into();
                let nick = nick.unwrap_or_else(|| random_nick(&mut rand::rng()));
                (token, Member { id, nick })
            }
        };
        // Owners always get in; others not while banned (as this member or
        // from this address), nor into a locked room unless they come back.
        let owner = owner_key.is_some_and(|k| Self::key_matches(st, &k));
        if !owner {
            let now = Instant::now();
            if let Some(ban) = st.moderation.ban_of(member.id, ip, now) {
                let (wait, reason) = (ban.remaining(now), ban.reason.clone());
                return Err(RoomError::Banned { wait, reason });
            }
            if st.moderation.rules.locked && !reclaimed {
                return Err(RoomError::Locked);
            }
        }
        // Before the welcome, which tells the member whether it is an owner.
        st.moderation.seat(member.id, ip, owner);
        // The older connection goes first, so that the welcome lists the
        // member once; it keeps what was queued, then gets `closing replaced`.
        let replaced = live.map(|i| st.seats.swap_remove(i));
        if let Some(old) = &replaced {
            let frame = encode(&ServerFrame::Closing { reason: CloseReason::Replaced });
            old.conn.push_and_close(&frame, Disconnect::Replaced);
        }
        let ring = &st.ring;
        // Resume only when nothing the client missed has left the buffer.
        let resumed_after = resume
            .filter(|r| {
                r.epoch == self.epoch
                    && r.after_seq <= ring.last_seq()
                    && r.after_seq + 1 >= ring.first_seq()
            })
            .map(|r| r.after_seq);
        let welcome = Welcome {
            room: &self.name,
            epoch: self.epoch,
            you: &member,
            token: &token,
            resumed_after,
            limits,
        };
        if !conn.push(&welcome.encode(st)) {
            st.moderation.unseat(member.id);
            return Err(RoomError::Full);
        }
        let arrived = arriving.map(|i| st.arriving.swap_remove(i));
        match replaced.map(|old| old.member).or(arrived) {
            // The others saw this member all along: only a new nick is news.
            Some(old) if old.nick != member.nick => {
                let frame = encode(&ServerFrame::Nick { member: member.clone(), old: old.nick });
                self.broadcast(st, &frame, Some(member.id));
            }
            Some(_) => {}
            None => {
                let joined = encode(&ServerFrame::Joined { member: member.clone() });
                self.broadcast(st, &joined, Some(member.id));
            }
        }
        st.records.insert(
            token.clone(),
            Record { id: member.id, nick: member.nick.clone(), left_at: None },
        );
        let id = member.id;
        st.seats.push(Seat { member, token, conn });
        st.empty_since = None;
        Ok(id)
    }

    /// Removes member `id` — if `conn` still holds its seat (a reclaim may
    /// have given the seat to a newer connection) — and tells the others.
    pub fn leave(&self, id: u64, conn: &Arc<Conn>) {
        let mut st = self.lock();
        let Some(index) =
            st.seats.iter().position(|s| s.member.id == id && Arc::ptr_eq(&s.conn, conn))
        else {
            return;
        };
        let seat = st.seats.swap_remove(index);
        st.moderation.unseat(id);
        if let Some(record) = st.records.get_mut(&seat.token) {
            record.nick.clone_from(&seat.member.nick);
            record.left_at = Some(Instant::now());
        }
        if st.seats.is_empty() {
            st.empty_since = Some(Instant::now());
        } else if !st.closed {
            self.broadcast(&st, &encode(&ServerFrame::Left { member: seat.member }), None);
        }
    }

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

    /// Tells the other members that member `id` is typing.
    pub fn typing(&self, id: u64) {
        let st = self.lock();
        if st.seats.len() > 1 {
            let Some(seat) = st.seat(id) else { return };
            let frame = encode(&ServerFrame::Typing { member: seat.member.clone() });
            self.broadcast(&st, &frame, Some(id));
        }
    }

    /// Renames a member; everyone (the member too) gets `nick`.
    pub fn rename(&self, id: u64, nick: String) -> Result<(), RoomError> {
        let mut st = self.lock();
        if st.is_frozen(Instant::now()) {
            return Err(RoomError::Moving);
        }
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

    /// Member `voter` votes `value` (1, -1, or 0 to take its vote back) on
    /// message `seq`. A change re-encodes the stored message (its counts are
    /// in `welcome`, `history` and resends) and tells everyone with `votes`;
    /// a vote that changes nothing answers the voter alone.
    pub fn vote(&self, voter: &Conn, member: u64, seq: u64, value: i64) -> Result<(), RoomError> {
        let outcome = self.apply_vote(voter, member, seq, value);
        let label = match outcome {
            Ok(true) => "changed",
            Ok(false) => "unchanged",
            Err(_) => "refused",
        };
        self.metrics.votes.with_label_values(&[label]).inc();
        outcome.map(|_| ())
    }

    /// [`Room::vote`]; `Ok(true)` when the counts changed.
    fn apply_vote(
        &self,
        voter: &Conn,
        member: u64,
        seq: u64,
        value: i64,
    ) -> Result<bool, RoomError> {
        let value = votes::parse_value(value)?;
        let mut st = self.lock();
        let st = &mut *st;
        let stored = st.ring.get_mut(seq).ok_or(RoomError::NoSuchMessage)?;
        if stored.msg.deleted {
            return Err(RoomError::Deleted);
        }
        let cast = st.votes.cast(seq, member, value, self.settings.max_votes)?;
        let (Cast::Changed(counts) | Cast::Unchanged(counts)) = cast;
        let counts = counts.unwrap_or_default();
        let frame = encode(&ServerFrame::Votes { seq, up: counts.up, down: counts.down });
        if let Cast::Changed(votes) = cast {
            stored.msg.votes = votes;
            stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
            self.broadcast(st, &frame, None);
            Ok(true)
        } else {
            voter.push(&frame);
            Ok(false)
        }
    }

    /// Every ballot the room holds, for handing it over (a room move).
    pub fn ballots(&self) -> Vec<Ballot> {
        self.lock().votes.ballots()
    }

    /// Takes over `ballots` (from [`Room::ballots`] of the room's previous
    /// home), replacing any votes: ballots on messages this room does not
    /// keep, or keeps deleted, are dropped; each voted message carries its
    /// counts again. Nothing is broadcast (members join afterwards).
    pub fn restore_ballots(&self, ballots: impl IntoIterator<Item = Ballot>) {
        let mut st = self.lock();
        let st = &mut *st;
        let kept = |seq: u64| st.ring.get(seq).is_some_and(|s| !s.msg.deleted);
        let ballots: Vec<Ballot> = ballots.into_iter().filter(|b| kept(b.seq)).collect();
        let voted_before: Vec<u64> =
            st.ring.iter().filter(|s| s.msg.votes.is_some()).map(|s| s.msg.seq).collect();
        st.votes = votes::Votes::restore(ballots);
        let mut seqs: Vec<u64> = st.votes.ballots().iter().map(|b| b.seq).collect();
        seqs.extend(voted_before);
        seqs.sort_unstable();
        seqs.dedup();
        for seq in seqs {
            let counts = st.votes.counts(seq);
            if let Some(stored) = st.ring.get_mut(seq).filter(|s| s.msg.votes != counts) {
                stored.msg.votes = counts;
                stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
            }
        }
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
        if st.is_frozen(now) {
            return false;
        }
        let silent_long_enough =
            st.last_message_at.is_none_or(|at| now.duration_since(at) >= self.settings.silent);
        st.seats.is_empty()
            && st.arriving.is_empty()
            && now.duration_since(empty_since) >= self.settings.idle
            && silent_long_enough
    }

    /// Marks the room closed and asks every member's connection to close
    /// after a `closing` frame saying why.
    pub fn close(&self, removal: Removal) {
        let mut st = self.lock();
        st.closed = true;
        let frame = encode(&ServerFrame::Closing { reason: removal.close_reason() });
        for seat in &st.seats {
            seat.conn.push_and_close(&frame, Disconnect::RoomClosed);
        }
    }
}
