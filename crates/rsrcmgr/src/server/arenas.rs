//! The shared arenas of TCP sockets' rings (docs/protocol.md, "Shared
//! rings"): one per client connection that asks for rings, made when it
//! first does, kept while the connection or any socket with a slot in it
//! lives (a forked child may use its parent's sockets long after the
//! parent's connection closed).
//!
//! Slots are handed out again once their socket closed: at once when
//! every descriptor of the socket is closed (the last few freed first,
//! their pages kept warm for the next connection; beyond those, rings are
//! punched out of the arena, so the memory goes back), only after the
//! application read
//! what was left in the stack → application ring when the socket closed
//! while the application still held it (the connection ended by a reset,
//! say, whose last bytes it may still read). A slot whose lock some
//! process holds is skipped that time.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

use foldhash::HashMap;
use iopkt_shm::stack::StackEnd;
use iopkt_shm::{Arena, SLOTS_PER_ARENA};
use mio::Token;

use crate::proto::RingRef;

/// Lingering slots looked at per allocation at most.
const LINGER_SCAN: usize = 8;
/// Free slots kept with their pages (reused first); those beyond are
/// trimmed as they come back.
const KEEP_WARM: usize = 32;

struct ClientArena {
    arena: Arena,
    memfd: OwnedFd,
    /// The connection that made it; `None` once it closed.
    owner: Option<Token>,
    /// Slots free for a new socket.
    free: VecDeque<u32>,
    /// Slots whose socket closed while its application may still read.
    lingering: VecDeque<u32>,
    /// Slots never used yet start here.
    fresh: u32,
    in_use: usize,
}

/// A socket's slot, as io-pkt holds it.
pub(crate) struct RingSlot {
    pub end: StackEnd,
    pub ring: RingRef,
}

#[derive(Default)]
pub(crate) struct Arenas {
    by_id: HashMap<u64, ClientArena>,
    by_owner: HashMap<Token, u64>,
}

impl Arenas {
    /// A slot for a new socket of connection `owner`; `None` if none can
    /// be had (the socket then runs without rings).
    pub fn take(&mut self, owner: Token) -> Option<RingSlot> {
        let id = match self.by_owner.get(&owner) {
            Some(&id) => id,
            None => {
                let (arena, memfd) = match Arena::create() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("resource manager: no shared arena: {e}");
                        return None;
                    }
                };
                let id = rustix::fs::fstat(&memfd).ok()?.st_ino;
                self.by_id.insert(
                    id,
                    ClientArena {
                        arena,
                        memfd,
                        owner: Some(owner),
                        free: VecDeque::new(),
                        lingering: VecDeque::new(),
                        fresh: 0,
                        in_use: 0,
                    },
                );
                self.by_owner.insert(owner, id);
                id
            }
        };
        let a = self.by_id.get_mut(&id)?;
        let (slot, end, generation) = a.pick()?;
        a.in_use += 1;
        Some(RingSlot {
            end,
            ring: RingRef {
                arena: id,
                slot,
                generation,
            },
        })
    }

    /// A copy of the memfd of the arena holding `ring`.
    pub fn memfd(&self, ring: &RingRef) -> Option<OwnedFd> {
        self.by_id.get(&ring.arena)?.memfd.try_clone().ok()
    }

    /// The socket holding `slot` closed. `app_may_read`: the application
    /// may still hold its descriptor.
    pub fn give_back(&mut self, slot: RingSlot, app_may_read: bool) {
        let RingRef {
            arena: id, slot, ..
        } = slot.ring;
        let Some(a) = self.by_id.get_mut(&id) else {
            return;
        };
        a.in_use = a.in_use.saturating_sub(1);
        if app_may_read {
            a.lingering.push_back(slot);
        } else if a.free.len() < KEEP_WARM {
            // Next in line, its pages still there: a new connection then
            // takes no page faults on either side.
            a.free.push_front(slot);
        } else {
            let _ = a.arena.trim(a.memfd.as_fd(), slot);
            a.free.push_back(slot);
        }
        if a.in_use == 0 && a.owner.is_none() {
            self.by_id.remove(&id);
        }
    }

    /// Connection `owner` closed: its arena goes once no socket uses it.
    pub fn owner_gone(&mut self, owner: Token) {
        let Some(id) = self.by_owner.remove(&owner) else {
            return;
        };
        if let Some(a) = self.by_id.get_mut(&id) {
            a.owner = None;
            if a.in_use == 0 {
                self.by_id.remove(&id);
            }
        }
    }
}

impl ClientArena {
    /// A slot ready for a new socket: (index, handle, generation).
    fn pick(&mut self) -> Option<(u32, StackEnd, u32)> {
        // Lingering slots whose last bytes were read go back first.
        for _ in 0..self.lingering.len().min(LINGER_SCAN) {
            let Some(i) = self.lingering.pop_front() else {
                break;
            };
            let read = self
                .arena
                .slot(i)
                .is_some_and(|s| StackEnd::new(s).rx_unread() == 0);
            if read {
                let _ = self.arena.trim(self.memfd.as_fd(), i);
                self.free.push_back(i);
            } else {
                self.lingering.push_back(i);
            }
        }
        for _ in 0..self.free.len() {
            let i = self.free.pop_front()?;
            let Some(end) = self.arena.slot(i).map(StackEnd::new) else {
                continue;
            };
            match end.reset() {
                Some(generation) => return Some((i, end, generation)),
                // In use by some process this instant: later.
                None => self.free.push_back(i),
            }
        }
        while self.fresh < SLOTS_PER_ARENA {
            let i = self.fresh;
            self.fresh += 1;
            let Some(end) = self.arena.slot(i).map(StackEnd::new) else {
                continue;
            };
            if let Some(generation) = end.reset() {
                return Some((i, end, generation));
            }
        }
        None
    }
}
