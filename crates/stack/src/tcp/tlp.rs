//! Tail loss probes (RFC 8985 section 7).
//!
//! When the last segments of a flight are lost, no later segment is
//! delivered, so neither duplicate ACKs nor RACK can see the loss and only
//! the retransmission timeout is left. A probe timeout of about two round
//! trips (PTO) sends one segment instead: new data if the peer's window
//! allows, else the last segment again. Its acknowledgment (with SACK)
//! lets RACK find and repair the loss in the usual way; if the probe was
//! itself the repair, the ACK beyond it says so (section 7.4) and the
//! window is reduced as for any loss.

use std::time::Duration;

use iopkt_wire::tcp as wire;

use super::seq;
use crate::ctx::Ctx;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::time::Instant;

/// WCDelAckT (section 7.2): the longest a peer may delay its ACK of a
/// lone segment.
pub const WC_DEL_ACK: Duration = Duration::from_millis(200);
/// The PTO without a round-trip estimate (section 7.2).
pub const PTO_NO_RTT: Duration = Duration::from_secs(1);

/// The probe in flight, if any (section 7.1: TLP.end_seq, TLP.is_retrans).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tlp {
    pub end_seq: Option<u32>,
    pub is_retrans: bool,
}

/// The probe timeout (section 7.2): two smoothed round trips, plus the
/// peer's delayed-ACK allowance when only one segment is out (its ACK may
/// be held that long).
pub fn pto(srtt: Option<Duration>, one_segment: bool) -> Duration {
    match srtt {
        Some(s) => {
            let p = s.saturating_mul(2);
            if one_segment { p + WC_DEL_ACK } else { p }
        }
        None => PTO_NO_RTT,
    }
}

impl Stack {
    /// Arms (or disarms) the probe timer of connection `id` (section 7.2):
    /// after new data went out or an ACK advanced SND.UNA, when not in
    /// recovery and no SACKed data is outstanding (then RACK's timer
    /// watches the flight), and only if it would fire before the
    /// retransmission timer.
    pub(crate) fn tcp_tlp_arm(&mut self, id: SocketId, now: Instant) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.timers.probe = None;
        let data_state = t.state.sends_data();
        if !t.rack_active()
            || !data_state
            || t.flight() == 0
            || t.recover.is_some()
            || t.snd_nxt != t.snd_max
            || t.tlp.end_seq.is_some()
            || !t.scoreboard.is_empty()
            || t.retries > 0
        {
            return;
        }
        let at = now + pto(t.rtt.srtt(), t.flight() <= t.mss);
        if t.timers.rexmit.is_some_and(|r| at >= r) {
            return;
        }
        t.timers.probe = Some(at);
    }

    /// The probe timer expired (section 7.3): send new data if the peer's
    /// window takes it, else the last segment again; then the
    /// retransmission timer starts over.
    pub(crate) fn tcp_tlp_fire(&mut self, ctx: &mut impl Ctx, id: SocketId, now: Instant) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.timers.probe = None;
        if !t.rack_active()
            || t.flight() == 0
            || t.recover.is_some()
            || t.snd_nxt != t.snd_max
            || t.tlp.end_seq.is_some()
        {
            return;
        }
        self.tcp.stats.tlp_probes += 1;
        let before = t.snd_max;
        // Marks the probe in flight before anything goes out, so sending
        // does not arm another.
        t.tlp = Tlp {
            end_seq: Some(before),
            is_retrans: false,
        };
        if t.unsent() > 0 && t.snd_wnd > t.flight() {
            // New data, regardless of cwnd (one segment forced out).
            self.tcp_output(ctx, id, true);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        if t.snd_max == before {
            // Nothing new could go: the last segment again.
            let Some((s, e)) = t.rack.last_segment() else {
                t.tlp = Tlp::default();
                return;
            };
            let len = e.wrapping_sub(s);
            let fin = t.fin_sent && e == t.fin_seq.wrapping_add(1);
            let data = len - u32::from(fin && len > 0);
            t.tlp.is_retrans = true;
            if let Some((ts, _)) = t.rtt_timed
                && seq::ge(ts, s)
            {
                t.rtt_timed = None; // Karn
            }
            t.total_retrans += 1;
            self.tcp.stats.retrans_segs += 1;
            let flags = if fin { wire::FIN } else { 0 } | wire::PSH;
            self.tcp_send_seg(ctx, id, s, flags, data as usize);
        }
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        t.tlp.end_seq = Some(t.snd_max);
        t.timers.rexmit = Some(now + t.rtt.rto());
    }

    /// An ACK for connection `id` seen while a probe is out (section
    /// 7.4.2): did the probe repair a loss? `dsack`: the DSACK block of
    /// the ACK; `pure_dup`: a duplicate ACK without SACK blocks.
    pub(crate) fn tcp_tlp_on_ack(
        &mut self,
        id: SocketId,
        ack: u32,
        dsack: Option<(u32, u32)>,
        pure_dup: bool,
    ) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let Some(end) = t.tlp.end_seq else {
            return;
        };
        if !seq::ge(ack, end) {
            return;
        }
        if !t.tlp.is_retrans {
            // A probe of new data was delivered: nothing to learn.
            t.tlp = Tlp::default();
        } else if dsack.is_some_and(|(_, r)| r == end) {
            // The peer had the original: the probe was not needed.
            t.tlp = Tlp::default();
        } else if seq::gt(ack, end) {
            // Delivered beyond the probe with no DSACK for it: only the
            // probe arrived, it repaired a loss. React as to a loss
            // (section 7.4.2), in one step since it is already repaired.
            t.tlp = Tlp::default();
            let (flight, mss) = (t.flight(), t.mss);
            t.cc.on_fast_retransmit(flight, mss);
            t.cc.on_recovery_end(flight, mss);
            self.tcp.stats.tlp_recoveries += 1;
        } else if pure_dup {
            // Both the original and the probe arrived.
            t.tlp = Tlp::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pto_is_two_round_trips_plus_the_delayed_ack_for_one_segment() {
        let s = Some(Duration::from_millis(30));
        assert_eq!(pto(s, false), Duration::from_millis(60));
        assert_eq!(pto(s, true), Duration::from_millis(260));
        assert_eq!(pto(None, false), Duration::from_secs(1));
    }
}
