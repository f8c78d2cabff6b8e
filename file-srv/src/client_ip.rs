//! The client's address: the TCP peer, unless the peer is a trusted proxy, in
//! which case `X-Forwarded-For` is read from the right, skipping trusted
//! proxies, and the first address that is not one is the client. Addresses
//! further left were written by the client itself and prove nothing.

use std::net::IpAddr;

use http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(addr.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
        };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket
/// reports) are treated as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses the configured list; the config loader has validated it, so an
    /// error here names the bad entry for a caller that skipped loading.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| Cidr::parse(s).ok_or_else(|| format!("bad trusted proxy `{s}`")))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // Garbage: the last hop we could read is the best we know.
                return client;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        let c = Cidr::parse("fd00::/8").unwrap();
        assert!(c.contains(ip("fd12::1")) && !c.contains(ip("fe80::1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", "1.2.3.4/-1"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let h = xff(&["1.1.1.1, 2.2.2.2"]);
        assert_eq!(p.client_ip(ip("8.8.8.8"), &h), ip("8.8.8.8"), "untrusted peer");
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("2.2.2.2"), "rightmost untrusted");
        let h = xff(&["1.1.1.1", "2.2.2.2, 10.1.1.1"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("2.2.2.2"), "proxy chain skipped");
        assert_eq!(p.client_ip(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
        let h = xff(&["2.2.2.2, nonsense, 10.1.1.1"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("10.1.1.1"));
        let h = xff(&["10.2.2.2"]);
        assert_eq!(p.client_ip(ip("::ffff:127.0.0.1"), &h), ip("10.2.2.2"), "all trusted");
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &xff(&["3.3.3.3"])),
            ip("127.0.0.1")
        );
    }
}
