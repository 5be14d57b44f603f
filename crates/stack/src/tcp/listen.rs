//! Listeners (RFC 9293 section 3.10.7.2): a SYN to a listening socket makes
//! an embryonic connection in SYN-RECEIVED (the SYN queue); when the
//! handshake completes the connection moves to the accept queue. Both
//! queues are bounded by the backlog.

use std::collections::VecDeque;

use crate::socket::SocketId;

/// The largest backlog listen(2) accepts by default (Linux
/// net.core.somaxconn); `kern.ipc.somaxconn` and io-pkt's
/// `-p tcpip somaxconn=N` change it.
pub const SOMAXCONN: u32 = 4096;
/// The most `somaxconn` may be set to.
pub const MAX_SOMAXCONN: u32 = 65_535;

#[derive(Debug, Default)]
pub struct Listener {
    pub backlog: u32,
    /// Connections still in SYN-RECEIVED.
    pub syn_queue: usize,
    /// Established connections waiting for accept(2).
    pub accept_queue: VecDeque<SocketId>,
}

impl Listener {
    /// A listener whose queues hold `backlog` connections each, cut to
    /// `somaxconn` (the stack's cap at the time of listen(2)).
    pub fn new(backlog: u32, somaxconn: u32) -> Listener {
        Listener {
            backlog: backlog.clamp(1, somaxconn.clamp(1, MAX_SOMAXCONN)),
            ..Listener::default()
        }
    }

    /// May another SYN start a connection? Linux refuses when the accept
    /// queue is full, and bounds the SYN queue by the backlog too.
    pub fn has_room(&self) -> bool {
        let b = self.backlog as usize;
        self.syn_queue < b && self.accept_queue.len() < b
    }
}
