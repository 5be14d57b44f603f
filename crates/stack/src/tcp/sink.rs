//! A receive sink: where a connection's in-order bytes may go the moment
//! they arrive, instead of waiting in its receive buffer for a read.
//!
//! The resource manager gives a socket whose application reads from a
//! shared ring a sink that copies into that ring: the bytes then move once
//! inside io-pkt (segment to ring) instead of twice (segment to receive
//! buffer, buffer to ring). The receive buffer still holds what the sink
//! does not take (its ring full) and everything out of order, so the
//! window (RFC 9293 section 3.8.6) is offered as before and shrinks once
//! the ring is full; bytes go to the sink only while the buffer is empty,
//! so their order is kept.

/// Takes in-order bytes as they arrive.
pub trait RecvSink: Send {
    /// Takes what it can of `data`, the bytes that follow those it (or a
    /// read) took last; returns how many it took.
    fn take(&mut self, data: &[u8]) -> usize;
}

/// A connection's sink, if it has one.
#[derive(Default)]
pub struct Sink(pub Option<Box<dyn RecvSink>>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sink(set)"
        } else {
            "Sink(none)"
        })
    }
}
