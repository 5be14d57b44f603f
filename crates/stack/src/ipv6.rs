//! IPv6 (RFC 8200): input with extension headers, local delivery,
//! forwarding, output with source selection (RFC 6724), fragmentation and
//! reassembly, path MTU (RFC 8201), address life cycle (RFC 4862).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use iopkt_pkt::PktBuf;
use iopkt_wire::ethernet::ethertype;
use iopkt_wire::icmp::v6 as icmp6;
use iopkt_wire::ipv6::{FRAG_HEADER_LEN, FragHdr, HEADER_LEN, Ipv6Hdr, MIN_MTU};
use iopkt_wire::{FromBytes, IntoBytes, Mac, ipproto};

use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::Error;
use crate::ethernet::L2Info;
use crate::iface::{Addr6State, IfIndex, IfKind, prefix_mask_v6};
use crate::reasm::{Outcome, Reassembler};
use crate::stack::Stack;
use crate::time::{Instant, earliest};
use crate::transport::L4Rx;

/// Extension headers one packet may carry before we give up on it: a chain
/// longer than this is an attack, not a packet (RFC 8200 section 4.1 lists
/// at most seven kinds, each at most once or twice).
pub const MAX_EXT_HEADERS: usize = 16;
/// Destinations whose path MTU we remember at most.
pub const MAX_PMTU_ENTRIES: usize = 1024;
/// How long a learned path MTU holds before we try the link MTU again
/// (RFC 8201 section 4: at least 5 minutes, 10 recommended).
pub const PMTU_EXPIRY: Duration = Duration::from_secs(600);

/// The IPv6 counters of `netstat -s` (named after RFC 4293's ipSystemStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv6Stats {
    pub in_receives: u64,
    /// Bad version, short packet, bad extension header chain.
    pub in_hdr_errors: u64,
    /// Not for us and not forwarded, or an address that must not appear on
    /// the wire (multicast source, loopback, v4-mapped).
    pub in_addr_errors: u64,
    pub in_unknown_protos: u64,
    /// Dropped for reasons other than errors (tentative destination, a
    /// multicast group we are not in).
    pub in_discards: u64,
    pub in_delivers: u64,
    pub in_multicast: u64,
    pub forwarded: u64,
    /// Not forwarded: hop limit reached zero.
    pub hop_limit_exceeded: u64,
    /// Not forwarded: larger than the next link (a Packet Too Big was due).
    pub too_big: u64,
    /// Not forwarded or not sent: no route.
    pub no_routes: u64,
    pub out_requests: u64,
    pub out_discards: u64,
    pub frag_oks: u64,
    pub frag_fails: u64,
    pub frag_creates: u64,
    pub reasm_reqds: u64,
    pub reasm_oks: u64,
    pub reasm_fails: u64,
    /// Addresses found duplicated by DAD (RFC 4862 section 5.4.5).
    pub dad_duplicates: u64,
    /// Packets dropped because a neighbour's hold queue was full.
    pub nd_hold_drops: u64,
    /// Neighbours that never answered resolution.
    pub nd_resolve_failures: u64,
    /// Neighbour entries evicted to make room.
    pub nd_evictions: u64,
}

/// The ICMPv6 counters of `netstat -s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmp6Stats {
    pub in_msgs: u64,
    /// Short, bad checksum, or failing the validity checks of its type.
    pub in_errors: u64,
    pub in_by_type: [u64; 256],
    pub out_msgs: u64,
    pub out_by_type: [u64; 256],
    /// Errors not sent because of the rate limit (RFC 4443 section 2.4 (f)).
    pub rate_limited: u64,
    /// Errors not sent because RFC 4443 section 2.4 (e) forbids them.
    pub err_suppressed: u64,
    /// ND messages that failed RFC 4861 section 7.1 / 6.1 validation.
    pub nd_invalid: u64,
    /// Packet Too Big messages that lowered a path MTU.
    pub pmtu_updates: u64,
}

