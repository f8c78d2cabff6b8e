//! A room's owner state, in one plain struct that is part of
//! [`super::state::RoomState`]: the owner key's hash, topic, slow mode and
//! lock, who is an owner, the room's bans and its reports. Plain data with
//! `Instant` deadlines (a ban's [`Ban::remaining`] turns one into
//! milliseconds), so that the whole of it can be handed over when a room
//! moves. Everything here runs under the room's lock; nothing of it is on
//! the fan-out path.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::ws::RoomRules;

/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 300;
/// Longest ban: a week. Longer is the operators' job (`POST /admin/bans`).
pub const MAX_BAN_SECS: u64 = 7 * 24 * 3600;
/// Longest slow-mode interval: an hour.
pub const MAX_SLOW_MODE_SECS: u32 = 3600;
/// Longest kick or report reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Bans a room keeps; expired ones are dropped first, then the oldest.
pub const MAX_BANS: usize = 1000;
/// Reports one member may make in one room.
pub const MAX_REPORTS_PER_MEMBER: u32 = 20;
/// Distinct reported messages a room keeps (it keeps 1000 messages).
pub const MAX_REPORTED_MESSAGES: usize = 500;
/// Reasons kept per reported message (the latest).
const REASONS_KEPT: usize = 5;

/// One ban: the member id and the address it was connected from, until when.
#[derive(Debug, Clone)]
pub struct Ban {
    pub member: u64,
    /// `None` for a member whose address was not known (never in practice).
    pub ip: Option<IpAddr>,
    pub until: Instant,
    pub reason: Option<String>,
}

impl Ban {
    /// Time left, zero once over.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.until.saturating_duration_since(now)
    }
}

/// How often one message was reported, and by whom.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub count: u32,
    /// Milliseconds since the Unix epoch.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Member ids that reported it (one report per member and message).
    pub reporters: Vec<u64>,
    pub reasons: VecDeque<String>,
}

/// Why a report was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRefused {
    Duplicate,
    TooMany,
}

/// The room's owner state (see the module docs).
#[derive(Debug, Default)]
pub struct Moderation {
    /// SHA-256 of the owner key; `None`: the room has no owner.
    pub owner_key_hash: Option<[u8; 32]>,
    pub topic: String,
    pub rules: RoomRules,
    /// Seated members who joined with the owner key.
    pub owners: HashSet<u64>,
    /// Where each seated member connected from (the real client address,
    /// behind trusted proxies): what a kick's ban covers.
    pub member_ips: HashMap<u64, IpAddr>,
    /// When each member last posted, kept only while slow mode is on.
    pub last_post: HashMap<u64, Instant>,
    pub bans: Vec<Ban>,
    /// Reported messages by seq.
    pub reports: BTreeMap<u64, Report>,
    /// Reports made, by member id.
    pub reports_by: HashMap<u64, u32>,
}

impl Moderation {
    pub fn new(owner_key_hash: Option<[u8; 32]>) -> Self {
        Moderation { owner_key_hash, ..Moderation::default() }
    }

    pub fn is_owner(&self, id: u64) -> bool {
        self.owners.contains(&id)
    }

    /// The ban that keeps out member `id` or address `ip`, if any is running.
    pub fn ban_of(&self, id: u64, ip: IpAddr, now: Instant) -> Option<&Ban> {
        self.bans
            .iter()
            .filter(|b| b.until > now && (b.member == id || b.ip == Some(ip)))
            .max_by_key(|b| b.until)
    }

    /// Bans `member` (and its address) until `until`, within [`MAX_BANS`].
    pub fn ban(&mut self, member: u64, until: Instant, reason: Option<String>, now: Instant) {
        self.bans.retain(|b| b.until > now);
        if self.bans.len() >= MAX_BANS {
            self.bans.remove(0);
        }
        let ip = self.member_ips.get(&member).copied();
        self.bans.push(Ban { member, ip, until, reason });
    }

    /// Seats `id` in the owner state (its address, and whether it is an owner).
    pub fn seat(&mut self, id: u64, ip: IpAddr, owner: bool) {
        self.member_ips.insert(id, ip);
        if owner {
            self.owners.insert(id);
        }
    }

    /// Forgets a member that left (its reports count stays: a member cannot
    /// report more by leaving and coming back as the same member).
    pub fn unseat(&mut self, id: u64) {
        self.owners.remove(&id);
        self.member_ips.remove(&id);
        self.last_post.remove(&id);
    }

