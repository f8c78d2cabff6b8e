//! Who a request comes from, and how often they may ask: trusted proxies and
//! `X-Forwarded-For`, and token-bucket rate limits (per connection, or per
//! client address). Pure logic: callers pass the time in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A network such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket
/// reports) are the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `addr` with every bit below `prefix` cleared.
fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a plain address (a /32 or /128).
    /// Host bits below the prefix are refused: `10.0.0.1/8` is likely a typo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr =
            addr.trim().parse().map_err(|_| format!("`{text}` is not an IP address or CIDR"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has a bad prefix length"))?,
        };
        if network_of(addr, prefix) != addr {
            return Err(format!("`{text}` has host bits set below the prefix"));
        }
        Ok(Cidr { network: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && network_of(ip, self.prefix) == self.network
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a configured list; the error names the bad entry.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter().map(|s| Cidr::parse(s)).collect::<Result<_, _>>().map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted
    /// proxy; then `X-Forwarded-For` (all header lines, in order) is read from
    /// the right, skipping trusted proxies, and the first other address is the
    /// client. Addresses further left were written by the client and prove
    /// nothing; an unreadable hop stops the walk at the last good one.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> =
            forwarded_for.into_iter().flat_map(|v| v.split(',')).map(str::trim).collect();
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// Allows `rate` events per second with bursts of `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

/// The rate and burst a [`TokenBucket`] is checked against (kept apart so a
/// map of buckets does not repeat them).
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    pub fn per_second(per_sec: u32, burst: u32) -> Self {
        Rate { per_sec: f64::from(per_sec.max(1)), burst: f64::from(burst.max(1)) }
    }

    pub fn per_minute(per_min: u32, burst: u32) -> Self {
        Rate { per_sec: f64::from(per_min.max(1)) / 60.0, burst: f64::from(burst.max(1)) }
    }

    /// Time for an empty bucket to fill up again.
    pub fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(self.burst / self.per_sec)
    }
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket { tokens: rate.burst, updated: now }
    }

    fn refilled(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate.per_sec).min(rate.burst)
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.tokens = self.refilled(rate, now);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.refilled(rate, now) >= rate.burst
    }
}

/// Most clients an [`IpRateLimiter`] tracks; past that, new clients are
/// refused rather than letting an address-rotating flood grow the map.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// One token bucket per client address — per /64 for IPv6, since one
/// household or server gets a whole /64.
#[derive(Debug)]
pub struct IpRateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

/// The address a client is counted under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        v6 @ IpAddr::V6(_) => network_of(v6, 64),
        v4 => v4,
    }
}

impl IpRateLimiter {
    pub fn new(rate: Rate) -> Self {
        IpRateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `ip`, or says how long until one is there.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = client_key(ip);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED_CLIENTS {
            buckets.retain(|_, b| !b.is_full(self.rate, now));
            if buckets.len() >= MAX_TRACKED_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        buckets.entry(key).or_insert_with(|| TokenBucket::new(self.rate, now)).take(self.rate, now)
    }

    /// Forgets clients whose bucket is full again: they hold nothing a fresh
    /// bucket would not, and memory follows the recently active clients.
    pub fn prune(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|_, b| !b.is_full(self.rate, now));
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
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")), "mapped IPv4");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        let c = Cidr::parse("fd00::/8").unwrap();
        assert!(c.contains(ip("fd12::1")) && !c.contains(ip("fe80::1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse(" 192.168.0.0/16 ").is_ok());
        for bad in
            ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", "1.2.3.4/-1", "10.0.0.1/8", "example.com/8"]
        {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let list: Vec<String> =
            ["127.0.0.1", "10.0.0.0/8", "fd00::/8"].iter().map(|s| (*s).to_owned()).collect();
        let p = TrustedProxies::parse(&list).unwrap();
        let h = ["6.6.6.6, 1.2.3.4, 10.0.0.7"];
        assert_eq!(p.client_ip(ip("9.9.9.9"), h), ip("9.9.9.9"), "untrusted peer: header ignored");
        assert_eq!(p.client_ip(ip("127.0.0.1"), h), ip("1.2.3.4"), "spoofed 6.6.6.6 ignored");
        assert_eq!(p.client_ip(ip("::ffff:127.0.0.1"), h), ip("1.2.3.4"));
        assert_eq!(p.client_ip(ip("10.1.1.1"), []), ip("10.1.1.1"), "no header: the proxy");
        let h = ["1.2.3.4, junk, 10.0.0.9"];
        assert_eq!(p.client_ip(ip("127.0.0.1"), h), ip("10.0.0.9"), "garbage stops the walk");
        let h = ["2001:db8::5", "fd00::1"];
        assert_eq!(p.client_ip(ip("fd00::2"), h), ip("2001:db8::5"), "several header lines");
        assert_eq!(p.client_ip(ip("127.0.0.1"), ["10.2.2.2"]), ip("10.2.2.2"), "all trusted");
        let nobody = TrustedProxies::default();
        assert_eq!(nobody.client_ip(ip("127.0.0.1"), ["3.3.3.3"]), ip("127.0.0.1"));
        assert!(TrustedProxies::parse(&["10.0.0.1/8".to_owned()]).is_err());
    }

    #[test]
    fn bucket_burst_then_rate() {
        let rate = Rate::per_second(10, 20);
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(rate, t0);
        for _ in 0..20 {
            assert!(bucket.take(rate, t0).is_ok());
        }
        let wait = bucket.take(rate, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90), "{wait:?}");
        assert!(bucket.take(rate, t0 + Duration::from_millis(101)).is_ok());
        assert!(bucket.take(rate, t0 + Duration::from_millis(101)).is_err());
        let later = t0 + Duration::from_secs(100);
        for _ in 0..20 {
            assert!(bucket.take(rate, later).is_ok(), "refill stops at the burst");
        }
        assert!(bucket.take(rate, later).is_err());
        assert_eq!(rate.refill_time(), Duration::from_secs(2));
    }

    #[test]
    fn per_client_buckets() {
        let limiter = IpRateLimiter::new(Rate::per_minute(60, 2));
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(a, t0).is_ok());
        let wait = limiter.check(a, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(ip("10.0.0.2"), t0).is_ok(), "other clients are not affected");
        assert!(limiter.check(a, t0 + Duration::from_millis(1001)).is_ok(), "refilled");
        assert!(limiter.check(a, t0 + Duration::from_millis(1001)).is_err());
        // One IPv6 /64 is one client; a mapped IPv4 is the IPv4 client.
        assert!(limiter.check(ip("2001:db8::1"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8::2"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8::3"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:0:1::3"), t0).is_ok());
        assert!(limiter.check(ip("::ffff:10.0.0.2"), t0).is_ok());
        assert!(limiter.check(ip("10.0.0.2"), t0).is_err());

        assert_eq!(limiter.tracked(), 4);
        limiter.prune(t0 + Duration::from_millis(2500));
        assert_eq!(limiter.tracked(), 1, "only the bucket used recently stays");
        limiter.prune(t0 + Duration::from_secs(10));
        assert_eq!(limiter.tracked(), 0);
    }
}
