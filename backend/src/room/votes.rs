//! Who voted what on a room's kept messages: a side table beside the ring.
//!
//! Only voted messages have an entry (an unvoted message costs nothing here),
//! an entry goes when its message leaves the ring or is deleted, and a room
//! holds at most `max_votes_per_room` ballots in all, so the table is bounded
//! whatever members do. Votes are keyed by member id, which survives a
//! reconnect once the member reclaims its seat. The counts each message
//! carries on the wire ([`VoteCounts`]) are kept in step by [`Votes::cast`].
//!
//! Plain data: [`Votes::ballots`] and [`Votes::restore`] turn the table into
//! a flat list and back, for handing a room over to another backend.

use std::collections::HashMap;

use common::ws::VoteCounts;

use super::error::RoomError;

/// One member's vote on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ballot {
    pub seq: u64,
    pub member: u64,
    /// 1 (up) or -1 (down).
    pub value: i8,
}

/// The votes on one message: (member, value) pairs, sorted by member id.
/// A `Vec` rather than a map: most messages get a few votes, and a pair is
/// 16 bytes with no per-entry overhead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MessageVotes {
    by_member: Vec<(u64, i8)>,
}

impl MessageVotes {
    fn counts(&self) -> VoteCounts {
        let up = self.by_member.iter().filter(|(_, v)| *v > 0).count() as u32;
        VoteCounts { up, down: self.by_member.len() as u32 - up }
    }
}

/// What a cast changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// The counts are now these (`None`: nobody votes any more).
    Changed(Option<VoteCounts>),
    /// The member's vote already was that: nothing changed.
    Unchanged(Option<VoteCounts>),
}

/// Every vote of a room (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Votes {
    by_seq: HashMap<u64, MessageVotes>,
    /// Ballots over all messages, for the room's limit.
    total: usize,
}

/// Checks a vote's value: 1, -1 or 0 (taking a vote back).
pub fn parse_value(value: i64) -> Result<i8, RoomError> {
    match value {
        -1..=1 => Ok(value as i8),
        _ => Err(RoomError::BadVote),
    }
}

impl Votes {
    /// Sets `member`'s vote on `seq` to `value` (0 removes it). Refused with
    /// [`RoomError::TooManyVotes`] when a new ballot would pass `max_total`.
    pub fn cast(
        &mut self,
        seq: u64,
        member: u64,
        value: i8,
        max_total: usize,
    ) -> Result<Cast, RoomError> {
        let entry = self.by_seq.get_mut(&seq);
        let at = entry.as_ref().map(|e| e.by_member.binary_search_by_key(&member, |(m, _)| *m));
        let changed = match (entry, at, value) {
            (Some(e), Some(Ok(i)), 0) => {
                e.by_member.remove(i);
                self.total -= 1;
                if e.by_member.is_empty() {
                    self.by_seq.remove(&seq);
                }
                true
            }
            (Some(e), Some(Ok(i)), v) if e.by_member[i].1 != v => {
                e.by_member[i].1 = v;
                true
            }
            (_, _, 0) | (Some(_), Some(Ok(_)), _) => false,
            (entry, at, v) => {
                if self.total >= max_total {
                    return Err(RoomError::TooManyVotes);
                }
                match (entry, at) {
                    (Some(e), Some(Err(i))) => e.by_member.insert(i, (member, v)),
                    _ => {
                        self.by_seq.insert(seq, MessageVotes { by_member: vec![(member, v)] });
                    }
                }
                self.total += 1;
                true
            }
        };
        let counts = self.counts(seq);
        Ok(if changed { Cast::Changed(counts) } else { Cast::Unchanged(counts) })
    }

    /// The counts of `seq`, `None` when nobody votes on it.
    pub fn counts(&self, seq: u64) -> Option<VoteCounts> {
        self.by_seq.get(&seq).and_then(|e| e.counts().non_zero())
    }

    /// Forgets the votes on `seq` (evicted or deleted).
    pub fn forget(&mut self, seq: u64) {
        if let Some(entry) = self.by_seq.remove(&seq) {
            self.total -= entry.by_member.len();
        }
    }

    /// Ballots held, over all messages.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when nobody votes on anything.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Every ballot, by seq then member.
    pub fn ballots(&self) -> Vec<Ballot> {
        let mut out: Vec<Ballot> = self
            .by_seq
            .iter()
            .flat_map(|(&seq, e)| {
                e.by_member.iter().map(move |&(member, value)| Ballot { seq, member, value })
            })
            .collect();
        out.sort_by_key(|b| (b.seq, b.member));
        out
    }