impl Default for Icmp6Stats {
    fn default() -> Self {
        Icmp6Stats {
            in_msgs: 0,
            in_errors: 0,
            in_by_type: [0; 256],
            out_msgs: 0,
            out_by_type: [0; 256],
            rate_limited: 0,
            err_suppressed: 0,
            nd_invalid: 0,
            pmtu_updates: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PmtuEntry {
    mtu: u32,
    expires: Instant,
}

/// A token bucket: `rate` events per second, bursts of up to one second's
/// worth. Credit is kept in nanoseconds so no floating point is needed.
#[derive(Debug, Default)]
pub(crate) struct TokenBucket {
    credit_ns: u64,
    last: Option<Instant>,
}

const SECOND_NS: u64 = 1_000_000_000;

impl TokenBucket {
    /// Takes one token if there is one. A rate of 0 allows nothing (as
    /// NetBSD's errppslimit does).
    pub(crate) fn take(&mut self, now: Instant, rate: u32) -> bool {
        if rate == 0 {
            return false;
        }
        let credit = match self.last {
            None => SECOND_NS,
            Some(t) => self
                .credit_ns
                .saturating_add(now.saturating_since(t).as_nanos().min(SECOND_NS as u128) as u64),
        };
        self.credit_ns = credit.min(SECOND_NS);
        self.last = Some(now);
        let cost = SECOND_NS / rate as u64;
        if self.credit_ns >= cost {
            self.credit_ns -= cost;
            true
        } else {
            false
        }
    }
}

/// IPv6 state of the stack beyond interfaces and routes.
pub struct Ipv6State {
    pub stats: Ipv6Stats,
    pub icmp_stats: Icmp6Stats,
    /// Datagrams under reassembly, keyed by (source, destination, ident)
    /// (RFC 8200 section 4.5).
    pub reasm: Reassembler<(Ipv6Addr, Ipv6Addr, u32)>,
    /// Next fragment identification; seeded at random on first use so that
    /// identifiers are not predictable across restarts (RFC 7739).
    frag_ident: Option<u32>,
    pmtu: BTreeMap<Ipv6Addr, PmtuEntry>,
    pub(crate) err_bucket: TokenBucket,
    /// The time of the last call that had a context: listings made without
    /// one (`ndp -an`) show time left relative to it.
    pub(crate) now: Instant,
}

impl Ipv6State {
    pub fn new(config: &Config) -> Ipv6State {
        Ipv6State {
            stats: Ipv6Stats::default(),
            icmp_stats: Icmp6Stats::default(),
            reasm: Reassembler::new(
                config.reass_max_bytes as usize,
                Duration::from_secs(config.reass_timeout_secs as u64),
            ),
            frag_ident: None,
            pmtu: BTreeMap::new(),
            err_bucket: TokenBucket::default(),
            now: Instant::ZERO,
        }
    }

    fn next_ident(&mut self, ctx: &mut impl Ctx) -> u32 {
        let id = match self.frag_ident {
            Some(id) => id,
            None => ctx.random_u64() as u32,
        };
        self.frag_ident = Some(id.wrapping_add(1));
        id
    }

    /// The path MTU learned for `dst`, if any.
    pub fn pmtu(&self, dst: &Ipv6Addr) -> Option<u32> {
        self.pmtu.get(dst).map(|e| e.mtu)
    }

    /// A Packet Too Big said the path to `dst` carries `mtu`. Never below
    /// the IPv6 minimum, never raised by a PTB (RFC 8201 section 4).
    /// Returns whether the cache changed.
    pub(crate) fn pmtu_update(&mut self, now: Instant, dst: Ipv6Addr, mtu: u32, link: u32) -> bool {
        let mtu = mtu.max(MIN_MTU as u32);
        let current = self.pmtu(&dst).unwrap_or(link);
        if mtu >= current {
            return false;
        }
        if !self.pmtu.contains_key(&dst) && self.pmtu.len() >= MAX_PMTU_ENTRIES {
            // Forget the entry closest to expiring: it is the least fresh.
            if let Some(k) = self
                .pmtu
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| *k)
            {
                self.pmtu.remove(&k);
            }
        }
        self.pmtu.insert(
            dst,
            PmtuEntry {
                mtu,
                expires: now + PMTU_EXPIRY,
            },
        );
        true
    }
}

/// The scope of an address for RFC 6724: multicast scopes from the address,
/// link-local (and the loopback address, section 3.1) 2, site-local 5,
/// everything else global 14.
pub fn scope6(a: &Ipv6Addr) -> u8 {
    if a.is_multicast() {
        a.octets()[1] & 0x0f
    } else if a.is_loopback() || a.is_unicast_link_local() {
        2
    } else if a.segments()[0] & 0xffc0 == 0xfec0 {
        5
    } else {
        14
    }
}

/// The solicited-node multicast group of `a` (RFC 4291 section 2.7.1).
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

pub fn is_solicited_node(a: &Ipv6Addr) -> bool {
    let s = a.segments();
    s[0] == 0xff02 && s[1..5] == [0, 0, 0, 0] && s[5] == 1 && s[6] & 0xff00 == 0xff00
}

/// The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A):
/// ff:fe in the middle and the universal/local bit inverted.
pub fn eui64_iid(mac: Mac) -> u64 {
    let m = mac.0;
    u64::from_be_bytes([m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]])
}

/// The link-local address of a MAC: fe80::/64 with its EUI-64 identifier.
pub fn link_local_from_mac(mac: Mac) -> Ipv6Addr {
    Ipv6Addr::from((0xfe80u128 << 112) | eui64_iid(mac) as u128)
}

pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub(crate) const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES_IFLOCAL: Ipv6Addr = Ipv6Addr::new(0xff01, 0, 0, 0, 0, 0, 0, 1);
const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// MLDv2 record types (RFC 3810 section 5.2.12): exclude no source (join,
/// listen to all) and include no source (leave).
pub(crate) const MLD_CHANGE_TO_INCLUDE: u8 = 3;
pub(crate) const MLD_CHANGE_TO_EXCLUDE: u8 = 4;

fn common_prefix_len(a: &Ipv6Addr, b: &Ipv6Addr) -> u32 {
    (u128::from(*a) ^ u128::from(*b)).leading_zeros()
}

/// What a fragment header did to the packet being walked.
enum FragStep {
    /// An atomic fragment (offset 0, no more): continue with this header.
    Atomic(u8),
    /// The datagram is whole: walk this packet from `off` with next header
    /// `nh`, whose next-header field is at `nh_at`.
    Whole {
        pkt: PktBuf,
        nh: u8,
        off: usize,
        nh_at: usize,
    },
}

/// Where a packet should go after the destination check.
enum Disposition {
    Local { nd_only: bool },
    Forward,
    Drop,
}

impl Stack {
    pub(crate) fn ipv6_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        mut pkt: PktBuf,
        l2: L2Info,
    ) {
        self.v6.now = ctx.now();
        self.v6.stats.in_receives += 1;
        let Some(h) = Ipv6Hdr::parse_checked(pkt.data()) else {
            self.v6.stats.in_hdr_errors += 1;
            return;
        };
        let (src, dst, plen) = (h.src(), h.dst(), h.payload_len());
        // A zero payload length with a hop-by-hop header would be a
        // jumbogram (RFC 2675), which Ethernet cannot carry: it just trims
        // to the header and the walk below finds nothing.
        pkt.truncate(HEADER_LEN + plen);

        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        let loopback = iface.kind == IfKind::Loopback;
        if !loopback && (iface.mtu as usize) < MIN_MTU {
            // IPv6 is off on links below its minimum MTU (RFC 8200 section 5).
            self.v6.stats.in_discards += 1;
            return;
        }
        // A multicast source is never valid (RFC 4291 section 2.7); the
        // loopback address never appears on a real link (section 2.5.3);
        // v4-mapped addresses never appear on the wire (RFC 4038 section 4.2).
        let mapped = |a: &Ipv6Addr| a.to_ipv4_mapped().is_some();
        if src.is_multicast()
            || dst.is_unspecified()
            || mapped(&src)
            || mapped(&dst)
            || (!loopback && (src.is_loopback() || dst.is_loopback()))
        {
            self.v6.stats.in_addr_errors += 1;
            return;
        }

        match self.ipv6_disposition(ifindex, &dst) {
            Disposition::Local { nd_only } => {
                if dst.is_multicast() {
                    self.v6.stats.in_multicast += 1;
                }
                self.ipv6_local_input(ctx, ifindex, pkt, l2, nd_only);
            }
            Disposition::Forward => self.ipv6_forward(ctx, ifindex, pkt, l2),
            Disposition::Drop => {}
        }
    }

    fn ipv6_disposition(&mut self, ifindex: IfIndex, dst: &Ipv6Addr) -> Disposition {
        if dst.is_multicast() {
            if self.ipv6_is_member(ifindex, dst) {
                return Disposition::Local { nd_only: false };
            }
            // No multicast routing: groups we are not in are not for us.
            self.v6.stats.in_discards += 1;
            return Disposition::Drop;
        }
        let ours = self
            .interfaces()
            .find_map(|i| i.addr6(dst).map(|a| (i.index, a.state)));
        match ours {
            // A link-local address is only ours on its own link (RFC 4291
            // section 2.5.6); lo0 carries our own traffic to any of them.
            Some((home, _))
                if dst.is_unicast_link_local()
                    && home != ifindex
                    && ifindex != crate::LOOPBACK_IFINDEX =>
            {
                self.v6.stats.in_addr_errors += 1;
                Disposition::Drop
            }
            Some((_, Addr6State::Preferred | Addr6State::Deprecated)) => {
                Disposition::Local { nd_only: false }
            }
            // RFC 4862 section 5.4: a tentative address receives only the
            // ND messages that DAD needs.
            Some((_, Addr6State::Tentative)) => Disposition::Local { nd_only: true },
            Some((_, Addr6State::Duplicated)) | None => {
                if self.config.forwarding6 {
                    Disposition::Forward
                } else {
                    self.v6.stats.in_addr_errors += 1;
                    Disposition::Drop
                }
            }
        }
    }

