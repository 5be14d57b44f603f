//! The library's side of a slot: it produces the application → stack ring
//! and consumes the stack → application ring, each under its lock.
//!
//! Every operation first checks the slot's generation: a descriptor whose
//! socket io-pkt closed (after a reset, say) may outlive it, and its slot
//! may serve a new socket by then; such a descriptor is [`Gone`].
//!
//! Readability. The pair toward the application holds a wake-up byte
//! exactly while the stack → application ring holds bytes or has ended
//! (io-pkt writes it when it finds `rx_signalled` clear; see
//! [`crate::stack::StackEnd::rx_signal`]). When a read empties the ring,
//! [`Rx::settle`] says how to keep that true: read the byte out of the
//! pair, or (when the reader already consumed it while waiting) ask
//! io-pkt to write a fresh one. A race can leave one byte too many, which
//! costs one spurious wake-up (whose read finds the ring empty and takes
//! the byte); never one too few.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use crate::arena::SlotPtr;
use crate::copy::{get_all, put_all};
use crate::layout::RING_SIZE;
use crate::lock::{Held, lock};

/// The slot serves another socket now: the descriptor's socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// The library's handle on one socket's slot.
#[derive(Clone, Copy)]
pub struct AppEnd {
    slot: SlotPtr,
    generation: u32,
}

impl AppEnd {
    pub fn new(slot: SlotPtr, generation: u32) -> AppEnd {
        AppEnd { slot, generation }
    }

    fn current(&self) -> Result<(), Gone> {
        if self.slot.header().generation.load(Acquire) == self.generation {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// The sending side, locked.
    pub fn tx(&self) -> Result<Tx<'_>, Gone> {
        let held = lock(&self.slot.header().tx_lock);
        self.current()?;
        Ok(Tx {
            slot: self.slot,
            _held: held,
        })
    }

    /// The receiving side, locked.
    pub fn rx(&self) -> Result<Rx<'_>, Gone> {
        let held = lock(&self.slot.header().rx_lock);
        self.current()?;
        Ok(Rx {
            slot: self.slot,
            _held: held,
        })
    }

    /// Bytes ready to read now (FIONREAD), without the lock.
    pub fn readable_bytes(&self) -> Result<usize, Gone> {
        self.current()?;
        let h = self.slot.header();
        let n = h
            .rx_head
            .load(Acquire)
            .wrapping_sub(h.rx_tail.load(Relaxed));
        Ok((n as usize).min(RING_SIZE))
    }

    /// Whether the ring's full mark still stands (io-pkt clears it when
    /// it empties the pair): a writer filling the pair stops once it is
    /// gone, or it would only feed io-pkt's reads.
    pub fn marked_full(&self) -> bool {
        self.slot.header().tx_full.load(Relaxed) != 0
    }

    /// Bytes written and not yet taken by io-pkt (SIOCOUTQ's share).
    pub fn unsent_bytes(&self) -> Result<usize, Gone> {
        self.current()?;
        let h = self.slot.header();
        let n = h
            .tx_head
            .load(Relaxed)
            .wrapping_sub(h.tx_tail.load(Acquire));
        Ok((n as usize).min(RING_SIZE))
    }
}

/// The sending side of a slot, locked.
pub struct Tx<'a> {
    slot: SlotPtr,
    _held: Held<'a>,
}

impl Tx<'_> {
    /// The stack takes no more bytes, or the application shut its
    /// sending side: writes go to the pair, which says why they fail
    /// (EPIPE, SIGPIPE).
    pub fn closed(&self) -> bool {
        let h = self.slot.header();
        h.tx_closed.load(Acquire) != 0 || h.tx_shut.load(Relaxed) != 0
    }

    /// The connection is not established yet: the writer waits on the
    /// pair, which io-pkt keeps full until it is.
    pub fn gated(&self) -> bool {
        self.slot.header().tx_gated.load(Acquire) != 0
    }

    /// shutdown(SHUT_WR): later writes fail.
    pub fn shut(&self) {
        self.slot.header().tx_shut.store(1, Release);
    }

    /// Free room in the ring.
    pub fn room(&self) -> usize {
        let h = self.slot.header();
        let used = h
            .tx_head
            .load(Relaxed)
            .wrapping_sub(h.tx_tail.load(Acquire));
        RING_SIZE.saturating_sub(used as usize)
    }

    /// Copies what fits of `srcs` (in order) into the ring. Returns the
    /// bytes copied.
    pub fn put(&mut self, srcs: &[&[u8]]) -> usize {
        let room = self.room();
        let h = self.slot.header();
        let head = h.tx_head.load(Relaxed);
        let n = put_all(self.slot.tx, head, srcs, room);
        h.tx_head.store(head + n as u64, Release);
        n
    }

    /// After bytes were put: true if io-pkt sleeps and must be woken (a
    /// byte written on the pair).
    pub fn wake_needed(&self) -> bool {
        self.slot.header().stack_wants_tx.swap(0, SeqCst) != 0
    }

    /// The ring is full: the caller fills the pair next (so that the
    /// descriptor polls unwritable) and io-pkt empties it once there is
    /// room. Set before filling, so that io-pkt, woken by the filler,
    /// sees why.
    pub fn mark_full(&self) {
        self.slot.header().tx_full.store(1, SeqCst);
    }
}

