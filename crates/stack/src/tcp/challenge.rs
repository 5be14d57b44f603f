//! The stack-wide limit on RFC 5961 challenge ACKs (section 7), so the
//! protections cannot be turned into an ACK flood.

use std::time::Duration;

use crate::time::Instant;

/// Challenge ACKs per second at most (Linux's historic default).
pub const CHALLENGE_ACKS_PER_SEC: u32 = 1000;

#[derive(Debug, Default)]
pub struct ChallengeLimiter {
    window_start: Instant,
    sent: u32,
}

impl ChallengeLimiter {
    pub fn allow(&mut self, now: Instant) -> bool {
        if now.saturating_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent >= CHALLENGE_ACKS_PER_SEC {
            return false;
        }
        self.sent += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_second() {
        let mut l = ChallengeLimiter::default();
        let t = Instant::from_millis(5000);
        let n = (0..2000).filter(|_| l.allow(t)).count();
        assert_eq!(n, CHALLENGE_ACKS_PER_SEC as usize);
        assert!(l.allow(Instant::from_millis(6000)));
    }
}
