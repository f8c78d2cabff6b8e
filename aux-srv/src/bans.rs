//! Fleet-wide address bans (`POST /admin/bans`). aux-srv keeps the list and
//! pushes it to every backend, which enforces it at `join`: at once on a
//! change, and again to a backend it sees come back (restarted, or
//! reachable again after being down). After an aux-srv restart the list is
//! rebuilt from what the backends hold (the poller merges their answers),
//! so, like the room map, nothing here needs a disk.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::control::IpBan;

#[derive(Debug, Clone)]
struct Entry {
    until: Instant,
    reason: Option<String>,
}

/// The fleet's banned addresses.
#[derive(Debug, Default)]
pub struct FleetBans {
    bans: Mutex<BTreeMap<IpAddr, Entry>>,
}

impl FleetBans {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<IpAddr, Entry>> {
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bans `ip` for `length` (replacing a ban it had); the ban to push.
    pub fn set(&self, ip: IpAddr, length: Duration, reason: Option<String>) -> IpBan {
        let until = Instant::now() + length;
        self.lock().insert(ip, Entry { until, reason: reason.clone() });
        IpBan { ip: ip.to_string(), remaining_ms: length.as_millis() as u64, reason }
    }

    /// Lifts the ban on `ip`; false when there was none running.
    pub fn lift(&self, ip: IpAddr) -> bool {
        self.lock().remove(&ip).is_some_and(|e| e.until > Instant::now())
    }

    /// Every running ban, by address (dropping the ones that ran out).
    pub fn list(&self) -> Vec<IpBan> {
        let now = Instant::now();
        let mut bans = self.lock();
        bans.retain(|_, e| e.until > now);
        bans.iter()
            .map(|(ip, e)| IpBan {
                ip: ip.to_string(),
                remaining_ms: (e.until - now).as_millis() as u64,
                reason: e.reason.clone(),
            })
            .collect()
    }

    /// Adopts bans a backend holds that this list lacks (after an aux-srv
    /// restart); a ban known here wins.
    pub fn merge(&self, held: &[IpBan]) -> usize {
        let now = Instant::now();
        let mut bans = self.lock();
        let mut adopted = 0;
        for ban in held {
            let Ok(ip) = ban.ip.parse::<IpAddr>() else { continue };
            if ban.remaining_ms > 0 && !bans.contains_key(&ip) {
                let until = now + Duration::from_millis(ban.remaining_ms);
                bans.insert(ip, Entry { until, reason: ban.reason.clone() });
                adopted += 1;
            }
        }
        adopted
    }
}
