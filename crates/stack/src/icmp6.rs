//! ICMPv6 (RFC 4443): echo, errors with rate limiting, Packet Too Big for
//! path MTU discovery (RFC 8201); neighbour discovery messages are handed to
//! `ndp.rs`.

use std::net::{IpAddr, Ipv6Addr};

use iopkt_wire::Mac;
use iopkt_wire::checksum::{finish, pseudo_v6, sum};
use iopkt_wire::icmp::v6 as icmp6;
use iopkt_wire::ipproto;
use iopkt_wire::ipv6::{HEADER_LEN, MIN_MTU};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::iface::IfIndex;
use crate::ipv6::{MAX_EXT_HEADERS, addr_at, ext_len};
use crate::stack::Stack;

/// Bytes of the offending packet an error may quote: the whole error must
/// fit the IPv6 minimum MTU (RFC 4443 section 2.4 (c)).
pub const MAX_QUOTE: usize = MIN_MTU - HEADER_LEN - 8;

/// The ICMPv6 checksum of `msg` (its checksum field included as it is),
/// with the pseudo-header of RFC 8200 section 8.1.
pub fn icmp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    finish(sum(
        pseudo_v6(src, dst, ipproto::ICMPV6, msg.len() as u32),
        msg,
    ))
}

/// Whether `pkt` (an IPv6 packet) carries an ICMPv6 error or a redirect,
/// to which no error may answer (RFC 4443 section 2.4 (e.1), (e.2)).
fn carries_icmp6_error(pkt: &[u8]) -> bool {
    let Some(&first) = pkt.get(6) else {
        return false;
    };
    let mut nh = first;
    let mut off = HEADER_LEN;
    for _ in 0..MAX_EXT_HEADERS {
        match nh {
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => {
                let (Some(len), Some(&n)) = (ext_len(pkt, off), pkt.get(off)) else {
                    return false;
                };
                nh = n;
                off += len;
            }
            ipproto::FRAGMENT => {
                // Only the first fragment shows the upper-layer header.
                let (Some(&n), Some(&o1), Some(&o2)) =
                    (pkt.get(off), pkt.get(off + 2), pkt.get(off + 3))
                else {
                    return false;
                };
                if u16::from_be_bytes([o1, o2]) >> 3 != 0 {
                    return false;
                }
                nh = n;
                off += 8;
            }
            ipproto::ICMPV6 => {
                return pkt
                    .get(off)
                    .is_some_and(|&t| t < 128 || t == icmp6::REDIRECT);
            }
            _ => return false,
        }
    }
    false
}

impl Stack {
    /// Sends an ICMPv6 message of type `ty`/`code` with the four bytes `rest`
    /// and `body` after the header, to `dst` (source chosen by RFC 6724,
    /// checksum filled in).
    pub fn icmp6_send(
        &mut self,
        ctx: &mut impl Ctx,
        dst: Ipv6Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        self.icmp6_output(ctx, None, None, dst, ty, code, rest, body, None, None)
    }

    /// As [`Stack::icmp6_send`], out of interface `ifindex` (the scope of a
    /// link-local or multicast destination).
    #[allow(clippy::too_many_arguments)]
    pub fn icmp6_send_on(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        dst: Ipv6Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        self.icmp6_output(
            ctx,
            Some(ifindex),
            None,
            dst,
            ty,
            code,
            rest,
            body,
            None,
            None,
        )
    }

