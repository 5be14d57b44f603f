//! UDP input (RFC 768, RFC 1122 section 4.1.3): length and checksum
//! checks, delivery to sockets, port unreachable, and ICMP errors about
//! datagrams we sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use iopkt_pkt::PktBuf;
use iopkt_wire::FromBytes;
use iopkt_wire::checksum::{finish, pseudo_v4, pseudo_v6, sum};
use iopkt_wire::icmp::{v4 as icmpv4, v6 as icmpv6};
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::{Ipv4Hdr, MIN_HEADER_LEN};
use iopkt_wire::udp::{HEADER_LEN, UdpHdr};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::icmp4::Icmp4Error;
use crate::iface::IfIndex;
use crate::ipv6::{MAX_EXT_HEADERS, addr_at, ext_len};
use crate::stack::Stack;
use crate::transport::L4Rx;

use super::demux::Target;
use super::{Datagram, as_v6, v4_of};

/// The IPv4 all-hosts group, which every host is in (RFC 1112 section 4).
const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// The IPv6 all-nodes groups, likewise (RFC 4291 section 2.7.1).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_IFLOCAL: Ipv6Addr = Ipv6Addr::new(0xff01, 0, 0, 0, 0, 0, 0, 1);

/// The socket error an ICMPv4 error about one of our datagrams means, for
/// the errors a connected socket reports (RFC 1122 section 4.1.3.3).
pub fn error_of_icmp4(ty: u8, code: u8) -> Option<Error> {
    match (ty, code) {
        (icmpv4::DEST_UNREACH, icmpv4::UNREACH_PORT | icmpv4::UNREACH_PROTO) => {
            Some(Error::ConnRefused)
        }
        (icmpv4::DEST_UNREACH, icmpv4::UNREACH_HOST) => Some(Error::HostUnreachable),
        (icmpv4::DEST_UNREACH, icmpv4::UNREACH_NET) => Some(Error::NetUnreachable),
        _ => None,
    }
}

/// The same for ICMPv6 destination unreachable codes (RFC 4443 section 3.1).
pub fn error_of_icmp6(code: u8) -> Option<Error> {
    match code {
        icmpv6::UNREACH_PORT => Some(Error::ConnRefused),
        icmpv6::UNREACH_ADDR => Some(Error::HostUnreachable),
        icmpv6::UNREACH_NOROUTE => Some(Error::NetUnreachable),
        _ => None,
    }
}

/// Verifies the checksum of a whole UDP segment (header and data).
fn checksum_ok(src: IpAddr, dst: IpAddr, seg: &[u8]) -> bool {
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_v4(s, d, ipproto::UDP, seg.len() as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_v6(s, d, ipproto::UDP, seg.len() as u32),
        _ => return false,
    };
    finish(sum(pseudo, seg)) == 0
}

impl Stack {
    /// A segment for us arrived (`pkt` starts with the IP header).
    pub(crate) fn udp_input(&mut self, ctx: &mut impl Ctx, pkt: PktBuf, rx: L4Rx) {
        let Some(seg) = pkt.data().get(rx.l4_off..) else {
            self.udp.stats.bad_length += 1;
            return;
        };
        let Some(h) = UdpHdr::parse(seg) else {
            self.udp.stats.bad_length += 1;
            return;
        };
        let (sport, dport, ulen, csum) = (h.src_port(), h.dst_port(), h.length(), h.checksum());
        // RFC 768: the length covers header and data; what IP carries past
        // it is padding to ignore, and less than it is a broken datagram.
        let Some(seg) = seg.get(..ulen).filter(|_| ulen >= HEADER_LEN) else {
            self.udp.stats.bad_length += 1;
            return;
        };
        let verify = match rx.src {
            // RFC 768: a zero checksum over IPv4 means the sender computed
            // none.
            IpAddr::V4(_) => csum != 0,
            // RFC 8200 section 8.1: over IPv6 the checksum is mandatory and
            // a zero one is discarded.
            IpAddr::V6(_) => {
                if csum == 0 {
                    self.udp.stats.bad_checksum += 1;
                    return;
                }
                true
            }
        };
        if verify && !pkt.csum_trusted() && !checksum_ok(rx.src, rx.dst, seg) {
            self.udp.stats.bad_checksum += 1;
            return;
        }
        let payload = seg.get(HEADER_LEN..).unwrap_or_default();
        let from = SocketAddr::new(rx.src, sport);
        let to = SocketAddr::new(rx.dst, dport);
        if rx.to_group {
            if let IpAddr::V4(g) = rx.dst
                && g.is_multicast()
                && g != ALL_HOSTS
                && !self.udp.is_member4(rx.ifindex, &g)
            {
                // Groups no socket joined on this interface are not for
                // this host (RFC 1112 section 6.2).
                self.udp.stats.no_port_broadcast += 1;
                return;
            }
            let payload = payload.to_vec();
            if !self.udp_deliver_group(ctx, from, to, rx.ifindex, &payload) {
                // RFC 1122 section 4.1.3.1: no port unreachable for
                // broadcast or multicast.
                self.udp.stats.no_port_broadcast += 1;
            }
            return;
        }
        let t = Target { from, to };
        let Some(id) = self.udp_lookup(&t) else {
            if rx.l2_multicast {
                self.udp.stats.no_port_broadcast += 1;
                return;
            }
            self.udp.stats.no_port += 1;
            match rx.src {
                IpAddr::V4(_) => {
                    self.icmp4_error(
                        ctx,
                        pkt.data(),
                        rx.l2_multicast,
                        Icmp4Error::DestUnreach(icmpv4::UNREACH_PORT),
                    );
                }
                IpAddr::V6(_) => self.icmp6_error(
                    ctx,
                    rx.ifindex,
                    pkt.data(),
                    rx.l2_multicast,
                    icmpv6::DEST_UNREACH,
                    icmpv6::UNREACH_PORT,
                    0,
                ),
            }
            return;
        };
        let dg = self.udp_datagram(id, from, rx.dst, rx.ifindex, payload.to_vec());
        if self.udp_enqueue(ctx, id, dg) {
            self.udp.stats.received += 1;
        }
    }

