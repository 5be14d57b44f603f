//! Segment arrival (RFC 9293 section 3.10.7), with the RFC 5961
//! protections against blind resets, SYNs and data injection, and PAWS
//! (RFC 7323 section 5).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_pkt::PktBuf;
use iopkt_wire::checksum;
use iopkt_wire::ipproto;
use iopkt_wire::tcp::{self as wire, TcpHdr, TcpOptions};

use super::seq;
use super::tcb::{DEFAULT_MSS_V4, DEFAULT_MSS_V6, FIN_WAIT2_TIMEOUT, State, TIME_WAIT, Tcb};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::transport::L4Rx;

/// A parsed incoming segment.
#[derive(Debug)]
pub(crate) struct Seg<'a> {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub wnd: u16,
    pub opts: TcpOptions,
    pub data: &'a [u8],
}

impl Seg<'_> {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    /// SEG.LEN: data plus SYN and FIN.
    pub fn len(&self) -> u32 {
        self.data.len() as u32 + u32::from(self.has(wire::SYN)) + u32::from(self.has(wire::FIN))
    }
}

/// Applies the options of the peer's SYN to a new connection (RFC 9293
/// section 3.7.1 for the MSS, RFC 7323 and RFC 2018 for the rest: each is
/// on only if both SYNs carry it).
pub(crate) fn negotiate(t: &mut Tcb, o: &TcpOptions, now: crate::time::Instant) {
    let default = if t.v6 { DEFAULT_MSS_V6 } else { DEFAULT_MSS_V4 };
    let peer = o.mss.unwrap_or(default).max(64);
    t.wscale_ok = o.wscale.is_some() && (t.state == State::SynSent || t.wscale_ok);
    if t.wscale_ok {
        t.snd_wscale = o.wscale.unwrap_or(0);
    } else {
        t.snd_wscale = 0;
        t.rcv_wscale = 0;
    }
    // Both sides set sack_ok to what they offer before the SYN goes out.
    t.sack_ok = o.sack_permitted && t.sack_ok;
    t.ts_ok = o.timestamp.is_some() && (t.state == State::SynSent || t.ts_ok);
    if let Some((val, _)) = o.timestamp {
        t.ts_recent = val;
    }
    let mut mss = u32::from(peer.min(t.our_mss));
    if t.ts_ok {
        // RFC 7323 section 3.2: 12 bytes of every segment go to the option.
        mss = mss.saturating_sub(12).max(32);
    }
    t.mss = mss;
    t.cc = super::cc::by_name(t.cc.name(), mss)
        .unwrap_or_else(|| Box::new(super::cc::NewReno::new(mss)));
    t.last_rx = now;
}

