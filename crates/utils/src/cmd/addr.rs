//! Parsing addresses and prefixes as the BSD tools write them.

use std::net::{IpAddr, Ipv4Addr};

/// `ADDR` or `ADDR/PLEN`; the prefix length, when given, is checked against
/// the family.
pub fn parse_prefix(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("bad address '{a}' (numeric IPv4 or IPv6 expected)"))?;
    let plen = match p {
        None => None,
        Some(p) => {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let n: u8 = p
                .parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("bad prefix length '/{p}' (0 to {max})"))?;
            Some(n)
        }
    };
    Ok((addr, plen))
}

/// A dotted netmask as a prefix length; `None` if not contiguous.
pub fn mask_to_plen(m: Ipv4Addr) -> Option<u8> {
    let v = u32::from(m);
    let plen = v.leading_ones();
    (v.checked_shl(plen).unwrap_or(0) == 0).then_some(plen as u8)
}

/// `A/P`, or `A` alone for a host prefix.
pub fn show_prefix(a: IpAddr, plen: u8) -> String {
    let full = if a.is_ipv4() { 32 } else { 128 };
    if plen == full {
        a.to_string()
    } else {
        format!("{a}/{plen}")
    }
}

pub fn mask4(plen: u8) -> u32 {
    if plen == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(plen.min(32)))
    }
}

pub fn mask6(plen: u8) -> u128 {
    if plen == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(plen.min(128)))
    }
}

/// The network an address with a prefix length is in.
pub fn network(a: IpAddr, plen: u8) -> IpAddr {
    match a {
        IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) & mask4(plen)).into(),
        IpAddr::V6(a) => std::net::Ipv6Addr::from(u128::from(a) & mask6(plen)).into(),
    }
}
