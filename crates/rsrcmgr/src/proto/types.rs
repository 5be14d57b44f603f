//! What the stack reports: interfaces, routes, neighbours, sysctls, counters,
//! in the shape they travel in. Field order is the wire order (postcard
//! encodes struct fields one after the other): append, never reorder.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// An Ethernet address: six bytes on the wire, `"02:00:00:00:00:01"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacWire(pub [u8; 6]);

impl fmt::Display for MacWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::str::FromStr for MacWire {
    type Err = String;
    fn from_str(s: &str) -> Result<MacWire, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts
                .next()
                .ok_or_else(|| format!("bad MAC address {s:?}"))?;
            if p.is_empty() || p.len() > 2 {
                return Err(format!("bad MAC address {s:?}"));
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("bad MAC address {s:?}"));
        }
        Ok(MacWire(out))
    }
}

impl Serialize for MacWire {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            let mut t = s.serialize_tuple(6)?;
            for b in &self.0 {
                t.serialize_element(b)?;
            }
            t.end()
        }
    }
}

impl<'de> Deserialize<'de> for MacWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MacWire, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MacWire;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Ethernet address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MacWire, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<MacWire, A::Error> {
                let mut out = [0u8; 6];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = a
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(MacWire(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_tuple(6, V)
        }
    }
}

/// Interface flag bits, with the NetBSD values so listings match
/// `ifconfig`'s `flags=0x8843<...>`.
pub mod ifflags {
    pub const UP: u32 = 0x1;
    pub const BROADCAST: u32 = 0x2;
    pub const LOOPBACK: u32 = 0x8;
    pub const RUNNING: u32 = 0x40;
    pub const SIMPLEX: u32 = 0x800;
    pub const MULTICAST: u32 = 0x8000;

    /// Names in the order `ifconfig` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (UP, "UP"),
        (BROADCAST, "BROADCAST"),
        (LOOPBACK, "LOOPBACK"),
        (RUNNING, "RUNNING"),
        (SIMPLEX, "SIMPLEX"),
        (MULTICAST, "MULTICAST"),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IfKindWire {
    Loopback,
    Ethernet,
}

/// An IPv4 address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr4Info {
    pub addr: Ipv4Addr,
    pub plen: u8,
    /// The subnet's directed broadcast address (none on /31, /32, loopback).
    pub broadcast: Option<Ipv4Addr>,
}

/// RFC 4862 section 2 address states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addr6StateWire {
    Tentative,
    Preferred,
    Deprecated,
    Duplicated,
}

/// An IPv6 address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr6Info {
    pub addr: Ipv6Addr,
    pub plen: u8,
    pub state: Addr6StateWire,
    /// Made by stateless autoconfiguration.
    pub autoconf: bool,
    /// Seconds left of the valid lifetime; none is forever.
    pub valid_secs: Option<u64>,
    /// Seconds left of the preferred lifetime; none is forever.
    pub preferred_secs: Option<u64>,
}

/// Interface counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfStatsWire {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub rx_multicast: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// Everything `ifconfig -a`, `netstat -i` and `nicinfo` show of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfInfo {
    pub index: u32,
    pub name: String,
    pub kind: IfKindWire,
    /// [`ifflags`] bits.
    pub flags: u32,
    pub mac: MacWire,
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// The driver reports carrier.
    pub link_up: bool,
    pub addrs4: Vec<Addr4Info>,
    pub addrs6: Vec<Addr6Info>,
    pub stats: IfStatsWire,
}

/// A route of either family (`netstat -r`, `route get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub dest: IpAddr,
    pub plen: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
    pub ifname: String,
    /// BSD flag letters: U, G, H, S, C, D.
    pub flags: String,
    /// Seconds left for a route learned from the network.
    pub expires_secs: Option<u64>,
}

/// A neighbour cache entry (`arp -an`, `ndp -an`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborEntry {
    pub ip: IpAddr,
    /// None while resolution is incomplete.
    pub mac: Option<MacWire>,
    pub ifindex: u32,
    pub ifname: String,
    /// "incomplete", "reachable", "stale", "delay", "probe", "permanent".
    pub state: String,
    pub expires_secs: Option<u64>,
    /// IPv6: the neighbour is a router.
    pub is_router: bool,
}

/// One tunable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlEntry {
    pub name: String,
    pub value: i64,
    pub description: String,
}

/// One counter of `netstat -s`. In a `Stats` answer the name is
/// `group.counter`; inside a [`CounterGroupWire`] it is the counter's
/// description ("total packets received").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatEntry {
    pub name: String,
    pub value: u64,
}

/// The counters of one protocol ("ip", "icmp", "arp", "ip6", "icmp6",
/// "sockets"), in the order `netstat -s` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterGroupWire {
    pub name: String,
    pub counters: Vec<StatEntry>,
}