    /// Under slow mode, `Err(wait)` when member `id` posted less than
    /// `slow_mode_secs` ago; else notes the post. Owners are exempt.
    pub fn slow_mode(&mut self, id: u64, now: Instant) -> Result<(), Duration> {
        let secs = self.rules.slow_mode_secs;
        if secs == 0 || self.owners.contains(&id) {
            return Ok(());
        }
        let interval = Duration::from_secs(u64::from(secs));
        if let Some(last) = self.last_post.get(&id) {
            let since = now.saturating_duration_since(*last);
            if since < interval {
                return Err(interval - since);
            }
        }
        self.last_post.insert(id, now);
        Ok(())
    }

    /// Sets slow mode; switching it off forgets the last posts.
    pub fn set_slow_mode(&mut self, secs: u32) {
        self.rules.slow_mode_secs = secs;
        if secs == 0 {
            self.last_post = HashMap::new();
        }
    }

    /// Counts a report of message `seq` by member `by`.
    pub fn report(
        &mut self,
        by: u64,
        seq: u64,
        reason: Option<String>,
        now_ms: u64,
    ) -> Result<(), ReportRefused> {
        if self.reports.get(&seq).is_some_and(|r| r.reporters.contains(&by)) {
            return Err(ReportRefused::Duplicate);
        }
        let made = self.reports_by.entry(by).or_default();
        if *made >= MAX_REPORTS_PER_MEMBER {
            return Err(ReportRefused::TooMany);
        }
        *made += 1;
        if !self.reports.contains_key(&seq) && self.reports.len() >= MAX_REPORTED_MESSAGES {
            // The oldest reported message makes room: its report is the
            // stalest, and the operators have had longest to see it.
            self.reports.pop_first();
        }
        let report = self
            .reports
            .entry(seq)
            .or_insert_with(|| Report { first_ms: now_ms, ..Report::default() });
        report.count += 1;
        report.last_ms = now_ms;
        report.reporters.push(by);
        if let Some(reason) = reason.filter(|r| !r.trim().is_empty()) {
            if report.reasons.len() >= REASONS_KEPT {
                report.reasons.pop_front();
            }
            report.reasons.push_back(reason);
        }
        Ok(())
    }

    /// Drops the reports of messages that left the ring (seq below `first`).
    pub fn forget_reports_before(&mut self, first: u64) {
        self.reports = self.reports.split_off(&first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_mode_spaces_posts_and_spares_owners() {
        let now = Instant::now();
        let mut m = Moderation::new(None);
        m.seat(1, IpAddr::from([127, 0, 0, 2]), false);
        m.seat(2, IpAddr::from([127, 0, 0, 3]), true);
        assert_eq!(m.slow_mode(1, now), Ok(()), "off: anything goes");
        assert_eq!(m.slow_mode(1, now), Ok(()));
        m.set_slow_mode(10);
        assert_eq!(m.slow_mode(1, now), Ok(()));
        assert_eq!(m.slow_mode(1, now + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        assert_eq!(m.slow_mode(1, now + Duration::from_secs(10)), Ok(()));
        assert_eq!(m.slow_mode(2, now), Ok(()));
        assert_eq!(m.slow_mode(2, now), Ok(()), "owners are exempt");
    }

    #[test]
    fn bans_cover_the_member_and_its_address_until_they_end() {
        let now = Instant::now();
        let ip = IpAddr::from([127, 0, 0, 9]);
        let mut m = Moderation::new(None);
        m.seat(5, ip, false);
        m.ban(5, now + Duration::from_secs(60), Some("spam".into()), now);
        assert!(m.ban_of(5, IpAddr::from([127, 0, 0, 10]), now).is_some(), "same member");
        assert!(m.ban_of(6, ip, now).is_some(), "same address");
        assert!(m.ban_of(6, IpAddr::from([127, 0, 0, 10]), now).is_none());
        assert!(m.ban_of(5, ip, now + Duration::from_secs(60)).is_none(), "over");
    }

    #[test]
    fn reports_are_one_per_member_and_message_and_bounded() {
        let mut m = Moderation::new(None);
        assert_eq!(m.report(1, 7, Some("rude".into()), 10), Ok(()));
        assert_eq!(m.report(1, 7, None, 11), Err(ReportRefused::Duplicate));
        assert_eq!(m.report(2, 7, None, 12), Ok(()));
        let r = &m.reports[&7];
        assert_eq!((r.count, r.first_ms, r.last_ms), (2, 10, 12));
        for seq in 100..100 + u64::from(MAX_REPORTS_PER_MEMBER) - 1 {
            assert_eq!(m.report(1, seq, None, 13), Ok(()));
        }
        assert_eq!(m.report(1, 999, None, 14), Err(ReportRefused::TooMany));
        m.forget_reports_before(100);
        assert!(!m.reports.contains_key(&7));
    }
}
