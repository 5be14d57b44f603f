//! Busy polling of shared rings: for a short while after a ring socket's
//! last bytes, io-pkt keeps looking at its ring instead of sleeping until
//! the application wakes it.
//!
//! A message between two applications through io-pkt otherwise costs two
//! wake-ups (the writer wakes io-pkt, io-pkt wakes the reader) where the
//! kernel's loopback costs one; while io-pkt polls, the writer's bytes
//! need no wake-up (it finds io-pkt awake, `stack_wants_tx` clear) and no
//! system call. The price is a processor kept busy for up to
//! [`BUSY_POLL`] after the last activity, and only then: an idle io-pkt
//! sleeps as before. As Linux's SO_BUSY_POLL, but on by default, since
//! io-pkt only ever spins on sockets that are in use.

use std::time::{Duration, Instant};

use super::{Loop, StackHost};

/// How long io-pkt keeps polling after the last activity on a ring.
pub const BUSY_POLL: Duration = Duration::from_micros(50);
/// Sockets polled at once at most; others sleep as usual.
const MAX_HOT: usize = 64;

impl<H: StackHost> Loop<H> {
    /// Whether the loop watches rings (and so must not wait): until the
    /// watched sockets are put to sleep, once the time is up.
    pub(crate) fn spinning(&self) -> bool {
        !self.hot.is_empty()
    }

    fn time_left(&self) -> bool {
        self.hot_until.is_some_and(|t| Instant::now() < t)
    }

    /// A ring socket emptied its ring and stays watched rather than
    /// asleep; false if no more can be (it must sleep instead).
    pub(crate) fn keep_hot(&mut self, id: iopkt_stack::socket::SocketId) -> bool {
        if !self.hot.contains(&id) {
            if self.hot.len() >= MAX_HOT {
                return false;
            }
            self.hot.push(id);
        }
        self.hot_until = Some(Instant::now() + BUSY_POLL);
        true
    }

    /// Looks at the watched rings: a socket whose application wrote is
    /// pumped; once the time is up, each goes to sleep (asking for a
    /// wake-up byte, so nothing written from then on is missed).
    pub(crate) fn watch_hot(&mut self) {
        if self.hot.is_empty() {
            return;
        }
        let expired = !self.time_left();
        let hot = std::mem::take(&mut self.hot);
        for id in hot {
            let Some(end) = self.apps.get(&id).and_then(|s| s.ring_end()) else {
                continue;
            };
            if expired {
                match end.tx_sleep() {
                    Ok(true) => {}
                    // Bytes came meanwhile: move them now.
                    _ => self.pump(id),
                }
            } else if end.tx_pending().map_or(true, |n| n > 0) {
                // Emptying the ring again keeps it watched (the pump says
                // so); a full stack takes it off the list, its room then
                // bringing news as without polling.
                self.pump(id);
            } else {
                self.hot.push(id);
            }
        }
        if expired {
            self.hot_until = None;
        }
    }
}
