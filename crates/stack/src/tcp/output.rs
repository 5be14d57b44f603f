//! Building and sending segments: the send loop with Nagle (RFC 896),
//! sender-side silly window avoidance (RFC 9293 section 3.8.6.2.1) and the
//! congestion window; ACKs, SYNs, RSTs and probes.

use std::net::{IpAddr, SocketAddr};

use iopkt_pkt::offload;
use iopkt_wire::checksum;
use iopkt_wire::ipproto;
use iopkt_wire::tcp::{self as wire, TcpOptions};

use super::seq;
use super::tcb::{PERSIST_MAX, PERSIST_MIN, State};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::socket::SocketId;
use crate::stack::Stack;

/// The fixed fields of a segment to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hdr {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub wnd: u16,
    pub ttl: Option<u8>,
}

/// Milliseconds for the timestamp clock (RFC 7323 section 5.4: between
/// 1 ms and 1 s per tick).
pub(crate) fn ts_now(now: crate::time::Instant) -> u32 {
    now.as_millis() as u32
}

impl Stack {
    /// Puts one segment on the wire. `fill` writes the `len` payload bytes.
    pub(crate) fn tcp_emit(
        &mut self,
        ctx: &mut impl Ctx,
        h: Hdr,
        opts: &[u8],
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), Error> {
        self.tcp_emit_gso(ctx, h, opts, len, 0, fill)
    }

