//! SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is
//! full, the SYN-ACK carries the connection's state in its ISN instead of
//! the listener keeping it, and the final ACK brings it back.
//!
//! The ISN is laid out as
//!
//! ```text
//!  31      27 26  24 23                     0
//! +----------+------+------------------------+
//! | counter  | MSS  |  MAC (24 bits)         |
//! +----------+------+------------------------+
//! ```
//!
//! with `counter` the time in 64-second steps (mod 32), `MSS` an index in
//! [`MSS_TABLE`], and the MAC SipHash-2-4 under the stack's ISN key of the
//! 4-tuple, the peer's ISN and the full counter, so only we can make one
//! and only for that SYN. A cookie is good for two counter steps.
//!
//! Window scaling and SACK cannot fit there; when the peer uses
//! timestamps they travel in the low bits of our TSval, which the peer
//! echoes (as Linux does). Without timestamps the connection goes without
//! those options.

use std::net::SocketAddr;

use super::isn::{IsnKey, siphash24};
use crate::time::Instant;

/// MSS values a cookie can say (index in 3 bits); the largest not above
/// the peer's is chosen.
pub const MSS_TABLE: [u16; 8] = [536, 1024, 1220, 1300, 1400, 1440, 1460, 8960];
/// Seconds per counter step.
const STEP_SECS: u64 = 64;
/// Counter steps a cookie stays valid for (its own and the next).
const MAX_AGE: u32 = 1;

/// How long after the last cookie went out an ACK to a listener is
/// checked for one (two counter steps).
pub const COOKIE_WINDOW: std::time::Duration = std::time::Duration::from_secs(2 * STEP_SECS);

/// Option bits carried in the low bits of TSval.
pub const TS_BITS: u32 = 6;
const TS_WSCALE_ON: u32 = 1 << 4;
const TS_SACK_ON: u32 = 1 << 5;

fn counter(now: Instant) -> u32 {
    (now.as_nanos() / 1_000_000_000 / STEP_SECS) as u32
}

