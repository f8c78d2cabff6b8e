//! Per-client-IP token buckets (room creation, HTTP posting), and the rule
//! for which IP a request comes from.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::config::cidr_network;
use dashmap::DashMap;
use http::HeaderMap;

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: DashMap<IpAddr, Bucket>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `ip`, or says how long until one is there.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut bucket = self
            .buckets
            .entry(bucket_key(ip))
            .or_insert(Bucket { tokens: self.burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_sec))
        }
    }

    /// Drops buckets that have refilled: they hold nothing a fresh bucket
    /// would not, and this keeps memory bounded by recent clients.
    pub fn prune(&self, now: Instant) {
        let full_after = self.burst / self.per_sec;
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.updated).as_secs_f64() < full_after);
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// IPv6 clients usually own a whole /64: limiting single addresses would let
/// one client take 2^64 buckets.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(_) => cidr_network(ip, 64),
        v4 => v4,
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[(IpAddr, u8)]) -> bool {
    let ip = canonical(ip);
    trusted
        .iter()
        .any(|(net, prefix)| net.is_ipv4() == ip.is_ipv4() && cidr_network(ip, *prefix) == *net)
}

/// The client's IP: the peer, unless the peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` that is not a trusted proxy
/// (addresses further left were written by the client and prove nothing).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[(IpAddr, u8)]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = canonical(ip);
        if !is_trusted(client, trusted) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::config::parse_cidr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn buckets_refill_and_report_the_wait() {
        let limiter = RateLimiter::per_minute(60, 2);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(a, t0).is_ok());
        let wait = limiter.check(a, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(ip("10.0.0.2"), t0).is_ok(), "other clients are not affected");
        assert!(limiter.check(a, t0 + Duration::from_millis(1001)).is_ok(), "refilled");
        assert!(limiter.check(a, t0 + Duration::from_millis(1001)).is_err());
        // One IPv6 /64 is one client.
        assert!(limiter.check(ip("2001:db8::1"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8::2"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8::3"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:0:1::3"), t0).is_ok());

        assert_eq!(limiter.tracked(), 4);
        limiter.prune(t0 + Duration::from_millis(2500));
        assert_eq!(limiter.tracked(), 1, "only the bucket used recently stays");
        limiter.prune(t0 + Duration::from_secs(10));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<_> = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]
            .iter()
            .map(|s| parse_cidr(s).unwrap())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap());
        // Untrusted peer: the header is ignored.
        assert_eq!(client_ip(ip("9.9.9.9"), &headers, &trusted), ip("9.9.9.9"));
        // Trusted peer: right-most untrusted hop; the spoofed 6.6.6.6 is ignored.
        assert_eq!(client_ip(ip("127.0.0.1"), &headers, &trusted), ip("1.2.3.4"));
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &headers, &trusted), ip("1.2.3.4"));
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.1.1.1"), &HeaderMap::new(), &trusted), ip("10.1.1.1"));
        // Garbage stops the walk at the last good hop.
        headers.insert("x-forwarded-for", "1.2.3.4, junk, 10.0.0.9".parse().unwrap());
        assert_eq!(client_ip(ip("127.0.0.1"), &headers, &trusted), ip("10.0.0.9"));
        // Several header lines count as one list, IPv6 works.
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "2001:db8::5".parse().unwrap());
        headers.append("x-forwarded-for", "fd00::1".parse().unwrap());
        assert_eq!(client_ip(ip("fd00::2"), &headers, &trusted), ip("2001:db8::5"));
        // Nobody trusted: the peer, always.
        assert_eq!(client_ip(ip("127.0.0.1"), &headers, &[]), ip("127.0.0.1"));
    }
}
