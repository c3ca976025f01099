//! Where page reading may connect: the address policy of the SSRF guard.
//!
//! Search results come from the web, so their URLs are hostile: a page could link (or redirect) to the
//! user's router, a cloud metadata endpoint or a service on their own machine. Page reading connects only
//! to public unicast addresses. Two checks enforce it, because reqwest resolves names through our
//! resolver but connects to IP literals directly:
//! - [`check_url`], on the URL before the first request and on every redirect target: http(s) only, no
//!   credentials, no `localhost` names, and a literal IP host must be public (or listed in
//!   `CONDUCTOR_FETCH_ALLOW` with its exact port);
//! - [`is_public`], in the resolver (`fetch.rs`), on every address a name resolves to: only public ones
//!   are handed to the connector, so a name resolving to `127.0.0.1` is never connected to.
//!
//! The ranges are IANA's special-purpose registries. Hand-written because `IpAddr::is_global` is still
//! unstable in std, and the crates that offer it do not cover the IPv6 forms that embed an IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Why a URL is not fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an http(s) URL")]
    Scheme,
    #[error("the URL carries credentials")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("refused: a private or local address")]
    PrivateAddress,
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// Whether `url` may be requested: http(s), no user or password, a host that is not `localhost`, and, when
/// the host is an IP literal, a public address or one of `allow` (exact address and port).
pub fn check_url(url: &Url, allow: &[SocketAddr]) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    let port = url.port_or_known_default().ok_or(Refusal::Scheme)?;
    // The WHATWG parser in `url` already turns `127.1`, `2130706433`, `0x7f000001` and `0177.0.0.1` into
    // IPv4 hosts, so every spelling of a literal address lands in one of the first two arms.
    let ip = match url.host().ok_or(Refusal::NoHost)? {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(name) => {
            return if is_local_name(name) {
                Err(Refusal::PrivateAddress)
            } else {
                Ok(())
            };
        }
    };
    if is_public(ip) || allow.contains(&SocketAddr::new(ip, port)) {
        Ok(())
    } else {
        Err(Refusal::PrivateAddress)
    }
}

/// `localhost` and its subdomains (RFC 6761), which resolvers answer locally: refused before any lookup.
pub fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// True for a public unicast address: not loopback, private, link-local, unique-local, CGNAT, multicast,
/// broadcast, documentation, benchmarking, reserved or unspecified, in IPv4, IPv6, or an IPv6 form that
/// embeds an IPv4 address (mapped, compatible, translated, NAT64, 6to4), whose IPv4 address is checked.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

/// IANA IPv4 special-purpose ranges that are not globally reachable unicast.
const V4_NOT_PUBLIC: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", 0.0.0.0 unspecified
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // CGNAT shared address space
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata endpoints live here)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_NOT_PUBLIC
        .iter()
        .any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("a valid IPv6 constant");
    // Forms that carry an IPv4 address: the connection reaches (or is translated to) that address.
    if in_v6(ip, v6("::ffff:0:0"), 96) // IPv4-mapped
        || in_v6(ip, v6("::"), 96) // IPv4-compatible (deprecated); also :: and ::1
        || in_v6(ip, v6("::ffff:0:0:0"), 96) // IPv4-translated (SIIT)
        || in_v6(ip, v6("64:ff9b::"), 96)
    // NAT64 well-known prefix
    {
        return is_public_v4(low32);
    }
    if in_v6(ip, v6("2002::"), 16) {
        // 6to4: the IPv4 address is bits 16..48.
        return is_public_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    // Everything outside global unicast 2000::/3 (unique-local fc00::/7, link-local fe80::/10, multicast
    // ff00::/8, discard 100::/64, NAT64 local-use 64:ff9b:1::/48, ...) is not public.
    if !in_v6(ip, v6("2000::"), 3) {
        return false;
    }
    const V6_NOT_PUBLIC: &[(&str, u32)] = &[
        ("2001::", 23),     // IETF protocol assignments (Teredo, benchmarking, ORCHID)
        ("2001:db8::", 32), // documentation
        ("3fff::", 20),     // documentation
        ("5f00::", 16),     // SRv6 SIDs
    ];
    !V6_NOT_PUBLIC
        .iter()
        .any(|(net, prefix)| in_v6(ip, v6(net), *prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<(), Refusal> {
        check_url(&Url::parse(raw).unwrap(), &[])
    }

    #[test]
    fn every_spelling_of_loopback_is_refused() {
        for raw in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://127.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.0.0.1./",
            "http://127.255.255.254:8080/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "https://api.localhost:8443/x",
        ] {
            assert_eq!(check(raw), Err(Refusal::PrivateAddress), "{raw}");
        }
    }

    #[test]
    fn private_link_local_and_special_ranges_are_refused() {
        for raw in [
            "http://0.0.0.0/",
            "http://0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://100.127.255.255/",
            "http://192.0.0.8/",
            "http://192.0.2.1/",
            "http://198.18.0.1/",
            "http://198.51.100.7/",
            "http://203.0.113.9/",
            "http://224.0.0.1/",
            "http://239.255.255.250/",
            "http://255.255.255.255/",
            "http://240.0.0.1/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[fc00::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
            "http://[2001::1]/",
            "http://[64:ff9b:1::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:0:a00:1]/",
            "http://[100::1]/",
        ] {
            assert_eq!(check(raw), Err(Refusal::PrivateAddress), "{raw}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for raw in [
            "https://example.com/a?b=c",
            "http://93.184.215.14/",
            "http://8.8.8.8:8080/",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::8.8.8.8]/",
            "http://[2002:808:808::]/",
            "http://localhost.example.com/",
            "http://127.0.0.1.nip.example/",
        ] {
            assert_eq!(check(raw), Ok(()), "{raw}");
        }
    }

    #[test]
    fn schemes_and_credentials() {
        assert_eq!(check("ftp://example.com/"), Err(Refusal::Scheme));
        assert_eq!(check("file:///etc/passwd"), Err(Refusal::Scheme));
        assert_eq!(check("data:text/html,hi"), Err(Refusal::Scheme));
        assert_eq!(
            check("http://user:pw@example.com/"),
            Err(Refusal::Credentials)
        );
        assert_eq!(check("http://user@example.com/"), Err(Refusal::Credentials));
    }

    #[test]
    fn the_allow_list_opens_exactly_one_address_and_port() {
        let allow: Vec<SocketAddr> = vec!["127.0.0.1:4000".parse().unwrap()];
        let ok = |raw: &str| check_url(&Url::parse(raw).unwrap(), &allow);
        assert_eq!(ok("http://127.0.0.1:4000/page"), Ok(()));
        assert_eq!(ok("http://127.1:4000/page"), Ok(()));
        assert_eq!(ok("http://127.0.0.1:4001/"), Err(Refusal::PrivateAddress));
        assert_eq!(ok("http://127.0.0.2:4000/"), Err(Refusal::PrivateAddress));
        assert_eq!(ok("http://127.0.0.1/"), Err(Refusal::PrivateAddress));
        assert_eq!(
            ok("http://[::ffff:127.0.0.1]:4000/"),
            Err(Refusal::PrivateAddress)
        );
        // Names never reach a private address, allowed or not: the resolver drops it.
        assert_eq!(ok("http://localhost:4000/"), Err(Refusal::PrivateAddress));
    }
}
