//! Who is in a room: joining (a new member, a reclaimed one, one back
//! after a move), the welcome it gets, and leaving.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use common::names::random_nick;
use common::ws::{CloseReason, Limits, Member, Resume, ServerFrame};
use rand::Rng;

use super::frames::Welcome;
use super::state::{Record, RoomState, Seat};
use super::{Room, RoomError, encode};
use crate::conn::Conn;
use crate::disconnect::Disconnect;

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

/// A new member token: 128 random bits as 32 hex digits.
fn new_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

impl Room {
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
            let frame = encode(&ServerFrame::closing(CloseReason::Replaced));
            old.conn.push_and_close(&frame, Disconnect::Replaced);
        }
        let ring = &st.ring;
        // A member back from a move whose client kept a list that is still
        // the room's is not sent 1,000 members again.
        let has_members = resume.as_ref().is_some_and(|r| r.has_members);
        // Resume only when nothing the client missed has left the buffer.
        let resumed_after = resume
            .filter(|r| {
                r.epoch == self.epoch
                    && r.after_seq <= ring.last_seq()
                    && r.after_seq + 1 >= ring.first_seq()
            })
            .map(|r| r.after_seq);
        // (Under the nick it had: a new one is news to the others, and its
        // own kept list would show the old one.)
        let members_unchanged = resumed_after.is_some()
            && has_members
            && arriving.is_some_and(|i| st.arriving[i].nick == member.nick)
            && st.lists_current.contains(&member.id);
        let welcome = Welcome {
            room: &self.name,
            epoch: self.epoch,
            you: &member,
            token: &token,
            resumed_after,
            members_unchanged,
            limits,
        };
        if !conn.push(&welcome.encode(st)) {
            st.moderation.unseat(member.id);
            return Err(RoomError::Full);
        }
        let arrived = arriving.map(|i| st.arriving.swap_remove(i));
        if arrived.is_some() {
            st.lists_current.remove(&member.id);
        }
        match replaced.map(|old| old.member).or(arrived) {
            // The others saw this member all along: only a new nick is news.
            Some(old) if old.nick != member.nick => {
                st.roster_changed();
                let frame = encode(&ServerFrame::Nick { member: member.clone(), old: old.nick });
                self.broadcast(st, &frame, Some(member.id));
            }
            Some(_) => {}
            None => {
                st.roster_changed();
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
        st.roster_changed();
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
}
