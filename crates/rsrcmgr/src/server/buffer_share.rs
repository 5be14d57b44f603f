//! The per-client limit on bytes io-pkt itself holds for application
//! sockets: stream bytes read from a pair that the stack has not taken
//! yet, stream bytes from the stack that the application's end had no
//! room for, and datagrams waiting either way. (The stack's own socket
//! buffers are bounded per socket by the stack; the pairs' by the
//! kernel.)
//!
//! Each socket's holdings count against the control connection that
//! created it. A socket may hold up to one chunk per direction while its
//! client is under the limit; beyond it, a stream socket goes on in small
//! steps of [`FLOOR`] bytes (so one client's stalled sockets cannot stop
//! its others), and a datagram that would have to wait is dropped, as the
//! kernel drops datagrams when buffers are full. A client's total is thus
//! at most the limit plus `2 * FLOOR` per stream socket.

use std::sync::atomic::Ordering;

use mio::Token;

use super::{Loop, StackHost};

/// Bytes io-pkt holds for one client's sockets, by default.
pub const BUFFER_LIMIT_PER_CLIENT: usize = 16 << 20;
/// What a stream socket may always hold per direction.
pub(crate) const FLOOR: usize = 1024;

impl<H: StackHost> Loop<H> {
    fn share_limit(&self) -> usize {
        self.shared.buffer_limit.load(Ordering::Relaxed)
    }

    /// Bytes one direction of a socket of `creator`, which holds
    /// `mine` bytes now, may hold: at most `chunk`, at least [`FLOOR`].
    pub(crate) fn stream_share(&self, creator: Token, mine: usize, chunk: usize) -> usize {
        let total = self.app_held.get(&creator).copied().unwrap_or(0);
        let others = total.saturating_sub(mine);
        (self.share_limit().saturating_sub(others) / 2).clamp(FLOOR.min(chunk), chunk)
    }

    /// Whether a socket of `creator` holding `mine` bytes may hold `more`.
    pub(crate) fn may_hold(&self, creator: Token, mine: usize, more: usize) -> bool {
        let total = self.app_held.get(&creator).copied().unwrap_or(0);
        total.saturating_sub(mine).saturating_add(more) <= self.share_limit()
    }

    /// Records that a socket of `creator` now holds `new` bytes instead of
    /// `old`.
    pub(crate) fn account_held(&mut self, creator: Token, old: usize, new: usize) {
        if old == new {
            return;
        }
        let t = self.app_held.entry(creator).or_default();
        *t = t.saturating_sub(old).saturating_add(new);
        if *t == 0 {
            self.app_held.remove(&creator);
        }
    }

    /// Totals for `Stats`: all clients, and the largest client's.
    pub(crate) fn held_totals(&self) -> (u64, u64) {
        let all = self.app_held.values().map(|&v| v as u64).sum();
        let max = self.app_held.values().copied().max().unwrap_or(0) as u64;
        (all, max)
    }
}
