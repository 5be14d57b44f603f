//! Packet buffers.
//!
//! A frame lives in one [`PktBuf`] from the driver that received it to the
//! socket that consumes it (ARCHITECTURE.md, principle 2). Each buffer has
//! *headroom* in front of the data so that every layer on the way out can
//! prepend its header in place, and parsing on the way in only moves the start
//! of the data forward.
//!
//! The layout of a buffer's descriptor, [`RawPkt`], is `#[repr(C)]` and is the
//! packet type of the module ABI: a driver written in C receives into the same
//! buffer the stack later parses, with no copy.

mod batch;
mod buf;
pub mod offload;
mod pool;

pub use batch::{Batch, MAX_BATCH};
pub use buf::{PktBuf, RawPkt};
pub use pool::{Pool, PoolStats};

/// Bytes reserved in front of received data in a pooled buffer: room for the
/// largest header stack we prepend (Ethernet 14 + VLAN 4 + IPv6 40 + extension
/// headers + ESP) with some to spare.
pub const DEFAULT_HEADROOM: usize = 192;

/// Data bytes a pooled buffer holds after its headroom: one jumbo-ish frame of
/// up to 9216 bytes would need more, so pooled buffers cover standard MTUs and
/// larger packets come from the large class ([`LARGE_DATA_SIZE`]) or get a
/// buffer of their own ([`PktBuf::with_capacity`]).
pub const DEFAULT_DATA_SIZE: usize = 2048;

/// Data bytes of the standard pool's large buffers: any frame of the
/// largest MTU (65 535) with its Ethernet header, as lo0 carries them.
/// Like BSD's jumbo mbuf clusters next to the 2 KiB ones: frames this big
/// come in streams (a bulk transfer over lo0), and allocating and zeroing
/// 33 KiB per frame cost as much as copying the payload once more.
pub const LARGE_DATA_SIZE: usize = 65_536 + 64;

/// Large buffers the standard pool keeps idle at most (4 MiB).
pub const LARGE_MAX_FREE: usize = 64;
