//! What a room's later features carry across a move, in the snapshot's
//! `extensions` (see [`common::control::RoomSnapshot`]): the owner state
//! (`"moderation"`: key hash, topic, slow mode, lock, bans, reports) and the
//! votes (`"votes"`: every ballot), and who holds the current member list
//! (`"list_holders"`: member ids, so that their `welcome` on the target
//! need not repeat it). Each is bincode of a plain struct here;
//! deadlines travel as milliseconds left, since the two backends' clocks
//! need not agree. A name this backend does not know is ignored on import.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bincode::{Decode, Encode};
use common::ws::RoomRules;

use super::moderation::{Ban, Moderation, Report};
use super::votes::Ballot;

const MODERATION: &str = "moderation";
const VOTES: &str = "votes";
const LIST_HOLDERS: &str = "list_holders";

/// What a snapshot's extensions give back.
pub(super) struct Carried {
    /// The owner state (a fresh one with no owner when there is none).
    pub moderation: Moderation,
    pub ballots: Vec<Ballot>,
    /// The members whose clients held the room's current member list at
    /// the export (none when the source did not say).
    pub list_holders: HashSet<u64>,
}

#[derive(Encode, Decode)]
struct ModerationCarry {
    owner_key_hash: Option<[u8; 32]>,
    topic: String,
    slow_mode_secs: u32,
    locked: bool,
    bans: Vec<BanCarry>,
    reports: Vec<ReportCarry>,
    reports_by: Vec<(u64, u32)>,
}

#[derive(Encode, Decode)]
struct BanCarry {
    member: u64,
    ip: Option<String>,
    remaining_ms: u64,
    reason: Option<String>,
}

#[derive(Encode, Decode)]
struct ReportCarry {
    seq: u64,
    count: u32,
    first_ms: u64,
    last_ms: u64,
    reporters: Vec<u64>,
    reasons: Vec<String>,
}

#[derive(Encode, Decode)]
struct BallotCarry {
    seq: u64,
    member: u64,
    value: i8,
}

/// The extensions of a snapshot taken `now`.
pub(super) fn export(
    moderation: &Moderation,
    ballots: Vec<Ballot>,
    list_holders: Vec<u64>,
    now: Instant,
) -> Vec<(String, Vec<u8>)> {
    let carry = ModerationCarry {
        owner_key_hash: moderation.owner_key_hash,
        topic: moderation.topic.clone(),
        slow_mode_secs: moderation.rules.slow_mode_secs,
        locked: moderation.rules.locked,
        bans: moderation
            .bans
            .iter()
            .filter(|b| b.until > now)
            .map(|b| BanCarry {
                member: b.member,
                ip: b.ip.map(|ip| ip.to_string()),
                remaining_ms: b.remaining(now).as_millis() as u64,
                reason: b.reason.clone(),
            })
            .collect(),
        reports: moderation
            .reports
            .iter()
            .map(|(&seq, r)| ReportCarry {
                seq,
                count: r.count,
                first_ms: r.first_ms,
                last_ms: r.last_ms,
                reporters: r.reporters.clone(),
                reasons: r.reasons.iter().cloned().collect(),
            })
            .collect(),
        reports_by: moderation.reports_by.iter().map(|(&id, &n)| (id, n)).collect(),
    };
    let ballots: Vec<BallotCarry> = ballots
        .into_iter()
        .map(|b| BallotCarry { seq: b.seq, member: b.member, value: b.value })
        .collect();
    vec![
        (MODERATION.to_owned(), common::control::encode(&carry)),
        (VOTES.to_owned(), common::control::encode(&ballots)),
        (LIST_HOLDERS.to_owned(), common::control::encode(&list_holders)),
    ]
}

/// What a snapshot's extensions give back.
pub(super) fn import(extensions: &[(String, Vec<u8>)], now: Instant) -> Carried {
    let mut moderation = Moderation::default();
    let mut ballots = Vec::new();
    let mut list_holders = HashSet::new();
    for (name, bytes) in extensions {
        match name.as_str() {
            MODERATION => match common::control::decode::<ModerationCarry>(bytes) {
                Ok(carry) => moderation = restore_moderation(carry, now),
                Err(e) => tracing::warn!(error = %e, "a moved room's owner state is unreadable"),
            },
            VOTES => match common::control::decode::<Vec<BallotCarry>>(bytes) {
                Ok(carried) => {
                    ballots = carried
                        .into_iter()
                        .map(|b| Ballot { seq: b.seq, member: b.member, value: b.value })
                        .collect();
                }
                Err(e) => tracing::warn!(error = %e, "a moved room's votes are unreadable"),
            },
            // Unreadable, it only costs each member a full list.
            LIST_HOLDERS => {
                list_holders = common::control::decode::<Vec<u64>>(bytes)
                    .map(HashSet::from_iter)
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    Carried { moderation, ballots, list_holders }
}

fn restore_moderation(carry: ModerationCarry, now: Instant) -> Moderation {
    let bans = carry
        .bans
        .into_iter()
        .map(|b| Ban {
            member: b.member,
            ip: b.ip.and_then(|ip| ip.parse().ok()),
            until: now + Duration::from_millis(b.remaining_ms),
            reason: b.reason,
        })
        .collect();
    let reports: BTreeMap<u64, Report> = carry
        .reports
        .into_iter()
        .map(|r| {
            let report = Report {
                count: r.count,
                first_ms: r.first_ms,
                last_ms: r.last_ms,
                reporters: r.reporters,
                reasons: VecDeque::from(r.reasons),
            };
            (r.seq, report)
        })
        .collect();
    Moderation {
        topic: carry.topic,
        rules: RoomRules { slow_mode_secs: carry.slow_mode_secs, locked: carry.locked },
        bans,
        reports,
        reports_by: carry.reports_by.into_iter().collect(),
        ..Moderation::new(carry.owner_key_hash)
    }
}
