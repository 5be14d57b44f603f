//! ICMP for IPv4 (RFC 792, RFC 1122 section 3.2.2, RFC 1812 section 4.3):
//! echo, and errors with rate limiting.

use std::net::{IpAddr, Ipv4Addr};

use iopkt_pkt::PktBuf;
use iopkt_wire::FromBytes;
use iopkt_wire::checksum;
use iopkt_wire::icmp::{self, IcmpHdr, v4};
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::{Ipv4Hdr, MIN_HEADER_LEN};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::ipv4::Rx4;
use crate::stack::Stack;
use crate::time::Instant;

/// An ICMP error message can be at most this long with its IP header
/// (RFC 1812 section 4.3.2.3: quote as much as fits in 576 bytes).
pub const MAX_ERROR_DATAGRAM: usize = 576;

/// ICMP counters, as `netstat -s` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Icmp4Stats {
    pub in_msgs: u64,
    /// Too short or with a bad checksum.
    pub in_errors: u64,
    pub in_echo_requests: u64,
    pub in_echo_replies: u64,
    pub in_dest_unreach: u64,
    pub in_time_exceeded: u64,
    pub in_param_problem: u64,
    /// Types we do not act on (redirects, timestamps, ...).
    pub in_other: u64,
    /// Echo requests to a broadcast or multicast address left unanswered
    /// (`net.inet.icmp.bmcastecho` is 0).
    pub bmcast_echo_ignored: u64,
    pub out_msgs: u64,
    pub out_echo_replies: u64,
    pub out_dest_unreach: u64,
    pub out_time_exceeded: u64,
    pub out_param_problem: u64,
    /// Errors not sent because the rules forbid them (about an ICMP error, a
    /// later fragment, a broadcast, a bad source).
    pub errors_suppressed: u64,
    /// Errors not sent because of the rate limit.
    pub errors_rate_limited: u64,
}

/// An ICMP error to send about a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp4Error {
    /// Destination unreachable with a code (`v4::UNREACH_*`).
    DestUnreach(u8),
    /// Fragmentation needed and DF set, with the next hop's MTU (RFC 1191).
    FragNeeded { mtu: u16 },
    /// Time exceeded: in transit (code 0) or in reassembly (code 1).
    TimeExceeded(u8),
    /// Parameter problem at byte `pointer` of the datagram.
    ParamProblem { pointer: u8 },
}

impl Icmp4Error {
    fn wire(self) -> (u8, u8, [u8; 4]) {
        match self {
            Icmp4Error::DestUnreach(c) => (v4::DEST_UNREACH, c, [0; 4]),
            Icmp4Error::FragNeeded { mtu } => {
                let m = mtu.to_be_bytes();
                (v4::DEST_UNREACH, v4::UNREACH_NEEDFRAG, [0, 0, m[0], m[1]])
            }
            Icmp4Error::TimeExceeded(c) => (v4::TIME_EXCEEDED, c, [0; 4]),
            Icmp4Error::ParamProblem { pointer } => (v4::PARAM_PROBLEM, 0, [pointer, 0, 0, 0]),
        }
    }
}

/// A token bucket for ICMP errors (RFC 1812 section 4.3.2.8): refills at the
/// configured rate per second and holds at most one second's worth.
///
/// Credit is kept in nanotoken units (one token is 10^9) so that any rate
/// refills exactly in integer arithmetic.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    credit: u128,
    last: Option<Instant>,
}

const TOKEN: u128 = 1_000_000_000;

