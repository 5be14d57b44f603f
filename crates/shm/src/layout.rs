//! Where everything sits in an arena. Both sides compute every address
//! from these constants; the arena's first page repeats them so that a
//! library of another build notices a mismatch instead of misreading.
//!
//! ```text
//! offset 0                    arena header (one page)
//! HEADERS_OFFSET              SLOTS_PER_ARENA slot headers, SLOT_HEADER_SIZE each
//! RINGS_OFFSET + i*2*RING     slot i: application → stack ring
//! RINGS_OFFSET + (2i+1)*RING  slot i: stack → application ring
//! ```
//!
//! Rings are page-aligned, so a slot's rings can be given back to the
//! system (a hole punched) when its socket closes, and an idle socket
//! costs only its header's share of a page. Headers are packed, sixteen to
//! a page, for the same reason.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// "iopktshm", little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"iopktshm");
/// Bumped whenever the layout or the meaning of a field changes.
pub const VERSION: u32 = 1;
/// Sockets one arena holds (one client connection's most:
/// `MAX_APP_SOCKETS_PER_CLIENT` in the resource manager).
pub const SLOTS_PER_ARENA: u32 = 4096;
/// Bytes each ring holds. 256 KiB: an application writing 128 KiB at a
/// time (iperf3's default) stays a write ahead of io-pkt.
pub const RING_SIZE: usize = 256 * 1024;
pub const PAGE: usize = 4096;
pub const SLOT_HEADER_SIZE: usize = 256;
pub const HEADERS_OFFSET: usize = PAGE;
pub const RINGS_OFFSET: usize = HEADERS_OFFSET + SLOTS_PER_ARENA as usize * SLOT_HEADER_SIZE;
/// The whole arena: virtual size only; pages exist once touched.
pub const ARENA_SIZE: usize = RINGS_OFFSET + SLOTS_PER_ARENA as usize * 2 * RING_SIZE;

/// The arena's first page.
#[repr(C)]
pub struct ArenaHeader {
    pub magic: u64,
    pub version: u32,
    pub slots: u32,
    pub ring_size: u32,
    pub slot_header_size: u32,
}

/// A slot's counters and flags. Counters are running byte totals (they
/// never wrap in practice: 2^64 bytes), so a ring holds `head - tail`
/// bytes and its free room is `RING_SIZE - (head - tail)`.
///
/// Each cache line has one writer, so the sides do not bounce lines on
/// every message: line 0 the application, line 1 io-pkt; the flags of
/// line 2 are swapped by both.
#[repr(C, align(64))]
pub struct SlotHeader {
    // Line 0: written by the application.
    /// Bytes the application put in its ring (application → stack).
    pub tx_head: AtomicU64,
    /// Bytes the application took from the stack's ring.
    pub rx_tail: AtomicU64,
    /// The application shut its sending side (shutdown(SHUT_WR)): its
    /// writes fail from then on, as the pair says (EPIPE).
    pub tx_shut: AtomicU32,
    _pad0: [u8; 44],
    // Line 1: written by io-pkt.
    /// Bytes io-pkt took from the application's ring.
    pub tx_tail: AtomicU64,
    /// Bytes io-pkt put in the stack → application ring.
    pub rx_head: AtomicU64,
    /// Which socket uses the slot now: bumped each time io-pkt gives the
    /// slot to a new socket, so a descriptor of a closed socket that
    /// still points here finds out (see [`crate::app`]).
    pub generation: AtomicU32,
    /// No byte comes after `rx_head`: end of stream or an error (which
    /// the application asks io-pkt for, as before).
    pub rx_end: AtomicU32,
    /// The stack refused the application's data for good (a reset, a
    /// timeout, the connection closed): writes fail.
    pub tx_closed: AtomicU32,
    /// The connection is not established yet: writes wait (or EAGAIN)
    /// as on a connecting kernel socket; io-pkt keeps the pair full
    /// meanwhile (connect_gate.rs), which is what they wait on.
    pub tx_gated: AtomicU32,
    _pad1: [u8; 32],
    // Line 2: hand-offs, swapped by both.
    /// A wake-up byte is in the pair toward the application: it is
    /// there exactly while the stack → application ring holds bytes or
    /// has ended, so that the descriptor polls readable as a kernel
    /// socket's would.
    pub rx_signalled: AtomicU32,
    /// io-pkt emptied the application's ring and sleeps: the next bytes
    /// put there come with a wake-up byte.
    pub stack_wants_tx: AtomicU32,
    /// io-pkt found the stack → application ring full: the application
    /// writes a wake-up byte once it made room.
    pub stack_wants_room: AtomicU32,
    /// The application found its ring full and filled the pair so that
    /// its descriptor polls unwritable: io-pkt empties the pair once
    /// there is room again, which makes the descriptor writable.
    pub tx_full: AtomicU32,
    _pad2: [u8; 48],
    // Line 3: the application side's locks (see [`crate::lock`]).
    pub tx_lock: AtomicU32,
    pub rx_lock: AtomicU32,
    _pad3: [u8; 56],
}

const _: () = assert!(std::mem::size_of::<SlotHeader>() == SLOT_HEADER_SIZE);
const _: () = assert!(RINGS_OFFSET.is_multiple_of(PAGE));
const _: () = assert!(RING_SIZE.is_multiple_of(PAGE));
const _: () = assert!(std::mem::size_of::<ArenaHeader>() <= PAGE);

/// Offset of slot `i`'s header.
pub const fn header_offset(i: u32) -> usize {
    HEADERS_OFFSET + i as usize * SLOT_HEADER_SIZE
}

/// Offset of slot `i`'s application → stack ring; the other follows it.
pub const fn rings_offset(i: u32) -> usize {
    RINGS_OFFSET + i as usize * 2 * RING_SIZE
}
