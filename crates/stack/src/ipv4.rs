//! IPv4 (RFC 791, RFC 1122, RFC 1812): input validation, local delivery,
//! forwarding, output with route lookup, fragmentation and reassembly.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use iopkt_pkt::{PktBuf, Pool};
use iopkt_wire::Mac;
use iopkt_wire::checksum;
use iopkt_wire::ethernet::{self, ethertype};
use iopkt_wire::icmp::v4 as icmpv4;
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::{FLAG_DF, FLAG_MF, Ipv4Hdr, MIN_HEADER_LEN, OFFSET_MASK};
use iopkt_wire::{FromBytes, IntoBytes};

use crate::arp::ArpStats;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::Error;
use crate::ethernet::L2Info;
use crate::icmp4::{Icmp4Error, Icmp4Stats, RateLimiter};
use crate::iface::{IfIndex, IfKind};
use crate::reasm::{Outcome, Reassembler};
use crate::stack::Stack;
use crate::time::{Instant, earliest};
use crate::transport::L4Rx;

/// Largest IPv4 datagram (the 16-bit total length).
pub const MAX_DATAGRAM: usize = 65_535;

/// IPv4 counters, as `netstat -s` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv4Stats {
    /// Datagrams handed to IP by the interfaces.
    pub received: u64,
    /// Shorter than a header, or than the header's total length says.
    pub too_short: u64,
    /// Not version 4, header length under 20, total length under the header.
    pub bad_header: u64,
    pub bad_checksum: u64,
    /// Impossible addresses: multicast or broadcast sources, 127/8 off lo0.
    pub martians: u64,
    /// Handed to a protocol above IP.
    pub delivered: u64,
    /// For us, with a protocol we do not speak.
    pub unknown_proto: u64,
    /// Not for us and not forwarded (forwarding off, directed broadcast,
    /// unroutable destination class).
    pub not_forwarded: u64,
    /// Unicast datagrams that came in link-layer broadcast frames.
    pub l2_bcast_unicast: u64,
    pub forwarded: u64,
    /// No route for a datagram to forward or to send.
    pub no_route: u64,
    /// Discarded in forwarding because the TTL ran out.
    pub ttl_exceeded: u64,
    /// Too large for the next link with DF set (or DF asked by the sender).
    pub cant_fragment: u64,
    /// Datagrams split into fragments, and the fragments that made.
    pub fragmented: u64,
    pub fragments_created: u64,
    /// Reassembled datagrams refused for exceeding 65535 bytes.
    pub reassembled_too_long: u64,
    /// Datagrams our own sockets asked to send.
    pub output_requests: u64,
    /// Datagrams dropped on output (interface down, no buffer).
    pub output_discards: u64,
}

/// Fragments belong to one datagram when these agree (RFC 791 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ident: u16,
}

/// IPv4 state of the stack beyond interfaces and routes.
pub struct Ipv4State {
    /// Next IP identifier; seeded from the context's random source on first
    /// use so that identifiers do not start at a guessable value.
    next_ident: Option<u16>,
    pub reasm: Reassembler<FragKey4>,
    pub stats: Ipv4Stats,
    pub icmp: Icmp4Stats,
    pub arp: ArpStats,
    pub(crate) icmp_limiter: RateLimiter,
    /// The time when the stack last ran IPv4 code, for listings made
    /// without a context (`arp -an`).
    pub(crate) clock: Instant,
}

impl Ipv4State {
    pub fn new(config: &Config) -> Ipv4State {
        Ipv4State {
            next_ident: None,
            reasm: Reassembler::new(
                config.reass_max_bytes as usize,
                Duration::from_secs(config.reass_timeout_secs as u64),
            ),
            stats: Ipv4Stats::default(),
            icmp: Icmp4Stats::default(),
            arp: ArpStats::default(),
            icmp_limiter: RateLimiter::default(),
            clock: Instant::ZERO,
        }
    }

    /// Fragments received that were dropped: overlapping, malformed, evicted
    /// for memory, or whole but too long.
    pub fn fragments_dropped(&self) -> u64 {
        let r = &self.reasm.stats;
        r.overlaps + r.malformed + r.evicted + self.stats.reassembled_too_long
    }

    fn ident(&mut self, ctx: &mut impl Ctx) -> u16 {
        let id = match self.next_ident {
            Some(id) => id,
            None => ctx.random_u64() as u16,
        };
        self.next_ident = Some(id.wrapping_add(1));
        id
    }
}

