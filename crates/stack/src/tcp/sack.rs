//! The sender's SACK scoreboard (RFC 6675 section 3 and 4): which parts of
//! SND.UNA..SND.MAX the peer reported holding (RFC 2018), and from that
//! IsLost, the pipe estimate and NextSeg.
//!
//! The scoreboard keeps sorted, disjoint, non-adjacent ranges, at most
//! [`MAX_RANGES`] of them: a peer reporting more scattered blocks than that
//! loses the lowest ones, which only makes us retransmit more.

use super::seq;

/// DupThresh (RFC 6675 section 2; RFC 5681).
pub const DUP_THRESH: u32 = 3;
/// Ranges kept at most.
pub const MAX_RANGES: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    /// [start, end) ranges the peer holds, ascending, all above SND.UNA.
    ranges: Vec<(u32, u32)>,
}

impl Scoreboard {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Records one SACK block; blocks outside (una, max] or inverted are
    /// ignored (RFC 2018 section 3 leaves no room for them; a forged block
    /// must not make us believe data arrived that was never sent).
    pub fn add(&mut self, una: u32, max: u32, (l, r): (u32, u32)) {
        if !seq::lt(l, r) || seq::le(r, una) || seq::gt(r, max) {
            return;
        }
        let l = if seq::lt(l, una) { una } else { l };
        let mut nl = l;
        let mut nr = r;
        // Merge with every range it touches or overlaps.
        self.ranges.retain(|&(a, b)| {
            if seq::le(a, nr) && seq::le(nl, b) {
                nl = seq::min(nl, a);
                nr = seq::max(nr, b);
                false
            } else {
                true
            }
        });
        let at = self
            .ranges
            .iter()
            .position(|&(a, _)| seq::gt(a, nl))
            .unwrap_or(self.ranges.len());
        self.ranges.insert(at, (nl, nr));
        if self.ranges.len() > MAX_RANGES {
            self.ranges.remove(0);
        }
    }

    /// SND.UNA moved to `una`: forget what it covers.
    pub fn advance(&mut self, una: u32) {
        self.ranges.retain(|&(_, b)| seq::gt(b, una));
        if let Some(first) = self.ranges.first_mut()
            && seq::lt(first.0, una)
        {
            first.0 = una;
        }
    }

    /// Bytes SACKed within [a, b).
    pub fn sacked_in(&self, a: u32, b: u32) -> u32 {
        self.ranges
            .iter()
            .map(|&(l, r)| {
                let lo = seq::max(l, a);
                let hi = seq::min(r, b);
                if seq::lt(lo, hi) {
                    hi.wrapping_sub(lo)
                } else {
                    0
                }
            })
            .sum()
    }

    /// The end of the SACKed range holding `s`, if it is SACKed.
    pub fn sacked_until(&self, s: u32) -> Option<u32> {
        self.ranges
            .iter()
            .find(|&&(l, r)| seq::le(l, s) && seq::lt(s, r))
            .map(|&(_, r)| r)
    }

    /// The start of the first SACKed range above `s`.
    pub fn next_sacked_after(&self, s: u32) -> Option<u32> {
        self.ranges
            .iter()
            .find(|&&(l, _)| seq::gt(l, s))
            .map(|&(l, _)| l)
    }

    /// Is `s` SACKed?
    pub fn is_sacked(&self, s: u32) -> bool {
        self.ranges
            .iter()
            .any(|&(l, r)| seq::le(l, s) && seq::lt(s, r))
    }

