//! Connections at once, overall and per client address.
//!
//! The overall bound is also held below the process's descriptor limit,
//! minus [`FD_RESERVE`]: those descriptors stay free for the health-only
//! connections, so `/livez`, `/readyz` and `/metrics` answer when the
//! process is full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::config::HttpLimits;

/// Descriptors kept out of the connection bound.
pub const FD_RESERVE: usize = 32;
/// Health-only connections at once; more are refused at once.
pub const HEALTH_ONLY_MAX: usize = 16;

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Anything the server offers.
    Full,
    /// Over a bound: `/livez`, `/readyz` and `/metrics` only; other requests
    /// are answered 503 and the connection closes.
    HealthOnly,
}

/// The counts; one per listener.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    health_only: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A counted connection; uncounts itself when dropped.
#[derive(Debug)]
pub struct Connection {
    pub admission: Admission,
    peer: IpAddr,
    limits: Arc<ConnectionLimits>,
}

impl ConnectionLimits {
    pub fn new(limits: &HttpLimits) -> Arc<Self> {
        let max_total = limits.max_connections.min(descriptor_budget());
        if max_total < limits.max_connections {
            tracing::info!(
                configured = limits.max_connections,
                max_total,
                "http.max_connections lowered to fit the descriptor limit"
            );
        }
        Arc::new(ConnectionLimits {
            max_total: max_total.max(1),
            max_per_ip: limits.max_connections_per_ip,
            total: AtomicUsize::new(0),
            health_only: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `peer`; `None` when even the health-only
    /// slots are taken (the caller closes it).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Connection> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let from_peer = per_ip.get(&peer).copied().unwrap_or(0);
        let ip_full = self.max_per_ip != 0 && from_peer >= self.max_per_ip;
        let admission = if ip_full || self.total.load(Ordering::Acquire) >= self.max_total {
            let taken = self.health_only.fetch_add(1, Ordering::AcqRel);
            if taken >= HEALTH_ONLY_MAX {
                self.health_only.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
            Admission::HealthOnly
        } else {
            self.total.fetch_add(1, Ordering::AcqRel);
            *per_ip.entry(peer).or_insert(0) += 1;
            Admission::Full
        };
        Some(Connection { admission, peer, limits: self.clone() })
    }

    /// Full connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.admission == Admission::HealthOnly {
            self.limits.health_only.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.peer);
            }
        }
    }
}

/// Connections the descriptor limit leaves room for: the soft
/// `RLIMIT_NOFILE`, less those open now (logs, listeners, files) and
/// [`FD_RESERVE`].
fn descriptor_budget() -> usize {
    let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    else {
        return usize::MAX;
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count());
    usize::try_from(soft).unwrap_or(usize::MAX).saturating_sub(open + FD_RESERVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_health_only() {
        let config = HttpLimits { max_connections_per_ip: 2, ..HttpLimits::default() };
        let limits = ConnectionLimits::new(&config);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        let third = limits.admit(a).unwrap();
        assert_eq!(third.admission, Admission::HealthOnly, "over the per-address bound");
        assert_eq!(limits.admit(b).unwrap().admission, Admission::Full, "another address");
        drop((first, third));
        let again = limits.admit(a).unwrap();
        assert_eq!(again.admission, Admission::Full, "a slot freed");
        let held: Vec<_> = (0..HEALTH_ONLY_MAX).map(|_| limits.admit(a).unwrap()).collect();
        assert!(held.iter().all(|c| c.admission == Admission::HealthOnly));
        assert!(limits.admit(a).is_none(), "health-only slots are bounded too");
    }
}