    /// The table holding `ballots` (the inverse of [`Votes::ballots`]); values
    /// other than 1 and -1 are dropped.
    pub fn restore(ballots: impl IntoIterator<Item = Ballot>) -> Self {
        let mut votes = Votes::default();
        for b in ballots {
            if b.value == 1 || b.value == -1 {
                let _ = votes.cast(b.seq, b.member, b.value, usize::MAX);
            }
        }
        votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 100;

    fn counts(up: u32, down: u32) -> Option<VoteCounts> {
        Some(VoteCounts { up, down })
    }

    #[test]
    fn one_vote_per_member_changeable_and_taken_back() {
        let mut v = Votes::default();
        assert_eq!(v.cast(5, 1, 1, MAX), Ok(Cast::Changed(counts(1, 0))));
        assert_eq!(v.cast(5, 1, 1, MAX), Ok(Cast::Unchanged(counts(1, 0))), "twice is once");
        assert_eq!(v.cast(5, 2, 1, MAX), Ok(Cast::Changed(counts(2, 0))));
        assert_eq!(v.cast(5, 1, -1, MAX), Ok(Cast::Changed(counts(1, 1))), "changed its mind");
        assert_eq!(v.cast(5, 1, 0, MAX), Ok(Cast::Changed(counts(1, 0))));
        assert_eq!(v.cast(5, 1, 0, MAX), Ok(Cast::Unchanged(counts(1, 0))));
        assert_eq!(v.cast(5, 2, 0, MAX), Ok(Cast::Changed(None)));
        assert_eq!((v.len(), v.by_seq.len()), (0, 0), "no entry is left behind");
        assert!(v.is_empty());
    }

    #[test]
    fn the_room_limit_holds_and_frees() {
        let mut v = Votes::default();
        assert_eq!(v.cast(1, 1, 1, 2), Ok(Cast::Changed(counts(1, 0))));
        assert_eq!(v.cast(2, 1, -1, 2), Ok(Cast::Changed(counts(0, 1))));
        assert_eq!(v.cast(3, 1, 1, 2), Err(RoomError::TooManyVotes), "a third ballot is refused");
        assert_eq!(v.by_seq.len(), 2);
        assert_eq!(
            v.cast(1, 1, -1, 2),
            Ok(Cast::Changed(counts(0, 1))),
            "changing is not a new one"
        );
        v.forget(1);
        assert_eq!(v.len(), 1);
        assert_eq!(v.cast(3, 1, 1, 2), Ok(Cast::Changed(counts(1, 0))));
    }

    #[test]
    fn ballots_round_trip() {
        let mut v = Votes::default();
        for (seq, member, value) in [(9, 4, 1), (9, 2, -1), (3, 7, 1)] {
            v.cast(seq, member, value, MAX).unwrap();
        }
        let ballots = v.ballots();
        assert_eq!(ballots[0], Ballot { seq: 3, member: 7, value: 1 });
        assert_eq!(ballots[1], Ballot { seq: 9, member: 2, value: -1 });
        assert_eq!(Votes::restore(ballots), v);
    }

    #[test]
    fn a_room_takes_over_ballots_with_its_messages() {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::metrics::Metrics;
        use crate::room::{Outgoing, Poster, Room, RoomSettings};

        let settings = RoomSettings {
            max_messages: 3,
            max_members: 10,
            max_text_chars: 100,
            history_page_max: 10,
            idle: Duration::from_secs(60),
            silent: Duration::from_secs(60),
            max_votes: 100,
            arrival: Duration::from_secs(30),
        };
        let room =
            Room::new("r".into(), "r".into(), 1, None, None, settings, Arc::new(Metrics::new("t")));
        for text in ["a", "b", "c", "d"] {
            let out = Outgoing { text: text.into(), ..Outgoing::default() };
            room.post(Poster::Guest("bot"), out, None).unwrap();
        }
        let ballots = [
            Ballot { seq: 1, member: 5, value: 1 }, // no longer kept: dropped
            Ballot { seq: 2, member: 5, value: 1 },
            Ballot { seq: 2, member: 6, value: -1 },
            Ballot { seq: 4, member: 6, value: 1 },
        ];
        room.restore_ballots(ballots);
        let (messages, _) = room.read(None, 10);
        let counts: Vec<Option<(u32, u32)>> =
            messages.iter().map(|m| m.votes.map(|v| (v.up, v.down))).collect();
        assert_eq!(counts, [Some((1, 1)), None, Some((1, 0))]);
        assert_eq!(room.ballots(), ballots[1..]);
        // Taken over again, without ballots: no counts are left behind.
        room.restore_ballots([]);
        assert!(room.read(None, 10).0.iter().all(|m| m.votes.is_none()));
        assert!(room.ballots().is_empty());
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(parse_value(1), Ok(1));
        assert_eq!(parse_value(0), Ok(0));
        assert_eq!(parse_value(-1), Ok(-1));
        assert_eq!(parse_value(2), Err(RoomError::BadVote));
        assert_eq!(parse_value(-256), Err(RoomError::BadVote));
    }
}