/// What IP input learned about a datagram for the protocols above it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rx4 {
    /// The interface it came in on (transports bind to interfaces).
    #[allow(dead_code)]
    pub ifindex: IfIndex,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    /// IP header length; the buffer still starts with the header.
    pub hl: usize,
    /// Sent to a broadcast or multicast IP address.
    pub to_group: bool,
    /// Arrived in a link-layer broadcast or multicast frame.
    pub l2_multicast: bool,
}

/// How a datagram leaves an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextHop {
    /// Back into this stack through `lo0`.
    Loopback,
    Broadcast,
    Multicast(Ipv4Addr),
    /// A neighbour to resolve with ARP.
    Unicast(Ipv4Addr),
}

/// Where and how a datagram to some destination goes out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path4 {
    pub ifindex: IfIndex,
    pub src: Ipv4Addr,
    pub hop: NextHop,
    pub mtu: usize,
}

/// Why a received header was refused (counted in [`Ipv4Stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderFault {
    TooShort,
    Bad,
    Checksum,
}

/// The checks of RFC 1122 section 3.2.1.1 / RFC 1812 section 5.2.2, in the
/// order that names the first fault (the acceptance itself is
/// [`Ipv4Hdr::parse_checked`]).
fn header_fault(pkt: &[u8]) -> Option<HeaderFault> {
    let Ok((h, _)) = Ipv4Hdr::ref_from_prefix(pkt) else {
        return Some(HeaderFault::TooShort);
    };
    let hl = h.header_len();
    if h.version() != 4 || hl < MIN_HEADER_LEN || h.total_len() < hl {
        return Some(HeaderFault::Bad);
    }
    if hl > pkt.len() || h.total_len() > pkt.len() {
        return Some(HeaderFault::TooShort);
    }
    if checksum::checksum(&pkt[..hl]) != 0 {
        return Some(HeaderFault::Checksum);
    }
    None
}