fn mac(key: &IsnKey, local: SocketAddr, remote: SocketAddr, irs: u32, count: u32) -> u32 {
    let mut b = Vec::with_capacity(48);
    // A label keeps cookie MACs apart from ISN offsets under the same key.
    b.extend_from_slice(b"syncookie");
    for a in [local, remote] {
        match a.ip() {
            std::net::IpAddr::V4(x) => b.extend_from_slice(&x.octets()),
            std::net::IpAddr::V6(x) => b.extend_from_slice(&x.octets()),
        }
        b.extend_from_slice(&a.port().to_be_bytes());
    }
    b.extend_from_slice(&irs.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    (siphash24(key.0, key.1, &b) as u32) & 0x00ff_ffff
}

/// The index of the MSS to put in a cookie for a peer announcing `mss`.
pub fn mss_index(mss: u16) -> u8 {
    MSS_TABLE.iter().rposition(|m| *m <= mss).unwrap_or(0) as u8
}

/// The cookie ISN for a SYN from `remote` with ISN `irs`.
pub fn make(
    key: &IsnKey,
    local: SocketAddr,
    remote: SocketAddr,
    irs: u32,
    mss_idx: u8,
    now: Instant,
) -> u32 {
    let c = counter(now);
    ((c & 0x1f) << 27) | (u32::from(mss_idx & 7) << 24) | mac(key, local, remote, irs, c)
}

/// Checks the cookie `isn` (the final ACK's SEG.ACK - 1) against the
/// connection it claims; the MSS it carries if it is genuine and fresh.
pub fn check(
    key: &IsnKey,
    local: SocketAddr,
    remote: SocketAddr,
    irs: u32,
    isn: u32,
    now: Instant,
) -> Option<u16> {
    let c = counter(now);
    let age = (c.wrapping_sub(isn >> 27)) & 0x1f;
    if age > MAX_AGE {
        return None;
    }
    let made = c.wrapping_sub(age);
    if mac(key, local, remote, irs, made) != isn & 0x00ff_ffff {
        return None;
    }
    MSS_TABLE.get(((isn >> 24) & 7) as usize).copied()
}

/// The options of the peer's SYN kept in our TSval: its window scale (if
/// it offered one) and SACK-permitted.
pub fn ts_bits(wscale: Option<u8>, sack: bool) -> u32 {
    let mut v = 0;
    if let Some(w) = wscale {
        v |= TS_WSCALE_ON | u32::from(w.min(14));
    }
    if sack {
        v |= TS_SACK_ON;
    }
    v
}

/// The options back from the echoed TSval.
pub fn from_ts_bits(ecr: u32) -> (Option<u8>, bool) {
    let ws = (ecr & TS_WSCALE_ON != 0).then_some((ecr & 0xf) as u8);
    (ws.map(|w| w.min(14)), ecr & TS_SACK_ON != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_checks_only_for_its_connection_and_while_fresh() {
        let k = IsnKey(11, 22);
        let l: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let r: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let t = Instant::from_millis(1_000_000);
        let isn = make(&k, l, r, 777, mss_index(1460), t);
        assert_eq!(check(&k, l, r, 777, isn, t), Some(1460));
        let later = Instant::from_millis(1_000_000 + 50_000);
        assert_eq!(check(&k, l, r, 777, isn, later), Some(1460));
        let stale = Instant::from_millis(1_000_000 + 200_000);
        assert_eq!(check(&k, l, r, 777, isn, stale), None);
        assert_eq!(check(&k, l, r, 778, isn, t), None, "another SYN");
        let r2: SocketAddr = "10.0.0.1:40001".parse().unwrap();
        assert_eq!(check(&k, l, r2, 777, isn, t), None, "another peer");
        assert_eq!(check(&k, l, r, 777, isn ^ 1, t), None, "tampered");
        assert_eq!(check(&IsnKey(11, 23), l, r, 777, isn, t), None);
        assert_eq!(mss_index(1000), 0);
        assert_eq!(MSS_TABLE[usize::from(mss_index(1452))], 1440);
        assert_eq!(from_ts_bits(ts_bits(Some(7), true)), (Some(7), true));
        assert_eq!(from_ts_bits(ts_bits(None, false)), (None, false));
        assert_eq!(from_ts_bits(ts_bits(Some(15), false)), (Some(14), false));
    }
}

mod io {
    use std::net::SocketAddr;

    use iopkt_wire::tcp::{self as wire, TcpOptions};

    use super::super::input::Seg;
    use super::super::output::{Hdr, ts_now};
    use super::super::tcb::{State, Tcb};
    use super::{TS_BITS, check, from_ts_bits, make, mss_index, ts_bits};
    use crate::ctx::Ctx;
    use crate::socket::SocketId;
    use crate::stack::Stack;

    impl Stack {
        /// Answers a SYN to listener `lid`, whose SYN queue is full, with
        /// a cookie SYN-ACK and keeps nothing (RFC 4987 section 3.6).
        pub(crate) fn tcp_cookie_syn_ack(
            &mut self,
            ctx: &mut impl Ctx,
            lid: SocketId,
            local: SocketAddr,
            remote: SocketAddr,
            seg: &Seg<'_>,
        ) {
            let now = ctx.now();
            let Some(l) = self.tcp.conns.get(&lid) else {
                return;
            };
            let route_mss = self.tcp_route_mss(remote.ip());
            let our_mss = if l.opts.max_seg > 0 {
                route_mss.min(l.opts.max_seg)
            } else {
                route_mss
            };
            let ttl = l.opts.ttl;
            // The scale and window tcp_spawn will give the connection.
            let (rcv0, _) = self.tcp_initial_bufs();
            let locked = l.tune.rcv_locked;
            let cap = if locked { l.rcvbuf.cap } else { rcv0 };
            let wscale = Tcb::wscale_for(self.tcp_rcvbuf_ceiling_for(cap, locked));
            let default = if remote.is_ipv6() {
                super::super::tcb::DEFAULT_MSS_V6
            } else {
                super::super::tcb::DEFAULT_MSS_V4
            };
            let peer_mss = seg.opts.mss.unwrap_or(default);
            let isn = make(
                &self.tcp.key,
                local,
                remote,
                seg.seq,
                mss_index(peer_mss),
                now,
            );
            let mut o = TcpOptions {
                mss: Some(our_mss),
                ..TcpOptions::default()
            };
            if let Some((val, _)) = seg.opts.timestamp {
                // Only with timestamps can the other options come back.
                let sack = seg.opts.sack_permitted && self.tcp.sack_enabled;
                if seg.opts.wscale.is_some() {
                    o.wscale = Some(wscale);
                }
                o.sack_permitted = sack;
                let bits = ts_bits(seg.opts.wscale, sack);
                // Below our clock, so the TSvals that follow never look
                // older to the peer's PAWS check (RFC 7323 section 5).
                let base = ts_now(now).wrapping_sub(1 << TS_BITS);
                let ts = (base & !((1 << TS_BITS) - 1)) | bits;
                o.timestamp = Some((ts, val));
            }
            let h = Hdr {
                local,
                remote,
                seq: isn,
                ack: seg.seq.wrapping_add(1),
                flags: wire::SYN | wire::ACK,
                wnd: cap.min(65_535) as u16,
                ttl,
            };
            self.tcp.last_cookie = Some(now);
            self.tcp.stats.syncookies_sent += 1;
            let _ = self.tcp_emit(ctx, h, &o.encode(), 0, |_| {});
        }

        /// An ACK to a listener: the end of a cookie handshake? If the
        /// cookie is genuine, the connection is made, ESTABLISHED, and
        /// queued for accept(2); true then. False sends the caller on to
        /// answer with a reset.
        pub(crate) fn tcp_cookie_ack(
            &mut self,
            ctx: &mut impl Ctx,
            lid: SocketId,
            local: SocketAddr,
            remote: SocketAddr,
            seg: &Seg<'_>,
        ) -> bool {
            let now = ctx.now();
            // Only shortly after cookies went out (Linux does the same):
            // otherwise every stray ACK would be a 2^-24 chance.
            let recent = self
                .tcp
                .last_cookie
                .is_some_and(|t| now.saturating_since(t) < super::COOKIE_WINDOW);
            if !recent {
                return false;
            }
            let irs = seg.seq.wrapping_sub(1);
            let isn = seg.ack.wrapping_sub(1);
            let Some(mss) = check(&self.tcp.key, local, remote, irs, isn, now) else {
                self.tcp.stats.syncookies_failed += 1;
                return false;
            };
            let room = self
                .tcp
                .conns
                .get(&lid)
                .and_then(|l| l.listen.as_ref())
                .is_some_and(|l| l.accept_queue.len() < l.backlog as usize);
            if !room {
                // Linux drops it too; a later segment from the client
                // brings the cookie again.
                self.tcp.stats.listen_overflows += 1;
                return true;
            }
            // The SYN's options, as far as the cookie kept them.
            let mut opts = TcpOptions {
                mss: Some(mss),
                ..TcpOptions::default()
            };
            if let Some((val, ecr)) = seg.opts.timestamp {
                let (ws, sack) = from_ts_bits(ecr);
                opts.wscale = ws;
                opts.sack_permitted = sack;
                opts.timestamp = Some((val, 0));
            }
            let syn = Seg {
                seq: irs,
                ack: 0,
                flags: wire::SYN,
                wnd: 0,
                opts,
                data: &[],
            };
            let Some(id) = self.tcp_spawn(lid, local, remote, &syn, isn, now) else {
                return true;
            };
            let Some(t) = self.tcp.conns.get_mut(&id) else {
                return true;
            };
            t.state = State::Established;
            t.snd_una = seg.ack;
            t.snd_wnd = u32::from(seg.wnd) << t.snd_wscale;
            t.max_snd_wnd = t.snd_wnd;
            t.snd_wl1 = seg.seq;
            t.snd_wl2 = seg.ack;
            t.rtt_timed = None;
            t.timers.rexmit = None;
            t.arm_keepalive(now);
            self.tcp.stats.passive_opens += 1;
            self.tcp.stats.established += 1;
            self.tcp.stats.syncookies_recv += 1;
            if let Some(l) = self.tcp.conns.get_mut(&lid).and_then(|p| p.listen.as_mut()) {
                l.accept_queue.push_back(id);
            }
            ctx.socket_ready(lid);
            // Data or a FIN on the ACK is handled as on any connection.
            if !seg.data.is_empty() || seg.has(wire::FIN) {
                self.tcp_input_conn(ctx, id, seg);
            }
            self.tcp_rearm(id);
            true
        }
    }
}
