//! Send and receive buffer auto-tuning.
//!
//! Receive side: dynamic right-sizing, as Linux does it (after Fisk and
//! Feng, "Dynamic Right-Sizing in TCP"). Once per receiver round trip the
//! stack looks at how many bytes the application read in that round trip;
//! when that grew, the buffer — and so the window that may be offered — is
//! made about twice as large, plus room for the sender's slow-start
//! growth, up to `net.inet.tcp.recvbuf_max`. A buffer only grows, so the
//! right edge of an offered window never has to move left (RFC 9293
//! section 3.8.6, RFC 7323 section 2.4). The window scale is fixed on the
//! SYN, so it is chosen for the largest size the buffer may reach (RFC 7323
//! section 2.3), not for the size it starts at.
//!
//! The receiver's round trip comes from the timestamps the sender echoes on
//! its data (RFC 7323 section 4), or without timestamps from the time one
//! window of data takes to arrive.
//!
//! Send side: the buffer follows the congestion window, about twice it (one
//! window in flight, one queued behind it), up to
//! `net.inet.tcp.sendbuf_max`, so a path with a large bandwidth-delay
//! product is not held back by the send buffer.
//!
//! SO_RCVBUF / SO_SNDBUF lock their direction: an application that chose a
//! size keeps it, as on Linux. Neither side grows while the stack is under
//! memory pressure (`super::memory`).

use std::time::Duration;

use super::seq;
use super::tcb::Tcb;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::time::Instant;

/// Segments of headroom added to a grown receive buffer (Linux adds 16
/// advertised MSS).
const RCV_GROW_SEGS: usize = 16;
/// Initial estimate of the bytes read per round trip: ten segments, the
/// initial window of RFC 6928.
const RCV_SPACE_INIT_SEGS: usize = 10;

/// One connection's auto-tuning and memory accounting state.
#[derive(Debug, Clone)]
pub struct BufTuning {
    /// SO_RCVBUF was set: the receive buffer keeps its size.
    pub rcv_locked: bool,
    /// SO_SNDBUF was set: the send buffer keeps its size.
    pub snd_locked: bool,
    /// Bytes the application read in the last measured round trip, at
    /// least the initial estimate (Linux rcvq_space.space).
    pub rcv_space: usize,
    /// Bytes the application has read, in all.
    pub rcv_copied: u64,
    /// `rcv_copied` and the time when the current measurement started.
    pub rcv_mark: u64,
    pub rcv_mark_time: Option<Instant>,
    /// The receiver's round-trip estimate (smoothed, 1/8 gain).
    pub rcv_rtt: Option<Duration>,
    /// Without timestamps: the sequence number one window ahead and when
    /// that window began to arrive.
    pub rcv_rtt_probe: Option<(u32, Instant)>,
    /// Bytes this connection's buffers count for in the stack-wide total.
    pub mem_charged: usize,
    /// The most the window may offer beyond what is held, under memory
    /// pressure (`usize::MAX` otherwise).
    pub wnd_clamp: usize,
}

impl Default for BufTuning {
    fn default() -> Self {
        BufTuning {
            rcv_locked: false,
            snd_locked: false,
            rcv_space: 0,
            rcv_copied: 0,
            rcv_mark: 0,
            rcv_mark_time: None,
            rcv_rtt: None,
            rcv_rtt_probe: None,
            mem_charged: 0,
            wnd_clamp: usize::MAX,
        }
    }
}

impl BufTuning {
    fn rtt_sample(&mut self, sample: Duration, window_based: bool) {
        let sample = sample.max(Duration::from_millis(1));
        self.rcv_rtt = Some(match self.rcv_rtt {
            None => sample,
            // A window-based sample is an upper bound on the round trip
            // (the window may not have been full): only a smaller one
            // counts, as in Linux's tcp_rcv_rtt_update.
            Some(r) if window_based => r.min(sample),
            Some(r) => r - r / 8 + sample / 8,
        });
    }
}

/// A data segment arrived in order: take a receiver round-trip sample.
/// `tsecr` is the timestamp the sender echoed, when timestamps are on.
pub(crate) fn note_data_arrival(t: &mut Tcb, tsecr: Option<u32>, full_sized: bool, now: Instant) {
    if t.ts_ok {
        // RFC 7323 section 4: the echo is the time of the ACK the data
        // answers. Only full segments, as a small one may have waited on
        // the sender's application.
        if let Some(ecr) = tsecr.filter(|e| *e != 0)
            && full_sized
        {
            let ms = super::output::ts_now(now).wrapping_sub(ecr);
            if ms < 60_000 {
                t.tune
                    .rtt_sample(Duration::from_millis(u64::from(ms)), false);
            }
        }
        return;
    }
    match t.tune.rcv_rtt_probe {
        Some((edge, at)) if seq::ge(t.rcv_nxt, edge) => {
            t.tune.rtt_sample(now.saturating_since(at), true);
            t.tune.rcv_rtt_probe = None;
        }
        Some(_) => {}
        None => {
            let wnd = t.rcv_wnd().max(t.mss);
            t.tune.rcv_rtt_probe = Some((t.rcv_nxt.wrapping_add(wnd), now));
        }
    }
}

