//! Per-client upload rate limit: a token bucket per address (per /64 for
//! IPv6, since one household or server gets a whole /64).
//!
//! Buckets that have filled up again are forgotten by [`RateLimiter::prune`],
//! so memory follows the number of recently active clients; past
//! [`MAX_CLIENTS`] of those, new clients are refused rather than letting an
//! address-rotating flood grow the map or bypass the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client_ip::canonical;

pub const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    V6Net(u64),
}

impl Key {
    fn of(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V4(v4) => Key::V4(v4.into()),
            IpAddr::V6(v6) => Key::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_min: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_min) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or tells how long until one is there.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = Key::of(ip);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_CLIENTS {
            self.prune_locked(&mut buckets, now);
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_sec))
        }
    }

    /// Forgets clients whose bucket is full again.
    pub fn prune(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        self.prune_locked(&mut buckets, now);
    }

    fn prune_locked(&self, buckets: &mut HashMap<Key, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(bucket, now) < self.burst);
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }

    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip("1.1.1.1"), t0).is_ok());
        }
        let wait = limiter.check(ip("1.1.1.1"), t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(ip("2.2.2.2"), t0).is_ok(), "other clients are not affected");
        assert!(limiter.check(ip("1.1.1.1"), t0 + Duration::from_millis(1010)).is_ok());
        assert!(limiter.check(ip("1.1.1.1"), t0 + Duration::from_millis(1020)).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limiter = RateLimiter::new(60, 1);
        let t0 = Instant::now();
        assert!(limiter.check(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), t0).is_ok());
        assert!(limiter.check(ip("9.9.9.9"), t0).is_ok());
        assert!(limiter.check(ip("::ffff:9.9.9.9"), t0).is_err());
    }

    #[test]
    fn prune_forgets_full_buckets() {
        let limiter = RateLimiter::new(60, 2);
        let t0 = Instant::now();
        limiter.check(ip("1.1.1.1"), t0).unwrap();
        limiter.prune(t0);
        assert_eq!(limiter.tracked(), 1);
        limiter.prune(t0 + Duration::from_secs(2));
        assert_eq!(limiter.tracked(), 0);
    }
}