    /// Whether interface `ifindex` listens to multicast group `g`.
    pub fn ipv6_is_member(&self, ifindex: IfIndex, g: &Ipv6Addr) -> bool {
        if *g == ALL_NODES || *g == ALL_NODES_IFLOCAL {
            return true;
        }
        if *g == ALL_ROUTERS && self.config.forwarding6 {
            return true;
        }
        // Groups that UDP sockets joined on this interface.
        if self.udp.is_member6(ifindex, g) {
            return true;
        }
        self.iface(ifindex).is_some_and(|i| {
            i.nd.groups.contains(g)
                || i.addrs6
                    .iter()
                    .any(|a| a.state != Addr6State::Duplicated && solicited_node(&a.addr) == *g)
        })
    }

    /// Walks the extension headers of a packet for us and hands the upper
    /// layer to its protocol (RFC 8200 section 4).
    fn ipv6_local_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        mut pkt: PktBuf,
        l2: L2Info,
        nd_only: bool,
    ) {
        let Some(&first_nh) = pkt.data().get(6) else {
            return;
        };
        let mut nh = first_nh;
        let mut off = HEADER_LEN;
        // Offset of the next-header field naming `nh`: the pointer of a
        // parameter problem about an unknown header (RFC 8200 section 4).
        let mut nh_at = 6usize;
        for _ in 0..MAX_EXT_HEADERS {
            match nh {
                ipproto::HOPOPTS | ipproto::DSTOPTS => {
                    if nh == ipproto::HOPOPTS && off != HEADER_LEN {
                        // Hop-by-hop options only right after the IPv6 header
                        // (RFC 8200 section 4.1).
                        self.v6.stats.in_hdr_errors += 1;
                        self.icmp6_error(
                            ctx,
                            ifindex,
                            pkt.data(),
                            l2.multicast,
                            icmp6::PARAM_PROBLEM,
                            icmp6::PARAM_NEXTHDR,
                            nh_at as u32,
                        );
                        return;
                    }
                    let Some(len) = ext_len(pkt.data(), off) else {
                        self.v6.stats.in_hdr_errors += 1;
                        return;
                    };
                    if !self.ipv6_options(ctx, ifindex, pkt.data(), off, len, l2) {
                        return;
                    }
                    nh_at = off;
                    nh = pkt.data()[off];
                    off += len;
                }
                ipproto::ROUTING => {
                    let d = pkt.data();
                    let (Some(len), Some(&segs_left)) = (ext_len(d, off), d.get(off + 3)) else {
                        self.v6.stats.in_hdr_errors += 1;
                        return;
                    };
                    if segs_left != 0 {
                        // We implement no routing type (type 0 is deprecated,
                        // RFC 5095): with segments left, RFC 8200 section 4.4
                        // says parameter problem code 0 at the routing type.
                        self.v6.stats.in_hdr_errors += 1;
                        self.icmp6_error(
                            ctx,
                            ifindex,
                            d,
                            l2.multicast,
                            icmp6::PARAM_PROBLEM,
                            icmp6::PARAM_HEADER,
                            (off + 2) as u32,
                        );
                        return;
                    }
                    nh_at = off;
                    nh = d[off];
                    off += len;
                }
                ipproto::FRAGMENT => match self.ipv6_fragment_input(ctx, ifindex, &pkt, off, l2) {
                    None => return,
                    Some(FragStep::Atomic(next)) => {
                        nh_at = off;
                        nh = next;
                        off += FRAG_HEADER_LEN;
                    }
                    Some(FragStep::Whole {
                        pkt: whole,
                        nh: n,
                        off: o,
                        nh_at: at,
                    }) => {
                        pkt = whole;
                        nh = n;
                        off = o;
                        nh_at = at;
                    }
                },
                ipproto::NONE => {
                    self.v6.stats.in_delivers += 1;
                    return;
                }
                ipproto::ICMPV6 => {
                    self.v6.stats.in_delivers += 1;
                    self.icmp6_input(ctx, ifindex, pkt.data(), off, nd_only);
                    return;
                }
                ipproto::UDP | ipproto::TCP if !nd_only => {
                    self.v6.stats.in_delivers += 1;
                    let h = Ipv6Hdr::parse_checked(pkt.data());
                    let (src, dst, hop) = match h {
                        Some(h) => (h.src(), h.dst(), h.hop_limit),
                        None => return,
                    };
                    let l4 = L4Rx {
                        ifindex,
                        src: IpAddr::V6(src),
                        dst: IpAddr::V6(dst),
                        l4_off: off,
                        hop,
                        l2_multicast: l2.multicast,
                        to_group: dst.is_multicast(),
                    };
                    if nh == ipproto::UDP {
                        self.udp_input(ctx, pkt, l4);
                    } else {
                        self.tcp_input(ctx, pkt, l4);
                    }
                    return;
                }
                _ => {
                    if nd_only {
                        self.v6.stats.in_discards += 1;
                        return;
                    }
                    // No transport here takes it: RFC 8200 section 4,
                    // parameter problem code 1 pointing at the field.
                    self.v6.stats.in_unknown_protos += 1;
                    self.icmp6_error(
                        ctx,
                        ifindex,
                        pkt.data(),
                        l2.multicast,
                        icmp6::PARAM_PROBLEM,
                        icmp6::PARAM_NEXTHDR,
                        nh_at as u32,
                    );
                    return;
                }
            }
        }
        self.v6.stats.in_hdr_errors += 1;
    }

    /// Processes the options of a hop-by-hop or destination options header
    /// at `off` (`len` bytes). Returns whether the packet goes on
    /// (RFC 8200 section 4.2: the two top bits of an unknown option's type
    /// say what to do).
    fn ipv6_options(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        pkt: &[u8],
        off: usize,
        len: usize,
        l2: L2Info,
    ) -> bool {
        let end = off + len;
        let mut i = off + 2;
        while i < end {
            let Some(&ty) = pkt.get(i) else {
                return false;
            };
            if ty == 0 {
                i += 1; // Pad1
                continue;
            }
            let Some(&olen) = pkt.get(i + 1) else {
                self.v6.stats.in_hdr_errors += 1;
                return false;
            };
            let olen = olen as usize + 2;
            if i + olen > end {
                self.v6.stats.in_hdr_errors += 1;
                return false;
            }
            // PadN (1) and router alert (5, RFC 2711) are understood.
            if ty != 1 && ty != 5 {
                let dst_multicast = pkt.get(24).is_some_and(|&b| b == 0xff);
                match ty >> 6 {
                    0 => {}
                    1 => {
                        self.v6.stats.in_hdr_errors += 1;
                        return false;
                    }
                    action => {
                        self.v6.stats.in_hdr_errors += 1;
                        if action == 2 || !dst_multicast {
                            self.icmp6_error(
                                ctx,
                                ifindex,
                                pkt,
                                l2.multicast,
                                icmp6::PARAM_PROBLEM,
                                2,
                                i as u32,
                            );
                        }
                        return false;
                    }
                }
            }
            i += olen;
        }
        true
    }

    /// A fragment header at `off` (RFC 8200 section 4.5).
    fn ipv6_fragment_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        pkt: &PktBuf,
        off: usize,
        l2: L2Info,
    ) -> Option<FragStep> {
        let d = pkt.data();
        let Some(fh) = d
            .get(off..off + FRAG_HEADER_LEN)
            .and_then(|b| FragHdr::read_from_bytes(b).ok())
        else {
            self.v6.stats.in_hdr_errors += 1;
            return None;
        };
        let frag = &d[off + FRAG_HEADER_LEN..];
        if fh.offset() == 0 && !fh.more() {
            // An atomic fragment is processed as a whole packet (RFC 6946).
            return Some(FragStep::Atomic(fh.next_header));
        }
        self.v6.stats.reasm_reqds += 1;
        if fh.more() && (frag.is_empty() || !frag.len().is_multiple_of(8)) {
            // RFC 8200 section 4.5: code 0 pointing at the payload length.
            self.v6.stats.reasm_fails += 1;
            self.icmp6_error(
                ctx,
                ifindex,
                d,
                l2.multicast,
                icmp6::PARAM_PROBLEM,
                icmp6::PARAM_HEADER,
                4,
            );
            return None;
        }
        if fh.offset() + frag.len() > crate::reasm::MAX_DATAGRAM {
            // ... and at the fragment offset when it would pass 65535.
            self.v6.stats.reasm_fails += 1;
            self.icmp6_error(
                ctx,
                ifindex,
                d,
                l2.multicast,
                icmp6::PARAM_PROBLEM,
                icmp6::PARAM_HEADER,
                (off + 2) as u32,
            );
            return None;
        }
        let (Some(src), Some(dst)) = (addr_at(d, 8), addr_at(d, 24)) else {
            return None;
        };
        // Follow sysctl changes.
        self.v6.reasm.max_bytes = self.config.reass_max_bytes as usize;
        self.v6.reasm.timeout = Duration::from_secs(self.config.reass_timeout_secs as u64);
        let key = (src, dst, fh.ident.get());
        // The unfragmentable part and the fragment header itself are kept
        // with the first fragment: on timeout they and its data are exactly
        // the packet to quote in the time exceeded message.
        let first = &d[..off + FRAG_HEADER_LEN];
        match self
            .v6
            .reasm
            .insert(ctx.now(), key, fh.offset(), fh.more(), frag, first)
        {
            Outcome::Pending => None,
            Outcome::Dropped => {
                self.v6.stats.reasm_fails += 1;
                None
            }
            Outcome::Complete { first, payload } => {
                let r = self.ipv6_rebuild(&first, &payload);
                match r {
                    Some(step) => {
                        self.v6.stats.reasm_oks += 1;
                        Some(step)
                    }
                    None => {
                        self.v6.stats.reasm_fails += 1;
                        None
                    }
                }
            }
        }
    }

    /// Puts a reassembled datagram back together: the unfragmentable part
    /// with the fragment header's next header patched in, then the payload.
    fn ipv6_rebuild(&mut self, first: &[u8], payload: &[u8]) -> Option<FragStep> {
        let unfrag_len = first.len().checked_sub(FRAG_HEADER_LEN)?;
        if unfrag_len < HEADER_LEN {
            return None;
        }
        let next = *first.get(unfrag_len)?;
        // Find the next-header field that named the fragment header.
        let mut nh_at = 6;
        let mut o = HEADER_LEN;
        while o < unfrag_len {
            nh_at = o;
            o += ext_len(first, o)?;
        }
        if o != unfrag_len {
            return None;
        }
        let total = unfrag_len + payload.len();
        if total - HEADER_LEN > u16::MAX as usize {
            return None;
        }
        let mut pkt = self.pool.alloc_for(total);
        let b = pkt.try_append(total)?;
        b[..unfrag_len].copy_from_slice(&first[..unfrag_len]);
        b[unfrag_len..].copy_from_slice(payload);
        b[nh_at] = next;
        b[4..6].copy_from_slice(&((total - HEADER_LEN) as u16).to_be_bytes());
        Some(FragStep::Whole {
            pkt,
            nh: next,
            off: unfrag_len,
            nh_at,
        })
    }

    /// Forwards a packet not for us (RFC 8200 section 3, RFC 4443 for the
    /// errors). IPv6 routers never fragment (RFC 8200 section 5).
    fn ipv6_forward(&mut self, ctx: &mut impl Ctx, in_if: IfIndex, mut pkt: PktBuf, l2: L2Info) {
        let d = pkt.data();
        let (Some(src), Some(dst), Some(&hop)) = (addr_at(d, 8), addr_at(d, 24), d.get(7)) else {
            return;
        };
        if dst.is_unicast_link_local() || l2.multicast {
            // Link-local destinations stay on their link; a unicast packet
            // in a link-layer multicast frame is not ours to route.
            self.v6.stats.in_addr_errors += 1;
            return;
        }
        if hop <= 1 {
            self.v6.stats.hop_limit_exceeded += 1;
            self.icmp6_error(
                ctx,
                in_if,
                d,
                l2.multicast,
                icmp6::TIME_EXCEEDED,
                icmp6::EXC_HOPLIMIT,
                0,
            );
            return;
        }
        let Ok((out_if, nexthop)) = self.ipv6_route_for(&dst, None) else {
            self.v6.stats.no_routes += 1;
            self.icmp6_error(
                ctx,
                in_if,
                d,
                l2.multicast,
                icmp6::DEST_UNREACH,
                icmp6::UNREACH_NOROUTE,
                0,
            );
            return;
        };
        if out_if == crate::LOOPBACK_IFINDEX {
            return;
        }
        if src.is_unicast_link_local() && out_if != in_if {
            // RFC 4443 section 3.1 code 2: beyond the scope of the source.
            self.icmp6_error(ctx, in_if, d, l2.multicast, icmp6::DEST_UNREACH, 2, 0);
            return;
        }
        let mtu = self.ipv6_link_mtu(out_if);
        if pkt.len() > mtu {
            self.v6.stats.too_big += 1;
            self.icmp6_error(
                ctx,
                in_if,
                d,
                l2.multicast,
                icmp6::PACKET_TOO_BIG,
                0,
                mtu as u32,
            );
            return;
        }
        pkt.data_mut()[7] = hop - 1;
        self.v6.stats.forwarded += 1;
        self.ipv6_l2_send(ctx, out_if, nexthop, pkt);
    }

    /// The MTU IPv6 may use on `ifindex`: the interface MTU, lowered by a
    /// router advertisement's MTU option (RFC 4861 section 6.3.4).
    pub(crate) fn ipv6_link_mtu(&self, ifindex: IfIndex) -> usize {
        self.iface(ifindex).map_or(MIN_MTU, |i| {
            let m = i.nd.link_mtu.map_or(i.mtu, |l| l.min(i.mtu));
            m as usize
        })
    }

    /// The path MTU to `dst` through `ifindex`.
    pub fn ipv6_path_mtu(&self, ifindex: IfIndex, dst: &Ipv6Addr) -> usize {
        let link = self.ipv6_link_mtu(ifindex);
        match self.v6.pmtu(dst) {
            Some(p) => link.min(p as usize).max(MIN_MTU),
            None => link,
        }
    }

    /// The interface and next hop for `dst`: our own addresses go through
    /// lo0; link-local and multicast destinations stay on the interface
    /// given, the interface of a matching route, or the first running
    /// Ethernet interface.
    pub(crate) fn ipv6_route_for(
        &self,
        dst: &Ipv6Addr,
        oif: Option<IfIndex>,
    ) -> Result<(IfIndex, Ipv6Addr), Error> {
        if dst.is_unspecified() {
            return Err(Error::Invalid("destination ::".into()));
        }
        if dst.is_loopback()
            || self.local_iface6(dst).is_some()
            || (dst.is_multicast() && scope6(dst) == 1)
        {
            return Ok((crate::LOOPBACK_IFINDEX, *dst));
        }
        if let Some(oif) = oif {
            if self.iface(oif).is_none() {
                return Err(Error::NoSuchInterface(format!("#{oif}")));
            }
            if dst.is_multicast() || dst.is_unicast_link_local() {
                return Ok((oif, *dst));
            }
            let via = self
                .routes6
                .iter()
                .find(|r| r.ifindex == oif && r.covers(*dst))
                .and_then(|r| r.gateway);
            return Ok((oif, via.unwrap_or(*dst)));
        }
        if dst.is_multicast() || dst.is_unicast_link_local() {
            let ifx = match self.routes6.lookup(*dst) {
                Some(r) => r.ifindex,
                None => self
                    .interfaces()
                    .find(|i| i.kind == IfKind::Ethernet && i.is_running())
                    .map(|i| i.index)
                    .ok_or(Error::NetUnreachable)?,
            };
            return Ok((ifx, *dst));
        }
        let r = self.routes6.lookup(*dst).ok_or(Error::NetUnreachable)?;
        Ok((r.ifindex, r.gateway.unwrap_or(*dst)))
    }

    /// Sends `payload` (the upper-layer header and data, in a buffer with
    /// headroom) to `dst` with next header `next`. The source is `src` or, if
    /// `None`, chosen by RFC 6724. The upper-layer checksum must already be
    /// filled in (see [`Stack::ipv6_select_source`]).
    #[allow(clippy::too_many_arguments)]
    pub fn ipv6_send(
        &mut self,
        ctx: &mut impl Ctx,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        next: u8,
        payload: PktBuf,
        hop_limit: Option<u8>,
    ) -> Result<(), Error> {
        self.ipv6_send_inner(ctx, None, src, dst, next, payload, hop_limit, None)
    }

    /// As [`Stack::ipv6_send`], out of interface `ifindex`: the scope of a
    /// link-local or multicast destination (`ping fe80::1%en0`).
    #[allow(clippy::too_many_arguments)]
    pub fn ipv6_send_on(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        next: u8,
        payload: PktBuf,
        hop_limit: Option<u8>,
    ) -> Result<(), Error> {
        self.ipv6_send_inner(ctx, Some(ifindex), src, dst, next, payload, hop_limit, None)
    }

    /// The output path. `mac` sends straight to that link-layer address
    /// without resolution (neighbour discovery's own probes and answers).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ipv6_send_inner(
        &mut self,
        ctx: &mut impl Ctx,
        oif: Option<IfIndex>,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        next: u8,
        payload: PktBuf,
        hop_limit: Option<u8>,
        mac: Option<Mac>,
    ) -> Result<(), Error> {
        self.v6.now = ctx.now();
        self.v6.stats.out_requests += 1;
        let (ifindex, nexthop) = match self.ipv6_route_for(&dst, oif) {
            Ok(r) => r,
            Err(e) => {
                self.v6.stats.no_routes += 1;
                return Err(e);
            }
        };
        let Some(iface) = self.iface(ifindex) else {
            return Err(Error::NetUnreachable);
        };
        if !iface.is_running() || (iface.kind == IfKind::Ethernet && (iface.mtu as usize) < MIN_MTU)
        {
            self.v6.stats.out_discards += 1;
            return Err(Error::NetUnreachable);
        }
        let default_hop = if dst.is_multicast() {
            1
        } else {
            iface.nd.cur_hop_limit.unwrap_or(self.config.hop_limit)
        };
        let hop = hop_limit.unwrap_or(default_hop);
        let src = match src {
            Some(s) => s,
            None => self
                .ipv6_select_source_on(&dst, Some(ifindex))
                .ok_or(Error::AddrNotAvailable)?,
        };
        if payload.len() > u16::MAX as usize {
            self.v6.stats.out_discards += 1;
            return Err(Error::MessageTooLarge);
        }
        let mtu = self.ipv6_path_mtu(ifindex, &dst);
        // A TCP segment for segmentation offload leaves cut to its MSS.
        let on_wire = HEADER_LEN + crate::ipv4::gso_segment_len(&payload);
        if on_wire <= mtu {
            let pkt = self.ipv6_push_header(payload, src, dst, next, hop)?;
            match mac {
                Some(m) => self.eth_output(ctx, ifindex, m, ethertype::IPV6, pkt),
                None => self.ipv6_l2_send(ctx, ifindex, nexthop, pkt),
            }
            return Ok(());
        }
        self.ipv6_fragment_output(ctx, ifindex, nexthop, src, dst, next, hop, mtu, payload)
    }

    /// Source fragmentation (RFC 8200 section 4.5): all of `payload` is the
    /// fragmentable part; each fragment is a buffer of its own with headroom.
    #[allow(clippy::too_many_arguments)]
    fn ipv6_fragment_output(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        nexthop: Ipv6Addr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        hop: u8,
        mtu: usize,
        payload: PktBuf,
    ) -> Result<(), Error> {
        if payload.gso_size().is_some() {
            // A TCP segment for segmentation offload whose pieces do not
            // fit: TCP shrinks its MSS on this error and sends again.
            self.v6.stats.frag_fails += 1;
            return Err(Error::MessageTooLarge);
        }
        let per_frag = (mtu.saturating_sub(HEADER_LEN + FRAG_HEADER_LEN)) & !7;
        if per_frag == 0 {
            self.v6.stats.frag_fails += 1;
            return Err(Error::MessageTooLarge);
        }
        let ident = self.v6.next_ident(ctx);
        // Fragments cannot carry a partial checksum: each would need the
        // whole packet's bytes.
        let mut payload = payload;
        payload.finish_checksum();
        let data = payload.data();
        let mut off = 0;
        while off < data.len() {
            let n = per_frag.min(data.len() - off);
            let more = off + n < data.len();
            let mut f = self.pool.alloc_for(FRAG_HEADER_LEN + n);
            let Some(b) = f.try_append(FRAG_HEADER_LEN + n) else {
                self.v6.stats.frag_fails += 1;
                return Err(Error::NoBuffers);
            };
            b[..FRAG_HEADER_LEN].copy_from_slice(FragHdr::new(next, off, more, ident).as_bytes());
            b[FRAG_HEADER_LEN..].copy_from_slice(&data[off..off + n]);
            let f = self.ipv6_push_header(f, src, dst, ipproto::FRAGMENT, hop)?;
            self.v6.stats.frag_creates += 1;
            self.ipv6_l2_send(ctx, ifindex, nexthop, f);
            off += n;
        }
        self.v6.stats.frag_oks += 1;
        Ok(())
    }

    /// Puts the IPv6 header in front of `payload`, moving it to a buffer
    /// with headroom if it has none.
    fn ipv6_push_header(
        &mut self,
        mut payload: PktBuf,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        hop: u8,
    ) -> Result<PktBuf, Error> {
        let len = payload.len();
        let hdr = Ipv6Hdr::new(src, dst, next, hop, len);
        if payload.headroom() < HEADER_LEN + iopkt_wire::ethernet::HEADER_LEN {
            let mut p = self.pool.alloc_for(len);
            let Some(b) = p.try_append(len) else {
                return Err(Error::NoBuffers);
            };
            b.copy_from_slice(payload.data());
            p.copy_offload_from(&payload);
            payload = p;
        }
        match payload.prepend(HEADER_LEN) {
            Some(h) => h.copy_from_slice(hdr.as_bytes()),
            None => return Err(Error::NoBuffers),
        }
        Ok(payload)
    }

    /// Hands a complete IPv6 packet to layer 2: lo0 loops it back, multicast
    /// maps to its MAC (RFC 2464 section 7), unicast goes through neighbour
    /// discovery.
    pub(crate) fn ipv6_l2_send(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        nexthop: Ipv6Addr,
        pkt: PktBuf,
    ) {
        let Some(kind) = self.iface(ifindex).map(|i| i.kind) else {
            return;
        };
        if kind == IfKind::Loopback {
            self.eth_output(ctx, ifindex, Mac::ZERO, ethertype::IPV6, pkt);
        } else if nexthop.is_multicast() {
            self.eth_output(
                ctx,
                ifindex,
                Mac::ipv6_multicast(nexthop),
                ethertype::IPV6,
                pkt,
            );
        } else {
            self.nd_resolve_send(ctx, ifindex, nexthop, pkt);
        }
    }

    /// The source address the stack would use to reach `dst` (RFC 6724).
    pub fn ipv6_select_source(&self, dst: &Ipv6Addr) -> Option<Ipv6Addr> {
        self.ipv6_select_source_on(dst, None)
    }

    /// RFC 6724 section 5 among our usable addresses, for leaving through
    /// `oif` (or the interface of the route). Rules applied: 1 same address,
    /// 2 appropriate scope, 3 avoid deprecated, 5 prefer the outgoing
    /// interface, 8 longest matching prefix. Tentative and duplicated
    /// addresses are never candidates.
    pub fn ipv6_select_source_on(&self, dst: &Ipv6Addr, oif: Option<IfIndex>) -> Option<Ipv6Addr> {
        let oif = oif.or_else(|| self.ipv6_route_for(dst, None).ok().map(|r| r.0));
        let dscope = scope6(dst);
        let mut best: Option<(Ipv6Addr, bool, bool)> = None; // (addr, deprecated, on oif)
        for i in self.interfaces() {
            for a in i.addrs6.iter().filter(|a| a.is_usable()) {
                if a.addr == *dst {
                    return Some(a.addr); // rule 1
                }
                if a.addr.is_loopback() && !dst.is_loopback() {
                    continue;
                }
                let on_oif = oif == Some(i.index);
                // Link-local sources and link-scope destinations only make
                // sense on the outgoing link (RFC 6724 section 4).
                let link = scope6(&a.addr) <= 2 || dscope <= 2;
                if link && oif.is_some() && !on_oif && oif != Some(crate::LOOPBACK_IFINDEX) {
                    continue;
                }
                let cand = (a.addr, a.state == Addr6State::Deprecated, on_oif);
                best = Some(match best {
                    None => cand,
                    Some(b) => {
                        if source_better(&cand, &b, dst, dscope) {
                            cand
                        } else {
                            b
                        }
                    }
                });
            }
        }
        best.map(|b| b.0)
    }

    pub(crate) fn ipv6_if_up(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let now = ctx.now();
        self.v6.now = now;
        let dad = self.config.dad_count;
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        if i.kind == IfKind::Loopback || (i.mtu as usize) < MIN_MTU {
            return;
        }
        let mac = i.mac;
        // RFC 4862 section 5.4: DAD runs on every address of an interface
        // that is (re-)enabled, after a random delay (section 5.4.2).
        let mut restart = Vec::new();
        for a in i.addrs6.iter_mut() {
            if dad > 0 {
                a.state = Addr6State::Tentative;
                a.dad_probes_left = dad;
                restart.push(a.addr);
            }
        }
        for a in restart {
            let delay = Duration::from_millis(ctx.random_below(1000));
            if let Some(x) = self
                .iface_mut(ifindex)
                .and_then(|i| i.addrs6.iter_mut().find(|x| x.addr == a))
            {
                x.dad_next = Some(now + delay);
            }
        }
        let ll = link_local_from_mac(mac);
        if self.iface(ifindex).is_some_and(|i| i.addr6(&ll).is_none()) {
            let _ = self.add_addr6_full(ctx, ifindex, ll, 64, true, None, None);
        }
        self.ipv6_sync_groups(ctx, ifindex);
        if self.config.accept_rtadv && !self.config.forwarding6 {
            // RFC 4861 section 6.3.7: up to MAX_RTR_SOLICITATIONS after a
            // random delay of up to MAX_RTR_SOLICITATION_DELAY.
            let delay = Duration::from_millis(ctx.random_below(1000));
            if let Some(i) = self.iface_mut(ifindex) {
                i.nd.rs_left = crate::ndp::MAX_RTR_SOLICITATIONS;
                i.nd.rs_next = Some(now + delay);
            }
        }
    }

    pub(crate) fn ipv6_if_down(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        self.v6.now = ctx.now();
        self.nd_flush_interface(ifindex);
        let dad = self.config.dad_count;
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        if i.kind == IfKind::Loopback {
            return;
        }
        let autoconf: Vec<Ipv6Addr> = i
            .addrs6
            .iter()
            .filter(|a| a.autoconf)
            .map(|a| a.addr)
            .collect();
        // Manual addresses stay, to be checked again when the link returns.
        for a in i.addrs6.iter_mut() {
            a.dad_next = None;
            if dad > 0 {
                a.state = Addr6State::Tentative;
                a.dad_probes_left = dad;
            }
        }
        for a in autoconf {
            let _ = self.del_addr6(ifindex, a);
        }
        if let Some(i) = self.iface_mut(ifindex) {
            i.nd.groups.clear();
        }
    }

    /// An address was configured: join its solicited-node group and start
    /// duplicate address detection (RFC 4862 section 5.4).
    pub(crate) fn ipv6_addr_added(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv6Addr) {
        let now = ctx.now();
        self.v6.now = now;
        let Some(i) = self.iface(ifindex) else {
            return;
        };
        let running = i.is_running();
        let autoconf = i.addr6(&addr).is_some_and(|a| a.autoconf);
        // An address made by autoconfiguration waits a random moment so
        // that hosts starting together do not probe together (RFC 4862
        // section 5.4.2); one typed by an operator is checked at once.
        let delay = if autoconf {
            Duration::from_millis(ctx.random_below(1000))
        } else {
            Duration::ZERO
        };
        if let Some(a) = self
            .iface_mut(ifindex)
            .and_then(|i| i.addrs6.iter_mut().find(|a| a.addr == addr))
            && a.state == Addr6State::Tentative
        {
            a.dad_next = running.then_some(now + delay);
        }
        if running {
            self.ipv6_sync_groups(ctx, ifindex);
        }
    }

    /// An address went away (`del_addr6`, lifetime end): forget groups no
    /// address needs any more.
    pub(crate) fn ipv6_addr_removed(&mut self, ifindex: IfIndex) {
        if let Some(i) = self.iface_mut(ifindex) {
            let addrs: Vec<Ipv6Addr> = i.addrs6.iter().map(|a| solicited_node(&a.addr)).collect();
            i.nd.groups.retain(|g| *g == ALL_NODES || addrs.contains(g));
        }
    }

    /// Brings the joined groups of `ifindex` in line with its addresses and
    /// reports new ones (MLDv2, RFC 3810 section 6.1).
    pub(crate) fn ipv6_sync_groups(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        if i.kind == IfKind::Loopback {
            return;
        }
        let mut want = vec![ALL_NODES];
        for a in &i.addrs6 {
            let g = solicited_node(&a.addr);
            if a.state != Addr6State::Duplicated && !want.contains(&g) {
                want.push(g);
            }
        }
        let new: Vec<Ipv6Addr> = want
            .iter()
            .filter(|g| !i.nd.groups.contains(g))
            .copied()
            .collect();
        i.nd.groups = want;
        // The all-nodes group is never reported (RFC 3810 section 6).
        let report: Vec<Ipv6Addr> = new.into_iter().filter(|g| *g != ALL_NODES).collect();
        if !report.is_empty() {
            self.mld_report(ctx, ifindex, &report, MLD_CHANGE_TO_EXCLUDE);
        }
    }

    /// An unsolicited MLDv2 report of `groups` (RFC 3810 section 5.2): one
    /// record of type `record` each (CHANGE_TO_EXCLUDE to join,
    /// CHANGE_TO_INCLUDE with no sources to leave), with a router alert
    /// hop-by-hop option.
    ///
    /// Minimal on purpose: sent once (no robustness retransmissions), no
    /// answers to queries, no Done/leave reports. Enough for switches that
    /// snoop MLD to forward our solicited-node traffic.
    pub(crate) fn mld_report(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        groups: &[Ipv6Addr],
        record: u8,
    ) {
        let src = self
            .iface(ifindex)
            .and_then(|i| i.link_local6())
            .unwrap_or(Ipv6Addr::UNSPECIFIED);
        let icmp_len = 8 + groups.len() * 20;
        let hbh: [u8; 8] = [ipproto::ICMPV6, 0, 5, 2, 0, 0, 1, 0];
        let mut p = self.pool.alloc_for(hbh.len() + icmp_len);
        let Some(b) = p.try_append(hbh.len() + icmp_len) else {
            return;
        };
        b.fill(0);
        b[..8].copy_from_slice(&hbh);
        let m = &mut b[8..];
        m[0] = icmp6::MLDV2_REPORT;
        m[6..8].copy_from_slice(&(groups.len() as u16).to_be_bytes());
        for (k, g) in groups.iter().enumerate() {
            let r = &mut m[8 + k * 20..8 + (k + 1) * 20];
            r[0] = record;
            r[4..20].copy_from_slice(&g.octets());
        }
        let c = crate::icmp6::icmp6_checksum(src, ALL_MLDV2_ROUTERS, m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        self.v6.icmp_stats.out_msgs += 1;
        self.v6.icmp_stats.out_by_type[icmp6::MLDV2_REPORT as usize] += 1;
        let _ = self.ipv6_send_inner(
            ctx,
            Some(ifindex),
            Some(src),
            ALL_MLDV2_ROUTERS,
            ipproto::HOPOPTS,
            p,
            Some(1),
            None,
        );
    }

    /// Timers: ND, DAD, router solicitation, address lifetimes, reassembly,
    /// path MTU.
    pub(crate) fn ipv6_poll(&mut self, ctx: &mut impl Ctx) {
        let now = ctx.now();
        self.v6.now = now;
        for (first, data0) in self.v6.reasm.expire(now) {
            self.v6.stats.reasm_fails += 1;
            // RFC 8200 section 4.5: time exceeded code 1, only when the
            // first fragment arrived; quote it as received.
            let mut quote = first;
            quote.extend_from_slice(&data0);
            self.icmp6_error(
                ctx,
                0,
                &quote,
                false,
                icmp6::TIME_EXCEEDED,
                icmp6::EXC_REASSEMBLY,
                0,
            );
        }
        self.v6.pmtu.retain(|_, e| e.expires > now);
        let idxs: Vec<IfIndex> = self.interfaces().map(|i| i.index).collect();
        for ifindex in idxs {
            self.ipv6_addr_timers(ctx, ifindex, now);
            self.nd_poll_interface(ctx, ifindex, now);
        }
    }

    /// DAD probes and address lifetimes of one interface.
    fn ipv6_addr_timers(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, now: Instant) {
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        let mut probes = Vec::new();
        let mut expired = Vec::new();
        let retrans = i.nd.retrans_timer();
        for a in i.addrs6.iter_mut() {
            if a.valid_until.is_some_and(|t| t <= now) {
                expired.push(a.addr);
                continue;
            }
            if a.state == Addr6State::Tentative && a.dad_next.is_some_and(|t| t <= now) {
                if a.dad_probes_left > 0 {
                    a.dad_probes_left -= 1;
                    a.dad_next = Some(now + retrans);
                    probes.push(a.addr);
                } else {
                    // RetransTimer after the last probe with no answer: the
                    // address is ours (RFC 4862 section 5.4).
                    a.dad_next = None;
                    a.state = Addr6State::Preferred;
                }
            }
            if a.state == Addr6State::Preferred && a.preferred_until.is_some_and(|t| t <= now) {
                a.state = Addr6State::Deprecated;
            }
        }
        for a in probes {
            self.nd_send_dad(ctx, ifindex, a);
        }
        for a in expired {
            let _ = self.del_addr6(ifindex, a);
        }
    }

    pub(crate) fn ipv6_next_deadline(&self) -> Option<Instant> {
        let mut d = self.v6.reasm.next_deadline();
        d = earliest(d, self.v6.pmtu.values().map(|e| e.expires).min());
        for i in self.interfaces() {
            for a in &i.addrs6 {
                d = earliest(d, a.valid_until);
                if a.state == Addr6State::Tentative {
                    d = earliest(d, a.dad_next);
                }
                if a.state == Addr6State::Preferred {
                    d = earliest(d, a.preferred_until);
                }
            }
            d = earliest(d, i.nd.next_deadline());
        }
        d
    }
}

