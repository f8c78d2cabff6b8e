//! What a room's owners do, and the checks at the door (bans, lock). Every
//! act is told to the whole room as a `notice` ("olive set the topic"), so
//! that power is visible. The state lives in [`super::moderation`]; these
//! are the [`Room`] methods that change it under the room's lock.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::control::ReportRecord;
use common::owner_key::{MAX_OWNER_KEY_CHARS, hash_owner_key};
use common::ws::{CloseReason, ServerFrame};
use subtle::ConstantTimeEq;

use super::messages::{check_text, now_ms};
use super::moderation::{
    MAX_BAN_SECS, MAX_REASON_CHARS, MAX_SLOW_MODE_SECS, MAX_TOPIC_CHARS, ReportRefused,
};
use super::state::RoomState;
use super::{Room, RoomError, encode};
use crate::disconnect::Disconnect;

/// Who acts as an owner.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A seated member who joined with the owner key.
    Member(u64),
    /// The HTTP API, with this key in `X-Owner-Key`.
    Key(&'a str),
}

/// How a ban's length reads in a notice: "10 minutes", "2 hours".
fn for_how_long(secs: u64) -> String {
    let (n, unit) = match secs {
        0..120 => (secs, "second"),
        120..7200 => (secs.div_ceil(60), "minute"),
        7200..172_800 => (secs.div_ceil(3600), "hour"),
        _ => (secs.div_ceil(86_400), "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, RoomError> {
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(RoomError::BadOwnerAct(format!(
            "a reason is at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason)
}

impl Room {
    /// True when `key` is this room's owner key (constant time).
    pub(super) fn key_matches(st: &RoomState, key: &str) -> bool {
        let Some(hash) = &st.moderation.owner_key_hash else { return false };
        key.len() <= MAX_OWNER_KEY_CHARS && bool::from(hash_owner_key(key).ct_eq(hash))
    }

    /// The name an act is announced under, or `not_owner`.
    fn owner_name(st: &RoomState, actor: Actor<'_>) -> Result<String, RoomError> {
        match actor {
            Actor::Member(id) if st.moderation.is_owner(id) => {
                Ok(st.seat(id).map_or_else(|| "An owner".into(), |s| s.member.nick.clone()))
            }
            Actor::Key(key) if Self::key_matches(st, key) => Ok("The room owner".into()),
            _ => Err(RoomError::NotOwner),
        }
    }

    fn notice(&self, st: &RoomState, text: String) {
        self.broadcast(st, &encode(&ServerFrame::moderation_notice(text)), None);
    }

    /// Sets the topic; everyone gets `topic` and a notice.
    pub fn set_topic(&self, actor: Actor<'_>, text: String) -> Result<(), RoomError> {
        check_text(&text, MAX_TOPIC_CHARS).map_err(|_| {
            RoomError::BadOwnerAct(format!("a topic is at most {MAX_TOPIC_CHARS} characters"))
        })?;
        let text = text.trim().to_owned();
        let mut st = self.lock();
        let by = Self::owner_name(&st, actor)?;
        st.moderation.topic = text.clone();
        let said = if text.is_empty() { "cleared the topic" } else { "set the topic" };
        self.broadcast(&st, &encode(&ServerFrame::Topic { text }), None);
        self.notice(&st, format!("{by} {said}"));
        self.metrics.owner_acts.with_label_values(&["topic"]).inc();
        Ok(())
    }

    /// Deletes anyone's message as an owner; a notice says whose.
    pub fn delete_as_owner(&self, actor: Actor<'_>, seq: u64) -> Result<(), RoomError> {
        let mut st = self.lock();
        let by = Self::owner_name(&st, actor)?;
        let stored = st.ring.get_mut(seq).ok_or(RoomError::NoSuchMessage)?;
        if stored.msg.deleted {
            return Err(RoomError::Deleted);
        }
        let author = stored.msg.from.nick.clone();
        stored.msg.text.clear();
        stored.msg.drawing = None;
        stored.msg.reply_to = None;
        stored.msg.preview = None;
        stored.msg.deleted = true;
        stored.frame = encode(&ServerFrame::Message(stored.msg.clone()));
        self.broadcast(&st, &encode(&ServerFrame::Deleted { seq }), None);
        self.notice(&st, format!("{by} removed a message by {author}"));
        self.metrics.owner_acts.with_label_values(&["delete"]).inc();
        Ok(())
    }

    /// Removes member `target`: it is told why in words, then gets
    /// `closing kicked` and close 4403; with `ban_secs`, it (and its
    /// address) may not come back for that long.
    pub fn kick(
        &self,
        actor: u64,
        target: u64,
        ban_secs: Option<u64>,
        reason: Option<String>,
    ) -> Result<(), RoomError> {
        let reason = check_reason(reason)?;
        let ban_secs = ban_secs.filter(|s| *s > 0);
        if ban_secs.is_some_and(|s| s > MAX_BAN_SECS) {
            return Err(RoomError::BadOwnerAct(format!(
                "a ban is at most {MAX_BAN_SECS} seconds (a week)"
            )));
        }
        let now = Instant::now();
        let mut st = self.lock();
        let by = Self::owner_name(&st, Actor::Member(actor))?;
        if target == actor {
            return Err(RoomError::KickSelf);
        }
        // A member still on its way back after a move is struck from the
        // list the others see; a ban keeps it out when it arrives.
        let (member, conn) = match st.seats.iter().position(|s| s.member.id == target) {
            Some(index) => {
                let seat = st.seats.swap_remove(index);
                (seat.member, Some(seat.conn))
            }
            None => {
                let index = st.arriving_index(target).ok_or(RoomError::NoSuchMember)?;
                (st.arriving.swap_remove(index), None)
            }
        };
        if let Some(secs) = ban_secs {
            let until = now + Duration::from_secs(secs);
            st.moderation.ban(target, until, reason.clone(), now);
        }
        st.moderation.unseat(target);
        st.roster_changed();
        if st.seats.is_empty() {
            st.empty_since = Some(now);
        }
        let nick = &member.nick;
        let ban = ban_secs.map(|s| format!(" for {}", for_how_long(s))).unwrap_or_default();
        let banned = if ban_secs.is_some() { format!(" and banned{ban}") } else { String::new() };
        let why = reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        let told = match ban_secs {
            Some(_) => format!("{by} removed you from this room and banned you{ban}{why}"),
            None => format!("{by} removed you from this room{why}"),
        };
        if let Some(conn) = conn {
            conn.push(&encode(&ServerFrame::moderation_notice(told)));
            conn.push_and_close(
                &encode(&ServerFrame::closing(CloseReason::Kicked)),
                Disconnect::Kicked,
            );
        }
        self.broadcast(&st, &encode(&ServerFrame::Left { member: member.clone() }), None);
        self.notice(&st, format!("{nick} was removed by {by}{banned}{why}"));
        self.metrics.owner_acts.with_label_values(&["kick"]).inc();
        Ok(())
    }

    /// Sets slow mode (0 = off); everyone gets `settings` and a notice.
    pub fn set_slow_mode(&self, actor: u64, secs: u32) -> Result<(), RoomError> {
        if secs > MAX_SLOW_MODE_SECS {
            return Err(RoomError::BadOwnerAct(format!(
                "slow mode is at most {MAX_SLOW_MODE_SECS} seconds"
            )));
        }
        let mut st = self.lock();
        let by = Self::owner_name(&st, Actor::Member(actor))?;
        st.moderation.set_slow_mode(secs);
        let rules = st.moderation.rules;
        self.broadcast(&st, &encode(&ServerFrame::Settings(rules)), None);
        let said = match secs {
            0 => format!("{by} turned slow mode off"),
            s => format!("{by} turned slow mode on: one message every {}", for_how_long(s.into())),
        };
        self.notice(&st, said);
        self.metrics.owner_acts.with_label_values(&["slow_mode"]).inc();
        Ok(())
    }

    /// Locks or unlocks the room; everyone gets `settings` and a notice.
    pub fn set_locked(&self, actor: u64, locked: bool) -> Result<(), RoomError> {
        let mut st = self.lock();
        let by = Self::owner_name(&st, Actor::Member(actor))?;
        st.moderation.rules.locked = locked;
        let rules = st.moderation.rules;
        self.broadcast(&st, &encode(&ServerFrame::Settings(rules)), None);
        let said = if locked { "locked the room" } else { "unlocked the room" };
        self.notice(&st, format!("{by} {said}"));
        self.metrics.owner_acts.with_label_values(&["lock"]).inc();
        Ok(())
    }

    /// Counts member `by`'s report of message `seq` for the operators.
    pub fn report(&self, by: u64, seq: u64, reason: Option<String>) -> Result<(), RoomError> {
        let reason = check_reason(reason)?;
        let mut st = self.lock();
        if st.ring.get(seq).is_none() {
            return Err(RoomError::NoSuchMessage);
        }
        st.moderation.report(by, seq, reason, now_ms()).map_err(|e| match e {
            ReportRefused::Duplicate => RoomError::AlreadyReported,
            ReportRefused::TooMany => RoomError::TooManyReports,
        })?;
        self.metrics.reports.inc();
        Ok(())
    }

    /// The room's reported messages still kept, for `GET /admin/reports`.
    pub fn reports(&self) -> Vec<ReportRecord> {
        let mut st = self.lock();
        let first = st.ring.first_seq();
        st.moderation.forget_reports_before(first);
        let st = &*st;
        st.moderation
            .reports
            .iter()
            .map(|(seq, r)| {
                let msg = st.ring.get(*seq).map(|s| &s.msg);
                ReportRecord {
                    room: self.name.clone(),
                    seq: *seq,
                    text: msg.map(|m| m.text.clone()).unwrap_or_default(),
                    from_nick: msg.map(|m| m.from.nick.clone()).unwrap_or_default(),
                    count: r.count,
                    first_ms: r.first_ms,
                    last_ms: r.last_ms,
                    reasons: r.reasons.iter().cloned().collect(),
                }
            })
            .collect()
    }

    /// Closes the members connected from `ip` (a fleet-wide ban), each
    /// with `refusal` (its `banned` error frame) and close 4403.
    pub fn close_address(&self, ip: IpAddr, refusal: &tokio_tungstenite::tungstenite::Utf8Bytes) {
        let st = self.lock();
        for seat in &st.seats {
            if st.moderation.member_ips.get(&seat.member.id) == Some(&ip) {
                seat.conn.push_and_close(refusal, Disconnect::Barred);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::for_how_long;

    #[test]
    fn ban_lengths_read_as_words() {
        assert_eq!(for_how_long(1), "1 second");
        assert_eq!(for_how_long(90), "90 seconds");
        assert_eq!(for_how_long(600), "10 minutes");
        assert_eq!(for_how_long(7200), "2 hours");
        assert_eq!(for_how_long(7 * 86_400), "7 days");
    }
}
