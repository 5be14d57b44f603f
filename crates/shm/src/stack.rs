//! io-pkt's side of a slot: it consumes the application → stack ring and
//! produces the stack → application ring.
//!
//! io-pkt is one thread per slot, so it takes no lock; but it reads
//! counters the application writes, and checks each one: a counter that
//! claims more bytes than a ring holds, or runs backwards, is [`Corrupt`],
//! and io-pkt then ends that socket.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use crate::arena::SlotPtr;
use crate::copy::{get_all, put_all};
use crate::layout::RING_SIZE;
use crate::lock::try_lock;

/// Room a full ring must have again before its writer is woken: as a
/// kernel TCP socket wakes writers only once a third of its send buffer
/// is free (Linux `sk_stream_write_space`), so that each wake-up is worth
/// a large write, not a few bytes each.
pub const WRITE_SPACE: usize = RING_SIZE / 3;

/// The application broke a ring's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the application broke its shared ring")
    }
}

/// io-pkt's handle on one slot.
#[derive(Clone, Copy)]
pub struct StackEnd {
    slot: SlotPtr,
}

impl StackEnd {
    pub fn new(slot: SlotPtr) -> StackEnd {
        StackEnd { slot }
    }

    /// Readies the slot for a new socket: counters and flags to zero, a
    /// new generation. `None` if a process still holds one of its locks
    /// (a descriptor of the socket that had the slot is in use): the slot
    /// is then not taken this time.
    pub fn reset(&self) -> Option<u32> {
        let h = self.slot.header();
        let _tx = try_lock(&h.tx_lock)?;
        let _rx = try_lock(&h.rx_lock)?;
        let generation = h.generation.load(Relaxed).wrapping_add(1);
        h.generation.store(generation, Release);
        for c in [&h.tx_head, &h.tx_tail, &h.rx_head, &h.rx_tail] {
            c.store(0, Relaxed);
        }
        for f in [
            &h.tx_gated,
            &h.tx_shut,
            &h.rx_end,
            &h.tx_closed,
            &h.rx_signalled,
            &h.stack_wants_room,
            &h.tx_full,
        ] {
            f.store(0, Relaxed);
        }
        // io-pkt starts asleep: the application's first bytes wake it.
        h.stack_wants_tx.store(1, SeqCst);
        Some(generation)
    }

    /// The generation the slot has now.
    pub fn generation(&self) -> u32 {
        self.slot.header().generation.load(Relaxed)
    }

    /// Bytes waiting in the application's ring.
    pub fn tx_pending(&self) -> Result<usize, Corrupt> {
        let h = self.slot.header();
        let head = h.tx_head.load(Acquire);
        let tail = h.tx_tail.load(Relaxed);
        match head.checked_sub(tail) {
            Some(n) if n <= RING_SIZE as u64 => Ok(n as usize),
            _ => Err(Corrupt),
        }
    }

    /// Moves waiting bytes into `dsts` (filled in order) and frees their
    /// room in the ring. Returns the bytes moved.
    pub fn tx_take(&self, dsts: &mut [&mut [u8]]) -> Result<usize, Corrupt> {
        let avail = self.tx_pending()?;
        let h = self.slot.header();
        let tail = h.tx_tail.load(Relaxed);
        let n = get_all(self.slot.tx, tail, dsts, avail);
        h.tx_tail.store(tail + n as u64, Release);
        Ok(n)
    }

    /// Drops every waiting byte (the stack refused the data for good).
    pub fn tx_discard(&self) -> Result<usize, Corrupt> {
        let n = self.tx_pending()?;
        let h = self.slot.header();
        h.tx_tail.store(h.tx_tail.load(Relaxed) + n as u64, Release);
        Ok(n)
    }

    /// io-pkt emptied the ring and will sleep: asks for a wake-up byte
    /// with the next bytes. False if bytes came meanwhile (go on instead).
    pub fn tx_sleep(&self) -> Result<bool, Corrupt> {
        let h = self.slot.header();
        h.stack_wants_tx.store(1, SeqCst);
        if self.tx_pending()? > 0 {
            h.stack_wants_tx.store(0, Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether io-pkt must leave the pair unread: the application filled
    /// it because its ring was full, and the ring has not got room enough
    /// again, so its descriptor must go on polling unwritable.
    pub fn tx_hold_pair(&self) -> Result<bool, Corrupt> {
        let full = self.slot.header().tx_full.load(SeqCst) != 0;
        Ok(full && self.tx_pending()? > RING_SIZE - WRITE_SPACE)
    }

    /// There is room enough in the application's ring again: true if it
    /// had filled the pair, which io-pkt must now empty (its descriptor
    /// then polls writable and blocked writers wake).
    pub fn tx_unfill(&self) -> Result<bool, Corrupt> {
        if self.tx_pending()? > RING_SIZE - WRITE_SPACE {
            return Ok(false);
        }
        Ok(self.slot.header().tx_full.swap(0, SeqCst) != 0)
    }

    /// Free room in the stack → application ring.
    pub fn rx_room(&self) -> Result<usize, Corrupt> {
        let h = self.slot.header();
        let head = h.rx_head.load(Relaxed);
        let tail = h.rx_tail.load(Acquire);
        match head.checked_sub(tail) {
            Some(n) if n <= RING_SIZE as u64 => Ok(RING_SIZE - n as usize),
            _ => Err(Corrupt),
        }
    }

    /// Copies what fits of `srcs` (in order) into the stack →
    /// application ring. Returns the bytes copied.
    pub fn rx_put(&self, srcs: &[&[u8]]) -> Result<usize, Corrupt> {
        let room = self.rx_room()?;
        let h = self.slot.header();
        let head = h.rx_head.load(Relaxed);
        let n = put_all(self.slot.rx, head, srcs, room);
        h.rx_head.store(head + n as u64, Release);
        Ok(n)
    }

    /// After bytes (or the end) were put: true if io-pkt must write the
    /// wake-up byte that makes the descriptor readable.
    pub fn rx_signal(&self) -> bool {
        self.slot.header().rx_signalled.swap(1, SeqCst) == 0
    }

    /// The ring is full and the stack has more: asks for a wake-up byte
    /// once the application made room. False if room appeared meanwhile.
    pub fn rx_sleep(&self) -> Result<bool, Corrupt> {
        let h = self.slot.header();
        h.stack_wants_room.store(1, SeqCst);
        if self.rx_room()? > 0 {
            h.stack_wants_room.store(0, Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    /// No byte follows what is in the stack → application ring.
    pub fn rx_finish(&self) {
        self.slot.header().rx_end.store(1, SeqCst);
    }

    /// Whether writes must wait for the connection (see
    /// `SlotHeader::tx_gated`).
    pub fn tx_gate(&self, shut: bool) {
        self.slot.header().tx_gated.store(u32::from(shut), SeqCst);
    }

    /// The stack takes no more of the application's bytes.
    pub fn tx_close(&self) {
        self.slot.header().tx_closed.store(1, SeqCst);
    }

    /// Bytes the application has not taken yet from the stack → application
    /// ring (0 when its counter is broken).
    pub fn rx_unread(&self) -> usize {
        self.rx_room().map_or(0, |r| RING_SIZE - r)
    }
}
