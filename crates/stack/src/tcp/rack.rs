//! RACK (RFC 8985 section 6): loss detection from the time order of
//! transmissions rather than from counting duplicate ACKs.
//!
//! Every segment in flight is remembered with the time it was last sent.
//! When the peer acknowledges (cumulatively or by SACK) a segment sent at
//! time T, every segment sent before T that is still not acknowledged is
//! lost once it has been out longer than RACK.rtt plus a reordering window.
//! A lost retransmission is then found like any other loss: it was sent
//! before something that was delivered. The reordering window starts at
//! zero and becomes min_RTT / 4 once reordering was seen (section 6.2
//! step 4), grown by DSACKs reporting needless retransmissions.
//!
//! The record list is bounded ([`MAX_RECORDS`]): past it, new data joins
//! the last record, which only makes detection more conservative.

use std::collections::VecDeque;
use std::time::Duration;

use iopkt_wire::tcp as wire;

use super::seq;
use crate::ctx::Ctx;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::time::Instant;

/// Transmission records kept at most per connection.
pub const MAX_RECORDS: usize = 8192;
/// How long a minimum RTT sample stands before a larger one may replace it
/// (Linux tcp_min_rtt_wlen: 300 s).
pub const MIN_RTT_WINDOW: Duration = Duration::from_secs(300);
/// Recoveries a DSACK-widened reordering window survives (section 6.2
/// step 4: RACK.reo_wnd_persist).
pub const REO_WND_PERSIST: u32 = 16;
/// DupThresh (section 6.2 step 4 uses it for the window before any
/// reordering was seen).
const DUP_THRESH: u32 = 3;

/// One transmitted segment [start, end).
#[derive(Debug, Clone, Copy)]
struct Record {
    start: u32,
    end: u32,
    /// When it was last (re)transmitted: Segment.xmit_ts.
    xmit: Instant,
    /// The order of that transmission among the connection's.
    order: u64,
    /// Segment.retransmitted.
    rexmit: bool,
    /// SACKed by the peer.
    sacked: bool,
    /// Segment.lost: detected lost and not sent again since.
    lost: bool,
}

impl Record {
    fn len(&self) -> u32 {
        self.end.wrapping_sub(self.start)
    }
}

/// RACK_sent_after (section 6.2): was (t1, o1) sent after (t2, o2)? The
/// RFC breaks ties of equal times by sequence number, which is wrong for a
/// retransmission sent in the same clock tick as new data (and a whole
/// burst shares one tick here); the order of transmission is exact.
fn sent_after(t1: Instant, o1: u64, t2: Instant, o2: u64) -> bool {
    t1 > t2 || (t1 == t2 && o1 > o2)
}

/// The RACK state of one connection (section 5.2) with its transmission
/// records.
#[derive(Debug, Clone)]
pub struct Rack {
    recs: VecDeque<Record>,
    /// Bytes of records marked lost and not SACKed.
    lost_bytes: u32,
    /// Bytes of records SACKed.
    sacked_bytes: u32,
    /// Records SACKed.
    sacked_segs: u32,
    /// RACK.xmit_ts, and the transmission order in place of RACK.end_seq:
    /// the most recently sent segment known delivered.
    xmit_ts: Option<Instant>,
    xmit_order: u64,
    /// The order the next transmission gets.
    next_order: u64,
    /// RACK.rtt: the round trip of that segment.
    rtt: Duration,
    /// RACK.min_RTT and when it was measured.
    min_rtt: Option<(Duration, Instant)>,
    /// RACK.fack: the highest sequence number known delivered.
    fack: Option<u32>,
    /// RACK.fack before the ACK being processed: what its deliveries are
    /// compared with (one ACK's blocks come in no particular order).
    fack_before: Option<u32>,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult, RACK.reo_wnd_persist, RACK.dsack_round.
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    dsack_round: Option<u32>,
    /// The delivered segment sent last among those of the ACK being
    /// processed (section 6.2 step 2 takes them in xmit order; only the
    /// last one's values remain).
    pending: Option<(Instant, u64, Duration)>,
}

impl Default for Rack {
    fn default() -> Self {
        Rack {
            recs: VecDeque::new(),
            lost_bytes: 0,
            sacked_bytes: 0,
            sacked_segs: 0,
            xmit_ts: None,
            xmit_order: 0,
            next_order: 0,
            rtt: Duration::ZERO,
            min_rtt: None,
            fack: None,
            fack_before: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            pending: None,
        }
    }
}

