//! Undoing a needless loss recovery (the idea of RFC 3708 and of Linux's
//! undo): when every segment a recovery retransmitted is reported back
//! by a DSACK (RFC 2883), the peer had all of them already; they were
//! only reordered or delayed, nothing was lost, and the window reduction
//! is taken back.

use super::cc::CongestionControl;
use super::seq;

/// The recovery episode that may still be undone.
#[derive(Debug, Default)]
pub struct Undo {
    /// [start, end): SND.UNA and SND.MAX when the recovery began.
    range: Option<(u32, u32)>,
    /// Retransmissions in the episode not yet reported as duplicates.
    retrans: u32,
    /// Whether the episode retransmitted anything at all.
    any: bool,
    /// The congestion controller before its reduction.
    saved: Option<Box<dyn CongestionControl>>,
}

impl Undo {
    /// A recovery begins over [una, max); `saved` is the controller before
    /// it reduces.
    pub fn start(&mut self, una: u32, max: u32, saved: Box<dyn CongestionControl>) {
        *self = Undo {
            range: Some((una, max)),
            retrans: 0,
            any: false,
            saved: Some(saved),
        };
    }

    pub fn on_retransmit(&mut self) {
        if self.range.is_some() {
            self.retrans = self.retrans.saturating_add(1);
            self.any = true;
        }
    }

    /// A DSACK for [l, r): one retransmission of the episode was needless.
    pub fn on_dsack(&mut self, (l, r): (u32, u32)) {
        if let Some((a, b)) = self.range
            && seq::le(a, l)
            && seq::le(r, b)
        {
            self.retrans = self.retrans.saturating_sub(1);
        }
    }

    /// Were all of the episode's retransmissions needless?
    pub fn all_needless(&self) -> bool {
        self.range.is_some() && self.any && self.retrans == 0
    }

    /// The controller to go back to; the episode is over.
    pub fn take(&mut self) -> Option<Box<dyn CongestionControl>> {
        let s = self.saved.take();
        *self = Undo::default();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::cc::NewReno;

    #[test]
    fn only_an_episode_whose_every_retransmission_came_back_is_undone() {
        let mut u = Undo::default();
        assert!(!u.all_needless());
        u.start(1000, 9000, Box::new(NewReno::new(1000)));
        assert!(!u.all_needless(), "nothing retransmitted yet");
        u.on_retransmit();
        u.on_retransmit();
        u.on_dsack((1000, 2000));
        assert!(!u.all_needless());
        u.on_dsack((20_000, 21_000)); // not of this episode
        assert!(!u.all_needless());
        u.on_dsack((3000, 4000));
        assert!(u.all_needless());
        assert_eq!(u.take().map(|c| c.cwnd()), Some(10_000));
        assert!(!u.all_needless());
    }
}