    /// Builds and sends one ICMPv6 message. `src` `None` selects by RFC 6724
    /// for the outgoing interface; `mac` bypasses neighbour resolution.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn icmp6_output(
        &mut self,
        ctx: &mut impl Ctx,
        oif: Option<IfIndex>,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
        hop: Option<u8>,
        mac: Option<Mac>,
    ) -> Result<(), Error> {
        let len = 8 + body.len();
        if len > u16::MAX as usize {
            return Err(Error::MessageTooLarge);
        }
        let src = match src {
            Some(s) => s,
            None => {
                let (ifindex, _) = self.ipv6_route_for(&dst, oif)?;
                self.ipv6_select_source_on(&dst, Some(ifindex))
                    .ok_or(Error::AddrNotAvailable)?
            }
        };
        let mut p = self.pool.alloc_for(len);
        let Some(m) = p.try_append(len) else {
            return Err(Error::NoBuffers);
        };
        m[0] = ty;
        m[1] = code;
        m[2] = 0;
        m[3] = 0;
        m[4..8].copy_from_slice(&rest);
        m[8..].copy_from_slice(body);
        let c = icmp6_checksum(src, dst, m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        self.v6.icmp_stats.out_msgs += 1;
        self.v6.icmp_stats.out_by_type[ty as usize] += 1;
        self.ipv6_send_inner(ctx, oif, Some(src), dst, ipproto::ICMPV6, p, hop, mac)
    }

    /// An ICMPv6 message for us: `pkt` is the whole IPv6 packet and the
    /// message starts at `off`. With `nd_only` (the destination is
    /// tentative) only NS and NA are looked at (RFC 4862 section 5.4).
    pub(crate) fn icmp6_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        pkt: &[u8],
        off: usize,
        nd_only: bool,
    ) {
        let (Some(src), Some(dst), Some(&hop), Some(msg)) = (
            addr_at(pkt, 8),
            addr_at(pkt, 24),
            pkt.get(7),
            pkt.get(off..),
        ) else {
            return;
        };
        self.v6.icmp_stats.in_msgs += 1;
        if msg.len() < 8 || icmp6_checksum(src, dst, msg) != 0 {
            self.v6.icmp_stats.in_errors += 1;
            return;
        }
        let ty = msg[0];
        self.v6.icmp_stats.in_by_type[ty as usize] += 1;
        if nd_only && ty != icmp6::NEIGHBOR_SOLICIT && ty != icmp6::NEIGHBOR_ADVERT {
            return;
        }
        match ty {
            icmp6::ECHO_REQUEST => {
                if src.is_unspecified() {
                    return;
                }
                // RFC 4443 section 4.2: a request to a multicast group is
                // answered from a unicast address of the receiving interface.
                let reply_src = (!dst.is_multicast()).then_some(dst);
                let oif = (src.is_unicast_link_local() || dst.is_multicast()).then_some(ifindex);
                let rest = [msg[4], msg[5], msg[6], msg[7]];
                let _ = self.icmp6_output(
                    ctx,
                    oif,
                    reply_src,
                    src,
                    icmp6::ECHO_REPLY,
                    0,
                    rest,
                    &msg[8..],
                    None,
                    None,
                );
            }
            icmp6::ECHO_REPLY => {
                let ident = u16::from_be_bytes([msg[4], msg[5]]);
                self.deliver_echo_reply(ctx, IpAddr::V6(src), ident, msg, hop);
            }
            icmp6::PACKET_TOO_BIG => {
                self.icmp6_too_big(ctx, msg);
                let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
                if let Some(k) = crate::tcp::kind_of_icmp6(msg[0], msg[1], mtu) {
                    self.tcp_icmp_error(ctx, &msg[8..], k);
                }
            }
            icmp6::DEST_UNREACH => {
                if let Some(e) = crate::udp::error_of_icmp6(msg[1]) {
                    self.udp_icmp_error(ctx, &msg[8..], e);
                }
                if let Some(k) = crate::tcp::kind_of_icmp6(msg[0], msg[1], 0) {
                    self.tcp_icmp_error(ctx, &msg[8..], k);
                }
            }
            icmp6::NEIGHBOR_SOLICIT
            | icmp6::NEIGHBOR_ADVERT
            | icmp6::ROUTER_SOLICIT
            | icmp6::ROUTER_ADVERT
            | icmp6::REDIRECT => self.nd_input(ctx, ifindex, src, dst, hop, msg),
            icmp6::MLD_QUERY => {
                // RFC 3810 section 5.1.14: a query from a source that is
                // not link-local is discarded. A version 1 query is 24
                // bytes (RFC 2710 section 3.4), version 2 at least 28.
                let Some(group) = addr_at(msg, 8) else {
                    return;
                };
                if !src.is_unicast_link_local() || (msg.len() != 24 && msg.len() < 28) {
                    return;
                }
                let code = u16::from_be_bytes([msg[4], msg[5]]);
                let max = if msg.len() == 24 {
                    std::time::Duration::from_millis(u64::from(code))
                } else {
                    crate::group_query::mld_max_resp(code)
                };
                self.mld_query(ctx, ifindex, group, max);
            }
            // Other errors are counted; sockets that care about them are
            // not served here.
            _ => {}
        }
    }

    /// A Packet Too Big: lower the path MTU to the quoted destination
    /// (RFC 8201 section 4), if the quoted packet is really one of ours.
    fn icmp6_too_big(&mut self, ctx: &mut impl Ctx, msg: &[u8]) {
        let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let quoted = &msg[8..];
        let (Some(qsrc), Some(qdst)) = (addr_at(quoted, 8), addr_at(quoted, 24)) else {
            return;
        };
        if quoted.first().is_none_or(|v| v >> 4 != 6) || self.local_iface6(&qsrc).is_none() {
            return;
        }
        let link = match self.ipv6_route_for(&qdst, None) {
            Ok((ifindex, _)) => self.ipv6_link_mtu(ifindex) as u32,
            Err(_) => return,
        };
        if self.v6.pmtu_update(ctx.now(), qdst, mtu, link) {
            self.v6.icmp_stats.pmtu_updates += 1;
        }
    }

    /// Sends an ICMPv6 error about `offending` (an IPv6 packet as received;
    /// `in_if` its interface or 0 if unknown) unless RFC 4443 section 2.4
    /// (e) forbids it or the rate limit (f) is reached. `param` is the
    /// pointer, MTU or zero of the message's second word.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn icmp6_error(
        &mut self,
        ctx: &mut impl Ctx,
        in_if: IfIndex,
        offending: &[u8],
        l2_multicast: bool,
        ty: u8,
        code: u8,
        param: u32,
    ) {
        let (Some(src), Some(dst)) = (addr_at(offending, 8), addr_at(offending, 24)) else {
            return;
        };
        let exception = ty == icmp6::PACKET_TOO_BIG || (ty == icmp6::PARAM_PROBLEM && code == 2);
        if src.is_unspecified()
            || src.is_multicast()
            || ((dst.is_multicast() || l2_multicast) && !exception)
            || carries_icmp6_error(offending)
        {
            self.v6.icmp_stats.err_suppressed += 1;
            return;
        }
        if !self
            .v6
            .err_bucket
            .take(ctx.now(), self.config.icmp6_err_rate)
        {
            self.v6.icmp_stats.rate_limited += 1;
            return;
        }
        // RFC 4443 section 2.2: from the address the packet was sent to if
        // it is one of our unicast addresses, else by source selection.
        let from = (!dst.is_multicast())
            .then(|| self.interfaces().find_map(|i| i.addr6(&dst)))
            .flatten()
            .filter(|a| a.is_usable())
            .map(|a| a.addr);
        let oif = (src.is_unicast_link_local() && in_if != 0).then_some(in_if);
        let quote = &offending[..offending.len().min(MAX_QUOTE)];
        let _ = self.icmp6_output(
            ctx,
            oif,
            from,
            src,
            ty,
            code,
            param.to_be_bytes(),
            quote,
            None,
            None,
        );
    }
}