    /// The point below which every byte not SACKed counts as lost (RFC
    /// 6675 IsLost): a hole is lost when DupThresh discontiguous SACKed
    /// ranges lie above it, or more than (DupThresh - 1) * SMSS SACKed
    /// bytes. IsLost is monotone, so one boundary describes it.
    pub fn lost_below(&self, una: u32, mss: u32) -> u32 {
        let mut bytes = 0u32;
        for (i, &(l, r)) in self.ranges.iter().enumerate().rev() {
            bytes = bytes.saturating_add(r.wrapping_sub(l));
            let above = (self.ranges.len() - i) as u32;
            if above >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                return l;
            }
        }
        una
    }

    /// IsLost(seq) of RFC 6675 section 4.
    pub fn is_lost(&self, s: u32, una: u32, mss: u32) -> bool {
        seq::lt(s, self.lost_below(una, mss)) && !self.is_sacked(s)
    }

    /// The pipe (RFC 6675 section 4, SetPipe): bytes not SACKed and not
    /// lost, plus bytes retransmitted (below `high_rxt`) and not SACKed.
    pub fn pipe(&self, una: u32, max: u32, high_rxt: u32, mss: u32) -> u32 {
        let lost = self.lost_below(una, mss);
        let lost = if seq::lt(lost, una) { una } else { lost };
        let in_net = max
            .wrapping_sub(lost)
            .saturating_sub(self.sacked_in(lost, max));
        let rxt_end = seq::min(seq::max(high_rxt, una), max);
        let rxt = rxt_end
            .wrapping_sub(una)
            .saturating_sub(self.sacked_in(una, rxt_end));
        in_net.saturating_add(rxt)
    }

    /// NextSeg rule 4 (the rescue retransmission): one segment ending
    /// with the highest byte in flight that is not SACKed, below `max`.
    pub fn rescue_seg(&self, una: u32, max: u32, mss: u32) -> Option<(u32, u32)> {
        let mut end = max;
        let mut floor = una;
        for &(l, r) in self.ranges.iter().rev() {
            if r == end {
                end = l;
            } else if seq::lt(r, end) {
                floor = r;
                break;
            }
        }
        let start = seq::max(seq::max(end.wrapping_sub(mss), floor), una);
        seq::lt(start, end).then(|| (start, end.wrapping_sub(start)))
    }

    /// NextSeg rule 1 (RFC 6675 section 4): the first hole byte above
    /// HighRxt that is lost, and how much of the hole to send (one SMSS
    /// at most). Rule 3 (an unSACKed segment below the highest SACKed
    /// byte that is not yet lost) is used when `rule3` and no lost hole is
    /// left.
    pub fn next_seg(&self, una: u32, high_rxt: u32, mss: u32, rule3: bool) -> Option<(u32, u32)> {
        let lost = self.lost_below(una, mss);
        let mut s = seq::max(high_rxt, una);
        for &(l, r) in &self.ranges {
            if seq::lt(s, l) {
                let limit = if rule3 { l } else { seq::min(l, lost) };
                if seq::lt(s, limit) {
                    return Some((s, limit.wrapping_sub(s).min(mss)));
                }
                if !rule3 {
                    return None;
                }
            }
            if seq::lt(s, r) {
                s = r;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_merge_and_bogus_ones_are_ignored() {
        let mut b = Scoreboard::default();
        let una = 1000;
        let max = 20_000;
        b.add(una, max, (3000, 4000));
        b.add(una, max, (5000, 6000));
        b.add(una, max, (4000, 5000));
        assert_eq!(b.ranges(), &[(3000, 6000)]);
        b.add(una, max, (8000, 9000));
        b.add(una, max, (30_000, 31_000)); // beyond SND.MAX
        b.add(una, max, (500, 900)); // below SND.UNA
        b.add(una, max, (7000, 6000)); // inverted
        assert_eq!(b.ranges(), &[(3000, 6000), (8000, 9000)]);
        b.advance(5000);
        assert_eq!(b.ranges(), &[(5000, 6000), (8000, 9000)]);
        for i in 0..200u32 {
            b.add(una, 1_000_000, (10_000 + i * 20, 10_000 + i * 20 + 10));
        }
        assert_eq!(b.ranges().len(), MAX_RANGES);
    }

    #[test]
    fn is_lost_pipe_and_next_seg_follow_rfc_6675() {
        let mss = 1000;
        let una = 0;
        let max = 10_000;
        let mut b = Scoreboard::default();
        // Segment 0 and 2 lost; 1 and 3..6 SACKed.
        b.add(una, max, (1000, 2000));
        b.add(una, max, (3000, 7000));
        assert!(b.is_lost(0, una, mss));
        assert!(b.is_lost(2000, una, mss));
        assert!(!b.is_lost(7000, una, mss), "nothing SACKed above it");
        // Pipe: 7000..10000 in flight, no retransmissions yet.
        assert_eq!(b.pipe(una, max, una, mss), 3000);
        assert_eq!(b.next_seg(una, una, mss, false), Some((0, 1000)));
        assert_eq!(b.next_seg(una, 1000, mss, false), Some((2000, 1000)));
        assert_eq!(b.next_seg(una, 3000, mss, false), None);
        // After retransmitting both holes they count in the pipe again.
        assert_eq!(b.pipe(una, max, 3000, mss), 5000);
        // Only one segment SACKed: nothing is lost yet (rule 3 still
        // offers the hole below it).
        let mut c = Scoreboard::default();
        c.add(una, max, (1000, 2000));
        assert!(!c.is_lost(0, una, mss));
        assert_eq!(c.next_seg(una, una, mss, false), None);
        assert_eq!(c.next_seg(una, una, mss, true), Some((0, 1000)));
        // The rescue: the tail of the flight, below SACKed data at the
        // very end.
        let mut d = Scoreboard::default();
        d.add(una, max, (9000, 10_000));
        assert_eq!(d.rescue_seg(una, max, mss), Some((8000, 1000)));
        assert_eq!(c.rescue_seg(una, max, mss), Some((9000, 1000)));
    }
}
