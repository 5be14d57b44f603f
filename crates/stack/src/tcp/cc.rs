//! Congestion control (RFC 5681) behind a trait, so the algorithm can be
//! chosen per connection (TCP_CONGESTION): NewReno here, CUBIC (RFC 9438,
//! the default as on Linux) in `super::cubic`. Loss recovery itself (fast
//! retransmit, NewReno's partial acknowledgments, RFC 6582, or the SACK
//! scoreboard, RFC 6675) lives in the input path; the algorithm only
//! decides the window.

use std::fmt::Debug;
use std::time::Duration;

use crate::time::Instant;

/// The algorithm new connections get (Linux's default too).
pub const DEFAULT: &str = "cubic";

/// Initial window in segments (RFC 6928).
pub const INITIAL_WINDOW_SEGMENTS: u32 = 10;

/// What the connection tells its congestion controller.
pub trait CongestionControl: Debug + Send {
    /// The name TCP_CONGESTION reports.
    fn name(&self) -> &'static str;
    fn cwnd(&self) -> u32;
    fn ssthresh(&self) -> u32;
    /// New data acknowledged outside loss recovery, at `now`, with the
    /// smoothed round-trip time if there is one yet.
    fn on_ack(&mut self, acked: u32, mss: u32, now: Instant, srtt: Option<Duration>);
    /// Three duplicate ACKs: fast retransmit starts (RFC 5681 section 3.2
    /// step 2 and 3). `flight` is the data outstanding.
    fn on_fast_retransmit(&mut self, flight: u32, mss: u32);
    /// Another duplicate ACK during recovery (step 4): inflate.
    fn on_dup_ack_in_recovery(&mut self, mss: u32);
    /// A partial ACK during recovery (RFC 6582 section 3.2 step 5).
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// A full ACK ends recovery (RFC 6582 step 3).
    fn on_recovery_end(&mut self, flight: u32, mss: u32);
    /// The retransmission timer expired (RFC 5681 section 3.1, eq. 4).
    fn on_timeout(&mut self, flight: u32, mss: u32);
    /// A copy of the whole state, kept to undo a reduction that turns out
    /// needless (`super::undo`).
    fn snapshot(&self) -> Box<dyn CongestionControl>;
}

/// NewReno: slow start, congestion avoidance, fast recovery.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged towards the next cwnd increase in congestion
    /// avoidance (RFC 5681 section 3.1, appropriate byte counting).
    acked_ca: u32,
    /// In the slow start that follows a retransmission timeout.
    after_rto: bool,
}

impl NewReno {
    pub fn new(mss: u32) -> NewReno {
        NewReno {
            cwnd: INITIAL_WINDOW_SEGMENTS * mss,
            ssthresh: u32::MAX,
            acked_ca: 0,
            after_rto: false,
        }
    }
}

/// The window after a slow-start ACK of `acked` bytes: appropriate byte
/// counting (RFC 3465 section 2.2) crediting every byte acknowledged, as
/// Linux does, so the window doubles each round trip however many
/// segments one ACK covers (a receiver acknowledging a whole receive
/// batch at once, `super::stretch`); RFC 3465's L = 2 SMSS would stop the
/// doubling there. Never beyond ssthresh: the rest of the ACK does not
/// spill into a burst. In the slow start after a retransmission timeout
/// L is 1 SMSS (RFC 3465 section 2.3): one ACK may then cover segments
/// the peer held long before (SACKed, or sent before the timeout).
pub(crate) fn slow_start(cwnd: u32, ssthresh: u32, acked: u32, mss: u32, after_rto: bool) -> u32 {
    let inc = if after_rto { acked.min(mss) } else { acked };
    cwnd.saturating_add(inc).min(ssthresh.max(cwnd))
}

pub(crate) fn half_flight(flight: u32, mss: u32) -> u32 {
    (flight / 2).max(2 * mss)
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }
    fn cwnd(&self) -> u32 {
        self.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }
    fn on_ack(&mut self, acked: u32, mss: u32, _now: Instant, _srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            self.cwnd = slow_start(self.cwnd, self.ssthresh, acked, mss, self.after_rto);
        } else {
            self.after_rto = false;
            self.acked_ca = self.acked_ca.saturating_add(acked);
            if self.acked_ca >= self.cwnd {
                self.acked_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }
    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) {
        self.after_rto = false;
        self.ssthresh = half_flight(flight, mss);
        self.cwnd = self.ssthresh + 3 * mss;
    }
    fn on_dup_ack_in_recovery(&mut self, mss: u32) {
        self.cwnd = self.cwnd.saturating_add(mss);
    }
    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        // Deflate by the amount acknowledged, add back one SMSS.
        self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss).max(mss);
    }
    fn on_recovery_end(&mut self, flight: u32, mss: u32) {
        self.cwnd = self.ssthresh.min(flight.saturating_add(mss)).max(mss);
        self.acked_ca = 0;
    }
    fn on_timeout(&mut self, flight: u32, mss: u32) {
        self.ssthresh = half_flight(flight, mss);
        self.cwnd = mss;
        self.acked_ca = 0;
        self.after_rto = true;
    }
    fn snapshot(&self) -> Box<dyn CongestionControl> {
        Box::new(self.clone())
    }
}

/// The congestion controller named `name`, if the stack has it.
pub fn by_name(name: &str, mss: u32) -> Option<Box<dyn CongestionControl>> {
    match name {
        "newreno" | "reno" => Some(Box::new(NewReno::new(mss))),
        "cubic" => Some(Box::new(super::cubic::Cubic::new(mss))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Instant = Instant::ZERO;

    #[test]
    fn the_stack_stays_sendable() {
        // The daemon moves its stack into a worker thread.
        fn sendable<T: Send>() {}
        sendable::<crate::Stack>();
    }

    #[test]
    fn slow_start_credits_every_byte_acknowledged_up_to_ssthresh() {
        // One ACK for a whole window of ten segments doubles it.
        let mut c = NewReno::new(1000);
        c.on_ack(10_000, 1000, T, None);
        assert_eq!(c.cwnd(), 20_000);
        // Not past ssthresh.
        assert_eq!(slow_start(20_000, 25_000, 20_000, 1000, false), 25_000);
        // After a timeout, one segment per ACK.
        c.on_timeout(40_000, 1000);
        c.on_ack(5000, 1000, T, None);
        assert_eq!(c.cwnd(), 2000);
    }

    #[test]
    fn slow_start_then_avoidance_then_loss() {
        let mut c = NewReno::new(1000);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(1000, 1000, T, None);
        assert_eq!(c.cwnd(), 11_000);
        c.on_fast_retransmit(20_000, 1000);
        assert_eq!((c.ssthresh(), c.cwnd()), (10_000, 13_000));
        c.on_recovery_end(8000, 1000);
        assert_eq!(c.cwnd(), 9000);
        c.on_ack(9000, 1000, T, None);
        c.on_ack(1000, 1000, T, None);
        c.on_ack(9000, 1000, T, None);
        assert_eq!(c.cwnd(), 11_000);
        c.on_timeout(4000, 1000);
        assert_eq!((c.ssthresh(), c.cwnd()), (2000, 1000));
        assert!(by_name("vegas", 1000).is_none());
        assert_eq!(by_name("cubic", 1000).map(|c| c.name()), Some("cubic"));
    }
}
