//! A room: its members, its ring buffer of messages, and what members may do.
//!
//! All state ([`state::RoomState`]) sits behind one short-held mutex. Every
//! outgoing frame is encoded once, under that lock, and the same bytes are
//! queued to each member (see [`crate::conn`]), so members see every event in
//! one order. [`join`] seats and unseats members; [`messages`] is what
//! they write; [`frames`] builds `welcome` and `history`; [`RoomError`] is
//! what a room refuses. Owners' acts are in [`owner`], votes in [`votes`],
//! moves in [`moving`].

mod carry;
mod error;
mod frames;
mod join;
mod messages;
pub mod moderation;
mod moving;
mod owner;
mod state;
pub mod votes;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::control::RoomInfo;
use common::ws::ServerFrame;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use self::error::RoomError;
pub use self::frames::encode;
pub use self::join::{JoinAs, MAX_TOKEN_CHARS};
pub use self::messages::{MAX_CLIENT_ID_CHARS, Outgoing, Poster};
pub use self::owner::Actor;
use self::state::RoomState;
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

/// How many member records a room with `max_members` seats keeps.
pub fn max_records(max_members: usize) -> usize {
    RoomState::max_records(max_members)
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

    /// Tells the other members that member `id` is typing.
    pub fn typing(&self, id: u64) {
        let st = self.lock();
        if st.seats.len() > 1 {
            let Some(seat) = st.seat(id) else { return };
            let frame = encode(&ServerFrame::Typing { member: seat.member.clone() });
            self.broadcast(&st, &frame, Some(id));
        }
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
        let frame = encode(&ServerFrame::closing(removal.close_reason()));
        for seat in &st.seats {
            seat.conn.push_and_close(&frame, Disconnect::RoomClosed);
        }
    }
}
