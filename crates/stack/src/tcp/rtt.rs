//! The retransmission timeout (RFC 6298), with Linux's bounds: at least
//! 200 ms, at most 120 s.

use std::time::Duration;

pub const INITIAL_RTO: Duration = Duration::from_secs(1);
pub const MIN_RTO: Duration = Duration::from_millis(200);
pub const MAX_RTO: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    /// Doublings since the last valid sample (section 5.5).
    backoff: u32,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: INITIAL_RTO,
            backoff: 0,
        }
    }
}

impl RttEstimator {
    /// A round-trip sample (never from a retransmitted segment: Karn's rule,
    /// section 3).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                // Section 2.2.
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                // Section 2.3, alpha 1/8, beta 1/4.
                let diff = s.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + diff / 4;
                self.srtt = Some(s * 7 / 8 + r / 8);
            }
        }
        let s = self.srtt.unwrap_or(r);
        // K = 4; G is taken as 0 since our clock is fine-grained.
        self.rto = (s + self.rttvar * 4).clamp(MIN_RTO, MAX_RTO);
        self.backoff = 0;
    }

    /// The timer expired: double the timeout (section 5.5).
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// The current timeout, backed off.
    pub fn rto(&self) -> Duration {
        let mult = 1u32.checked_shl(self.backoff.min(16)).unwrap_or(u32::MAX);
        self.rto.saturating_mul(mult).min(MAX_RTO)
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_estimates_and_bounds() {
        let mut r = RttEstimator::default();
        assert_eq!(r.rto(), Duration::from_secs(1));
        r.back_off();
        assert_eq!(r.rto(), Duration::from_secs(2));
        r.sample(Duration::from_millis(100));
        // 100 + 4 * 50 = 300 ms.
        assert_eq!(r.rto(), Duration::from_millis(300));
        for _ in 0..50 {
            r.sample(Duration::from_millis(10));
        }
        assert_eq!(r.rto(), MIN_RTO);
        for _ in 0..20 {
            r.back_off();
        }
        assert_eq!(r.rto(), MAX_RTO);
    }
}
