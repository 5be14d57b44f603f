//! CUBIC congestion control (RFC 9438).
//!
//! After a loss the window grows as a cubic function of the time since the
//! reduction, W_cubic(t) = C * (t - K)^3 + W_max (section 4.2): fast at
//! first, flattening out (concave) as it nears W_max, the window where the
//! loss happened, then accelerating again (convex) to probe beyond it. In
//! the Reno-friendly region (section 4.3) it grows at least as fast as a
//! Reno flow would. Windows are kept in segments as floating point, as the
//! RFC states them; the byte window is derived from them.

use std::time::Duration;

use super::cc::{CongestionControl, INITIAL_WINDOW_SEGMENTS};
use crate::time::Instant;

/// C (section 5).
const C: f64 = 0.4;
/// β_cubic, the multiplicative decrease factor (section 4.6).
const BETA: f64 = 0.7;
/// α_cubic, the Reno-friendly additive increase (section 4.3).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// W_max in segments: the window just before the last reduction.
    w_max: f64,
    /// When the current congestion avoidance stage began (t = 0).
    epoch_start: Option<Instant>,
    /// K in seconds: when W_cubic reaches W_max again (eq. 2).
    k: f64,
    /// W_est, the Reno-friendly estimate, in segments (eq. 4).
    w_est: f64,
    /// In the slow start that follows a retransmission timeout.
    after_rto: bool,
}

impl Cubic {
    pub fn new(mss: u32) -> Cubic {
        Cubic {
            cwnd: INITIAL_WINDOW_SEGMENTS * mss,
            ssthresh: u32::MAX,
            w_max: 0.0,
            epoch_start: None,
            k: 0.0,
            w_est: 0.0,
            after_rto: false,
        }
    }

    /// W_cubic(t) in segments, `t` in seconds (eq. 1).
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    #[cfg(test)]
    fn w_max_segments(&self) -> f64 {
        self.w_max
    }