/// What a reader does after taking bytes, to keep the descriptor's
/// readability true (see the module's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Nothing: the pair's byte is right as it is.
    Done,
    /// The ring is empty: read one wake-up byte out of the pair (not
    /// waiting; one only, as io-pkt may have written a fresh one for
    /// bytes that came meanwhile).
    DrainWakes,
    /// Bytes are left but the reader consumed the pair's byte while
    /// waiting: write a byte on the pair, which wakes io-pkt to put a
    /// fresh one.
    Resignal,
}

/// The receiving side of a slot, locked.
pub struct Rx<'a> {
    slot: SlotPtr,
    _held: Held<'a>,
}

impl Rx<'_> {
    /// Bytes ready to read.
    pub fn avail(&self) -> usize {
        let h = self.slot.header();
        let n = h
            .rx_head
            .load(Acquire)
            .wrapping_sub(h.rx_tail.load(Relaxed));
        (n as usize).min(RING_SIZE)
    }

    /// No byte will come after those in the ring (end of stream, or an
    /// error the caller asks io-pkt for).
    pub fn finished(&self) -> bool {
        self.slot.header().rx_end.load(Acquire) != 0
    }

    /// Copies up to what is ready into `dsts` (in order); unless `peek`,
    /// those bytes leave the ring. Returns the bytes copied.
    pub fn take(&mut self, dsts: &mut [&mut [u8]], peek: bool) -> usize {
        self.take_from(dsts, 0, peek)
    }

    /// As [`Rx::take`], starting `skip` bytes into what is ready (a peek
    /// that continues an earlier one). `skip` is 0 unless `peek`.
    pub fn take_from(&mut self, dsts: &mut [&mut [u8]], skip: usize, peek: bool) -> usize {
        let avail = self.avail().saturating_sub(skip);
        let h = self.slot.header();
        let tail = h.rx_tail.load(Relaxed);
        let n = get_all(self.slot.rx, tail + skip as u64, dsts, avail);
        if !peek {
            h.rx_tail.store(tail + (skip + n) as u64, Release);
        }
        n
    }

    /// After taking bytes: true if io-pkt waits for room (a byte written
    /// on the pair wakes it).
    pub fn room_wake_needed(&self) -> bool {
        self.slot.header().stack_wants_room.swap(0, SeqCst) != 0
    }

    /// What keeps the descriptor's readability true now that the reader
    /// is done; `wake_consumed`: it read the pair's byte while waiting.
    pub fn settle(&self, wake_consumed: bool) -> Settle {
        let h = self.slot.header();
        let ready = || self.avail() > 0 || self.finished();
        if ready() {
            if wake_consumed {
                h.rx_signalled.store(0, SeqCst);
                return Settle::Resignal;
            }
            return Settle::Done;
        }
        // The ring is empty: its byte goes. (If the flag was clear there
        // is no byte to read, bar a race's spare one, which the next
        // drain takes.)
        let had_byte = h.rx_signalled.swap(0, SeqCst) != 0 && !wake_consumed;
        if ready() {
            // Bytes came while clearing. If io-pkt saw the flag clear it
            // writes a fresh byte; if not, the old one must do, or be
            // replaced if there is none.
            if h.rx_signalled.swap(1, SeqCst) == 0 {
                if had_byte {
                    return Settle::Done;
                }
                h.rx_signalled.store(0, SeqCst);
                return Settle::Resignal;
            }
            return Settle::Done;
        }
        if had_byte {
            Settle::DrainWakes
        } else {
            Settle::Done
        }
    }
}