/// RFC 6724 section 5, rules 2, 3, 5 and 8: is candidate `a` better than `b`?
fn source_better(
    a: &(Ipv6Addr, bool, bool),
    b: &(Ipv6Addr, bool, bool),
    dst: &Ipv6Addr,
    dscope: u8,
) -> bool {
    let (sa, sb) = (scope6(&a.0), scope6(&b.0));
    let rule2 = match sa.cmp(&sb) {
        Ordering::Less => {
            if sa < dscope {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        Ordering::Greater => {
            if sb < dscope {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        Ordering::Equal => Ordering::Equal,
    };
    if rule2 != Ordering::Equal {
        return rule2 == Ordering::Greater;
    }
    if a.1 != b.1 {
        return !a.1;
    }
    if a.2 != b.2 {
        return a.2;
    }
    common_prefix_len(&a.0, dst) > common_prefix_len(&b.0, dst)
}

/// The length of the generic extension header at `off`, if it fits.
pub(crate) fn ext_len(pkt: &[u8], off: usize) -> Option<usize> {
    let len = (*pkt.get(off + 1)? as usize + 1) * 8;
    (off + len <= pkt.len()).then_some(len)
}

/// The IPv6 address at `off` of `b`.
pub(crate) fn addr_at(b: &[u8], off: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(a))
}

/// The network part of `a` under `plen`.
pub(crate) fn prefix_of(a: &Ipv6Addr, plen: u8) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(*a) & prefix_mask_v6(plen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn modified_eui64_and_solicited_node() {
        // RFC 4291 appendix A: 34:56:78:9a:bc:de -> 3656:78ff:fe9a:bcde.
        let mac = Mac([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]);
        assert_eq!(link_local_from_mac(mac), a("fe80::3656:78ff:fe9a:bcde"));
        assert_eq!(
            solicited_node(&a("2001:db8::1:800:200e:8c6c")),
            a("ff02::1:ff0e:8c6c")
        );
        assert!(is_solicited_node(&a("ff02::1:ff0e:8c6c")));
        assert!(!is_solicited_node(&a("ff02::1")));
    }

    #[test]
    fn scopes_per_rfc6724() {
        assert_eq!(scope6(&a("ff02::1")), 2);
        assert_eq!(scope6(&a("ff05::2")), 5);
        assert_eq!(scope6(&a("fe80::1")), 2);
        assert_eq!(scope6(&Ipv6Addr::LOCALHOST), 2);
        assert_eq!(scope6(&a("fec0::1")), 5);
        assert_eq!(scope6(&a("fd00::1")), 14);
        assert_eq!(scope6(&a("2001:db8::1")), 14);
    }

    #[test]
    fn source_rules_scope_then_deprecation_then_interface_then_prefix() {
        let d = a("2001:db8:1::9");
        let global = (a("2001:db8:2::1"), false, false);
        let ll = (a("fe80::1"), false, true);
        // Rule 2: a link-local source is too small for a global destination.
        assert!(source_better(&global, &ll, &d, 14));
        assert!(!source_better(&ll, &global, &d, 14));
        // Rule 3 before rule 8.
        let close_dep = (a("2001:db8:1::1"), true, false);
        assert!(source_better(&global, &close_dep, &d, 14));
        // Rule 8.
        let close = (a("2001:db8:1::1"), false, false);
        assert!(source_better(&close, &global, &d, 14));
    }

    #[test]
    fn token_bucket_bursts_one_second_then_refills() {
        let mut b = TokenBucket::default();
        let t0 = Instant::from_millis(1000);
        let n = (0..20).filter(|_| b.take(t0, 10)).count();
        assert_eq!(n, 10);
        assert!(!b.take(t0 + Duration::from_millis(50), 10));
        assert!(b.take(t0 + Duration::from_millis(100), 10));
        assert!(!TokenBucket::default().take(t0, 0), "rate 0 sends nothing");
    }

    #[test]
    fn pmtu_never_rises_and_never_drops_below_1280() {
        let mut c = Ipv6State::new(&Config::default());
        let d = a("2001:db8::1");
        assert!(!c.pmtu_update(Instant::ZERO, d, 1500, 1500));
        assert!(c.pmtu_update(Instant::ZERO, d, 1400, 1500));
        assert!(!c.pmtu_update(Instant::ZERO, d, 1450, 1500));
        assert!(c.pmtu_update(Instant::ZERO, d, 100, 1500));
        assert_eq!(c.pmtu(&d), Some(1280));
        for k in 0..(MAX_PMTU_ENTRIES as u128 + 10) {
            c.pmtu_update(
                Instant::from_nanos(k as u64),
                Ipv6Addr::from(k + 10),
                1300,
                1500,
            );
        }
        assert_eq!(c.pmtu.len(), MAX_PMTU_ENTRIES);
    }
}