    /// A congestion event (section 4.6, with fast convergence, section
    /// 4.7): remember where it happened and reduce ssthresh by β.
    fn reduce(&mut self, flight: u32, mss: u32) {
        let mss_f = f64::from(mss.max(1));
        let cur = f64::from(self.cwnd) / mss_f;
        // Fast convergence: a flow whose window keeps shrinking releases
        // bandwidth to newer flows by remembering a lower W_max.
        self.w_max = if cur < self.w_max {
            cur * (1.0 + BETA) / 2.0
        } else {
            cur
        };
        self.epoch_start = None;
        // ssthresh = flight_size * β_cubic, at least two segments
        // (section 4.6; RFC 5681 eq. 4 for the floor).
        let reduced = (f64::from(flight) * BETA) as u32;
        self.ssthresh = reduced.max(2 * mss);
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }
    fn cwnd(&self) -> u32 {
        self.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32, now: Instant, srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // Slow start as in RFC 5681 (section 4.10), counting bytes.
            self.cwnd = super::cc::slow_start(self.cwnd, self.ssthresh, acked, mss, self.after_rto);
            return;
        }
        self.after_rto = false;
        let mss_f = f64::from(mss.max(1));
        let cur = f64::from(self.cwnd) / mss_f;
        let start = match self.epoch_start {
            Some(s) => s,
            None => {
                // A new congestion avoidance stage (section 4.2): K from
                // the window it starts with, cwnd_epoch.
                self.epoch_start = Some(now);
                if self.w_max <= cur {
                    self.k = 0.0;
                    self.w_max = cur;
                } else {
                    self.k = ((self.w_max - cur) / C).cbrt();
                }
                self.w_est = cur;
                now
            }
        };
        let t = now.saturating_since(start).as_secs_f64();
        let acked_segs = f64::from(acked) / mss_f;
        // Reno-friendly estimate (eq. 4); α becomes 1 once W_est has
        // passed W_max (section 4.3).
        let alpha = if self.w_est >= self.w_max { 1.0 } else { ALPHA };
        self.w_est += alpha * acked_segs / cur.max(1.0);
        let rtt = srtt.unwrap_or(Duration::from_millis(100)).as_secs_f64();
        let next = if self.w_cubic(t) < self.w_est {
            // Reno-friendly region.
            self.w_est
        } else {
            // Concave or convex region (sections 4.4 and 4.5): aim at
            // W_cubic one RTT ahead, between cwnd and 1.5 cwnd, and move
            // (target - cwnd) / cwnd per acknowledged segment.
            let target = self.w_cubic(t + rtt).clamp(cur, 1.5 * cur);
            cur + (target - cur) / cur.max(1.0) * acked_segs
        };
        let bytes = (next * mss_f).min(f64::from(u32::MAX / 2)) as u32;
        self.cwnd = self.cwnd.max(bytes);
    }

    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) {
        self.after_rto = false;
        self.reduce(flight, mss);
        self.cwnd = self.ssthresh.saturating_add(3 * mss);
    }
    fn on_dup_ack_in_recovery(&mut self, mss: u32) {
        self.cwnd = self.cwnd.saturating_add(mss);
    }
    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss).max(mss);
    }
    fn on_recovery_end(&mut self, flight: u32, mss: u32) {
        self.cwnd = self.ssthresh.min(flight.saturating_add(mss)).max(mss);
    }
    fn on_timeout(&mut self, flight: u32, mss: u32) {
        // Section 4.8: reduce as for a loss, then slow start from one
        // segment; the cubic epoch starts again when ssthresh is reached.
        self.reduce(flight, mss);
        self.cwnd = mss;
        self.after_rto = true;
    }
    fn snapshot(&self) -> Box<dyn CongestionControl> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Feeds one window of ACKs per RTT from `from` for `rtts` round
    /// trips; returns cwnd (segments) after each.
    fn run(c: &mut Cubic, from: u64, rtts: u64, rtt_ms: u64) -> Vec<f64> {
        let mut out = Vec::new();
        for r in 0..rtts {
            let now = ms(from + r * rtt_ms);
            let segs = c.cwnd() / MSS;
            for _ in 0..segs {
                c.on_ack(MSS, MSS, now, Some(Duration::from_millis(rtt_ms)));
            }
            out.push(f64::from(c.cwnd()) / f64::from(MSS));
        }
        out
    }

    #[test]
    fn growth_after_a_loss_is_concave_then_convex_around_w_max() {
        let mut c = Cubic::new(MSS);
        // Slow start to 100 segments, then a loss.
        while c.cwnd() < 100 * MSS {
            c.on_ack(MSS, MSS, ms(0), None);
        }
        c.on_fast_retransmit(100 * MSS, MSS);
        assert_eq!(c.ssthresh(), 70 * MSS, "β = 0.7");
        c.on_recovery_end(70 * MSS, MSS);
        assert_eq!(c.cwnd(), 70 * MSS);
        assert_eq!(c.w_max_segments(), 100.0);
        // K = cbrt(30 / 0.4) ≈ 4.2 s: at 100 ms RTT, about 42 RTTs.
        let w = run(&mut c, 1000, 90, 100);
        let k_rtt = 42usize;
        let inc = |i: usize| w[i + 1] - w[i];
        // Concave: the increments shrink on the way up to W_max...
        assert!(inc(2) > inc(20) && inc(20) > inc(k_rtt - 4), "{w:?}");
        // ...the window plateaus near W_max around K...
        assert!((w[k_rtt] - 100.0).abs() < 5.0, "{w:?}");
        assert!(inc(k_rtt) < 0.6, "{w:?}");
        // ...then convex: the increments grow again beyond it.
        assert!(inc(k_rtt + 30) > inc(k_rtt + 10), "{w:?}");
        assert!(inc(k_rtt + 10) > inc(k_rtt), "{w:?}");
        assert!(w[89] > 110.0, "{w:?}");
    }

    #[test]
    fn fast_convergence_lowers_w_max_when_the_window_keeps_shrinking() {
        let mut c = Cubic::new(MSS);
        while c.cwnd() < 100 * MSS {
            c.on_ack(MSS, MSS, ms(0), None);
        }
        c.on_fast_retransmit(100 * MSS, MSS);
        c.on_recovery_end(70 * MSS, MSS);
        // Another loss at 80 segments, below W_max = 100.
        run(&mut c, 1000, 3, 100);
        let cur = f64::from(c.cwnd()) / f64::from(MSS);
        assert!(cur < 100.0);
        c.on_fast_retransmit(c.cwnd(), MSS);
        let expect = cur * (1.0 + BETA) / 2.0;
        assert!((c.w_max_segments() - expect).abs() < 1e-9);
    }

    #[test]
    fn the_reno_friendly_region_grows_at_least_like_reno() {
        // A short RTT and a small window: W_cubic barely moves, W_est
        // (at least α per RTT) dominates.
        let mut c = Cubic::new(MSS);
        c.on_timeout(20 * MSS, MSS);
        assert_eq!((c.cwnd(), c.ssthresh()), (MSS, 14 * MSS));
        while c.cwnd() < c.ssthresh() {
            c.on_ack(MSS, MSS, ms(0), None);
        }
        let w = run(&mut c, 10, 40, 1);
        // 40 RTTs of 1 ms: the cubic term adds almost nothing, yet the
        // window grew by about α per RTT.
        let grown = w[39] - 14.0;
        assert!(grown > 40.0 * ALPHA * 0.8, "{w:?}");
    }
}
