//! Tunable knobs of the stack, reachable by `iopkt sysctl` under the NetBSD
//! names.

use crate::error::Error;

/// The stack's tunables. Every field has a sysctl name in [`SYSCTLS`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Forward IPv4 packets between interfaces (RFC 1812).
    pub forwarding4: bool,
    /// Forward IPv6 packets between interfaces.
    pub forwarding6: bool,
    /// Default TTL of IPv4 packets we originate (RFC 1700 recommends 64).
    pub ttl: u8,
    /// Default hop limit of IPv6 packets we originate.
    pub hop_limit: u8,
    /// ICMPv4 errors sent per second at most (RFC 1812 section 4.3.2.8).
    pub icmp_err_rate: u32,
    /// ICMPv6 errors sent per second at most (RFC 4443 section 2.4 (f)).
    pub icmp6_err_rate: u32,
    /// Answer ICMP echo requests sent to a broadcast address.
    pub icmp_bmcast_echo: bool,
    /// Seconds a resolved ARP entry stays valid.
    pub arp_keep_secs: u32,
    /// ARP entries per interface at most.
    pub arp_max_entries: u32,
    /// Packets queued per unresolved neighbour at most.
    pub neigh_hold: u32,
    /// Seconds a fragmented datagram may take to arrive whole (RFC 791: 15 s
    /// upper bound suggested by RFC 1122 is 60; Linux uses 30).
    pub reass_timeout_secs: u32,
    /// Bytes all datagrams being reassembled may hold together.
    pub reass_max_bytes: u32,
    /// Accept router advertisements (SLAAC, default routers) on IPv6.
    pub accept_rtadv: bool,
    /// Neighbor solicitations sent for duplicate address detection (RFC 4862
    /// section 5.1, DupAddrDetectTransmits).
    pub dad_count: u32,
    /// Neighbour cache entries per interface at most (IPv6).
    pub nd_max_entries: u32,
    /// Receive buffer a new TCP connection starts with, bytes (NetBSD
    /// net.inet.tcp.recvspace; Linux tcp_rmem[1]).
    pub tcp_recvspace: u32,
    /// Send buffer a new TCP connection starts with, bytes (NetBSD
    /// net.inet.tcp.sendspace; Linux tcp_wmem[1]).
    pub tcp_sendspace: u32,
    /// Grow receive buffers with what the application reads per round
    /// trip (NetBSD net.inet.tcp.recvbuf_auto; Linux tcp_moderate_rcvbuf).
    pub tcp_recvbuf_auto: bool,
    /// Grow send buffers with the congestion window (NetBSD
    /// net.inet.tcp.sendbuf_auto).
    pub tcp_sendbuf_auto: bool,
    /// The largest an auto-tuned receive buffer grows to (Linux
    /// tcp_rmem[2]); also what the window scale is chosen for.
    pub tcp_recvbuf_max: u32,
    /// The largest an auto-tuned send buffer grows to (Linux tcp_wmem[2]).
    pub tcp_sendbuf_max: u32,
    /// Bytes all TCP send and receive buffers may hold together (in the
    /// spirit of Linux tcp_mem): past three quarters of it buffers stop
    /// growing and windows shrink to a fair share; at it, data beyond a
    /// connection's share is refused.
    pub tcp_mem_max: u64,
    /// The largest listen(2) backlog (Linux net.core.somaxconn); larger
    /// requests are silently cut to it.
    pub somaxconn: u32,
    /// Detect losses with RACK-TLP (RFC 8985): from the time order of
    /// transmissions, with tail loss probes, instead of counting duplicate
    /// ACKs (Linux net.ipv4.tcp_recovery). Applies to connections made
    /// afterwards that negotiate SACK.
    pub tcp_rack: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            forwarding4: false,
            forwarding6: false,
            ttl: 64,
            hop_limit: 64,
            icmp_err_rate: 100,
            icmp6_err_rate: 100,
            icmp_bmcast_echo: false,
            arp_keep_secs: 1200,
            arp_max_entries: 1024,
            neigh_hold: 16,
            reass_timeout_secs: 30,
            reass_max_bytes: 4 * 1024 * 1024,
            accept_rtadv: true,
            dad_count: 1,
            nd_max_entries: 1024,
            tcp_recvspace: crate::tcp::buffers::DEFAULT_RECV_BUF as u32,
            tcp_sendspace: crate::tcp::buffers::DEFAULT_SEND_BUF as u32,
            tcp_recvbuf_auto: true,
            tcp_sendbuf_auto: true,
            tcp_recvbuf_max: crate::tcp::buffers::DEFAULT_RECV_BUF_MAX as u32,
            tcp_sendbuf_max: crate::tcp::buffers::DEFAULT_SEND_BUF_MAX as u32,
            tcp_mem_max: crate::tcp::buffers::DEFAULT_MEM_MAX,
            somaxconn: crate::tcp::listen::SOMAXCONN,
            tcp_rack: true,
        }
    }
}