/// Fills the header checksum of the `hl`-byte header at the front of `pkt`.
pub(crate) fn fill_header_checksum(pkt: &mut [u8], hl: usize) {
    let Some(h) = pkt.get_mut(..hl) else {
        return;
    };
    h[10] = 0;
    h[11] = 0;
    let c = checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The options of a header that must be repeated in every fragment but the
/// first (copied flag set, RFC 791 section 3.1), padded to 4 bytes. A
/// malformed option list copies nothing.
fn copied_options(opts: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&ty) = opts.get(i) {
        match ty {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else {
                    return Vec::new();
                };
                let len = len as usize;
                let Some(opt) = opts.get(i..i + len).filter(|_| len >= 2) else {
                    return Vec::new();
                };
                if ty & 0x80 != 0 {
                    out.extend_from_slice(opt);
                }
                i += len;
            }
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// Splits a datagram (`header` as it is, with its own fragment offset and MF
/// flag, and its `payload`) into fragments that fit `mtu`, each in a new
/// buffer with headroom (RFC 791 section 3.2, "fragmentation"). Offsets are
/// multiples of 8 and the last piece keeps the original MF flag, so a
/// fragment can be fragmented again on the way.
pub(crate) fn fragment(pool: &Pool, header: &[u8], payload: &[u8], mtu: usize) -> Vec<PktBuf> {
    let Ok((h, _)) = Ipv4Hdr::ref_from_prefix(header) else {
        return Vec::new();
    };
    let first_hl = header.len();
    let base_off = h.frag_offset();
    let orig_mf = h.more_fragments();
    let later_opts = copied_options(header.get(MIN_HEADER_LEN..).unwrap_or_default());
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let first = off == 0;
        let hl = if first {
            first_hl
        } else {
            MIN_HEADER_LEN + later_opts.len()
        };
        let room = (mtu.saturating_sub(hl)) & !7;
        if room == 0 {
            return Vec::new();
        }
        let n = room.min(payload.len() - off);
        let last = off + n == payload.len();
        let Some(total_off) = base_off
            .checked_add(off)
            .filter(|o| o / 8 <= OFFSET_MASK as usize)
        else {
            return Vec::new();
        };
        let mut frag = (total_off / 8) as u16;
        if !last || orig_mf {
            frag |= FLAG_MF;
        }
        let mut b = pool.alloc_for(hl + n);
        let Some(buf) = b.try_append(hl + n) else {
            return Vec::new();
        };
        if first {
            buf[..hl].copy_from_slice(header);
        } else {
            buf[..MIN_HEADER_LEN].copy_from_slice(&header[..MIN_HEADER_LEN]);
            buf[MIN_HEADER_LEN..hl].copy_from_slice(&later_opts);
            buf[0] = 0x40 | (hl / 4) as u8;
        }
        buf[2..4].copy_from_slice(&((hl + n) as u16).to_be_bytes());
        buf[6..8].copy_from_slice(&frag.to_be_bytes());
        buf[hl..].copy_from_slice(&payload[off..off + n]);
        fill_header_checksum(buf, hl);
        out.push(b);
        off += n;
    }
    out
}

/// `pkt` with at least `need` bytes of headroom: itself, or a copy when the
/// caller's buffer has too little.
fn with_headroom(pool: &Pool, pkt: PktBuf, need: usize) -> PktBuf {
    if pkt.headroom() >= need {
        return pkt;
    }
    let mut b = if pool.headroom() >= need {
        pool.alloc_for(pkt.len())
    } else {
        PktBuf::with_capacity(need + iopkt_pkt::DEFAULT_HEADROOM, pkt.len())
    };
    if b.headroom() < need || b.tailroom() < pkt.len() {
        b = PktBuf::with_capacity(need + iopkt_pkt::DEFAULT_HEADROOM, pkt.len());
    }
    b.append(pkt.len()).copy_from_slice(pkt.data());
    b.copy_offload_from(&pkt);
    b
}

/// The bytes of the transport segment at the front of `payload` that go
/// in one datagram: all of them, or for a TCP segment marked for
/// segmentation offload its header and one MSS of data.
pub(crate) fn gso_segment_len(payload: &PktBuf) -> usize {
    match (payload.gso_size(), payload.data().get(12)) {
        (Some(mss), Some(off)) => (usize::from(off >> 4) * 4 + usize::from(mss)).min(payload.len()),
        _ => payload.len(),
    }
}

/// The largest IP datagram `pkt` puts on a link: itself, or for a
/// coalesced TCP segment (GSO) the IP and TCP headers with one segment's
/// payload, since it leaves cut to that size (`crate::gso`).
pub(crate) fn wire_len(pkt: &PktBuf, l3_off: usize) -> usize {
    let Some(mss) = pkt.gso_size() else {
        return pkt.len();
    };
    let d = pkt.data();
    let hdrs = (|| {
        let ip_hl = if d.get(l3_off)? >> 4 == 4 {
            usize::from(d.get(l3_off)? & 0x0f) * 4
        } else {
            40
        };
        let tcp_hl = usize::from(d.get(l3_off + ip_hl + 12)? >> 4) * 4;
        Some(ip_hl + tcp_hl)
    })();
    match hdrs {
        Some(h) => (h + usize::from(mss)).min(pkt.len()),
        None => pkt.len(),
    }
}

/// Headroom the IP layer needs in front of a payload: its header and the
/// Ethernet header (room for options is not needed, we send none).
const IP_HEADROOM: usize = MIN_HEADER_LEN + ethernet::HEADER_LEN;

impl Stack {
    /// `a` is one of our addresses, or anywhere in 127/8 (RFC 1122 section
    /// 3.2.1.3 (g): the whole loopback net is internal to the host).
    pub fn is_local4(&self, a: Ipv4Addr) -> bool {
        a.is_loopback() || self.local_iface4(a).is_some()
    }

    /// `a` is the directed broadcast address of a subnet on `ifindex`.
    pub(crate) fn is_subnet_broadcast4(&self, ifindex: IfIndex, a: Ipv4Addr) -> bool {
        self.iface(ifindex)
            .is_some_and(|i| i.addrs4.iter().any(|x| x.broadcast() == Some(a)))
    }

    /// `a` is the directed broadcast address of any of our subnets.
    pub(crate) fn is_any_subnet_broadcast4(&self, a: Ipv4Addr) -> bool {
        self.interfaces()
            .any(|i| i.addrs4.iter().any(|x| x.broadcast() == Some(a)))
    }

    /// `a` may not appear as the source of a datagram: a group or broadcast
    /// address (RFC 1122 section 3.2.1.3, RFC 1812 section 5.3.7).
    pub(crate) fn is_martian_src4(&self, a: Ipv4Addr) -> bool {
        a.is_multicast() || a.is_broadcast() || self.is_any_subnet_broadcast4(a)
    }

    pub(crate) fn ipv4_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        mut pkt: PktBuf,
        l2: L2Info,
    ) {
        self.v4.clock = ctx.now();
        self.v4.stats.received += 1;
        if let Some(f) = header_fault(pkt.data()) {
            let s = &mut self.v4.stats;
            match f {
                HeaderFault::TooShort => s.too_short += 1,
                HeaderFault::Bad => s.bad_header += 1,
                HeaderFault::Checksum => s.bad_checksum += 1,
            }
            return;
        }
        // `header_fault` made every check of `Ipv4Hdr::parse_checked`,
        // the header checksum included: only the view is left to take.
        let Ok((h, _)) = Ipv4Hdr::ref_from_prefix(pkt.data()) else {
            self.v4.stats.bad_header += 1;
            return;
        };
        let (src, dst, hl, tl) = (h.src(), h.dst(), h.header_len(), h.total_len());
        let (proto, ttl, is_frag) = (h.proto, h.ttl, h.is_fragment());
        // Ethernet pads short frames; the total length says where IP ends.
        pkt.truncate(tl);

        let on_loopback = self
            .iface(ifindex)
            .is_some_and(|i| i.kind == IfKind::Loopback);
        // RFC 1122 section 3.2.1.3: 127/8 never appears outside a host, and
        // group or broadcast addresses are never sources. 0.0.0.0 is a
        // source only while a host learns its address, sending to broadcast.
        let limited_bcast = dst.is_broadcast();
        let bcast = limited_bcast || self.is_subnet_broadcast4(ifindex, dst);
        if self.is_martian_src4(src)
            || (!on_loopback && (src.is_loopback() || dst.is_loopback()))
            || (src.is_unspecified() && !bcast)
        {
            self.v4.stats.martians += 1;
            return;
        }
        let to_group = bcast || dst.is_multicast();
        if l2.multicast && !to_group {
            // RFC 1122 section 3.3.6: a unicast datagram in a link-layer
            // broadcast is discarded, neither delivered nor forwarded.
            self.v4.stats.l2_bcast_unicast += 1;
            return;
        }
        let local = to_group || self.is_local4(dst);
        if !local {
            self.ipv4_forward(ctx, ifindex, pkt, l2);
            return;
        }
        let (pkt, hl, ttl) = if is_frag {
            let Some(p) = self.ipv4_reassemble(ctx, pkt) else {
                return;
            };
            // The whole datagram carries the first fragment's header, whose
            // length (options) and TTL may differ from the last one's.
            let Some(h) = Ipv4Hdr::parse_checked(p.data()) else {
                return;
            };
            let (hl, ttl) = (h.header_len(), h.ttl);
            (p, hl, ttl)
        } else {
            (pkt, hl, ttl)
        };
        let rx = Rx4 {
            ifindex,
            src,
            dst,
            proto,
            ttl,
            hl,
            to_group,
            l2_multicast: l2.multicast,
        };
        self.ipv4_deliver(ctx, pkt, rx);
    }

    /// Hands a whole datagram for us to its protocol: the one place that
    /// knows which protocols sit on IPv4.
    fn ipv4_deliver(&mut self, ctx: &mut impl Ctx, pkt: PktBuf, rx: Rx4) {
        match rx.proto {
            ipproto::ICMP => {
                self.v4.stats.delivered += 1;
                self.icmp4_input(ctx, pkt, rx);
            }
            ipproto::IGMP => {
                self.v4.stats.delivered += 1;
                self.igmp_input(ctx, pkt, rx);
            }
            ipproto::UDP | ipproto::TCP => {
                self.v4.stats.delivered += 1;
                let l4 = L4Rx {
                    ifindex: rx.ifindex,
                    src: IpAddr::V4(rx.src),
                    dst: IpAddr::V4(rx.dst),
                    l4_off: rx.hl,
                    hop: rx.ttl,
                    l2_multicast: rx.l2_multicast,
                    to_group: rx.to_group,
                };
                if rx.proto == ipproto::UDP {
                    self.udp_input(ctx, pkt, l4);
                } else {
                    self.tcp_input(ctx, pkt, l4);
                }
            }
            _ => {
                // RFC 1122 section 3.2.2.1: protocol unreachable.
                self.v4.stats.unknown_proto += 1;
                self.icmp4_error(
                    ctx,
                    pkt.data(),
                    rx.l2_multicast,
                    Icmp4Error::DestUnreach(icmpv4::UNREACH_PROTO),
                );
            }
        }
    }

    /// Adds a fragment to its datagram; the whole datagram, as one buffer
    /// with a plain header, once every piece is there.
    fn ipv4_reassemble(&mut self, ctx: &mut impl Ctx, pkt: PktBuf) -> Option<PktBuf> {
        let data = pkt.data();
        let (h, _) = Ipv4Hdr::ref_from_prefix(data).ok()?;
        let hl = h.header_len();
        let key = FragKey4 {
            src: h.src(),
            dst: h.dst(),
            proto: h.proto,
            ident: h.ident.get(),
        };
        let (offset, more) = (h.frag_offset(), h.more_fragments());
        // The knobs may have changed through sysctl since the last fragment.
        self.v4.reasm.max_bytes = self.config.reass_max_bytes as usize;
        self.v4.reasm.timeout = Duration::from_secs(self.config.reass_timeout_secs as u64);
        let header = data.get(..hl)?;
        let body = data.get(hl..)?;
        let (first, payload) =
            match self
                .v4
                .reasm
                .insert(ctx.now(), key, offset, more, body, header)
            {
                Outcome::Complete { first, payload } => (first, payload),
                Outcome::Pending | Outcome::Dropped => return None,
            };
        let hl = first.len();
        let total = hl + payload.len();
        if hl < MIN_HEADER_LEN || total > MAX_DATAGRAM {
            // RFC 791 caps a datagram at 65535 bytes; a larger one is the
            // classic "ping of death".
            self.v4.stats.reassembled_too_long += 1;
            return None;
        }
        let mut out = self.pool.alloc_for(total);
        let buf = out.try_append(total)?;
        buf[..hl].copy_from_slice(&first);
        buf[hl..].copy_from_slice(&payload);
        buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        buf[6..8].copy_from_slice(&0u16.to_be_bytes());
        fill_header_checksum(buf, hl);
        Some(out)
    }

    /// Forwards a datagram that is not for us (RFC 1812 section 5.2).
    fn ipv4_forward(&mut self, ctx: &mut impl Ctx, in_if: IfIndex, mut pkt: PktBuf, l2: L2Info) {
        let Ok((h, _)) = Ipv4Hdr::ref_from_prefix(pkt.data()) else {
            return;
        };
        let (dst, ttl, df) = (h.dst(), h.ttl, h.dont_fragment());
        let hl = h.header_len();
        // RFC 1122 section 3.3.6: a datagram that came in a link-layer
        // broadcast is not forwarded. Class E, 0/8 and loopback destinations
        // are not routable (RFC 1812 section 5.3.7).
        let reserved = dst.octets()[0] >= 240 || dst.octets()[0] == 0 || dst.is_loopback();
        if !self.config.forwarding4 || l2.multicast || reserved {
            self.v4.stats.not_forwarded += 1;
            return;
        }
        let Some(route) = self.routes4.lookup(dst) else {
            self.v4.stats.no_route += 1;
            self.icmp4_error(
                ctx,
                pkt.data(),
                l2.multicast,
                Icmp4Error::DestUnreach(icmpv4::UNREACH_NET),
            );
            return;
        };
        let (out_if, nexthop) = (route.ifindex, route.gateway.unwrap_or(dst));
        // RFC 1812 section 5.3.1: a router drops a datagram whose TTL would
        // reach zero and says so with a time exceeded.
        if ttl <= 1 {
            self.v4.stats.ttl_exceeded += 1;
            self.icmp4_error(
                ctx,
                pkt.data(),
                l2.multicast,
                Icmp4Error::TimeExceeded(icmpv4::EXC_TTL),
            );
            return;
        }
        let Some(oif) = self.iface(out_if).filter(|i| i.is_running()) else {
            self.v4.stats.output_discards += 1;
            self.icmp4_error(
                ctx,
                pkt.data(),
                l2.multicast,
                Icmp4Error::DestUnreach(icmpv4::UNREACH_NET),
            );
            return;
        };
        let mtu = oif.mtu as usize;
        // Directed broadcasts are not forwarded by default (RFC 2644), nor
        // anything that would loop back into us through lo0.
        if oif.kind == IfKind::Loopback || self.is_subnet_broadcast4(out_if, dst) {
            self.v4.stats.not_forwarded += 1;
            return;
        }
        // A coalesced segment leaves cut to its segment size.
        let on_wire = wire_len(&pkt, 0);
        if on_wire > mtu && df {
            // RFC 1191 section 4: say how large the next hop takes.
            self.v4.stats.cant_fragment += 1;
            self.icmp4_error(
                ctx,
                pkt.data(),
                l2.multicast,
                Icmp4Error::FragNeeded {
                    mtu: mtu.min(u16::MAX as usize) as u16,
                },
            );
            return;
        }
        let _ = in_if;
        // RFC 1624: the checksum follows the TTL byte incrementally.
        let d = pkt.data_mut();
        let old = u16::from_be_bytes([d[8], d[9]]);
        d[8] = ttl - 1;
        let new = u16::from_be_bytes([d[8], d[9]]);
        let c = checksum::update16(u16::from_be_bytes([d[10], d[11]]), old, new);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        self.v4.stats.forwarded += 1;
        let hop = if dst.is_broadcast() {
            NextHop::Broadcast
        } else {
            NextHop::Unicast(nexthop)
        };
        if on_wire <= mtu {
            self.ipv4_output_l2(ctx, out_if, hop, pkt);
            return;
        }
        if pkt.gso_size().is_some() {
            // Segments without DF that do not fit: not made by a TCP that
            // does path MTU discovery; not worth cutting twice.
            self.v4.stats.output_discards += 1;
            return;
        }
        // Fragments cannot carry a partial checksum: each would need the
        // whole datagram's bytes.
        pkt.finish_checksum();
        let frags = {
            let d = pkt.data();
            fragment(&self.pool, &d[..hl], &d[hl..], mtu)
        };
        self.count_fragments(frags.len());
        for f in frags {
            self.ipv4_output_l2(ctx, out_if, hop, f);
        }
    }

    fn count_fragments(&mut self, n: usize) {
        if n == 0 {
            self.v4.stats.output_discards += 1;
        } else {
            self.v4.stats.fragmented += 1;
            self.v4.stats.fragments_created += n as u64;
        }
    }

    /// The interface, source and next hop for sending to `dst`, with `src`
    /// as the caller's choice of source if any.
    pub(crate) fn ipv4_path(&self, dst: Ipv4Addr, src: Option<Ipv4Addr>) -> Result<Path4, Error> {
        if let Some(s) = src
            && !s.is_unspecified()
            && !self.is_local4(s)
        {
            return Err(Error::AddrNotAvailable);
        }
        let lo_mtu = |s: &Stack| {
            s.iface(crate::LOOPBACK_IFINDEX)
                .map_or(MAX_DATAGRAM, |i| i.mtu as usize)
        };
        if self.is_local4(dst) {
            // To ourselves: through lo0, from the address itself (127/8 other
            // than our own addresses answers from 127.0.0.1).
            let own = if self.local_iface4(dst).is_some() {
                dst
            } else {
                Ipv4Addr::LOCALHOST
            };
            return Ok(Path4 {
                ifindex: crate::LOOPBACK_IFINDEX,
                src: src.unwrap_or(own),
                hop: NextHop::Loopback,
                mtu: lo_mtu(self),
            });
        }
        // Limited broadcast and multicast leave by the route for them (the
        // default route, usually), the interface of a given source, or the
        // first Ethernet interface with an address.
        let group = dst.is_broadcast() || dst.is_multicast();
        let (ifindex, key, gateway) = if group {
            let by_src = src.and_then(|s| self.local_iface4(s));
            let by_route = self.routes4.lookup(dst).map(|r| r.ifindex);
            let any = self
                .interfaces()
                .find(|i| i.kind == IfKind::Ethernet && i.is_running() && !i.addrs4.is_empty())
                .map(|i| i.index);
            let i = by_src.or(by_route).or(any).ok_or(Error::NetUnreachable)?;
            (i, dst, None)
        } else {
            let r = self.routes4.lookup(dst).ok_or(Error::NetUnreachable)?;
            (r.ifindex, r.gateway.unwrap_or(dst), r.gateway)
        };
        let iface = self
            .iface(ifindex)
            .filter(|i| i.is_running())
            .ok_or(Error::NetUnreachable)?;
        let src = match src {
            Some(s) => s,
            None => iface
                .addrs4
                .iter()
                .find(|a| a.contains(key))
                .or(iface.addrs4.first())
                .map(|a| a.addr)
                .ok_or(Error::AddrNotAvailable)?,
        };
        let hop = if iface.kind == IfKind::Loopback {
            NextHop::Loopback
        } else if dst.is_multicast() {
            NextHop::Multicast(dst)
        } else if dst.is_broadcast()
            || (gateway.is_none() && self.is_subnet_broadcast4(ifindex, dst))
        {
            NextHop::Broadcast
        } else {
            NextHop::Unicast(key)
        };
        Ok(Path4 {
            ifindex,
            src,
            hop,
            mtu: iface.mtu as usize,
        })
    }

    /// The source address the stack would use to reach `dst` (UDP and TCP
    /// need it for their pseudo-header checksums before sending).
    pub fn ipv4_select_source(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.ipv4_path(dst, None).ok().map(|p| p.src)
    }

    /// Sends `payload` (the transport header and data, in a buffer with
    /// headroom for the IP and Ethernet headers) to `dst`. The source is
    /// `src` or, if `None`, chosen from the outgoing interface. Fragments if
    /// needed and allowed (`df == false`).
    #[allow(clippy::too_many_arguments)]
    pub fn ipv4_send(
        &mut self,
        ctx: &mut impl Ctx,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        proto: u8,
        payload: PktBuf,
        ttl: Option<u8>,
        df: bool,
    ) -> Result<(), Error> {
        self.v4.clock = ctx.now();
        self.v4.stats.output_requests += 1;
        let path = match self.ipv4_path(dst, src) {
            Ok(p) => p,
            Err(e) => {
                if e == Error::NetUnreachable {
                    self.v4.stats.no_route += 1;
                }
                return Err(e);
            }
        };
        let len = MIN_HEADER_LEN + payload.len();
        if len > MAX_DATAGRAM {
            self.v4.stats.output_discards += 1;
            return Err(Error::MessageTooLarge);
        }
        // A TCP segment for segmentation offload leaves cut to its MSS.
        let on_wire = MIN_HEADER_LEN + gso_segment_len(&payload);
        if on_wire > path.mtu && df {
            self.v4.stats.cant_fragment += 1;
            return Err(Error::MessageTooLarge);
        }
        // Multicast stays on the link unless asked otherwise (RFC 1112
        // section 6.1).
        let ttl = ttl.unwrap_or(if dst.is_multicast() {
            1
        } else {
            self.config.ttl
        });
        let ident = self.v4.ident(ctx);
        let hdr = Ipv4Hdr::new(
            path.src,
            dst,
            proto,
            ttl,
            ident,
            if df { FLAG_DF } else { 0 },
            payload.len(),
            0,
        );
        if on_wire <= path.mtu {
            let mut pkt = with_headroom(&self.pool, payload, IP_HEADROOM);
            let Some(h) = pkt.prepend(MIN_HEADER_LEN) else {
                self.v4.stats.output_discards += 1;
                return Err(Error::NoBuffers);
            };
            h.copy_from_slice(hdr.as_bytes());
            self.ipv4_output_l2(ctx, path.ifindex, path.hop, pkt);
            return Ok(());
        }
        let mut payload = payload;
        payload.finish_checksum();
        let frags = fragment(&self.pool, hdr.as_bytes(), payload.data(), path.mtu);
        self.count_fragments(frags.len());
        if frags.is_empty() {
            return Err(Error::NoBuffers);
        }
        for f in frags {
            self.ipv4_output_l2(ctx, path.ifindex, path.hop, f);
        }
        Ok(())
    }

    /// Frames a complete IP datagram for its next hop.
    pub(crate) fn ipv4_output_l2(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        hop: NextHop,
        pkt: PktBuf,
    ) {
        let pkt = with_headroom(&self.pool, pkt, ethernet::HEADER_LEN);
        match hop {
            NextHop::Loopback => self.eth_output(
                ctx,
                crate::LOOPBACK_IFINDEX,
                Mac::ZERO,
                ethertype::IPV4,
                pkt,
            ),
            NextHop::Broadcast => {
                self.eth_output(ctx, ifindex, Mac::BROADCAST, ethertype::IPV4, pkt)
            }
            NextHop::Multicast(g) => {
                self.eth_output(ctx, ifindex, Mac::ipv4_multicast(g), ethertype::IPV4, pkt)
            }
            NextHop::Unicast(nh) => self.arp_output(ctx, ifindex, nh, pkt),
        }
    }

    /// The interface came up (admin up and carrier).
    pub(crate) fn ipv4_if_up(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        // Announce every address again: our MAC may be new on this link
        // (RFC 5227 section 2.3).
        let addrs: Vec<Ipv4Addr> = self
            .iface(ifindex)
            .map(|i| i.addrs4.iter().map(|a| a.addr).collect())
            .unwrap_or_default();
        for a in addrs {
            self.arp_announce(ctx, ifindex, a);
        }
    }

    /// The interface went down.
    pub(crate) fn ipv4_if_down(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let _ = ctx;
        self.arp_flush(ifindex);
    }

    /// An address was configured (announce it: gratuitous ARP).
    pub(crate) fn ipv4_addr_added(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv4Addr) {
        self.arp_announce(ctx, ifindex, addr);
    }

    /// Timers: ARP, reassembly.
    pub(crate) fn ipv4_poll(&mut self, ctx: &mut impl Ctx) {
        self.v4.clock = ctx.now();
        self.arp_poll(ctx);
        for (header, first_data) in self.v4.reasm.expire(ctx.now()) {
            // RFC 792 / RFC 1122 section 3.3.2: time exceeded, code 1, and
            // only when fragment zero arrived (it carries what to quote).
            let mut orig = header;
            orig.extend_from_slice(&first_data);
            self.icmp4_error(
                ctx,
                &orig,
                false,
                Icmp4Error::TimeExceeded(icmpv4::EXC_REASSEMBLY),
            );
        }
    }

    pub(crate) fn ipv4_next_deadline(&self) -> Option<Instant> {
        earliest(self.arp_next_deadline(), self.v4.reasm.next_deadline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(payload_len: usize, options: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut h = Ipv4Hdr::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            64,
            0x1234,
            0,
            payload_len + options.len(),
            0,
        )
        .as_bytes()
        .to_vec();
        h.extend_from_slice(options);
        let hl = h.len();
        h[0] = 0x40 | (hl / 4) as u8;
        fill_header_checksum(&mut h, hl);
        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        (h, payload)
    }

    #[test]
    fn fragments_fit_the_mtu_and_rebuild_the_payload() {
        let pool = Pool::standard();
        let (h, p) = datagram(3000, &[]);
        let frags = fragment(&pool, &h, &p, 1500);
        assert_eq!(frags.len(), 3);
        let mut rebuilt = vec![0u8; 3000];
        for (i, f) in frags.iter().enumerate() {
            let d = f.data();
            assert!(d.len() <= 1500);
            let hh = Ipv4Hdr::parse_checked(d).expect("valid fragment header");
            assert_eq!(hh.total_len(), d.len());
            assert_eq!(hh.more_fragments(), i < 2);
            assert_eq!(hh.frag_offset() % 8, 0);
            assert_eq!(hh.ident.get(), 0x1234);
            let o = hh.frag_offset();
            rebuilt[o..o + d.len() - 20].copy_from_slice(&d[20..]);
            assert!(f.headroom() >= IP_HEADROOM - MIN_HEADER_LEN);
        }
        assert_eq!(rebuilt, p);
    }

    #[test]
    fn refragmenting_keeps_offsets_and_the_more_flag() {
        let pool = Pool::standard();
        let (mut h, p) = datagram(800, &[]);
        // A middle fragment at offset 1600 with MF set.
        h[6..8].copy_from_slice(&(FLAG_MF | 200).to_be_bytes());
        fill_header_checksum(&mut h, 20);
        let frags = fragment(&pool, &h, &p, 576);
        assert_eq!(frags.len(), 2);
        for (i, f) in frags.iter().enumerate() {
            let hh = Ipv4Hdr::parse_checked(f.data()).unwrap();
            assert!(hh.more_fragments(), "fragment {i} lost MF");
        }
        let second = Ipv4Hdr::parse_checked(frags[1].data()).unwrap();
        assert_eq!(second.frag_offset(), 1600 + 552);
    }

    #[test]
    fn only_copied_options_repeat_in_later_fragments() {
        let pool = Pool::standard();
        // Record route (7, not copied) then a copied option (0x94 router alert).
        let opts = [7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0];
        let (h, p) = datagram(200, &opts);
        let frags = fragment(&pool, &h, &p, 100);
        let first = Ipv4Hdr::parse_checked(frags[0].data()).unwrap();
        assert_eq!(first.header_len(), 32);
        let later = Ipv4Hdr::parse_checked(frags[1].data()).unwrap();
        assert_eq!(later.header_len(), 24);
        assert_eq!(&frags[1].data()[20..24], &[0x94, 4, 0, 0]);
        let total: usize = frags
            .iter()
            .map(|f| f.len() - Ipv4Hdr::parse_checked(f.data()).unwrap().header_len())
            .sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn malformed_options_copy_nothing() {
        assert!(copied_options(&[0x94, 9, 0, 0]).is_empty());
        assert!(copied_options(&[0x94, 0]).is_empty());
        assert_eq!(copied_options(&[1, 1, 0x83, 3, 0, 0]), vec![0x83, 3, 0, 0]);
    }

    #[test]
    fn header_faults_are_named() {
        let (h, p) = datagram(8, &[]);
        let mut pkt = h.clone();
        pkt.extend_from_slice(&p);
        assert_eq!(header_fault(&pkt), None);
        assert_eq!(header_fault(&pkt[..19]), Some(HeaderFault::TooShort));
        assert_eq!(header_fault(&pkt[..27]), Some(HeaderFault::TooShort));
        let mut bad = pkt.clone();
        bad[0] = 0x65;
        assert_eq!(header_fault(&bad), Some(HeaderFault::Bad));
        let mut bad = pkt.clone();
        bad[0] = 0x44;
        assert_eq!(header_fault(&bad), Some(HeaderFault::Bad));
        let mut bad = pkt.clone();
        bad[12] ^= 1;
        assert_eq!(header_fault(&bad), Some(HeaderFault::Checksum));
    }
}
