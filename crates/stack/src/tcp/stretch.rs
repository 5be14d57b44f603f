//! One ACK per receive batch ("stretch ACKs").
//!
//! Frames reach the stack in batches: a driver hands over what it read in
//! one go, the simulator what is due at one instant. While a batch is
//! processed, the ACK that every second full-sized segment would trigger
//! (RFC 5681 section 4.2, RFC 9293 section 3.8.6.3) is held back, and one
//! ACK per connection goes out when the batch is done, covering all of
//! it. The ACK still leaves at once, without waiting for any timer, and
//! at least every second segment is acknowledged in the sense that
//! matters: no acknowledgment waits for later data. RFC 5681 section 4.2
//! says an ACK SHOULD be generated for at least every second full-sized
//! segment (a SHOULD, not a MUST), and RFC 2525 section 2.13 names the
//! trade-off: fewer ACKs save the receiver and the path work, but a
//! sender that grows its window per ACK grows more slowly, and ACK-clocked
//! sending becomes burstier. Our senders count bytes in slow start
//! (`super::cc::slow_start`), as Linux does, whose receivers send the same
//! stretch ACKs for GRO/LRO-merged segments. ACKs that must go out at once
//! still do: for out-of-order data and for filling a hole (RFC 5681
//! section 4.2), for a FIN, a duplicate (with its DSACK) or a window
//! update; those set `ack_now` and are sent while the segment is handled.

use crate::ctx::Ctx;
use crate::socket::SocketId;
use crate::stack::Stack;

/// Connections whose ACK one batch may hold back at most; past it they
/// are acknowledged as segments arrive.
pub const MAX_HELD: usize = 256;

/// The ACKs held back during the batch being processed.
#[derive(Debug, Default)]
pub struct StretchAcks {
    in_batch: bool,
    held: Vec<SocketId>,
}

impl StretchAcks {
    /// May connection `id`'s ACK wait for the end of the batch? If so it
    /// is noted.
    pub fn hold(&mut self, id: SocketId) -> bool {
        if !self.in_batch {
            return false;
        }
        if self.held.contains(&id) {
            return true;
        }
        if self.held.len() >= MAX_HELD {
            return false;
        }
        self.held.push(id);
        true
    }
}

impl Stack {
    /// A batch of frames begins.
    pub(crate) fn tcp_batch_begin(&mut self) {
        self.tcp.stretch.in_batch = true;
    }

    /// The batch is done: one ACK for each connection that held one back,
    /// unless a segment it sent meanwhile carried it.
    pub(crate) fn tcp_batch_end(&mut self, ctx: &mut impl Ctx) {
        self.tcp.stretch.in_batch = false;
        let mut held = std::mem::take(&mut self.tcp.stretch.held);
        for id in held.drain(..) {
            if self.tcp.conns.get(&id).is_some_and(|t| t.unacked_segs > 0) {
                self.tcp_send_ack(ctx, id);
                self.tcp_rearm(id);
            }
        }
        self.tcp.stretch.held = held;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_batch_holds_acks_and_only_so_many() {
        let mut s = StretchAcks::default();
        assert!(!s.hold(SocketId(1)));
        s.in_batch = true;
        assert!(s.hold(SocketId(1)));
        assert!(s.hold(SocketId(1)));
        assert_eq!(s.held.len(), 1);
        for i in 2..=MAX_HELD as u32 {
            assert!(s.hold(SocketId(i)));
        }
        assert!(!s.hold(SocketId(100_000)));
    }
}