impl RateLimiter {
    /// Takes one token if there is one. A rate of 0 sends no errors at all.
    pub(crate) fn allow(&mut self, now: Instant, per_sec: u32) -> bool {
        let cap = per_sec as u128 * TOKEN;
        match self.last {
            // A fresh bucket starts full.
            None => self.credit = cap,
            Some(t) => {
                let elapsed = now.saturating_since(t).as_nanos();
                self.credit = (self.credit + elapsed * per_sec as u128).min(cap);
            }
        }
        self.last = Some(now);
        if self.credit >= TOKEN {
            self.credit -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// ICMP types that are queries or replies rather than errors: an error may
/// be sent about these (RFC 1122 section 3.2.2).
fn is_icmp_query(ty: u8) -> bool {
    matches!(ty, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
}

impl Stack {
    /// Sends an ICMP message of type `ty`/`code` with the four bytes `rest`
    /// and `body` after the header, to `dst` (the checksum is filled in).
    pub fn icmp4_send(
        &mut self,
        ctx: &mut impl Ctx,
        dst: Ipv4Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        self.icmp4_send_from(ctx, None, dst, ty, code, rest, body)
    }

    /// [`Stack::icmp4_send`] with a chosen source address.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn icmp4_send_from(
        &mut self,
        ctx: &mut impl Ctx,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        let len = icmp::HEADER_LEN + body.len();
        if len + MIN_HEADER_LEN > crate::ipv4::MAX_DATAGRAM {
            return Err(Error::MessageTooLarge);
        }
        let mut pkt = self.pool.alloc_for(len);
        let Some(m) = pkt.try_append(len) else {
            return Err(Error::NoBuffers);
        };
        m[0] = ty;
        m[1] = code;
        m[2..4].fill(0);
        m[4..8].copy_from_slice(&rest);
        m[8..].copy_from_slice(body);
        // No pseudo-header for ICMPv4 (RFC 792): the partial sum is zero,
        // and the whole sum is taken where the message leaves the host.
        pkt.set_csum_partial(0, 2);
        self.ipv4_send(ctx, src, dst, ipproto::ICMP, pkt, None, false)?;
        self.v4.icmp.out_msgs += 1;
        Ok(())
    }

    /// Sends ICMP error `err` about `orig`, a datagram we received (or were
    /// sending) starting with its IP header, unless the rules forbid it
    /// (RFC 1122 section 3.2.2, RFC 1812 section 4.3.2.7) or the rate limit
    /// is reached. `l2_multicast`: it came in a link-layer broadcast.
    /// Returns whether the error was sent.
    pub(crate) fn icmp4_error(
        &mut self,
        ctx: &mut impl Ctx,
        orig: &[u8],
        l2_multicast: bool,
        err: Icmp4Error,
    ) -> bool {
        let Ok((h, _)) = Ipv4Hdr::ref_from_prefix(orig) else {
            return false;
        };
        let hl = h.header_len();
        let (src, dst) = (h.src(), h.dst());
        let about_error = h.proto == ipproto::ICMP
            && (h.frag_offset() != 0 || orig.get(hl).is_none_or(|t| !is_icmp_query(*t)));
        let bad_src = src.is_unspecified() || src.octets()[0] >= 240 || self.is_martian_src4(src);
        let to_group =
            dst.is_multicast() || dst.is_broadcast() || self.is_any_subnet_broadcast4(dst);
        if hl < MIN_HEADER_LEN
            || orig.len() < hl
            || about_error
            || h.frag_offset() != 0
            || l2_multicast
            || to_group
            || bad_src
        {
            self.v4.icmp.errors_suppressed += 1;
            return false;
        }
        if !self
            .v4
            .icmp_limiter
            .allow(ctx.now(), self.config.icmp_err_rate)
        {
            self.v4.icmp.errors_rate_limited += 1;
            return false;
        }
        let quote_len = orig
            .len()
            .min(MAX_ERROR_DATAGRAM - MIN_HEADER_LEN - icmp::HEADER_LEN);
        let quote = &orig[..quote_len];
        // Errors about datagrams sent to us come from the address they were
        // sent to; a router's come from the outgoing interface (RFC 1812
        // section 4.3.2.4).
        let from = self.local_iface4(dst).map(|_| dst);
        let (ty, code, rest) = err.wire();
        if self
            .icmp4_send_from(ctx, from, src, ty, code, rest, quote)
            .is_err()
        {
            return false;
        }
        let s = &mut self.v4.icmp;
        match ty {
            v4::DEST_UNREACH => s.out_dest_unreach += 1,
            v4::TIME_EXCEEDED => s.out_time_exceeded += 1,
            _ => s.out_param_problem += 1,
        }
        true
    }

    /// An ICMP message for us; `pkt` still starts with the IP header.
    pub(crate) fn icmp4_input(&mut self, ctx: &mut impl Ctx, pkt: PktBuf, rx: Rx4) {
        self.v4.icmp.in_msgs += 1;
        let msg = pkt.data().get(rx.hl..).unwrap_or_default();
        let Some(h) = IcmpHdr::parse(msg) else {
            self.v4.icmp.in_errors += 1;
            return;
        };
        if !pkt.csum_trusted() && checksum::checksum(msg) != 0 {
            self.v4.icmp.in_errors += 1;
            return;
        }
        match h.ty {
            v4::ECHO_REQUEST => {
                self.v4.icmp.in_echo_requests += 1;
                self.icmp4_echo(ctx, pkt, rx);
            }
            v4::ECHO_REPLY => {
                self.v4.icmp.in_echo_replies += 1;
                let ident = h.ident();
                self.deliver_echo_reply(ctx, IpAddr::V4(rx.src), ident, msg, rx.ttl);
            }
            v4::DEST_UNREACH | v4::TIME_EXCEEDED | v4::PARAM_PROBLEM => {
                let s = &mut self.v4.icmp;
                match h.ty {
                    v4::DEST_UNREACH => s.in_dest_unreach += 1,
                    v4::TIME_EXCEEDED => s.in_time_exceeded += 1,
                    _ => s.in_param_problem += 1,
                }
                let msg = msg.to_vec();
                self.icmp4_error_input(ctx, rx, &msg);
            }
            _ => self.v4.icmp.in_other += 1,
        }
    }

    /// Answers an echo request in its own buffer: the IP header is dropped
    /// and a new one prepended in its place, the ICMP type becomes reply and
    /// the checksum follows incrementally (RFC 1624).
    fn icmp4_echo(&mut self, ctx: &mut impl Ctx, mut pkt: PktBuf, rx: Rx4) {
        if rx.to_group && !self.config.icmp_bmcast_echo {
            // RFC 1122 section 3.2.2.6 lets a host ignore these; answering
            // by default makes the host a smurf amplifier.
            self.v4.icmp.bmcast_echo_ignored += 1;
            return;
        }
        if rx.src.is_unspecified() || self.is_martian_src4(rx.src) {
            return;
        }
        pkt.advance(rx.hl);
        let m = pkt.data_mut();
        let old = u16::from_be_bytes([m[0], m[1]]);
        m[0] = v4::ECHO_REPLY;
        let new = u16::from_be_bytes([m[0], m[1]]);
        if pkt.csum_partial().is_none() {
            let m = pkt.data_mut();
            let c = checksum::update16(u16::from_be_bytes([m[2], m[3]]), old, new);
            m[2..4].copy_from_slice(&c.to_be_bytes());
        }
        // A partial checksum (the request came over lo0) is summed over
        // the changed type where the reply leaves the host.
        // A reply to a unicast request comes from the address asked; one to
        // a group from the interface's own (RFC 1122 section 3.2.2.6).
        let src = (!rx.to_group).then_some(rx.dst);
        if self
            .ipv4_send(ctx, src, rx.src, ipproto::ICMP, pkt, None, false)
            .is_ok()
        {
            self.v4.icmp.out_msgs += 1;
            self.v4.icmp.out_echo_replies += 1;
        }
    }

    /// An ICMP error for us: find whom it concerns from the quoted header.
    fn icmp4_error_input(&mut self, ctx: &mut impl Ctx, rx: Rx4, msg: &[u8]) {
        if rx.to_group {
            return;
        }
        let quoted = msg.get(icmp::HEADER_LEN..).unwrap_or_default();
        let Ok((q, _)) = Ipv4Hdr::ref_from_prefix(quoted) else {
            return;
        };
        let qhl = q.header_len();
        if q.version() != 4 || qhl < MIN_HEADER_LEN || !self.is_local4(q.src()) {
            return;
        }
        let inner = quoted.get(qhl..).unwrap_or_default();
        // The transport layers each claim their own errors here.
        if q.proto == ipproto::ICMP
            && let Some(e) = IcmpHdr::parse(inner).filter(|e| e.ty == v4::ECHO_REQUEST)
        {
            // The ping socket gets the whole error so that its client can
            // say what went wrong, and where.
            let ident = e.ident();
            self.deliver_echo_reply(ctx, IpAddr::V4(rx.src), ident, msg, rx.ttl);
        }
        if q.proto == ipproto::UDP
            && let (Some(&ty), Some(&code)) = (msg.first(), msg.get(1))
            && let Some(e) = crate::udp::error_of_icmp4(ty, code)
        {
            self.udp_icmp_error(ctx, quoted, e);
        }
        if q.proto == ipproto::TCP
            && let (Some(&ty), Some(&code)) = (msg.first(), msg.get(1))
            && let (Some(&m0), Some(&m1)) = (msg.get(6), msg.get(7))
            && let Some(k) = crate::tcp::kind_of_icmp4(ty, code, u16::from_be_bytes([m0, m1]))
        {
            self.tcp_icmp_error(ctx, quoted, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refills_at_the_rate_and_caps_at_one_second() {
        let mut r = RateLimiter::default();
        let t0 = Instant::from_millis(1000);
        let sent = (0..50).filter(|_| r.allow(t0, 10)).count();
        assert_eq!(sent, 10, "a full bucket holds one second's worth");
        assert!(!r.allow(t0, 10));
        // 100 ms later, one more token.
        let t1 = Instant::from_millis(1100);
        assert!(r.allow(t1, 10));
        assert!(!r.allow(t1, 10));
        // A long pause refills only to the cap.
        let t2 = Instant::from_millis(100_000);
        let sent = (0..50).filter(|_| r.allow(t2, 10)).count();
        assert_eq!(sent, 10);
        // Rate 0 sends nothing.
        let mut z = RateLimiter::default();
        assert!(!z.allow(t0, 0));
    }

    #[test]
    fn error_kinds_map_to_types_and_codes() {
        assert_eq!(
            Icmp4Error::FragNeeded { mtu: 1400 }.wire(),
            (3, 4, [0, 0, 0x05, 0x78])
        );
        assert_eq!(Icmp4Error::TimeExceeded(1).wire(), (11, 1, [0; 4]));
        assert_eq!(
            Icmp4Error::ParamProblem { pointer: 9 }.wire(),
            (12, 0, [9, 0, 0, 0])
        );
        assert_eq!(Icmp4Error::DestUnreach(2).wire(), (3, 2, [0; 4]));
        assert!(is_icmp_query(8) && is_icmp_query(0) && !is_icmp_query(3));
    }
}
