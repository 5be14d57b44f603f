//! The per-client limit on bytes io-pkt itself holds for application
//! sockets: datagrams waiting for room either way. Stream bytes are never
//! held here: they are read from a pair straight into the stack's send
//! buffer and written into a pair straight from its receive buffer, only
//! as far as the other side has room. (The stack's own socket buffers are
//! bounded per socket by the stack; the pairs' by the kernel.)
//!
//! Each socket's holdings count against the control connection that
//! created it. A datagram that would have to wait beyond the client's
//! share is dropped, as the kernel drops datagrams when buffers are full,
//! so a client's total stays within the limit.

use std::sync::atomic::Ordering;

use mio::Token;

use super::{Loop, StackHost};

/// Bytes io-pkt holds for one client's sockets, by default.
pub const BUFFER_LIMIT_PER_CLIENT: usize = 16 << 20;
impl<H: StackHost> Loop<H> {
    fn share_limit(&self) -> usize {
        self.shared.buffer_limit.load(Ordering::Relaxed)
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
