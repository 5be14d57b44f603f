//! ICMP errors about our segments reaching their connection.
//!
//! - Destination unreachable (RFC 1122 section 4.2.3.9): port or protocol
//!   unreachable aborts a connection still in SYN-SENT (ECONNREFUSED);
//!   every other case is a soft error, kept and reported only if the
//!   connection then times out, as routes come and go.
//! - Fragmentation needed (RFC 1191) and Packet Too Big (RFC 8201): the
//!   connection's MSS drops to fit the reported MTU and what is in flight
//!   goes out again in segments that fit.
//!
//! Blind attacks with forged errors (RFC 5927 section 4.1) are answered by
//! accepting an error only if the quoted sequence number lies in
//! SND.UNA..SND.NXT, data we really sent and is not yet acknowledged.

use std::net::{IpAddr, SocketAddr};

use iopkt_wire::icmp::{v4, v6};
use iopkt_wire::ipproto;

use super::seq;
use super::tcb::State;
use crate::ctx::Ctx;
use crate::error::Error;
use crate::stack::Stack;

/// What an ICMP error means to TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IcmpKind {
    /// Port or protocol unreachable.
    Refused,
    /// Any other unreachable: network, host, prohibited…
    Unreachable(Error),
    /// The path MTU is `mtu` bytes (0: the router did not say).
    TooBig(u32),
}

/// The kind of an ICMPv4 error: `ty`, `code` and the next-hop MTU field
/// (RFC 1191 section 4), None for errors TCP ignores.
pub(crate) fn kind_of_icmp4(ty: u8, code: u8, next_mtu: u16) -> Option<IcmpKind> {
    if ty != v4::DEST_UNREACH {
        return None;
    }
    Some(match code {
        v4::UNREACH_PORT | v4::UNREACH_PROTO => IcmpKind::Refused,
        v4::UNREACH_NEEDFRAG => IcmpKind::TooBig(u32::from(next_mtu)),
        v4::UNREACH_NET => IcmpKind::Unreachable(Error::NetUnreachable),
        _ => IcmpKind::Unreachable(Error::HostUnreachable),
    })
}

/// The kind of an ICMPv6 error (RFC 4443 sections 3.1 and 3.2).
pub(crate) fn kind_of_icmp6(ty: u8, code: u8, mtu: u32) -> Option<IcmpKind> {
    match ty {
        v6::PACKET_TOO_BIG => Some(IcmpKind::TooBig(mtu)),
        v6::DEST_UNREACH => Some(match code {
            v6::UNREACH_PORT => IcmpKind::Refused,
            v6::UNREACH_NOROUTE => IcmpKind::Unreachable(Error::NetUnreachable),
            _ => IcmpKind::Unreachable(Error::HostUnreachable),
        }),
        _ => None,
    }
}

/// (our end, their end, quoted sequence number) of a quoted IP packet
/// carrying a TCP segment; at least 8 bytes of it are quoted (RFC 792),
/// which covers the ports and the sequence number.
fn quoted_segment(quoted: &[u8]) -> Option<(SocketAddr, SocketAddr, u32)> {
    let v = quoted.first()? >> 4;
    let (src, dst, off) = match v {
        4 => {
            let hl = usize::from(quoted.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*quoted.get(6)?, *quoted.get(7)?]) & 0x1fff;
            if hl < 20 || *quoted.get(9)? != ipproto::TCP || frag != 0 {
                return None;
            }
            let a: [u8; 4] = quoted.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
            (IpAddr::from(a), IpAddr::from(b), hl)
        }
        6 => {
            // Only a TCP header right after the fixed header; ours never
            // carry extension headers.
            if *quoted.get(6)? != ipproto::TCP {
                return None;
            }
            let a: [u8; 16] = quoted.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
            (IpAddr::from(a), IpAddr::from(b), 40)
        }
        _ => return None,
    };
    let t = quoted.get(off..off + 8)?;
    let sport = u16::from_be_bytes([t[0], t[1]]);
    let dport = u16::from_be_bytes([t[2], t[3]]);
    let s = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport), s))
}

impl Stack {
    /// An ICMP error quoting `quoted` (the IP packet we sent, as much as
    /// came back) reached us.
    pub(crate) fn tcp_icmp_error(&mut self, ctx: &mut impl Ctx, quoted: &[u8], kind: IcmpKind) {
        let Some((local, remote, qseq)) = quoted_segment(quoted) else {
            return;
        };
        let Some(&id) = self.tcp.by_tuple.get(&(local, remote)) else {
            return;
        };
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // RFC 5927 section 4.1: only about data in flight.
        if !(seq::le(t.snd_una, qseq) && seq::lt(qseq, t.snd_max)) {
            self.tcp.stats.icmp_ignored += 1;
            return;
        }
        self.tcp.stats.icmp_errors += 1;
        match kind {
            IcmpKind::Refused if t.state == State::SynSent => {
                t.set_error(Error::ConnRefused);
                self.tcp.stats.attempt_fails += 1;
                self.tcp_closed(ctx, id);
            }
            IcmpKind::Refused => t.soft_error = Some(Error::ConnRefused),
            IcmpKind::Unreachable(e) => t.soft_error = Some(e),
            IcmpKind::TooBig(mtu) => {
                let hdrs = if remote.is_ipv6() { 60 } else { 40 };
                let opt = if t.ts_ok { 12 } else { 0 };
                // RFC 1191 section 3 / RFC 8201 section 4: never below
                // the minimum MTU of the family.
                let floor = if remote.is_ipv6() { 1280 } else { 68 };
                if mtu == 0 {
                    return;
                }
                let mss = mtu.max(floor).saturating_sub(hdrs + opt).max(32);
                if mss >= t.mss {
                    return;
                }
                t.mss = mss;
                self.tcp.stats.pmtu_shrinks += 1;
                if t.state.synchronized() && t.flight() > 0 {
                    // What is in flight was too big and dropped: send it
                    // again now, in segments that fit, without treating
                    // it as congestion (RFC 1191 section 6.5).
                    t.snd_nxt = t.snd_una;
                    t.scoreboard.clear();
                    t.recover = None;
                    t.dupacks = 0;
                    if t.fin_sent && seq::le(t.snd_una, t.fin_seq) {
                        t.fin_sent = false;
                    }
                    self.tcp_output(ctx, id, true);
                }
            }
        }
        self.tcp_rearm(id);
        ctx.socket_ready(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_icmp_errors() {
        assert_eq!(kind_of_icmp4(3, 3, 0), Some(IcmpKind::Refused));
        assert_eq!(kind_of_icmp4(3, 4, 1000), Some(IcmpKind::TooBig(1000)));
        assert_eq!(
            kind_of_icmp4(3, 1, 0),
            Some(IcmpKind::Unreachable(Error::HostUnreachable))
        );
        assert_eq!(kind_of_icmp4(11, 0, 0), None);
        assert_eq!(kind_of_icmp6(2, 0, 1300), Some(IcmpKind::TooBig(1300)));
        assert_eq!(kind_of_icmp6(1, 4, 0), Some(IcmpKind::Refused));
        assert!(quoted_segment(&[0x45, 0, 0]).is_none());
    }
}