    /// [`Stack::tcp_emit`] of a segment that may be larger than the MSS:
    /// with `gso_mss > 0` it is marked to be cut into `gso_mss`-byte
    /// segments by the interface (TSO) or by `crate::gso`.
    pub(crate) fn tcp_emit_gso(
        &mut self,
        ctx: &mut impl Ctx,
        h: Hdr,
        opts: &[u8],
        len: usize,
        gso_mss: u16,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), Error> {
        let hl = wire::MIN_HEADER_LEN + opts.len();
        let total = hl + len;
        let mut pkt = self.pool.alloc_for(total);
        let Some(b) = pkt.try_append(total) else {
            return Err(Error::NoBuffers);
        };
        b[0..2].copy_from_slice(&h.local.port().to_be_bytes());
        b[2..4].copy_from_slice(&h.remote.port().to_be_bytes());
        b[4..8].copy_from_slice(&h.seq.to_be_bytes());
        b[8..12].copy_from_slice(&h.ack.to_be_bytes());
        b[12] = ((hl / 4) as u8) << 4;
        b[13] = h.flags;
        b[14..16].copy_from_slice(&h.wnd.to_be_bytes());
        b[16..20].fill(0);
        b[20..hl].copy_from_slice(opts);
        fill(&mut b[hl..]);
        let pseudo = match (h.local.ip(), h.remote.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s, d, ipproto::TCP, total as u16),
            (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, ipproto::TCP, total as u32),
            _ => return Err(Error::AddrNotAvailable),
        };
        // Partial checksum: the pseudo-header sum now, the rest when the
        // segment leaves the host (crate::offload).
        b[16..18].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
        pkt.set_csum_partial(0, 16);
        if gso_mss > 0 && len > usize::from(gso_mss) {
            let flag = match h.remote {
                SocketAddr::V4(_) => offload::F_GSO_TCPV4,
                SocketAddr::V6(_) => offload::F_GSO_TCPV6,
            };
            pkt.set_gso(flag, gso_mss);
        }
        self.tcp.stats.segs_out += 1;
        if h.flags & wire::RST != 0 {
            self.tcp.stats.resets_out += 1;
        }
        match (h.local.ip(), h.remote.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.ipv4_send(ctx, Some(s), d, ipproto::TCP, pkt, h.ttl, true)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.ipv6_send(ctx, Some(s), d, ipproto::TCP, pkt, h.ttl)
            }
            _ => Err(Error::AddrNotAvailable),
        }
    }

    /// A segment of connection `id`: sequence `seq`, `flags` (ACK is
    /// added once synchronized), `len` bytes of the send buffer from
    /// `seq`. Fills in the ACK, window and options.
    pub(crate) fn tcp_send_seg(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        seq_no: u32,
        mut flags: u8,
        len: usize,
    ) -> bool {
        let now = ctx.now();
        // Under memory pressure the window is cut to a share
        // (`super::memory`).
        let clamp = self
            .tcp
            .conns
            .get(&id)
            .map_or(usize::MAX, |t| self.tcp_mem_wnd_clamp(t));
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return false;
        };
        t.tune.wnd_clamp = clamp;
        let (Some(local), Some(remote)) = (t.local, t.remote) else {
            return false;
        };
        if t.state != State::SynSent {
            flags |= wire::ACK;
        }
        let syn = flags & wire::SYN != 0;
        let mut o = TcpOptions::default();
        let mut dsack = false;
        let wnd;
        if syn {
            o.mss = Some(t.our_mss);
            let offer = t.state == State::SynSent || t.wscale_ok;
            if offer {
                o.wscale = Some(t.rcv_wscale);
            }
            o.sack_permitted = t.sack_ok;
            if t.state == State::SynSent || t.ts_ok {
                o.timestamp = Some((ts_now(now), t.ts_recent));
            }
            // RFC 7323 section 2.2: the window of a SYN is never scaled.
            wnd = t.rcv_space().min(65_535) as u16;
            t.rcv_adv = t.rcv_nxt.wrapping_add(u32::from(wnd));
        } else {
            if t.ts_ok {
                o.timestamp = Some((ts_now(now), t.ts_recent));
            }
            if t.sack_ok && len == 0 && (t.rcvbuf.has_gaps() || t.dsack_out.is_some()) {
                // RFC 2883 section 4: a duplicate goes first, as a DSACK.
                let first = usize::from(t.dsack_out.is_some());
                if let Some(d) = t.dsack_out.take() {
                    o.sack[0] = d;
                    o.sack_len = 1;
                    dsack = true;
                }
                // RFC 2018 section 4: report what arrived beyond the hole.
                for (i, (off, l)) in t.rcvbuf.ooo_ranges(3 - first).into_iter().enumerate() {
                    let left = t.rcv_nxt.wrapping_add(off as u32);
                    o.sack[first + i] = (left, left.wrapping_add(l as u32));
                    o.sack_len = first + i + 1;
                }
            }
            wnd = t.window_to_advertise() as u16;
        }
        let ack = if flags & wire::ACK != 0 { t.rcv_nxt } else { 0 };
        if flags & wire::ACK != 0 {
            t.last_ack_sent = t.rcv_nxt;
            t.unacked_segs = 0;
            t.ack_now = false;
            t.timers.delack = None;
        }
        let off = seq_no.wrapping_sub(t.snd_buf_seq) as usize;
        let len = len.min(t.sndbuf.len().saturating_sub(off));
        let fin = u32::from(flags & wire::FIN != 0);
        let data_seg = !syn && t.rack_active() && (len > 0 || fin > 0);
        if data_seg {
            // RACK remembers when each segment went (RFC 8985 section 6.1).
            t.rack
                .on_send(seq_no, seq_no.wrapping_add(len as u32 + fin), now);
        }
        let h = Hdr {
            local,
            remote,
            seq: seq_no,
            ack,
            flags,
            wnd,
            ttl: t.opts.ttl,
        };
        let opts = o.encode();
        // The payload is copied straight from the send buffer; take it
        // out for the call so the stack can be borrowed to send.
        let sndbuf = std::mem::replace(&mut t.sndbuf, super::buffers::SendBuf::new(0));
        let gso = if len > t.mss as usize {
            t.mss.min(u32::from(u16::MAX)) as u16
        } else {
            0
        };
        let r = self.tcp_emit_gso(ctx, h, &opts, len, gso, |b| sndbuf.copy_out(off, len, b));
        if dsack {
            self.tcp.stats.dsacks_out += 1;
        }
        let too_big = r == Err(Error::MessageTooLarge);
        let mut probe = false;
        let route_mss = if too_big {
            self.tcp_route_mss(remote.ip())
        } else {
            0
        };
        if let Some(t) = self.tcp.conns.get_mut(&id) {
            t.sndbuf = sndbuf;
            if data_seg && t.tlp.end_seq.is_none() {
                // Sending restarts the probe timer (RFC 8985 section 7.2).
                probe = true;
            }
            if too_big {
                // The way out got narrower (the interface MTU went down)
                // and IPv4 segments are sent with DF (RFC 1191): shrink
                // the MSS; the retransmission timer resends the data in
                // segments that fit.
                let opt = if t.ts_ok { 12 } else { 0 };
                t.mss = t.mss.min(u32::from(route_mss).saturating_sub(opt)).max(64);
            }
        }
        if probe {
            self.tcp_tlp_arm(id, now);
        }
        r.is_ok()
    }

    /// The largest payload one segment of connection `id` may carry now:
    /// the MSS, or, when the interface toward the peer segments TCP itself
    /// (TSO), as many whole MSS as fit in a 64 KiB datagram with the
    /// largest IP and TCP headers.
    fn tcp_tso_max(&self, id: SocketId) -> usize {
        let Some(t) = self.tcp.conns.get(&id) else {
            return 0;
        };
        let mss = (t.mss as usize).max(1);
        let Some(remote) = t.remote else {
            return mss;
        };
        let (out_if, cap) = match remote.ip() {
            IpAddr::V4(d) => (
                self.ipv4_path(d, None).ok().map(|p| p.ifindex),
                offload::CAP_TSO4,
            ),
            IpAddr::V6(d) => (
                self.ipv6_route_for(&d, None).ok().map(|r| r.0),
                offload::CAP_TSO6,
            ),
        };
        match out_if.and_then(|i| self.iface(i)) {
            Some(i) if i.offloads & cap != 0 => ((65_535 - 60 - 60) / mss).max(1) * mss,
            _ => mss,
        }
    }

    pub(crate) fn tcp_send_ack(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get(&id) else {
            return;
        };
        let s = t.snd_nxt;
        self.tcp_send_seg(ctx, id, s, wire::ACK, 0);
    }

    /// SYN (active open) or SYN-ACK (passive or simultaneous open).
    pub(crate) fn tcp_send_syn(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get(&id) else {
            return;
        };
        let iss = t.iss;
        self.tcp_send_seg(ctx, id, iss, wire::SYN, 0);
    }

    /// An RFC 5961 challenge ACK, within the stack-wide rate limit
    /// (section 7).
    pub(crate) fn tcp_challenge_ack(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let now = ctx.now();
        if !self.tcp.challenge.allow(now) {
            self.tcp.stats.challenge_acks_limited += 1;
            return;
        }
        self.tcp.stats.challenge_acks += 1;
        self.tcp_send_ack(ctx, id);
    }

    /// A probe the peer must answer with an ACK: an old sequence number
    /// and no data (zero-window probes and keepalives alike, as Linux
    /// sends them).
    pub(crate) fn tcp_send_probe(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get(&id) else {
            return;
        };
        let s = t.snd_una.wrapping_sub(1);
        self.tcp_send_seg(ctx, id, s, wire::ACK, 0);
    }

    /// Retransmits the first unacknowledged segment (fast retransmit and
    /// NewReno partial ACKs).
    pub(crate) fn tcp_retransmit_first(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let s = t.snd_una;
        let off = s.wrapping_sub(t.snd_buf_seq) as usize;
        let avail = t.sndbuf.len().saturating_sub(off);
        let len = avail.min(t.mss as usize);
        let fin = t.fin_sent && s.wrapping_add(len as u32) == t.fin_seq;
        if len == 0 && !fin {
            return;
        }
        if let Some((ts, _)) = t.rtt_timed
            && seq::ge(ts, s)
        {
            t.rtt_timed = None; // Karn
        }
        self.tcp.stats.retrans_segs += 1;
        t.total_retrans += 1;
        let flags = if fin { wire::FIN } else { 0 } | wire::PSH;
        self.tcp_send_seg(ctx, id, s, flags, len);
    }

    /// SACK-based loss recovery's transmission (RFC 6675 section 5 step
    /// (C)): while cwnd (= ssthresh) - pipe leaves room for a segment,
    /// retransmit NextSeg (rules 1 and 3); new data (rule 2) is left to
    /// `tcp_output`, which uses the same pipe. Bounded per call.
    pub(crate) fn tcp_sack_send(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        if self.tcp.conns.get(&id).is_some_and(|t| t.rack_active()) {
            self.tcp_rack_send(ctx, id);
            return;
        }
        for _ in 0..64 {
            let Some(t) = self.tcp.conns.get_mut(&id) else {
                return;
            };
            if !t.sack_recovery() {
                return;
            }
            let mss = t.mss;
            if t.cc.ssthresh().saturating_sub(t.pipe()) < mss {
                return;
            }
            let no_new_data = t.unsent() == 0;
            let next = t
                .scoreboard
                .next_seg(t.snd_una, t.high_rxt, mss, false)
                .or_else(|| {
                    if no_new_data {
                        t.scoreboard.next_seg(t.snd_una, t.high_rxt, mss, true)
                    } else {
                        None
                    }
                });
            // Rule 4, once per episode: with nothing else to send, the
            // tail of the flight, in case that is what was lost.
            let rescue = match (next, t.recover) {
                (None, Some(rp)) if no_new_data && t.rescue_rxt.is_none() => t
                    .scoreboard
                    .rescue_seg(t.snd_una, t.snd_max, mss)
                    .map(|x| (x, rp)),
                _ => None,
            };
            let (s, len) = match (next, rescue) {
                (Some(n), _) => {
                    t.high_rxt = n.0.wrapping_add(n.1);
                    n
                }
                (None, Some((n, rp))) => {
                    t.rescue_rxt = Some(rp);
                    n
                }
                (None, None) => return,
            };
            if let Some((ts, _)) = t.rtt_timed
                && seq::ge(ts, s)
            {
                t.rtt_timed = None; // Karn
            }
            let fin = t.fin_sent && s.wrapping_add(len) == t.fin_seq.wrapping_add(1);
            let data = if fin { len - 1 } else { len };
            self.tcp.stats.retrans_segs += 1;
            t.total_retrans += 1;
            self.tcp.stats.sack_retransmits += 1;
            let flags = if fin { wire::FIN } else { 0 } | wire::PSH;
            self.tcp_send_seg(ctx, id, s, flags, data as usize);
        }
    }

    /// Sends whatever the windows, Nagle and SWS avoidance allow, then a
    /// pending ACK if no segment carried it. `force` sends one segment
    /// into a small window regardless (the persist timer's override).
    pub(crate) fn tcp_output(&mut self, ctx: &mut impl Ctx, id: SocketId, force: bool) {
        let now = ctx.now();
        let mut force = force;
        // Bytes one segment may carry: the MSS, or with segmentation
        // offload on the way out up to 64 KiB in whole MSS (`crate::gso`).
        let seg_max = self.tcp_tso_max(id);
        loop {
            let Some(t) = self.tcp.conns.get_mut(&id) else {
                return;
            };
            if !t.state.sends_data() {
                break;
            }
            // Going back after a timeout: skip what the peer holds.
            if t.sack_ok
                && seq::lt(t.snd_nxt, t.snd_max)
                && let Some(end) = t.scoreboard.sacked_until(t.snd_nxt)
            {
                t.snd_nxt = seq::min(end, t.snd_max);
                continue;
            }
            let unsent = t.unsent();
            let usable = if t.sack_recovery() {
                // RFC 6675 section 5 step (C): cwnd = ssthresh during
                // recovery, and what may go out is cwnd - pipe; the
                // receiver's window still bounds new data.
                let cw = t.cc.ssthresh().saturating_sub(t.pipe());
                let rw = t.snd_wnd.saturating_sub(t.flight());
                cw.min(rw) as usize
            } else {
                let wnd = t.snd_wnd.min(t.cc.cwnd());
                wnd.saturating_sub(t.flight()) as usize
            };
            let mss = t.mss as usize;
            let len = unsent.min(seg_max.max(mss)).min(usable);
            // A large segment is whole MSS-sized pieces, with a short tail
            // only where a lone segment of that size would go (RFC 9293
            // section 3.7.4: Nagle; as Linux trims a TSO segment).
            let len = if len > mss
                && !(len == unsent && (t.opts.nodelay || t.flight() == 0 || t.fin_queued))
            {
                len / mss * mss
            } else {
                len
            };
            let len = if force && len == 0 && unsent > 0 && t.snd_wnd > t.flight() {
                unsent.min(mss).min((t.snd_wnd - t.flight()) as usize)
            } else {
                len
            };
            // A resend stops where SACKed data begins.
            let len = match t.scoreboard.next_sacked_after(t.snd_nxt) {
                Some(l) if t.sack_ok && seq::lt(t.snd_nxt, t.snd_max) => {
                    len.min(l.wrapping_sub(t.snd_nxt) as usize)
                }
                _ => len,
            };
            let fin_now = t.fin_queued && !t.fin_sent && len == unsent;
            let send = if len > 0 {
                let all = len == unsent;
                let nagle_ok = t.opts.nodelay || t.flight() == 0 || fin_now;
                force
                    || len >= mss
                    || (all && nagle_ok)
                    || (t.max_snd_wnd > 0 && len as u32 >= t.max_snd_wnd / 2 && nagle_ok)
            } else {
                fin_now
            };
            if !send {
                break;
            }
            force = false;
            let s = t.snd_nxt;
            if seq::lt(s, t.snd_max) {
                self.tcp.stats.retrans_segs += 1;
                t.total_retrans += 1;
                if let Some((ts, _)) = t.rtt_timed
                    && seq::ge(ts, s)
                {
                    t.rtt_timed = None; // Karn
                }
            } else if t.rtt_timed.is_none() && !t.ts_ok && len > 0 {
                t.rtt_timed = Some((s, now));
            }
            let mut flags = 0;
            if len == unsent {
                flags |= wire::PSH;
            }
            if fin_now {
                flags |= wire::FIN;
                t.fin_sent = true;
                t.fin_seq = s.wrapping_add(len as u32);
            }
            t.snd_nxt = s.wrapping_add(len as u32 + u32::from(fin_now));
            t.snd_max = seq::max(t.snd_max, t.snd_nxt);
            t.timers.persist = None;
            t.arm_rexmit(now);
            self.tcp_send_seg(ctx, id, s, flags, len);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // Zero window with data waiting and nothing in flight to bring a
        // window update: probe (RFC 9293 section 3.8.6.1). A small window
        // that SWS avoidance will not fill gets the same timer as its
        // override.
        if t.state.synchronized()
            && t.unsent() > 0
            && t.flight() == 0
            && t.timers.rexmit.is_none()
            && t.timers.persist.is_none()
        {
            let base = t.rtt.rto().max(PERSIST_MIN);
            let d = base
                .saturating_mul(1 << t.persist_backoff.min(10))
                .min(PERSIST_MAX);
            t.timers.persist = Some(now + d);
        }
        if t.ack_now {
            self.tcp_send_ack(ctx, id);
        }
    }

    /// A reset for a segment that matched no connection (RFC 9293 section
    /// 3.10.7.1): if it had an ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise
    /// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. Never for a reset.
    pub(crate) fn tcp_reset_reply(
        &mut self,
        ctx: &mut impl Ctx,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &super::input::Seg<'_>,
    ) {
        if seg.flags & wire::RST != 0 {
            return;
        }
        let h = if seg.flags & wire::ACK != 0 {
            Hdr {
                local,
                remote,
                seq: seg.ack,
                ack: 0,
                flags: wire::RST,
                wnd: 0,
                ttl: None,
            }
        } else {
            Hdr {
                local,
                remote,
                seq: 0,
                ack: seg.seq.wrapping_add(seg.len()),
                flags: wire::RST | wire::ACK,
                wnd: 0,
                ttl: None,
            }
        };
        let _ = self.tcp_emit(ctx, h, &[], 0, |_| {});
    }

    /// Aborts connection `id` with a reset (close with unread data,
    /// SO_LINGER 0, keepalive failure).
    pub(crate) fn tcp_send_rst(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get(&id) else {
            return;
        };
        let (Some(local), Some(remote)) = (t.local, t.remote) else {
            return;
        };
        let h = Hdr {
            local,
            remote,
            seq: t.snd_nxt,
            ack: t.rcv_nxt,
            flags: wire::RST | wire::ACK,
            wnd: 0,
            ttl: t.opts.ttl,
        };
        let _ = self.tcp_emit(ctx, h, &[], 0, |_| {});
    }
}
