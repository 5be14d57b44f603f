//! The connection timers: retransmission (RFC 6298), persist (RFC 9293
//! section 3.8.6.1), delayed ACK, keepalive (RFC 9293 section 3.8.4,
//! RFC 1122 4.2.3.6), TIME-WAIT and the orphaned FIN-WAIT-2 timeout.
//! Each connection is filed in one ordered index under its earliest
//! deadline, so finding due work does not scan every connection.

use std::time::Duration;

use super::tcb::{MAX_RETRIES, PERSIST_MAX, PERSIST_MIN, SYN_RETRIES, SYNACK_RETRIES, State};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::time::Instant;

impl Stack {
    /// Files connection `id` under its current earliest deadline.
    pub(crate) fn tcp_rearm(&mut self, id: SocketId) {
        let (old, new) = match self.tcp.conns.get_mut(&id) {
            Some(t) => {
                let new = t.deadline();
                let old = std::mem::replace(&mut t.armed, new);
                (old, new)
            }
            None => return,
        };
        if old != new {
            if let Some(o) = old {
                self.tcp.timer_index.remove(&(o, id));
            }
            if let Some(n) = new {
                self.tcp.timer_index.insert((n, id));
            }
        }
    }

    pub(crate) fn tcp_next_deadline(&self) -> Option<Instant> {
        self.tcp.timer_index.first().map(|(t, _)| *t)
    }

    /// Runs every TCP timer that is due.
    pub(crate) fn tcp_poll(&mut self, ctx: &mut impl Ctx) {
        let now = ctx.now();
        let mut due = Vec::new();
        while let Some(&(t, id)) = self.tcp.timer_index.first() {
            if t > now {
                break;
            }
            self.tcp.timer_index.pop_first();
            if let Some(c) = self.tcp.conns.get_mut(&id) {
                c.armed = None;
            }
            due.push(id);
        }
        for id in due {
            let before = self.tcp_readiness(id);
            self.tcp_timers(ctx, id, now);
            self.tcp_rearm(id);
            if self.tcp.conns.contains_key(&id) && self.tcp_readiness(id) != before {
                ctx.socket_ready(id);
            }
        }
    }

    fn tcp_timers(&mut self, ctx: &mut impl Ctx, id: SocketId, now: Instant) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(t.timers.close) {
            // TIME-WAIT over, or an orphan gave up in FIN-WAIT-2.
            self.tcp_closed(ctx, id);
            return;
        }
        if due(t.timers.delack) {
            t.timers.delack = None;
            self.tcp.stats.delayed_acks += 1;
            self.tcp_send_ack(ctx, id);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if due(t.timers.reo) {
            t.timers.reo = None;
            self.tcp.stats.rack_reo_timeouts += 1;
            self.tcp_rack_detect(ctx, id, now);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if due(t.timers.probe) {
            self.tcp_tlp_fire(ctx, id, now);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if due(t.timers.rexmit) {
            t.timers.rexmit = None;
            self.tcp_rexmit_timeout(ctx, id, now);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if due(t.timers.persist) {
            t.timers.persist = None;
            if t.unsent() > 0 && t.flight() == 0 {
                if t.snd_wnd == 0 && t.orphan && t.persist_backoff >= MAX_RETRIES {
                    // Nobody will ever read what is left, and the peer
                    // keeps its window shut: give up (Linux
                    // tcp_orphan_retries), or the connection would live
                    // forever.
                    self.tcp.stats.timeouts += 1;
                    self.tcp_send_rst(ctx, id);
                    self.tcp_closed(ctx, id);
                    return;
                }
                if t.snd_wnd == 0 {
                    t.persist_backoff = t.persist_backoff.saturating_add(1);
                    let d = t
                        .rtt
                        .rto()
                        .max(PERSIST_MIN)
                        .saturating_mul(1 << t.persist_backoff.min(10))
                        .min(PERSIST_MAX);
                    t.timers.persist = Some(now + d);
                    self.tcp.stats.window_probes += 1;
                    self.tcp_send_probe(ctx, id);
                } else {
                    self.tcp_output(ctx, id, true);
                }
            }
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if due(t.timers.keepalive) {
            t.timers.keepalive = None;
            if t.state != State::Established || !t.opts.keepalive {
                return;
            }
            if t.keep_probes >= t.opts.keep_cnt {
                t.set_error(Error::TimedOut);
                self.tcp.stats.keepalive_drops += 1;
                self.tcp_send_rst(ctx, id);
                self.tcp_closed(ctx, id);
                return;
            }
            t.keep_probes += 1;
            t.timers.keepalive = Some(now + Duration::from_secs(u64::from(t.opts.keep_intvl)));
            self.tcp.stats.keepalive_probes += 1;
            self.tcp_send_probe(ctx, id);
        }
    }

    /// The retransmission timer expired (RFC 6298 section 5.4 to 5.7,
    /// RFC 5681 section 3.1 for the window).
    fn tcp_rexmit_timeout(&mut self, ctx: &mut impl Ctx, id: SocketId, now: Instant) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.retries += 1;
        t.rtt.back_off();
        t.rtt_timed = None;
        match t.state {
            State::SynSent | State::SynReceived => {
                let limit = if t.state == State::SynSent {
                    SYN_RETRIES
                } else {
                    SYNACK_RETRIES
                };
                if t.retries > limit {
                    let e = t.soft_error.take().unwrap_or(Error::TimedOut);
                    t.set_error(e);
                    self.tcp.stats.attempt_fails += 1;
                    self.tcp.stats.timeouts += 1;
                    self.tcp_closed(ctx, id);
                    return;
                }
                self.tcp.stats.retrans_segs += 1;
                t.total_retrans += 1;
                t.arm_rexmit(now);
                self.tcp_send_syn(ctx, id);
            }
            _ => {
                if t.flight() == 0 {
                    return;
                }
                if t.retries > MAX_RETRIES {
                    let e = t.soft_error.take().unwrap_or(Error::TimedOut);
                    t.set_error(e);
                    self.tcp.stats.timeouts += 1;
                    self.tcp_send_rst(ctx, id);
                    self.tcp_closed(ctx, id);
                    return;
                }
                let (flight, mss) = (t.flight(), t.mss);
                self.tcp.stats.rexmit_timeouts += 1;
                t.cc.on_timeout(flight, mss);
                t.recover = None;
                t.dupacks = 0;
                // RACK: everything not SACKed will be sent again; no probe
                // is outstanding any more (RFC 8985 section 7.4).
                t.rack.mark_all_lost();
                t.undo = super::undo::Undo::default();
                t.tlp = super::tlp::Tlp::default();
                t.timers.probe = None;
                t.timers.reo = None;
                // The scoreboard is kept (RFC 6675 section 5.1): going
                // back to SND.UNA, the send loop skips what the peer
                // reported holding. A peer that reneged (RFC 2018 section
                // 8) is covered by the next timeout, which clears it.
                if t.retries > 1 {
                    t.scoreboard.clear();
                    t.rack.clear_sacks();
                }
                // Go back to the first unacknowledged byte.
                t.snd_nxt = t.snd_una;
                if t.fin_sent && seq_le(t.snd_una, t.fin_seq) {
                    t.fin_sent = false;
                }
                self.tcp_output(ctx, id, true);
            }
        }
    }
}

fn seq_le(a: u32, b: u32) -> bool {
    super::seq::le(a, b)
}