/// What the loss detection found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detection {
    /// Segments newly marked lost.
    pub lost: u32,
    /// When to look again: some segment is not yet overdue but will be
    /// then unless it is acknowledged (the reordering timer, section 6.3).
    pub recheck: Option<Duration>,
}

impl Rack {
    /// An ACK's processing begins.
    pub fn begin_ack(&mut self) {
        self.fack_before = self.fack;
    }

    /// A segment [start, end) went out at `now` (section 6.1). What lies
    /// below the end of the last record is a retransmission; what lies
    /// beyond it is new.
    pub fn on_send(&mut self, start: u32, end: u32, now: Instant) {
        if !seq::lt(start, end) {
            return;
        }
        let top = self.recs.back().map_or(start, |r| r.end);
        if seq::lt(start, top) {
            let re_end = seq::min(end, top);
            self.retransmitted(start, re_end, now);
        }
        let new_start = seq::max(start, top);
        if seq::lt(new_start, end) {
            let order = self.take_order();
            if self.recs.len() >= MAX_RECORDS
                && let Some(last) = self.recs.back_mut()
                && !last.sacked
                && !last.lost
            {
                last.end = end;
                last.xmit = now;
                last.order = order;
                return;
            }
            self.recs.push_back(Record {
                start: new_start,
                end,
                xmit: now,
                order,
                rexmit: false,
                sacked: false,
                lost: false,
            });
        }
    }

    fn take_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    /// [start, end), below the last record's end, was sent again.
    fn retransmitted(&mut self, start: u32, end: u32, now: Instant) {
        let order = self.take_order();
        self.split_at(start);
        self.split_at(end);
        let from = self.index_of(start);
        for r in self.recs.iter_mut().skip(from) {
            if !seq::lt(r.start, end) {
                break;
            }
            if r.sacked {
                continue;
            }
            if r.lost {
                r.lost = false;
                self.lost_bytes = self.lost_bytes.saturating_sub(r.len());
            }
            r.rexmit = true;
            r.xmit = now;
            r.order = order;
        }
    }

    /// The index of the first record ending above `s`.
    fn index_of(&self, s: u32) -> usize {
        self.recs.partition_point(|r| seq::le(r.end, s))
    }

    /// Makes `s` a record boundary, if the table has room.
    fn split_at(&mut self, s: u32) {
        if self.recs.len() >= MAX_RECORDS {
            return;
        }
        let i = self.index_of(s);
        let Some(r) = self.recs.get_mut(i) else {
            return;
        };
        if !seq::lt(r.start, s) {
            return;
        }
        let mut tail = *r;
        r.end = s;
        tail.start = s;
        self.recs.insert(i + 1, tail);
    }

    /// Section 6.2 step 2 for one delivered record.
    fn delivered(&mut self, r: Record, now: Instant, ecr: Option<u32>) {
        // Step 3: a segment never retransmitted delivered below what was
        // already delivered arrived out of order.
        if let Some(f) = self.fack_before
            && !r.rexmit
            && seq::lt(r.end, f)
        {
            self.reordering_seen = true;
        }
        if self.fack.is_none_or(|f| seq::gt(r.end, f)) {
            self.fack = Some(r.end);
        }
        let rtt = now.saturating_since(r.xmit);
        if r.rexmit {
            // The ACK may be for the original transmission: trust it
            // only if its timestamp echo is not older than the
            // retransmission, or it is no faster than any round trip
            // seen.
            if let Some(e) = ecr
                && seq::lt(e, super::output::ts_now(r.xmit))
            {
                return;
            }
            if self.min_rtt.is_some_and(|(m, _)| rtt < m) {
                return;
            }
        } else {
            self.note_min_rtt(rtt, now);
        }
        match self.pending {
            Some((t, o, _)) if !sent_after(r.xmit, r.order, t, o) => {}
            _ => self.pending = Some((r.xmit, r.order, rtt)),
        }
    }

    fn note_min_rtt(&mut self, rtt: Duration, now: Instant) {
        let stale =
            |(m, at): (Duration, Instant)| rtt <= m || now.saturating_since(at) > MIN_RTT_WINDOW;
        if self.min_rtt.is_none_or(stale) {
            self.min_rtt = Some((rtt, now));
        }
    }