/// Every sysctl name with its meaning, in listing order.
pub const SYSCTLS: &[(&str, &str)] = &[
    (
        "net.inet.ip.forwarding",
        "forward IPv4 packets between interfaces (0/1)",
    ),
    ("net.inet.ip.ttl", "default IPv4 TTL"),
    (
        "net.inet.icmp.errppslimit",
        "ICMP errors per second at most",
    ),
    (
        "net.inet.icmp.bmcastecho",
        "answer echo requests to broadcast (0/1)",
    ),
    ("net.inet.arp.keep", "seconds an ARP entry stays valid"),
    ("net.inet.arp.maxentries", "ARP entries per interface"),
    ("net.inet.arp.hold", "packets held per unresolved neighbour"),
    (
        "net.inet.ip.reass_timeout",
        "seconds to reassemble a datagram",
    ),
    (
        "net.inet.ip.reass_maxbytes",
        "bytes held for reassembly, all datagrams",
    ),
    (
        "net.inet6.ip6.forwarding",
        "forward IPv6 packets between interfaces (0/1)",
    ),
    ("net.inet6.ip6.hlim", "default IPv6 hop limit"),
    (
        "net.inet6.ip6.accept_rtadv",
        "accept router advertisements (0/1)",
    ),
    ("net.inet6.ip6.dad_count", "DAD probes per address"),
    (
        "net.inet6.ip6.maxentries",
        "neighbour cache entries per interface",
    ),
    (
        "net.inet6.icmp6.errppslimit",
        "ICMPv6 errors per second at most",
    ),
    (
        "net.inet.tcp.recvspace",
        "initial TCP receive buffer, bytes",
    ),
    ("net.inet.tcp.sendspace", "initial TCP send buffer, bytes"),
    (
        "net.inet.tcp.recvbuf_auto",
        "auto-tune TCP receive buffers (0/1)",
    ),
    (
        "net.inet.tcp.sendbuf_auto",
        "auto-tune TCP send buffers (0/1)",
    ),
    (
        "net.inet.tcp.recvbuf_max",
        "largest auto-tuned TCP receive buffer, bytes",
    ),
    (
        "net.inet.tcp.sendbuf_max",
        "largest auto-tuned TCP send buffer, bytes",
    ),
    (
        "net.inet.tcp.mem_max",
        "bytes all TCP buffers may hold together",
    ),
    ("kern.ipc.somaxconn", "largest listen backlog"),
    (
        "net.inet.tcp.rack",
        "RACK-TLP loss detection on new connections (0/1)",
    ),
];

fn flag(v: i64, name: &str) -> Result<bool, Error> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Invalid(format!("{name} takes 0 or 1"))),
    }
}

fn ranged(v: i64, lo: i64, hi: i64, name: &str) -> Result<i64, Error> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Error::Invalid(format!("{name} takes {lo} to {hi}")))
    }
}

/// A TCP buffer size: what SO_RCVBUF / SO_SNDBUF may set.
fn tcp_buf(v: i64, name: &str) -> Result<u32, Error> {
    use crate::tcp::buffers::{MAX_BUF, MIN_BUF};
    Ok(ranged(v, MIN_BUF as i64, MAX_BUF as i64, name)? as u32)
}

