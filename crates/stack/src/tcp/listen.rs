//! Listeners (RFC 9293 section 3.10.7.2): a SYN to a listening socket makes
//! an embryonic connection in SYN-RECEIVED (the SYN queue); when the
//! handshake completes the connection moves to the accept queue. Both
//! queues are bounded by the backlog.

use std::collections::VecDeque;

use crate::socket::SocketId;

/// The largest backlog listen(2) accepts (Linux net.core.somaxconn).
pub const SOMAXCONN: u32 = 4096;

#[derive(Debug, Default)]
pub struct Listener {
    pub backlog: u32,
    /// Connections still in SYN-RECEIVED.
    pub syn_queue: usize,
    /// Established connections waiting for accept(2).
    pub accept_queue: VecDeque<SocketId>,
}

impl Listener {
    pub fn new(backlog: u32) -> Listener {
        Listener {
            backlog: backlog.clamp(1, SOMAXCONN),
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
