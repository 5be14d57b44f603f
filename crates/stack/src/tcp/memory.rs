//! The stack-wide bound on bytes held by TCP buffers, in the spirit of
//! Linux's tcp_mem.
//!
//! Every connection's held bytes (readable and out-of-order received data,
//! queued and unacknowledged sent data) count towards one total, kept up to
//! date after each operation that changes a buffer. With
//! `net.inet.tcp.mem_max` as M:
//!
//! - from 3/4 M on, the stack is under pressure (until the total falls
//!   below M/2): buffers stop growing, and the window a connection offers
//!   beyond what it holds is cut to its fair share, M divided among the
//!   connections holding data. The right edge of a window already offered
//!   stays where it is (RFC 9293 section 3.8.6): the window closes as data
//!   arrives instead of being taken back.
//! - at M, new data is taken only while there is room left under M, or
//!   into a connection holding less than one segment (so every connection
//!   can still make progress, as Linux guarantees tcp_rmem[0]). Received
//!   data beyond that is dropped unacknowledged — the sender retransmits
//!   it — and send(2) takes nothing more (the socket is not writable); a
//!   sender refused this way is woken when the total falls below M.
//!
//! So the total stays below M plus one segment per connection.

use std::collections::BTreeSet;

use super::tcb::Tcb;
use crate::ctx::Ctx;
use crate::socket::SocketId;
use crate::stack::Stack;

/// Bytes any connection may hold whatever the total (Linux tcp_rmem[0]
/// and tcp_wmem[0]); at least one segment is always allowed.
pub const MEM_MIN_PER_CONN: usize = 4096;

/// The stack-wide total and pressure state.
#[derive(Debug, Default)]
pub struct TcpMemory {
    /// Bytes held by all connections' buffers.
    pub used: usize,
    /// The most `used` has been.
    pub peak: usize,
    /// Connections holding any bytes.
    pub holders: usize,
    /// Under pressure: buffers do not grow, windows are cut to a share.
    pub pressure: bool,
    /// Sockets a send was refused for at the limit, to wake when memory
    /// is free again.
    pub(crate) blocked: BTreeSet<SocketId>,
}

impl TcpMemory {
    /// Connection charge changes from `old` to `new` bytes.
    fn apply(&mut self, old: usize, new: usize) {
        self.used = self.used.saturating_sub(old).saturating_add(new);
        self.peak = self.peak.max(self.used);
        match (old == 0, new == 0) {
            (true, false) => self.holders += 1,
            (false, true) => self.holders = self.holders.saturating_sub(1),
            _ => {}
        }
    }
}

/// Bytes of buffer connection `t` holds.
fn held(t: &Tcb) -> usize {
    t.rcvbuf.held() + t.sndbuf.len()
}

impl Stack {
    fn tcp_mem_max(&self) -> usize {
        self.config.tcp_mem_max.min(usize::MAX as u64) as usize
    }

    /// A connection's fair share of the total.
    fn tcp_mem_share(&self, t: &Tcb) -> usize {
        let holders = self.tcp.mem.holders + usize::from(t.tune.mem_charged == 0);
        self.tcp_mem_max() / holders.max(1)
    }

    /// What a connection may hold whatever the total.
    fn tcp_mem_floor(t: &Tcb) -> usize {
        MEM_MIN_PER_CONN.max(t.mss as usize)
    }

    /// Re-counts connection `id`'s buffers into the total, after a
    /// buffer changed; enters or leaves pressure, and wakes senders that
    /// were refused if there is room again.
    pub(crate) fn tcp_mem_recharge(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        if let Some(t) = self.tcp.conns.get_mut(&id) {
            let now = held(t);
            let old = std::mem::replace(&mut t.tune.mem_charged, now);
            self.tcp.mem.apply(old, now);
        }
        self.tcp_mem_update(ctx);
    }

    /// A connection leaves the table: its buffers no longer count.
    pub(crate) fn tcp_mem_release(&mut self, id: SocketId, t: &Tcb) {
        self.tcp.mem.apply(t.tune.mem_charged, 0);
        self.tcp.mem.blocked.remove(&id);
    }

    fn tcp_mem_update(&mut self, ctx: &mut impl Ctx) {
        let max = self.tcp_mem_max();
        let m = &mut self.tcp.mem;
        if !m.pressure && m.used >= max / 4 * 3 {
            m.pressure = true;
            self.tcp.stats.mem_pressures += 1;
        } else if m.pressure && m.used < max / 2 {
            m.pressure = false;
        }
        if m.used < max && !m.blocked.is_empty() {
            for id in std::mem::take(&mut m.blocked) {
                ctx.socket_ready(id);
            }
        }
    }

    /// Bytes past RCV.NXT that may be queued on connection `t` now, and
    /// what its window promised (or its buffer's room, if larger): the
    /// first is the second cut at the stack-wide limit.
    pub(crate) fn tcp_mem_rcv_room(&self, t: &Tcb) -> (usize, usize) {
        let promised = t.rcvbuf.space().max(t.rcv_wnd() as usize);
        (self.tcp_mem_room(t, promised, t.rcvbuf.held()), promised)
    }

    /// Bytes send(2) may queue on connection `t` now.
    pub(crate) fn tcp_mem_snd_room(&self, t: &Tcb) -> usize {
        self.tcp_mem_room(t, t.sndbuf.space(), t.sndbuf.len())
    }

    fn tcp_mem_room(&self, t: &Tcb, want: usize, mine: usize) -> usize {
        let free = self.tcp_mem_max().saturating_sub(self.tcp.mem.used);
        if free >= want {
            return want;
        }
        let floor = Self::tcp_mem_floor(t).saturating_sub(mine);
        want.min(free.max(floor))
    }

    /// The most connection `t` may offer beyond what it holds: its share
    /// under pressure, no limit otherwise.
    pub(crate) fn tcp_mem_wnd_clamp(&self, t: &Tcb) -> usize {
        if !self.tcp.mem.pressure {
            return usize::MAX;
        }
        let share = self.tcp_mem_share(t).max(Self::tcp_mem_floor(t));
        share.saturating_sub(held(t))
    }

    /// Bytes all TCP buffers hold now, and the most they have held.
    pub fn tcp_mem_used(&self) -> (usize, usize) {
        (self.tcp.mem.used, self.tcp.mem.peak)
    }

    /// The bytes every connection's buffers hold, counted afresh (for
    /// tests: between socket calls and packets it must equal
    /// [`Stack::tcp_mem_used`]'s first value).
    pub fn tcp_mem_recount(&self) -> usize {
        self.tcp.conns.values().map(held).sum()
    }
}