impl Stack {
    /// Buffer sizes a new connection starts with: (receive, send).
    pub(crate) fn tcp_initial_bufs(&self) -> (usize, usize) {
        (
            self.config.tcp_recvspace as usize,
            self.config.tcp_sendspace as usize,
        )
    }

    /// The largest size connection `t`'s receive buffer may reach.
    pub(crate) fn tcp_rcvbuf_ceiling(&self, t: &Tcb) -> usize {
        self.tcp_rcvbuf_ceiling_for(t.rcvbuf.cap, t.tune.rcv_locked)
    }

    /// The largest a receive buffer of `cap` bytes may reach, `locked` by
    /// SO_RCVBUF or not.
    pub(crate) fn tcp_rcvbuf_ceiling_for(&self, cap: usize, locked: bool) -> usize {
        if locked || !self.config.tcp_recvbuf_auto {
            cap
        } else {
            cap.max(self.config.tcp_recvbuf_max as usize)
        }
    }

    /// The window scale to announce on connection `t`'s SYN: for the
    /// largest the receive buffer may grow to (RFC 7323 section 2.3),
    /// since the shift cannot change later.
    pub(crate) fn tcp_rcv_wscale(&self, t: &Tcb) -> u8 {
        Tcb::wscale_for(self.tcp_rcvbuf_ceiling(t))
    }

    /// The application read `n` bytes from connection `id`: once per
    /// round trip, grow the receive buffer if it read more than in the
    /// round trip before (Linux tcp_rcv_space_adjust).
    pub(crate) fn tcp_rcv_space_adjust(&mut self, id: SocketId, n: usize, now: Instant) {
        let ceiling = self
            .tcp
            .conns
            .get(&id)
            .map_or(0, |t| self.tcp_rcvbuf_ceiling(t));
        let pressure = self.tcp.mem.pressure;
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let tune = &mut t.tune;
        tune.rcv_copied += n as u64;
        let mss = t.mss as usize;
        if tune.rcv_space == 0 {
            tune.rcv_space = (RCV_SPACE_INIT_SEGS * mss).min(t.rcvbuf.cap);
        }
        let Some(start) = tune.rcv_mark_time else {
            // The first read starts the first measurement.
            tune.rcv_mark_time = Some(now);
            tune.rcv_mark = tune.rcv_copied;
            return;
        };
        let Some(rtt) = tune.rcv_rtt.or(t.rtt.srtt()) else {
            return;
        };
        if now.saturating_since(start) < rtt {
            return;
        }
        let copied = (tune.rcv_copied - tune.rcv_mark).min(usize::MAX as u64) as usize;
        tune.rcv_mark = tune.rcv_copied;
        tune.rcv_mark_time = Some(now);
        if copied <= tune.rcv_space {
            return;
        }
        // Room for two round trips of what was read, plus headroom; and
        // if the rate is still rising (the sender in slow start doubles
        // each round trip), twice the rise on top.
        let space = tune.rcv_space.max(1);
        let mut target = copied.saturating_mul(2).saturating_add(RCV_GROW_SEGS * mss);
        let rise = (target as u128 * (copied - space) as u128 / space as u128) as usize;
        target = target.saturating_add(rise.saturating_mul(2));
        tune.rcv_space = copied;
        let target = target.min(ceiling);
        if target <= t.rcvbuf.cap {
            return;
        }
        if pressure {
            // No growth while the stack is short of memory.
            return;
        }
        t.rcvbuf.cap = target;
        self.tcp.stats.rcvbuf_grown += 1;
    }

    /// New data was acknowledged on connection `id`: let the send buffer
    /// follow the congestion window (Linux tcp_sndbuf_expand).
    pub(crate) fn tcp_sndbuf_expand(&mut self, id: SocketId) {
        if !self.config.tcp_sendbuf_auto || self.tcp.mem.pressure {
            return;
        }
        let max = self.config.tcp_sendbuf_max as usize;
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if t.tune.snd_locked {
            return;
        }
        let cwnd = t.cc.cwnd() as usize;
        let target = cwnd.saturating_mul(2).min(max);
        if target > t.sndbuf.cap {
            t.sndbuf.cap = target;
            self.tcp.stats.sndbuf_grown += 1;
        }
    }
}