    /// The peer SACKed [l, r); `una`, `max`: SND.UNA and SND.MAX. A block
    /// outside them or inverted is ignored, as the scoreboard does.
    pub fn on_sack(&mut self, una: u32, max: u32, (l, r): (u32, u32), now: Instant) {
        if !seq::lt(l, r) || seq::le(r, una) || seq::gt(r, max) {
            return;
        }
        let l = seq::max(l, una);
        self.split_at(l);
        self.split_at(r);
        let from = self.index_of(l);
        let mut hit = Vec::new();
        for rec in self.recs.iter_mut().skip(from) {
            if !seq::lt(rec.start, r) {
                break;
            }
            if rec.sacked || seq::lt(rec.start, l) || seq::gt(rec.end, r) {
                continue;
            }
            rec.sacked = true;
            if rec.lost {
                rec.lost = false;
                self.lost_bytes = self.lost_bytes.saturating_sub(rec.len());
            }
            self.sacked_bytes = self.sacked_bytes.saturating_add(rec.len());
            self.sacked_segs += 1;
            hit.push(*rec);
        }
        // A receiver echoes the timestamp of the segment that last moved
        // its cumulative ACK, not of one arriving out of order (RFC 7323
        // section 4.3): the echo says nothing about which copy of a
        // SACKed segment arrived, only the round-trip check does (as
        // Linux's tcp_rack_advance).
        for rec in hit {
            self.delivered(rec, now, None);
        }
    }

    /// SND.UNA moved to `una`.
    pub fn on_cum_ack(&mut self, una: u32, now: Instant, ecr: Option<u32>) {
        while let Some(&r) = self.recs.front() {
            if seq::le(r.end, una) {
                self.recs.pop_front();
                self.forget(&r);
                if !r.sacked {
                    self.delivered(r, now, ecr);
                }
            } else {
                if seq::lt(r.start, una)
                    && let Some(f) = self.recs.front_mut()
                {
                    // Part of a record: what is left of it stays.
                    let cut = una.wrapping_sub(f.start);
                    if f.lost {
                        self.lost_bytes = self.lost_bytes.saturating_sub(cut);
                    }
                    if f.sacked {
                        self.sacked_bytes = self.sacked_bytes.saturating_sub(cut);
                    }
                    f.start = una;
                }
                break;
            }
        }
    }

    fn forget(&mut self, r: &Record) {
        if r.sacked {
            self.sacked_bytes = self.sacked_bytes.saturating_sub(r.len());
            self.sacked_segs = self.sacked_segs.saturating_sub(1);
        }
        if r.lost {
            self.lost_bytes = self.lost_bytes.saturating_sub(r.len());
        }
    }

    /// Ends the processing of one ACK's deliveries (section 6.2 step 2):
    /// RACK.rtt, RACK.xmit_ts and RACK.end_seq from the last sent of them.
    pub fn end_ack(&mut self) {
        let Some((t, o, rtt)) = self.pending.take() else {
            return;
        };
        self.rtt = rtt;
        match self.xmit_ts {
            Some(x) if !sent_after(t, o, x, self.xmit_order) => {}
            _ => {
                self.xmit_ts = Some(t);
                self.xmit_order = o;
            }
        }
    }

    /// A DSACK arrived (section 6.2 step 4): the peer got something
    /// twice, so a retransmission was needless: widen the window, at most
    /// once per round trip. `una`, `nxt`: SND.UNA and SND.NXT now.
    pub fn on_dsack(&mut self, una: u32, nxt: u32) {
        if self.dsack_round.is_some_and(|r| seq::ge(una, r)) {
            self.dsack_round = None;
        }
        if self.dsack_round.is_none() {
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(64);
            self.dsack_round = Some(nxt);
        }
        self.reo_wnd_persist = REO_WND_PERSIST;
    }

    /// A recovery turned out needless (`super::undo`): what it
    /// retransmitted had only been overtaken, the network reorders.
    pub fn note_reordering(&mut self) {
        self.reordering_seen = true;
    }

