//! Fleet-wide bans of client addresses, set by operators through aux-srv
//! (`POST /admin/bans`), which pushes them to every backend and again to a
//! backend that restarted. Checked once per `join`, never on the message
//! path. Deadlines are `Instant`s here; the control protocol carries the
//! time left, so the two machines' clocks need not agree.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::control::IpBan;

/// Most addresses one backend keeps banned (expired ones are dropped first).
pub const MAX_IP_BANS: usize = 100_000;
/// Longest fleet-wide ban: a year.
pub const MAX_IP_BAN_MS: u64 = 366 * 24 * 3600 * 1000;

#[derive(Debug, Clone)]
struct Entry {
    until: Instant,
    reason: Option<String>,
}

/// The banned addresses (see the module docs).
#[derive(Debug, Default)]
pub struct IpBans {
    bans: Mutex<HashMap<IpAddr, Entry>>,
}

/// Why a ban could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanError {
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    #[error("too many banned addresses")]
    Full,
}

impl IpBans {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time left and reason of the ban on `ip`, if one is running.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Option<(Duration, Option<String>)> {
        let bans = self.lock();
        let entry = bans.get(&ip).filter(|e| e.until > now)?;
        Some((entry.until - now, entry.reason.clone()))
    }

    /// Adds or renews `set`, lifts `lift`; returns the addresses newly or
    /// still banned by `set` (to close their connections).
    pub fn apply(
        &self,
        set: &[IpBan],
        lift: &[String],
        now: Instant,
    ) -> Result<Vec<IpAddr>, BanError> {
        let parse =
            |s: &str| s.trim().parse::<IpAddr>().map_err(|_| BanError::BadAddress(s.into()));
        let set: Vec<(IpAddr, &IpBan)> =
            set.iter().map(|b| Ok((parse(&b.ip)?, b))).collect::<Result<_, BanError>>()?;
        let lift: Vec<IpAddr> = lift.iter().map(|s| parse(s)).collect::<Result<_, _>>()?;
        let mut bans = self.lock();
        bans.retain(|_, e| e.until > now);
        for ip in &lift {
            bans.remove(ip);
        }
        if bans.len() + set.len() > MAX_IP_BANS {
            return Err(BanError::Full);
        }
        let mut banned = Vec::new();
        for (ip, ban) in set {
            let until = now + Duration::from_millis(ban.remaining_ms.min(MAX_IP_BAN_MS));
            if until > now {
                bans.insert(ip, Entry { until, reason: ban.reason.clone() });
                banned.push(ip);
            }
        }
        Ok(banned)
    }

    /// Every running ban, by address.
    pub fn list(&self, now: Instant) -> Vec<IpBan> {
        let mut list: Vec<IpBan> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.until > now)
            .map(|(ip, e)| IpBan {
                ip: ip.to_string(),
                remaining_ms: (e.until - now).as_millis() as u64,
                reason: e.reason.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.ip.cmp(&b.ip));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(ip: &str, ms: u64) -> IpBan {
        IpBan { ip: ip.into(), remaining_ms: ms, reason: Some("spam".into()) }
    }

    #[test]
    fn bans_run_out_and_lift() {
        let now = Instant::now();
        let bans = IpBans::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(bans.apply(&[ban("203.0.113.7", 1000)], &[], now), Ok(vec![ip]));
        let (left, reason) = bans.check(ip, now).unwrap();
        assert_eq!((left, reason.as_deref()), (Duration::from_secs(1), Some("spam")));
        assert!(bans.check(ip, now + Duration::from_secs(1)).is_none(), "over");
        assert_eq!(bans.list(now).len(), 1);
        bans.apply(&[], &["203.0.113.7".into()], now).unwrap();
        assert!(bans.check(ip, now).is_none(), "lifted");
        assert_eq!(
            bans.apply(&[ban("nope", 1)], &[], now),
            Err(BanError::BadAddress("nope".into()))
        );
    }
}