impl Config {
    /// The value of sysctl `name`, or `None` if there is no such name.
    pub fn get(&self, name: &str) -> Option<i64> {
        Some(match name {
            "net.inet.ip.forwarding" => self.forwarding4 as i64,
            "net.inet.ip.ttl" => self.ttl as i64,
            "net.inet.icmp.errppslimit" => self.icmp_err_rate as i64,
            "net.inet.icmp.bmcastecho" => self.icmp_bmcast_echo as i64,
            "net.inet.arp.keep" => self.arp_keep_secs as i64,
            "net.inet.arp.maxentries" => self.arp_max_entries as i64,
            "net.inet.arp.hold" => self.neigh_hold as i64,
            "net.inet.ip.reass_timeout" => self.reass_timeout_secs as i64,
            "net.inet.ip.reass_maxbytes" => self.reass_max_bytes as i64,
            "net.inet6.ip6.forwarding" => self.forwarding6 as i64,
            "net.inet6.ip6.hlim" => self.hop_limit as i64,
            "net.inet6.ip6.accept_rtadv" => self.accept_rtadv as i64,
            "net.inet6.ip6.dad_count" => self.dad_count as i64,
            "net.inet6.ip6.maxentries" => self.nd_max_entries as i64,
            "net.inet6.icmp6.errppslimit" => self.icmp6_err_rate as i64,
            "net.inet.tcp.recvspace" => self.tcp_recvspace as i64,
            "net.inet.tcp.sendspace" => self.tcp_sendspace as i64,
            "net.inet.tcp.recvbuf_auto" => self.tcp_recvbuf_auto as i64,
            "net.inet.tcp.sendbuf_auto" => self.tcp_sendbuf_auto as i64,
            "net.inet.tcp.recvbuf_max" => self.tcp_recvbuf_max as i64,
            "net.inet.tcp.sendbuf_max" => self.tcp_sendbuf_max as i64,
            "net.inet.tcp.mem_max" => self.tcp_mem_max.min(i64::MAX as u64) as i64,
            "kern.ipc.somaxconn" => self.somaxconn as i64,
            "net.inet.tcp.rack" => self.tcp_rack as i64,
            _ => return None,
        })
    }

    /// Sets sysctl `name`; the value is range-checked.
    pub fn set(&mut self, name: &str, v: i64) -> Result<(), Error> {
        match name {
            "net.inet.ip.forwarding" => self.forwarding4 = flag(v, name)?,
            "net.inet.ip.ttl" => self.ttl = ranged(v, 1, 255, name)? as u8,
            "net.inet.icmp.errppslimit" => self.icmp_err_rate = ranged(v, 0, 100_000, name)? as u32,
            "net.inet.icmp.bmcastecho" => self.icmp_bmcast_echo = flag(v, name)?,
            "net.inet.arp.keep" => self.arp_keep_secs = ranged(v, 1, 86_400, name)? as u32,
            "net.inet.arp.maxentries" => self.arp_max_entries = ranged(v, 1, 65_536, name)? as u32,
            "net.inet.arp.hold" => self.neigh_hold = ranged(v, 1, 1024, name)? as u32,
            "net.inet.ip.reass_timeout" => {
                self.reass_timeout_secs = ranged(v, 1, 120, name)? as u32
            }
            "net.inet.ip.reass_maxbytes" => {
                self.reass_max_bytes = ranged(v, 65_536, 256 << 20, name)? as u32
            }
            "net.inet6.ip6.forwarding" => self.forwarding6 = flag(v, name)?,
            "net.inet6.ip6.hlim" => self.hop_limit = ranged(v, 1, 255, name)? as u8,
            "net.inet6.ip6.accept_rtadv" => self.accept_rtadv = flag(v, name)?,
            "net.inet6.ip6.dad_count" => self.dad_count = ranged(v, 0, 10, name)? as u32,
            "net.inet6.ip6.maxentries" => self.nd_max_entries = ranged(v, 1, 65_536, name)? as u32,
            "net.inet6.icmp6.errppslimit" => {
                self.icmp6_err_rate = ranged(v, 0, 100_000, name)? as u32
            }
            "net.inet.tcp.recvspace" => self.tcp_recvspace = tcp_buf(v, name)?,
            "net.inet.tcp.sendspace" => self.tcp_sendspace = tcp_buf(v, name)?,
            "net.inet.tcp.recvbuf_auto" => self.tcp_recvbuf_auto = flag(v, name)?,
            "net.inet.tcp.sendbuf_auto" => self.tcp_sendbuf_auto = flag(v, name)?,
            "net.inet.tcp.recvbuf_max" => self.tcp_recvbuf_max = tcp_buf(v, name)?,
            "net.inet.tcp.sendbuf_max" => self.tcp_sendbuf_max = tcp_buf(v, name)?,
            "net.inet.tcp.mem_max" => self.tcp_mem_max = ranged(v, 1 << 20, 1 << 40, name)? as u64,
            "kern.ipc.somaxconn" => {
                self.somaxconn =
                    ranged(v, 1, i64::from(crate::tcp::listen::MAX_SOMAXCONN), name)? as u32
            }
            "net.inet.tcp.rack" => self.tcp_rack = flag(v, name)?,
            _ => return Err(Error::NotFound(format!("sysctl {name}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_reads_and_writes_back() {
        let mut c = Config::default();
        for (name, _) in SYSCTLS {
            let v = c.get(name).unwrap_or_else(|| panic!("{name} unreadable"));
            c.set(name, v).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(c.set("net.inet.ip.forwarding", 2).is_err());
        assert!(c.set("net.nope", 1).is_err());
    }
}