    /// Fast or RTO recovery ended (section 6.2 step 4).
    pub fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        } else {
            self.reo_wnd_mult = 1;
        }
    }

    /// RACK.reo_wnd (section 6.2 step 4).
    pub fn reo_wnd(&self, in_recovery: bool, srtt: Option<Duration>) -> Duration {
        if !self.reordering_seen && (in_recovery || self.sacked_segs >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let Some((m, _)) = self.min_rtt else {
            return Duration::ZERO;
        };
        let w = (m / 4).saturating_mul(self.reo_wnd_mult);
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }

    /// RACK_detect_loss (section 6.2 step 5).
    pub fn detect_loss(&mut self, now: Instant, reo_wnd: Duration) -> Detection {
        let mut out = Detection::default();
        let Some(rx) = self.xmit_ts else {
            return out;
        };
        let (rx_order, rtt) = (self.xmit_order, self.rtt);
        for r in self.recs.iter_mut() {
            if r.sacked || r.lost {
                continue;
            }
            if !sent_after(rx, rx_order, r.xmit, r.order) {
                // First transmissions go out in sequence order, and a
                // retransmission of later data goes out later still: past
                // the first never-retransmitted segment sent after the
                // delivered one, none was sent before it.
                if !r.rexmit {
                    break;
                }
                continue;
            }
            let deadline = r.xmit + rtt + reo_wnd;
            if deadline <= now {
                r.lost = true;
                self.lost_bytes = self.lost_bytes.saturating_add(r.len());
                out.lost += 1;
            } else {
                let left = deadline.saturating_since(now);
                out.recheck = Some(out.recheck.map_or(left, |x: Duration| x.max(left)));
            }
        }
        out
    }

    /// Marks every segment not SACKed lost (a retransmission timeout,
    /// section 6.3 / RFC 6675 section 5.1: everything will be sent
    /// again).
    pub fn mark_all_lost(&mut self) {
        for r in self.recs.iter_mut() {
            if !r.sacked && !r.lost {
                r.lost = true;
                self.lost_bytes = self.lost_bytes.saturating_add(r.len());
            }
        }
    }

    /// Forgets every SACK (the peer may have reneged, RFC 2018 section 8).
    pub fn clear_sacks(&mut self) {
        for r in self.recs.iter_mut() {
            r.sacked = false;
        }
        self.sacked_bytes = 0;
        self.sacked_segs = 0;
    }

    /// The first segment marked lost at or above `from`, at most `mss`
    /// bytes of it: what loss recovery retransmits next.
    pub fn next_lost(&self, from: u32, mss: u32) -> Option<(u32, u32)> {
        let i = self.index_of(from);
        self.recs
            .iter()
            .skip(i)
            .find(|r| r.lost && !r.sacked)
            .map(|r| {
                let s = seq::max(r.start, from);
                (s, r.end.wrapping_sub(s).min(mss))
            })
    }

    /// Bytes in the network: outstanding, less SACKed and lost (RFC 8985
    /// section 9.3 replaces RFC 6675's IsLost with RACK's marks).
    pub fn pipe(&self, una: u32, max: u32) -> u32 {
        max.wrapping_sub(una)
            .saturating_sub(self.sacked_bytes)
            .saturating_sub(self.lost_bytes)
    }

    /// Bytes marked lost and not yet sent again.
    pub fn lost_bytes(&self) -> u32 {
        self.lost_bytes
    }

    /// The last segment sent, [start, end): what a tail loss probe
    /// retransmits (RFC 8985 section 7.3).
    pub fn last_segment(&self) -> Option<(u32, u32)> {
        self.recs.back().map(|r| (r.start, r.end))
    }

    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(m, _)| m)
    }

    /// Records held (for tests).
    pub fn records(&self) -> usize {
        self.recs.len()
    }

    /// Drops every record (the connection left the synchronized states).
    pub fn clear(&mut self) {
        *self = Rack::default();
    }
}

/// The DSACK block of an ACK's SACK blocks, if it has one (RFC 2883
/// section 4): the first block, when it lies below the cumulative ACK or
/// inside the second block.
pub fn dsack_of(blocks: &[(u32, u32)], ack: u32) -> Option<(u32, u32)> {
    let &(l, r) = blocks.first()?;
    if !seq::lt(l, r) {
        return None;
    }
    let below = seq::le(r, ack);
    let inside = blocks
        .get(1)
        .is_some_and(|&(l2, r2)| seq::le(l2, l) && seq::le(r, r2));
    (below || inside).then_some((l, r))
}

