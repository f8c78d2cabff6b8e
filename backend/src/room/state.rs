//! Everything a room holds, in one struct behind the room's lock: who is
//! seated, the ring of kept messages, and the room's clocks. One struct so
//! that a room's whole state can be taken (or handed over) at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ws::{ChatMessage, Member};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::moderation::Moderation;
use super::votes::Votes;
use crate::conn::Conn;
use crate::ring::RingBuffer;

/// A kept message.
pub(super) struct Stored {
    pub msg: ChatMessage,
    /// The `message` frame as sent, reused for welcome, history and resends.
    pub frame: Utf8Bytes,
}

/// A member in the room: the only place its live [`Member`] (id and nick) lives.
pub(super) struct Seat {
    pub member: Member,
    /// Its token: the key of its [`Record`].
    pub token: Box<str>,
    pub conn: Arc<Conn>,
}

/// A member as the room remembers it between connections, by token: what
/// `join {reclaim}` gives back. The nick here is updated when it leaves.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub id: u64,
    pub nick: String,
    /// `None` while a connection holds it.
    pub left_at: Option<Instant>,
}

pub(super) struct RoomState {
    pub seats: Vec<Seat>,
    pub ring: RingBuffer<Stored>,
    /// client_id → seq, for the messages still in the ring.
    pub client_ids: HashMap<Box<str>, u64>,
    /// Who voted what, for the messages still in the ring.
    pub votes: Votes,
    pub empty_since: Option<Instant>,
    pub last_message_at: Option<Instant>,
    /// Set when the room is removed: nobody may join it any more.
    pub closed: bool,
    /// The id the next new member gets. Per room (not per backend), so that a
    /// room moves to another backend with its members' ids.
    pub next_member_id: u64,
    /// Member token → record; at most [`RoomState::max_records`], the members
    /// gone longest forgotten first.
    pub records: HashMap<Box<str>, Record>,
    /// Owners, topic, slow mode, lock, bans, reports.
    pub moderation: Moderation,
    /// Frozen for a move until then: writes and joins are refused. Past it,
    /// the room is live again by itself (aux-srv may have died mid-move).
    pub frozen_until: Option<Instant>,
    /// Members who were seated on the backend this room moved from and have
    /// not reconnected yet. The others keep seeing them (the welcome lists
    /// them, their return is no `joined`) until `arrivals_until`, when those
    /// still missing get a `left`: a move shows as a pause, not as everyone
    /// leaving and joining again (which was also a quadratic burst of
    /// `joined` frames in a big room).
    pub arriving: Vec<Member>,
    pub arrivals_until: Option<Instant>,
    /// Those of `arriving` whose clients hold the room's member list as it
    /// is now (it has not changed since they last saw it): their `welcome`
    /// need not repeat it. Emptied by any change of who is in the room
    /// ([`RoomState::roster_changed`]).
    pub lists_current: HashSet<u64>,
}

impl RoomState {
    pub fn new(max_messages: usize, moderation: Moderation) -> Self {
        RoomState {
            seats: Vec::new(),
            ring: RingBuffer::new(max_messages),
            client_ids: HashMap::new(),
            votes: Votes::default(),
            empty_since: Some(Instant::now()),
            last_message_at: None,
            closed: false,
            moderation,
            next_member_id: 1,
            records: HashMap::new(),
            frozen_until: None,
            arriving: Vec::new(),
            arrivals_until: None,
            lists_current: HashSet::new(),
        }
    }

    /// Someone came, went or changed nick: no member still on its way holds
    /// the current list any more.
    pub fn roster_changed(&mut self) {
        if !self.lists_current.is_empty() {
            self.lists_current = HashSet::new();
        }
    }

    /// The members whose clients hold the current member list: those seated
    /// here, and those on their way whose list is still current.
    pub fn list_holders(&self) -> Vec<u64> {
        self.seats.iter().map(|s| s.member.id).chain(self.lists_current.iter().copied()).collect()
    }

    /// True while a move holds the room still.
    pub fn is_frozen(&self, now: Instant) -> bool {
        self.frozen_until.is_some_and(|until| now < until)
    }

    /// How many member records a room keeps: room for every seat and for
    /// three times as many members who left and may come back.
    pub fn max_records(max_members: usize) -> usize {
        max_members.saturating_mul(4).max(16)
    }

    /// Makes room for one more record when at `max`: forgets members gone
    /// longer than `forget_after`, then (if still full) the longest gone,
    /// down to three quarters of `max`, so that this runs rarely.
    pub fn prune_records(&mut self, max: usize, forget_after: Duration, now: Instant) {
        if self.records.len() < max {
            return;
        }
        self.records
            .retain(|_, r| r.left_at.is_none_or(|at| now.duration_since(at) < forget_after));
        if self.records.len() < max {
            return;
        }
        let mut gone: Vec<(Instant, Box<str>)> = self
            .records
            .iter()
            .filter_map(|(token, r)| r.left_at.map(|at| (at, token.clone())))
            .collect();
        gone.sort_unstable();
        let excess = self.records.len() - max * 3 / 4;
        for (_, token) in gone.into_iter().take(excess) {
            self.records.remove(&token);
        }
    }

    /// Where member `id` stands in [`RoomState::arriving`].
    pub fn arriving_index(&self, id: u64) -> Option<usize> {
        self.arriving.iter().position(|m| m.id == id)
    }

    pub fn seat(&self, id: u64) -> Option<&Seat> {
        self.seats.iter().find(|s| s.member.id == id)
    }

    pub fn seat_mut(&mut self, id: u64) -> Option<&mut Seat> {
        self.seats.iter_mut().find(|s| s.member.id == id)
    }

    /// Keeps `stored`, forgetting the client_id and votes of the message it
    /// evicts.
    pub fn keep(&mut self, stored: Stored) {
        if let Some(c) = &stored.msg.client_id {
            self.client_ids.insert(c.as_str().into(), stored.msg.seq);
        }
        if let Some(evicted) = self.ring.push(stored) {
            if evicted.msg.votes.is_some() {
                self.votes.forget(evicted.msg.seq);
            }
            if let Some(c) = evicted.msg.client_id {
                self.client_ids.remove(c.as_str());
            }
        }
    }
}
