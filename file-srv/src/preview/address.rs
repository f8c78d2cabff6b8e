//! Which addresses a preview fetch may connect to: public unicast only.
//!
//! The check runs on the addresses a host name resolved to (and on literal
//! addresses, which the `url` crate has already normalised: `2130706433`,
//! `0x7f.0.0.1` and `127.1` all arrive here as `127.0.0.1`). IPv6 forms that
//! carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
//! IPv4 address they carry, so `[::ffff:127.0.0.1]` is loopback too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when `ip` is an ordinary public unicast address a preview may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 blocks that are not the public internet (IANA special-purpose
/// registry), as (network, prefix length).
const NON_PUBLIC_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network", 0.0.0.0
    ([10, 0, 0, 0], 8),      // RFC 1918
    ([100, 64, 0, 0], 10),   // CGNAT shared space
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12),   // RFC 1918
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // TEST-NET-1
    ([192, 31, 196, 0], 24), // AS112
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // RFC 1918
    ([192, 175, 48, 0], 24), // AS112 direct delegation
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // TEST-NET-2
    ([203, 0, 113, 0], 24),  // TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !NON_PUBLIC_V4.iter().any(|&(net, len)| {
        let mask = u32::MAX << (32 - u32::from(len));
        bits & mask == u32::from(Ipv4Addr::from(net))
    })
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| bits & (u128::MAX << (128 - len)) == net;
    // Only global unicast (2000::/3) is public; inside it, these are not.
    within(0x2000 << 112, 3)
        && !within(0x2001 << 112, 23) // IETF protocol assignments, Teredo
        && !within(0x2001_0db8 << 96, 32) // documentation
        && !within(0x3fff << 112, 20) // documentation
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach IPv4
/// hosts: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (also
/// `::` and `::1`, which then count as 0.0.0.0 and 0.0.0.1 — both refused),
/// NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    match bits >> 32 {
        0 | 0xffff => return Some(low32),
        0x0064_ff9b_0000_0000_0000_0000 => return Some(low32),
        _ => {}
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    // Local-use NAT64 (64:ff9b:1::/48) can reach anything the operator
    // routes: refuse it outright by mapping it to an unspecified address.
    if bits >> 80 == 0x0064_ff9b_0001 {
        return Some(Ipv4Addr::UNSPECIFIED);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_addresses_are_judged_right() {
        let table: &[(&str, bool)] = &[
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.128.0.1", true),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.20.0.1", true),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:7f00:1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("::8.8.8.8", true),
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b:1::8.8.8.8", false),
            ("2002:7f00:1::", false),
            ("2002:c0a8:101::1", false),
            ("2002:808:808::1", true),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            ("100::1", false),
            ("2001::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("2001:4860:4860::8888", true),
            ("2606:4700::1111", true),
        ];
        for &(text, public) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public(ip), public, "{text}");
        }
    }

    #[test]
    fn url_spellings_of_loopback_normalise_to_a_refused_address() {
        for spelling in ["2130706433", "0x7f.0.0.1", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]"] {
            let url = url::Url::parse(&format!("http://{spelling}/")).unwrap();
            let ip = match url.host().unwrap() {
                url::Host::Ipv4(v4) => IpAddr::V4(v4),
                url::Host::Ipv6(v6) => IpAddr::V6(v6),
                url::Host::Domain(d) => panic!("{spelling} stayed a name: {d}"),
            };
            assert!(!is_public(ip), "{spelling} → {ip}");
        }
    }
}