impl Stack {
    /// RACK's part of processing an ACK, once the SACK blocks and the
    /// cumulative ACK have updated the records (section 6.2 steps 2 to 5):
    /// the reordering window, loss detection, the reordering timer; then
    /// fast recovery for what was found lost (RFC 8985 section 9.3 keeps
    /// RFC 6675's recovery with RACK's loss marks).
    pub(crate) fn tcp_rack_on_ack(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        dsack: Option<(u32, u32)>,
        now: Instant,
    ) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.rack.end_ack();
        if let Some(d) = dsack {
            let (una, nxt) = (t.snd_una, t.snd_max);
            t.rack.on_dsack(una, nxt);
            t.undo.on_dsack(d);
        }
        if t.recover.is_none() && t.undo.all_needless() {
            // Every retransmission of the last recovery reached a peer
            // that had the data already: take the reduction back.
            if let Some(cc) = t.undo.take() {
                t.cc = cc;
                t.rack.note_reordering();
                self.tcp.stats.undos += 1;
            }
        }
        self.tcp_rack_detect(ctx, id, now);
    }

    /// RACK_detect_loss_and_arm_timer (section 6.2 step 5, section 6.3),
    /// entering recovery when something is lost.
    pub(crate) fn tcp_rack_detect(&mut self, ctx: &mut impl Ctx, id: SocketId, now: Instant) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        // Going back after a timeout resends everything anyway: recovery
        // waits until that is done (the marks stay).
        let going_back = seq::lt(t.snd_nxt, t.snd_max);
        let in_recovery = t.recover.is_some() || going_back;
        let w = t.rack.reo_wnd(in_recovery, t.rtt.srtt());
        let d = t.rack.detect_loss(now, w);
        t.timers.reo = d.recheck.map(|x| now + x);
        self.tcp.stats.rack_lost += u64::from(d.lost);
        if t.rack.lost_bytes() == 0 || going_back {
            return;
        }
        if t.recover.is_none() {
            let (flight, mss) = (t.flight(), t.mss);
            t.recover = Some(t.snd_max);
            t.high_rxt = t.snd_una;
            t.rescue_rxt = None;
            t.timers.probe = None;
            t.undo.start(t.snd_una, t.snd_max, t.cc.snapshot());
            t.cc.on_fast_retransmit(flight, mss);
            self.tcp.stats.fast_retransmits += 1;
            self.tcp.stats.sack_recoveries += 1;
            // The first lost segment goes at once, whatever the pipe (RFC
            // 6675 section 5 step (4.3); Linux's PRR does the same).
            if let Some((s, len)) = t.rack.next_lost(t.snd_una, mss) {
                self.tcp_rack_retransmit(ctx, id, s, len);
            }
        }
        self.tcp_rack_send(ctx, id);
    }

    /// Loss recovery's transmission with RACK's marks (RFC 6675 section 5
    /// step (C) with NextSeg = the first segment marked lost): while
    /// ssthresh - pipe leaves room for a segment. New data is left to
    /// `tcp_output`, which uses the same pipe. Bounded per call.
    pub(crate) fn tcp_rack_send(&mut self, ctx: &mut impl Ctx, id: SocketId) {
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
            let Some((s, len)) = t.rack.next_lost(t.snd_una, mss) else {
                return;
            };
            self.tcp_rack_retransmit(ctx, id, s, len);
        }
    }

    /// Sends [s, s + len) again (a FIN included if it ends there).
    fn tcp_rack_retransmit(&mut self, ctx: &mut impl Ctx, id: SocketId, s: u32, len: u32) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let end = s.wrapping_add(len);
        if seq::gt(end, t.high_rxt) {
            t.high_rxt = end;
        }
        if let Some((ts, _)) = t.rtt_timed
            && seq::ge(ts, s)
        {
            t.rtt_timed = None; // Karn
        }
        let fin = t.fin_sent && end == t.fin_seq.wrapping_add(1);
        let data = len - u32::from(fin && len > 0);
        t.undo.on_retransmit();
        self.tcp.stats.retrans_segs += 1;
        self.tcp.stats.sack_retransmits += 1;
        t.total_retrans += 1;
        let flags = if fin { wire::FIN } else { 0 } | wire::PSH;
        self.tcp_send_seg(ctx, id, s, flags, data as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_the_window() {
        let mut r = Rack::default();
        for i in 0..5u32 {
            r.on_send(i * 1000, (i + 1) * 1000, ms(100 + u64::from(i)));
        }
        // Segments 1..4 SACKed at 120: segment 0 (sent at 100) was sent
        // before them. No reordering seen and 4 SACKed: reo_wnd = 0.
        r.begin_ack();
        r.on_sack(0, 5000, (1000, 5000), ms(120));
        r.end_ack();
        let w = r.reo_wnd(false, Some(Duration::from_millis(20)));
        assert_eq!(w, Duration::ZERO);
        let d = r.detect_loss(ms(120), w);
        // RACK.rtt = 120 - 104 = 16 ms; 100 + 16 <= 120.
        assert_eq!(d.lost, 1);
        assert_eq!(r.next_lost(0, 1000), Some((0, 1000)));
        assert_eq!(r.pipe(0, 5000), 0);
        // Retransmitted at 121: not lost any more, in flight again.
        r.on_send(0, 1000, ms(121));
        assert_eq!(r.next_lost(0, 1000), None);
        assert_eq!(r.pipe(0, 5000), 1000);
        // New data sent at 125 and SACKed at 145: the retransmission
        // (121) was sent before it and is overdue too: lost again.
        r.on_send(5000, 6000, ms(125));
        r.begin_ack();
        r.on_sack(0, 6000, (5000, 6000), ms(145));
        r.end_ack();
        let d = r.detect_loss(ms(145), Duration::ZERO);
        assert_eq!(d.lost, 1);
        assert_eq!(r.next_lost(0, 1000), Some((0, 1000)));
    }

    #[test]
    fn reordering_opens_the_window_and_the_timer_waits_for_it() {
        let mut r = Rack::default();
        for i in 0..4u32 {
            r.on_send(i * 1000, (i + 1) * 1000, ms(100));
        }
        // A retransmission in the same tick as new data still counts as
        // sent after it: the order of transmission breaks the tie.
        assert!(sent_after(ms(100), 5, ms(100), 4));
        // A first round trip: 20 ms, the minimum.
        r.begin_ack();
        r.on_cum_ack(1000, ms(120), None);
        r.end_ack();
        assert_eq!(r.min_rtt(), Some(Duration::from_millis(20)));
        // Segment 3 SACKed before 2 arrives, then 2 arrives: reordering.
        r.begin_ack();
        r.on_sack(1000, 4000, (3000, 4000), ms(121));
        r.end_ack();
        assert!(!r.reordering_seen());
        r.begin_ack();
        r.on_cum_ack(4000, ms(123), None);
        r.end_ack();
        assert!(r.reordering_seen());
        let w = r.reo_wnd(true, Some(Duration::from_millis(20)));
        assert_eq!(w, Duration::from_millis(5), "min_RTT / 4");
        // Now a segment sent at 200 is overtaken by one sent at 201: it
        // is not lost before 200 + rtt + 5 ms; the timer says when.
        r.on_send(4000, 5000, ms(200));
        r.on_send(5000, 6000, ms(201));
        r.begin_ack();
        r.on_sack(4000, 6000, (5000, 6000), ms(221));
        r.end_ack();
        let d = r.detect_loss(ms(221), w);
        assert_eq!(d.lost, 0);
        assert_eq!(d.recheck, Some(Duration::from_millis(4)));
        let d = r.detect_loss(ms(225), w);
        assert_eq!(d.lost, 1);
        // DSACKs widen the window, once per round trip.
        r.on_dsack(4000, 6000);
        r.on_dsack(4000, 6000);
        assert_eq!(
            r.reo_wnd(true, Some(Duration::from_millis(20))),
            Duration::from_millis(10)
        );
        // ...and it shrinks back after 16 recoveries without one.
        for _ in 0..REO_WND_PERSIST {
            r.on_recovery_end();
        }
        assert_eq!(
            r.reo_wnd(true, Some(Duration::from_millis(20))),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn a_retransmission_acknowledged_by_the_original_is_not_a_sample() {
        let mut r = Rack::default();
        r.on_send(0, 1000, ms(100));
        r.on_send(1000, 2000, ms(101));
        r.begin_ack();
        r.on_cum_ack(1000, ms(120), None);
        r.end_ack();
        r.on_send(1000, 2000, ms(300));
        // The ACK echoes a timestamp from before the retransmission.
        r.begin_ack();
        r.on_cum_ack(2000, ms(305), Some(super::super::output::ts_now(ms(101))));
        r.end_ack();
        assert_eq!(r.rtt, Duration::from_millis(20));
        assert_eq!(r.records(), 0);
    }

    #[test]
    fn records_split_on_partial_retransmissions_and_stay_bounded() {
        let mut r = Rack::default();
        r.on_send(0, 3000, ms(1));
        r.on_send(1000, 2000, ms(5));
        assert_eq!(r.records(), 3);
        r.begin_ack();
        r.on_sack(0, 3000, (2000, 3000), ms(6));
        r.end_ack();
        assert_eq!(r.pipe(0, 3000), 2000);
        r.begin_ack();
        r.on_cum_ack(1500, ms(7), None);
        assert_eq!(r.pipe(1500, 3000), 500);
        let mut s = 3000u32;
        for i in 0..(MAX_RECORDS as u32 + 100) {
            r.on_send(s, s + 10, ms(10 + u64::from(i)));
            s += 10;
        }
        assert!(r.records() <= MAX_RECORDS);
    }
}