    /// The datagram as socket `id` sees it: an IPv6 socket sees IPv4
    /// addresses v4-mapped.
    fn udp_datagram(
        &self,
        id: crate::socket::SocketId,
        from: SocketAddr,
        dst: IpAddr,
        ifindex: IfIndex,
        data: Vec<u8>,
    ) -> Datagram {
        let v6 = self.udp_sock(id).is_ok_and(|s| s.v6);
        let (from, dst) = if v6 {
            (as_v6(from), as_v6(SocketAddr::new(dst, 0)).ip())
        } else {
            (from, dst)
        };
        Datagram {
            from,
            data,
            dst,
            ifindex,
        }
    }

    /// Hands a broadcast or multicast datagram to every socket that wants
    /// it: bound to its port and a matching address and, for multicast,
    /// joined to the group on the interface it came in on (or on any), as
    /// BSD filters per socket. Everyone gets the all-nodes groups. Returns
    /// whether any socket matched.
    pub(crate) fn udp_deliver_group(
        &mut self,
        ctx: &mut impl Ctx,
        from: SocketAddr,
        to: SocketAddr,
        ifindex: IfIndex,
        payload: &[u8],
    ) -> bool {
        let t = Target { from, to };
        let group = to.ip().is_multicast();
        let everyone = matches!(to.ip(), IpAddr::V4(a) if a == ALL_HOSTS)
            || matches!(to.ip(), IpAddr::V6(a) if a == ALL_NODES || a == ALL_NODES_IFLOCAL);
        let ids: Vec<_> = self
            .udp_lookup_all(&t)
            .into_iter()
            .filter(|id| {
                !group
                    || everyone
                    || self.udp_sock(*id).is_ok_and(|s| {
                        s.groups.iter().any(|(g, i)| {
                            v4_of(*g).map(IpAddr::V4).unwrap_or(*g) == to.ip()
                                && (*i == ifindex || *i == 0)
                        })
                    })
            })
            .collect();
        let mut any = false;
        for id in &ids {
            let dg = self.udp_datagram(*id, from, to.ip(), ifindex, payload.to_vec());
            if self.udp_enqueue(ctx, *id, dg) {
                any = true;
            }
        }
        if any {
            self.udp.stats.received += 1;
        }
        !ids.is_empty()
    }

    /// An ICMP error quoting `quoted` (the start of a datagram we sent, IP
    /// header first) arrived. A connected socket that sent it gets `error`
    /// as its pending error (Linux semantics: unconnected sockets cannot
    /// tell which of their sends failed, and ignore it).
    pub(crate) fn udp_icmp_error(&mut self, ctx: &mut impl Ctx, quoted: &[u8], error: Error) {
        let Some((local, remote)) = self.udp_quoted_endpoints(quoted) else {
            return;
        };
        let Some(id) = self.udp_lookup_connected(local, remote) else {
            return;
        };
        if let Ok(s) = self.udp_sock_mut(id) {
            s.error = Some(error);
            ctx.socket_ready(id);
        }
    }

    /// The (our address and port, their address and port) of a quoted UDP
    /// datagram that came from one of our addresses.
    fn udp_quoted_endpoints(&self, quoted: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
        let version = quoted.first()? >> 4;
        let (src, dst, off) = if version == 4 {
            let (q, _) = Ipv4Hdr::ref_from_prefix(quoted).ok()?;
            let hl = q.header_len();
            if hl < MIN_HEADER_LEN
                || q.proto != ipproto::UDP
                || q.frag_offset() != 0
                || !self.is_local4(q.src())
            {
                return None;
            }
            (IpAddr::V4(q.src()), IpAddr::V4(q.dst()), hl)
        } else if version == 6 {
            let (src, dst) = (addr_at(quoted, 8)?, addr_at(quoted, 24)?);
            if !src.is_loopback() && self.local_iface6(&src).is_none() {
                return None;
            }
            let mut nh = *quoted.get(6)?;
            let mut off = iopkt_wire::ipv6::HEADER_LEN;
            let mut found = false;
            for _ in 0..MAX_EXT_HEADERS {
                match nh {
                    ipproto::UDP => {
                        found = true;
                        break;
                    }
                    ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => {
                        let len = ext_len(quoted, off)?;
                        nh = *quoted.get(off)?;
                        off += len;
                    }
                    ipproto::FRAGMENT => {
                        let o = u16::from_be_bytes([*quoted.get(off + 2)?, *quoted.get(off + 3)?]);
                        if o >> 3 != 0 {
                            return None;
                        }
                        nh = *quoted.get(off)?;
                        off += 8;
                    }
                    _ => return None,
                }
            }
            if !found {
                return None;
            }
            (IpAddr::V6(src), IpAddr::V6(dst), off)
        } else {
            return None;
        };
        // RFC 792 / RFC 4443: at least the first 8 bytes of the datagram
        // are quoted, which is the whole UDP header.
        let h = UdpHdr::parse(quoted.get(off..)?)?;
        Some((
            SocketAddr::new(src, h.src_port()),
            SocketAddr::new(dst, h.dst_port()),
        ))
    }
}
