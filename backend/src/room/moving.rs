//! A room on the move (see `aux-srv/src/moves.rs` for the whole dance):
//! frozen on the source while its state is copied, rebuilt from the
//! snapshot on the target, and closed with `closing moved` on the source
//! once the move is decided.
//!
//! The freeze has a deadline and no timer: every check compares it with
//! the clock, so a room whose mover vanished is live again by itself. The
//! source's [`Room::complete_move`] checks that deadline under the same
//! lock as every write, which is what makes it the point of no return: if
//! it succeeds, no write was accepted since the export.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::control::{MemberRecord, MessageRecord, RoomSnapshot};
use common::ws::{ChatMessage, CloseReason, Member, ServerFrame};

use super::carry;
use super::state::{Record, RoomState, Stored};
use super::{Room, RoomSettings, encode};
use crate::disconnect::Disconnect;
use crate::metrics::Metrics;
use crate::ring::RingBuffer;

fn age_ms(now: Instant, at: Instant) -> u64 {
    now.saturating_duration_since(at).as_millis() as u64
}

fn ago(now: Instant, ms: u64) -> Instant {
    now.checked_sub(Duration::from_millis(ms)).unwrap_or(now)
}

impl Room {
    /// Freezes the room for `ttl` (again: the deadline moves). False when the
    /// room is closed.
    pub fn freeze(&self, ttl: Duration) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.frozen_until = Some(Instant::now() + ttl);
        true
    }

    /// Takes writes again (a move was aborted).
    pub fn unfreeze(&self) {
        self.lock().frozen_until = None;
    }

    pub fn is_frozen(&self) -> bool {
        self.lock().is_frozen(Instant::now())
    }

    /// Everything the room is, or `None` unless it is frozen (only then is
    /// the copy final).
    pub fn snapshot(&self) -> Option<RoomSnapshot> {
        let st = self.lock();
        let now = Instant::now();
        if st.closed || !st.is_frozen(now) {
            return None;
        }
        // Seated members' nicks are current in their seats, not their
        // records; members still on their way from the last move count as
        // seated (they will be on their way to the next backend instead).
        let live: HashMap<u64, &str> = st
            .seats
            .iter()
            .map(|s| &s.member)
            .chain(&st.arriving)
            .map(|m| (m.id, m.nick.as_str()))
            .collect();
        let members = st
            .records
            .iter()
            .map(|(token, r)| MemberRecord {
                token: token.to_string(),
                id: r.id,
                nick: live.get(&r.id).map_or_else(|| r.nick.clone(), |n| (*n).to_owned()),
                gone_ms: r.left_at.map(|at| age_ms(now, at)),
            })
            .collect();
        Some(RoomSnapshot {
            name: self.name.clone(),
            key: self.key.clone(),
            epoch: self.epoch,
            password_hash: self.password_hash.clone(),
            next_seq: st.ring.next_seq(),
            messages: st.ring.iter().map(|s| MessageRecord::from(&s.msg)).collect(),
            next_member_id: st.next_member_id,
            members,
            empty_ms: st.empty_since.map(|at| age_ms(now, at)),
            last_message_ms: st.last_message_at.map(|at| age_ms(now, at)),
            extensions: carry::export(&st.moderation, st.votes.ballots(), st.list_holders(), now),
        })
    }

    /// The room a snapshot describes, on this backend. Its members come
    /// back by `reclaim`; until then they count as gone since the import.
    pub fn from_snapshot(
        snapshot: RoomSnapshot,
        settings: RoomSettings,
        metrics: Arc<Metrics>,
    ) -> Room {
        let now = Instant::now();
        let RoomSnapshot {
            name,
            key,
            epoch,
            password_hash,
            next_seq,
            messages,
            next_member_id,
            members,
            empty_ms,
            last_message_ms,
            extensions,
        } = snapshot;
        let carry::Carried { moderation, ballots, list_holders } = carry::import(&extensions, now);
        let mut st = RoomState::new(settings.max_messages, moderation);
        let first_seq = next_seq.saturating_sub(messages.len() as u64).max(1);
        st.ring = RingBuffer::starting_at(settings.max_messages, first_seq);
        for record in messages {
            let msg = ChatMessage::from(record);
            let frame = encode(&ServerFrame::Message(msg.clone()));
            st.keep(Stored { msg, frame });
        }
        st.next_member_id = next_member_id.max(1);
        // Those seated on the source are on their way here.
        st.arriving = members
            .iter()
            .filter(|m| m.gone_ms.is_none())
            .map(|m| Member { id: m.id, nick: m.nick.clone() })
            .collect();
        st.lists_current =
            st.arriving.iter().map(|m| m.id).filter(|id| list_holders.contains(id)).collect();
        st.arrivals_until = Some(now + settings.arrival);
        st.records = members
            .into_iter()
            .map(|m| {
                let left_at = Some(m.gone_ms.map_or(now, |ms| ago(now, ms)));
                (m.token.into_boxed_str(), Record { id: m.id, nick: m.nick, left_at })
            })
            .collect();
        // A room whose members are on their way counts as just emptied, so
        // that it does not expire before they arrive.
        st.empty_since = Some(empty_ms.map_or(now, |ms| ago(now, ms)));
        st.last_message_at = last_message_ms.map(|ms| ago(now, ms));
        let guard = crate::defences::RoomGuard::default();
        let room = Room {
            name,
            key,
            epoch,
            password_hash,
            settings,
            metrics,
            state: Mutex::new(st),
            guard,
        };
        room.restore_ballots(ballots);
        room
    }

    /// Gives up on the members of a move who did not come back in time:
    /// the others get a `left` for each.
    pub fn settle_arrivals(&self, now: Instant) {
        let mut st = self.lock();
        if st.arriving.is_empty() || st.arrivals_until.is_some_and(|until| now < until) {
            return;
        }
        st.arrivals_until = None;
        let gone = std::mem::take(&mut st.arriving);
        st.roster_changed();
        if st.closed {
            return;
        }
        for member in gone {
            self.broadcast(&st, &encode(&ServerFrame::Left { member }), None);
        }
    }

    /// The point of no return on the source: if the room (of `epoch`) is
    /// still frozen, it closes for good and every member gets `closing
    /// moved` (naming `ws_url`, the room's on the target, when known) and
    /// close 1012. False when the freeze ran out (or another epoch): the
    /// move must not go on.
    pub fn complete_move(&self, epoch: u64, ws_url: Option<String>) -> bool {
        let mut st = self.lock();
        if epoch != self.epoch || st.closed || !st.is_frozen(Instant::now()) {
            return false;
        }
        st.closed = true;
        let frame = encode(&ServerFrame::Closing { reason: CloseReason::Moved, ws_url });
        for seat in &st.seats {
            seat.conn.push_and_close(&frame, Disconnect::Moved);
        }
        true
    }
}