impl Stack {
    /// A TCP segment for one of our addresses (`pkt` starts with the IP
    /// header).
    pub(crate) fn tcp_input(&mut self, ctx: &mut impl Ctx, pkt: PktBuf, rx: L4Rx) {
        self.tcp.stats.segs_in += 1;
        // RFC 9293 section 3.9.2 / RFC 1122 4.2.3.10: no TCP to groups.
        if rx.to_group || rx.l2_multicast {
            self.tcp.stats.malformed += 1;
            return;
        }
        let Some(bytes) = pkt.data().get(rx.l4_off..) else {
            self.tcp.stats.malformed += 1;
            return;
        };
        let pseudo = match (rx.src, rx.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                checksum::pseudo_v4(s, d, ipproto::TCP, bytes.len().min(65_535) as u16)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                checksum::pseudo_v6(s, d, ipproto::TCP, bytes.len() as u32)
            }
            _ => return,
        };
        if !pkt.csum_trusted() && checksum::finish(checksum::sum(pseudo, bytes)) != 0 {
            self.tcp.stats.bad_checksum += 1;
            return;
        }
        let Some((h, opt_bytes)) = TcpHdr::parse(bytes) else {
            self.tcp.stats.malformed += 1;
            return;
        };
        let (sport, dport) = (h.src_port.get(), h.dst_port.get());
        if sport == 0 || dport == 0 {
            self.tcp.stats.malformed += 1;
            return;
        }
        let seg = Seg {
            seq: h.seq.get(),
            ack: h.ack.get(),
            flags: h.flags,
            wnd: h.window.get(),
            opts: TcpOptions::parse(opt_bytes),
            data: bytes.get(h.header_len()..).unwrap_or_default(),
        };
        if seg.has(wire::RST) {
            self.tcp.stats.resets_in += 1;
        }
        let local = SocketAddr::new(rx.dst, dport);
        let remote = SocketAddr::new(rx.src, sport);
        let mut reopen = None;
        if let Some(&id) = self.tcp.by_tuple.get(&(local, remote))
            && let Some(floor) = self.tcp_time_wait_reopen(ctx, id, local, &seg)
        {
            reopen = Some(floor);
        }
        if reopen.is_some() {
            if let Some(lid) = self.tcp_find_listener(local) {
                self.tcp_input_listen(ctx, lid, local, remote, &seg, reopen);
            }
        } else if let Some(&id) = self.tcp.by_tuple.get(&(local, remote)) {
            let before = self.tcp_readiness(id);
            match self.tcp.conns.get(&id).map(|t| t.state) {
                Some(State::SynSent) => self.tcp_input_syn_sent(ctx, id, &seg),
                Some(_) => self.tcp_input_conn(ctx, id, &seg),
                None => {}
            }
            self.tcp_rearm(id);
            self.tcp_mem_recharge(ctx, id);
            if self.tcp_readiness(id) != before || !seg.data.is_empty() {
                ctx.socket_ready(id);
            }
        } else if let Some(lid) = self.tcp_find_listener(local) {
            self.tcp_input_listen(ctx, lid, local, remote, &seg, None);
        } else {
            self.tcp.stats.no_port += 1;
            self.tcp_reset_reply(ctx, local, remote, &seg);
        }
    }

    /// A new SYN for a connection in TIME-WAIT (RFC 1122 section
    /// 4.2.2.13, RFC 6191): accepted when its sequence number is beyond
    /// everything the old incarnation received and a listener would take
    /// it. The TIME-WAIT ends; the answer is the lowest initial sequence
    /// number the new incarnation may use (above anything the old one sent,
    /// as Linux does: its last plus a maximum window). Without this, a
    /// connection from a port reused within 2 MSL (a client reconnecting
    /// to a server that closed first, as every connection to ourselves
    /// over lo0 soon does) gets an ACK, resets, and retries only after the
    /// initial retransmission timeout.
    fn tcp_time_wait_reopen(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        local: SocketAddr,
        seg: &Seg<'_>,
    ) -> Option<u32> {
        if !seg.has(wire::SYN) || seg.has(wire::ACK) || seg.has(wire::RST) {
            return None;
        }
        let t = self.tcp.conns.get(&id)?;
        if t.state != State::TimeWait || !seq::gt(seg.seq, t.rcv_nxt) {
            return None;
        }
        let floor = t.snd_max.wrapping_add(65_535 + 2);
        self.tcp_find_listener(local)?;
        self.tcp_closed(ctx, id);
        Some(floor)
    }

    /// LISTEN (RFC 9293 section 3.10.7.2). `isn_floor`: the lowest initial
    /// sequence number allowed (a TIME-WAIT reopened).
    fn tcp_input_listen(
        &mut self,
        ctx: &mut impl Ctx,
        lid: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Seg<'_>,
        isn_floor: Option<u32>,
    ) {
        if seg.has(wire::RST) {
            return;
        }
        if seg.has(wire::ACK) {
            if !seg.has(wire::SYN) && self.tcp_cookie_ack(ctx, lid, local, remote, seg) {
                return;
            }
            self.tcp_reset_reply(ctx, local, remote, seg);
            return;
        }
        if !seg.has(wire::SYN) {
            return;
        }
        let (syn_full, accept_full) = self
            .tcp
            .conns
            .get(&lid)
            .and_then(|l| l.listen.as_ref())
            .map_or((true, true), |l| {
                let b = l.backlog as usize;
                (l.syn_queue >= b, l.accept_queue.len() >= b)
            });
        if accept_full || (syn_full && !self.tcp.syncookies) {
            self.tcp.stats.listen_overflows += 1;
            return;
        }
        if syn_full {
            self.tcp_cookie_syn_ack(ctx, lid, local, remote, seg);
            return;
        }
        let now = ctx.now();
        let mut isn = self.tcp.key.isn(local, remote, now);
        if let Some(f) = isn_floor
            && seq::lt(isn, f)
        {
            isn = f;
        }
        let Some(id) = self.tcp_spawn(lid, local, remote, seg, isn, now) else {
            return;
        };
        if let Some(l) = self.tcp.conns.get_mut(&lid).and_then(|p| p.listen.as_mut()) {
            l.syn_queue += 1;
        }
        self.tcp.stats.passive_opens += 1;
        self.tcp_send_syn(ctx, id);
        self.tcp_rearm(id);
    }

    /// A connection of listener `lid` for the SYN options in `seg` (or
    /// those a SYN cookie brought back), in SYN-RECEIVED with ISN `isn`,
    /// in the demultiplexing table.
    pub(crate) fn tcp_spawn(
        &mut self,
        lid: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Seg<'_>,
        isn: u32,
        now: crate::time::Instant,
    ) -> Option<SocketId> {
        let parent = self.tcp.conns.get(&lid)?;
        let opts = parent.opts.clone();
        // A size the application set on the listener is inherited and
        // stays locked; otherwise the connection starts at the sysctl
        // sizes and auto-tunes.
        let (rcv0, snd0) = self.tcp_initial_bufs();
        let (rlock, slock) = (parent.tune.rcv_locked, parent.tune.snd_locked);
        let rcap = if rlock { parent.rcvbuf.cap } else { rcv0 };
        let scap = if slock { parent.sndbuf.cap } else { snd0 };
        let cc = parent.cc.name();
        let wscale = Tcb::wscale_for(self.tcp_rcvbuf_ceiling_for(rcap, rlock));
        let mapped = parent.v6 && remote.is_ipv4();
        let Some(id) = self.tcp_new_socket(remote.is_ipv6()) else {
            self.tcp.stats.table_full += 1;
            return None;
        };
        let our_mss = self.tcp_route_mss(remote.ip());
        let sack_offer = self.tcp.sack_enabled;
        let t = self.tcp.conns.get_mut(&id)?;
        t.v4_mapped = mapped;
        t.opts = opts;
        t.rcvbuf = super::buffers::RecvBuf::new(rcap);
        t.sndbuf = super::buffers::SendBuf::new(scap);
        t.tune.rcv_locked = rlock;
        t.tune.snd_locked = slock;
        if let Some(c) = super::cc::by_name(cc, t.mss) {
            t.cc = c;
        }
        t.state = State::SynReceived;
        t.parent = Some(lid);
        t.local = Some(local);
        t.remote = Some(remote);
        t.our_mss = if t.opts.max_seg > 0 {
            our_mss.min(t.opts.max_seg)
        } else {
            our_mss
        };
        t.irs = seg.seq;
        t.rcv_nxt = seg.seq.wrapping_add(1);
        t.iss = isn;
        t.snd_una = isn;
        t.snd_nxt = isn.wrapping_add(1);
        t.snd_max = t.snd_nxt;
        t.snd_buf_seq = t.snd_nxt;
        // Our side offers each option; negotiate keeps those the SYN had.
        t.wscale_ok = true;
        t.sack_ok = sack_offer;
        t.ts_ok = true;
        negotiate(t, &seg.opts, now);
        t.snd_wnd = u32::from(seg.wnd);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = seg.seq;
        t.snd_wl2 = isn;
        t.rtt_timed = Some((isn, now));
        t.arm_rexmit(now);
        if t.wscale_ok {
            t.rcv_wscale = wscale;
        }
        self.tcp_claim_port(local.port());
        self.tcp.by_tuple.insert((local, remote), id);
        Some(id)
    }

    /// SYN-SENT (RFC 9293 section 3.10.7.3).
    fn tcp_input_syn_sent(&mut self, ctx: &mut impl Ctx, id: SocketId, seg: &Seg<'_>) {
        let now = ctx.now();
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if seg.has(wire::ACK) && (seq::le(seg.ack, t.iss) || seq::gt(seg.ack, t.snd_max)) {
            if !seg.has(wire::RST) {
                let (l, r) = (t.local, t.remote);
                if let (Some(l), Some(r)) = (l, r) {
                    self.tcp_reset_reply(ctx, l, r, seg);
                }
            }
            return;
        }
        if seg.has(wire::RST) {
            if seg.has(wire::ACK) {
                t.set_error(Error::ConnRefused);
                self.tcp.stats.attempt_fails += 1;
                self.tcp_closed(ctx, id);
            }
            return;
        }
        if !seg.has(wire::SYN) {
            return;
        }
        t.irs = seg.seq;
        t.rcv_nxt = seg.seq.wrapping_add(1);
        negotiate(t, &seg.opts, now);
        t.snd_wnd = u32::from(seg.wnd);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = seg.seq;
        t.snd_wl2 = seg.ack;
        if seg.has(wire::ACK) {
            t.snd_una = seg.ack;
            if let Some((_, at)) = t.rtt_timed.take()
                && t.retries == 0
            {
                t.rtt.sample(now.saturating_since(at));
            }
            t.retries = 0;
            t.timers.rexmit = None;
            t.state = State::Established;
            t.ack_now = true;
            t.arm_keepalive(now);
            self.tcp.stats.established += 1;
            self.tcp_output(ctx, id, false);
        } else {
            // Simultaneous open (RFC 9293 figure 8).
            t.state = State::SynReceived;
            t.timers.rexmit = None;
            t.arm_rexmit(now);
            self.tcp_send_syn(ctx, id);
        }
    }

    /// The synchronized states and SYN-RECEIVED (RFC 9293 section
    /// 3.10.7.4).
    pub(crate) fn tcp_input_conn(&mut self, ctx: &mut impl Ctx, id: SocketId, seg: &Seg<'_>) {
        let now = ctx.now();
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // PAWS (RFC 7323 section 5.3): an old timestamp is a stale
        // duplicate.
        if t.ts_ok
            && !seg.has(wire::RST)
            && let Some((val, _)) = seg.opts.timestamp
            && seq::lt(val, t.ts_recent)
        {
            self.tcp.stats.out_of_window += 1;
            self.tcp_send_ack(ctx, id);
            return;
        }
        // A retransmitted SYN while we are in SYN-RECEIVED: the SYN-ACK
        // was lost, send it again (it falls outside the window below).
        if t.state == State::SynReceived
            && seg.has(wire::SYN)
            && !seg.has(wire::ACK)
            && !seg.has(wire::RST)
            && seg.seq == t.irs
        {
            self.tcp_send_syn(ctx, id);
            return;
        }
        // First: is the sequence number acceptable?
        let wnd = t.rcv_wnd();
        let len = seg.len();
        let nxt = t.rcv_nxt;
        let ok = match (len, wnd) {
            (0, 0) => seg.seq == nxt,
            (0, _) => seq::in_range(seg.seq, nxt, nxt.wrapping_add(wnd)),
            (_, 0) => false,
            _ => {
                let end = nxt.wrapping_add(wnd);
                seq::in_range(seg.seq, nxt, end)
                    || seq::in_range(seg.seq.wrapping_add(len - 1), nxt, end)
            }
        };
        if !ok {
            self.tcp.stats.out_of_window += 1;
            if !seg.data.is_empty() && seq::le(seg.seq.wrapping_add(len), nxt) {
                self.tcp.stats.dup_segments += 1;
                if t.sack_ok {
                    // RFC 2883 section 4: report the duplicate.
                    let end = seg.seq.wrapping_add(seg.data.len() as u32);
                    t.dsack_out = Some((seg.seq, end));
                }
            }
            if !seg.has(wire::RST) {
                if let Some(t) = self.tcp.conns.get_mut(&id)
                    && t.state == State::TimeWait
                    && seg.has(wire::FIN)
                {
                    // A retransmitted FIN: restart the 2 MSL wait.
                    t.timers.close = Some(now + TIME_WAIT);
                }
                self.tcp_send_ack(ctx, id);
            }
            return;
        }
        // Second: RST. RFC 5961 section 3.2: only an exact match resets;
        // anything else in the window gets a challenge ACK.
        if seg.has(wire::RST) {
            if seg.seq != t.rcv_nxt {
                self.tcp_challenge_ack(ctx, id);
                return;
            }
            match t.state {
                State::SynReceived => {
                    if t.parent.is_none() {
                        t.set_error(Error::ConnRefused);
                    }
                    self.tcp.stats.attempt_fails += 1;
                }
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    t.set_error(Error::ConnReset);
                    self.tcp.stats.estab_resets += 1;
                }
                _ => {}
            }
            self.tcp_closed(ctx, id);
            return;
        }
        // Fourth: SYN. RFC 5961 section 4.2: challenge ACK, whatever its
        // sequence number.
        if seg.has(wire::SYN) {
            self.tcp_challenge_ack(ctx, id);
            return;
        }
        // Fifth: ACK.
        if !seg.has(wire::ACK) {
            return;
        }
        if t.state == State::SynReceived {
            if seq::lt(t.snd_una, seg.ack) && seq::le(seg.ack, t.snd_max) {
                t.state = State::Established;
                t.snd_wnd = u32::from(seg.wnd) << t.snd_wscale;
                t.max_snd_wnd = t.max_snd_wnd.max(t.snd_wnd);
                t.snd_wl1 = seg.seq;
                t.snd_wl2 = seg.ack;
                t.arm_keepalive(now);
                self.tcp.stats.established += 1;
                let parent = t.parent;
                if let Some(lid) = parent {
                    self.tcp_to_accept_queue(ctx, lid, id);
                }
            } else {
                if let (Some(l), Some(r)) = (t.local, t.remote) {
                    self.tcp_reset_reply(ctx, l, r, seg);
                }
                return;
            }
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // RFC 5961 section 5.2: acceptable ACKs lie within
        // [SND.UNA - MAX.SND.WND, SND.NXT].
        let oldest = t.snd_una.wrapping_sub(t.max_snd_wnd);
        if seq::gt(seg.ack, t.snd_max) || seq::lt(seg.ack, oldest) {
            self.tcp_challenge_ack(ctx, id);
            return;
        }
        let wnd = u32::from(seg.wnd) << t.snd_wscale;
        // SACK blocks feed the scoreboard (RFC 6675 section 5: every ACK
        // with SACK information updates it).
        let mut new_sack = false;
        let mut dsack = None;
        let rack = t.rack_active();
        // RACK's round-trip checks compare the echoed timestamp with
        // transmission times (RFC 8985 section 6.2 step 2).
        let ecr = seg.opts.timestamp.filter(|_| t.ts_ok).map(|x| x.1);
        let advanced = seq::gt(seg.ack, t.snd_una);
        if rack {
            t.rack.begin_ack();
            if advanced {
                t.rack.on_cum_ack(seg.ack, now, ecr);
            }
        }
        if t.sack_ok && seg.opts.sack_len > 0 {
            let blocks = seg.opts.sack.get(..seg.opts.sack_len).unwrap_or_default();
            dsack = super::rack::dsack_of(blocks, seg.ack);
            if dsack.is_some() {
                self.tcp.stats.dsacks_in += 1;
            }
            let (una, max) = (seg.ack, t.snd_max);
            let una = if seq::gt(una, t.snd_una) {
                una
            } else {
                t.snd_una
            };
            let before = t.scoreboard.sacked_in(una, max);
            for b in blocks {
                t.scoreboard.add(una, max, *b);
                if rack {
                    t.rack.on_sack(una, max, *b, now);
                }
            }
            new_sack = t.scoreboard.sacked_in(una, max) > before;
        }
        let pure_dup = !advanced && seg.opts.sack_len == 0 && seg.data.is_empty();
        if advanced {
            self.tcp_new_ack(ctx, id, seg, now);
        } else if seg.ack == t.snd_una
            && t.flight() > 0
            && ((seg.data.is_empty() && !seg.has(wire::FIN) && wnd == t.snd_wnd) || new_sack)
        {
            // With SACK, an ACK reporting new SACKed data is a duplicate
            // ACK whatever its window (RFC 6675 section 2, "DupAck").
            self.tcp_dup_ack(ctx, id);
        }
        if rack {
            self.tcp_rack_on_ack(ctx, id, dsack, now);
            self.tcp_tlp_on_ack(id, seg.ack, dsack, pure_dup);
            if advanced {
                self.tcp_tlp_arm(id, now);
            }
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // Window update (RFC 9293 section 3.10.7.4, "fifth"): only from a
        // segment newer than the last one that set it.
        if seq::lt(t.snd_wl1, seg.seq) || (t.snd_wl1 == seg.seq && seq::le(t.snd_wl2, seg.ack)) {
            t.snd_wnd = wnd;
            t.snd_wl1 = seg.seq;
            t.snd_wl2 = seg.ack;
            t.max_snd_wnd = t.max_snd_wnd.max(wnd);
            if wnd > 0 {
                t.persist_backoff = 0;
                if t.timers.persist.is_some() && t.flight() == 0 {
                    // The window opened: send now rather than at the
                    // next probe.
                    t.timers.persist = None;
                }
            }
        }
        // Timestamps (RFC 7323 section 4.3): remember the peer's clock
        // from segments covering the last ACK we sent.
        if t.ts_ok
            && let Some((val, _)) = seg.opts.timestamp
            && seq::le(seg.seq, t.last_ack_sent)
        {
            t.ts_recent = val;
        }
        // Our FIN acknowledged?
        let fin_acked = t.fin_sent && seq::gt(t.snd_una, t.fin_seq);
        if fin_acked {
            match t.state {
                State::FinWait1 => {
                    t.state = State::FinWait2;
                    if t.orphan {
                        t.timers.close = Some(now + FIN_WAIT2_TIMEOUT);
                    }
                }
                State::Closing => self.tcp_enter_time_wait(id, now),
                State::LastAck => {
                    self.tcp_closed(ctx, id);
                    return;
                }
                _ => {}
            }
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.last_rx = now;
        if t.state == State::Established && t.opts.keepalive {
            t.arm_keepalive(now);
        }
        // Seventh: segment text.
        if !seg.data.is_empty() {
            match t.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if t.orphan {
                        // Nobody will read it: abort, as Linux does.
                        self.tcp_send_rst(ctx, id);
                        self.tcp_closed(ctx, id);
                        return;
                    }
                    self.tcp_receive_data(id, seg, now);
                }
                _ => {}
            }
        }
        // Eighth: FIN, once everything before it has arrived.
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let fin_seq = seg.seq.wrapping_add(seg.data.len() as u32);
        let in_window = seq::le(fin_seq, t.rcv_adv);
        if seg.has(wire::FIN) && !t.rcv_fin && seq::gt(fin_seq, t.rcv_nxt) && in_window {
            t.rcv_fin_pending = Some(fin_seq);
        }
        let fin_now =
            (seg.has(wire::FIN) && fin_seq == t.rcv_nxt) || t.rcv_fin_pending == Some(t.rcv_nxt);
        if fin_now && !t.rcv_fin {
            t.rcv_fin_pending = None;
            t.rcv_nxt = t.rcv_nxt.wrapping_add(1);
            t.rcv_fin = true;
            t.ack_now = true;
            match t.state {
                State::SynReceived | State::Established => t.state = State::CloseWait,
                State::FinWait1 => t.state = State::Closing,
                State::FinWait2 => self.tcp_enter_time_wait(id, now),
                _ => {}
            }
        }
        self.tcp_output(ctx, id, false);
    }

    /// SND.UNA advances (RFC 9293 section 3.10.7.4; RFC 6298 for the timer,
    /// RFC 6582 for recovery).
    fn tcp_new_ack(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        seg: &Seg<'_>,
        now: crate::time::Instant,
    ) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let acked = seg.ack.wrapping_sub(t.snd_una);
        t.bytes_acked += u64::from(acked);
        // Round-trip sample: the timestamp echo, or the timed segment.
        if t.ts_ok
            && let Some((_, ecr)) = seg.opts.timestamp
            && ecr != 0
        {
            let ms = super::output::ts_now(now).wrapping_sub(ecr);
            if ms < 600_000 {
                t.rtt.sample(Duration::from_millis(u64::from(ms)));
            }
        } else if let Some((s, at)) = t.rtt_timed
            && seq::gt(seg.ack, s)
        {
            t.rtt.sample(now.saturating_since(at));
            t.rtt_timed = None;
        }
        // Acknowledged bytes leave the send buffer (SYN and FIN take a
        // sequence number but no byte).
        let in_buf = seg.ack.wrapping_sub(t.snd_buf_seq);
        if seq::gt(seg.ack, t.snd_buf_seq) {
            let n = (in_buf as usize).min(t.sndbuf.len());
            t.sndbuf.consume(n);
            t.snd_buf_seq = t.snd_buf_seq.wrapping_add(n as u32);
        }
        t.snd_una = seg.ack;
        t.scoreboard.advance(seg.ack);
        if seq::lt(t.snd_nxt, t.snd_una) {
            t.snd_nxt = t.snd_una;
        }
        t.retries = 0;
        t.dupacks = 0;
        // Progress: an earlier ICMP soft error no longer describes the
        // path.
        t.soft_error = None;
        let mss = t.mss;
        let flight = t.flight();
        let mut retransmit = false;
        match t.recover {
            Some(r) if seq::ge(seg.ack, r) => {
                t.recover = None;
                t.cc.on_recovery_end(flight, mss);
                t.rack.on_recovery_end();
            }
            // RFC 6675 section 5 step (C): a partial ACK with SACK just
            // lets more of the scoreboard go out.
            Some(_) if t.sack_ok => retransmit = true,
            Some(_) => {
                t.cc.on_partial_ack(acked, mss);
                retransmit = true;
            }
            // RFC 7661 section 4.1: the window grows only while it is
            // what limits the sender. A sender held back by the peer's
            // window or by the application would otherwise inflate cwnd
            // without bound, and burst it out once the limit lifts.
            None if cwnd_limited(
                flight.saturating_add(acked),
                t.cc.cwnd(),
                t.cc.ssthresh(),
                mss,
            ) =>
            {
                t.cc.on_ack(acked, mss, now, t.rtt.srtt())
            }
            None => {}
        }
        self.tcp_sndbuf_expand(id);
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // RFC 6298 section 5.2 / 5.3.
        t.timers.rexmit = None;
        if t.flight() > 0 {
            t.arm_rexmit(now);
        }
        let sack = t.sack_ok;
        if retransmit {
            if sack {
                self.tcp_sack_send(ctx, id);
            } else {
                self.tcp_retransmit_first(ctx, id);
            }
        }
    }

    /// A duplicate ACK (RFC 5681 section 3.2, RFC 6582).
    fn tcp_dup_ack(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.dupacks += 1;
        let mss = t.mss;
        if t.rack_active() {
            // RACK decides what is lost, from time rather than from the
            // count of duplicate ACKs (RFC 8985 section 6); within
            // recovery each ACK still clocks out retransmissions.
            if t.recover.is_some() {
                self.tcp_sack_send(ctx, id);
            }
            return;
        }
        if t.sack_ok {
            // RFC 6675 section 5: recovery starts at DupThresh duplicate
            // ACKs or as soon as the first unacknowledged byte counts as
            // lost; within it, each ACK clocks out NextSeg.
            if t.recover.is_some() {
                self.tcp_sack_send(ctx, id);
                return;
            }
            let lost = t.scoreboard.is_lost(t.snd_una, t.snd_una, mss);
            if t.dupacks >= super::sack::DUP_THRESH || lost {
                let flight = t.flight();
                t.recover = Some(t.snd_max);
                t.high_rxt = t.snd_una;
                t.rescue_rxt = None;
                t.cc.on_fast_retransmit(flight, mss);
                self.tcp.stats.fast_retransmits += 1;
                self.tcp.stats.sack_recoveries += 1;
                // Step (4.3): the first unacknowledged segment at once.
                self.tcp_retransmit_first(ctx, id);
                if let Some(t) = self.tcp.conns.get_mut(&id) {
                    let end = t.snd_una.wrapping_add(t.mss);
                    t.high_rxt = seq::min(end, t.snd_max);
                }
                self.tcp_sack_send(ctx, id);
            }
            return;
        }
        if t.recover.is_some() {
            t.cc.on_dup_ack_in_recovery(mss);
        } else if t.dupacks == 3 {
            let flight = t.flight();
            t.recover = Some(t.snd_max);
            t.cc.on_fast_retransmit(flight, mss);
            self.tcp.stats.fast_retransmits += 1;
            self.tcp_retransmit_first(ctx, id);
        }
    }

    /// Queues received data and decides when to acknowledge it (RFC 9293
    /// section 3.8.6.3: at least every second full-sized segment, within
    /// 500 ms; at once for out-of-order data, RFC 5681 section 4.2).
    fn tcp_receive_data(&mut self, id: SocketId, seg: &Seg<'_>, now: crate::time::Instant) {
        // What may be queued: the window offered, within the stack-wide
        // memory bound (`super::memory`).
        let Some((room, promised)) = self.tcp.conns.get(&id).map(|t| self.tcp_mem_rcv_room(t))
        else {
            return;
        };
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let delta = seg.seq.wrapping_sub(t.rcv_nxt) as i32;
        let (delta, data) = if delta < 0 {
            let skip = delta.unsigned_abs() as usize;
            (0u64, seg.data.get(skip..).unwrap_or_default())
        } else {
            (delta as u64, seg.data)
        };
        if data.is_empty() {
            // Everything in it had arrived already: a needless
            // retransmission, or a duplicate from the network. Say so
            // with a DSACK (RFC 2883 section 4).
            self.tcp.stats.dup_segments += 1;
            t.ack_now = true;
            if t.sack_ok {
                t.dsack_out = Some((seg.seq, seg.seq.wrapping_add(seg.data.len() as u32)));
            }
            return;
        }
        if delta == 0 && t.sack_ok && seq::lt(seg.seq, t.rcv_nxt) {
            // The start of it had arrived already (RFC 2883 section 4.1.2).
            t.dsack_out = Some((seg.seq, t.rcv_nxt));
        }
        let had_gaps = t.rcvbuf.has_gaps();
        if t.shut_rd && delta == 0 && !had_gaps {
            // Read side shut: acknowledge and discard.
            t.rcv_nxt = t.rcv_nxt.wrapping_add(data.len() as u32);
            t.bytes_received += data.len() as u64;
            t.ack_now = true;
            return;
        }
        // In order with nothing waiting before it: a receive sink may
        // take it at once (`super::sink`), within the window offered.
        let mut direct = 0;
        if delta == 0
            && !had_gaps
            && t.rcvbuf.is_empty()
            && let Some(sink) = t.sink.0.as_mut()
        {
            let offer = data.get(..data.len().min(promised)).unwrap_or_default();
            direct = sink.take(offer).min(offer.len());
            t.rcvbuf.passed(direct);
        }
        let rest = data.get(direct..).unwrap_or_default();
        let n = direct + t.rcvbuf.insert_within(delta, rest, room);
        if room < promised && (delta as usize).saturating_add(data.len()) > room + direct {
            // Cut for memory, not by the window: the sender retransmits.
            self.tcp.stats.mem_drops += 1;
        }
        if delta > 0 {
            self.tcp.stats.ooo_segments += 1;
            t.ack_now = true;
            return;
        }
        t.rcv_nxt = t.rcv_nxt.wrapping_add(n as u32);
        t.bytes_received += n as u64;
        let full = data.len() >= t.mss as usize;
        super::autotune::note_data_arrival(t, seg.opts.timestamp.map(|x| x.1), full, now);
        if had_gaps || n < data.len() {
            t.ack_now = true;
        }
        // A coalesced segment (large receive offload) stands for as many
        // full-sized ones as it holds: ACK at least every second of them
        // (RFC 5681 section 4.2).
        let segs = (data.len() / (t.mss as usize).max(1)).max(1);
        t.unacked_segs = t.unacked_segs.saturating_add(segs as u32);
        if t.unacked_segs >= 2 {
            // Within a receive batch the ACK waits for the batch's end
            // (`super::stretch`).
            if !self.tcp.stretch.hold(id) {
                t.ack_now = true;
            }
        } else if t.timers.delack.is_none() {
            t.timers.delack = Some(now + super::tcb::DELACK);
        }
        if direct > 0 {
            // Taken at once counts as read at once (`super::autotune`).
            self.tcp_rcv_space_adjust(id, direct, now);
        }
    }
}

/// Whether `flight` bytes outstanding when an ACK arrived show the
/// congestion window was the sender's limit. In slow start the window
/// doubles each round trip, so half used is enough (as Linux's
/// `tcp_is_cwnd_limited`); in congestion avoidance it must be nearly
/// full (within three segments, for ACK timing and the last partial
/// segment).
fn cwnd_limited(flight: u32, cwnd: u32, ssthresh: u32, mss: u32) -> bool {
    if cwnd < ssthresh {
        flight.saturating_mul(2) >= cwnd
    } else {
        flight.saturating_add(3 * mss) >= cwnd
    }
}
