//! Copies between a ring in shared memory and the caller's own buffers.
//!
//! No Rust reference into a ring is ever made: the other process may
//! write there at any time (a well-behaved one only outside the range
//! being copied, a hostile one anywhere), so bytes move by raw-pointer
//! copies only, and what a hostile writer changes mid-copy is its own
//! data's problem, never a hazard for the copying side.

use crate::layout::RING_SIZE;

/// A ring's data area: `RING_SIZE` bytes at `base`.
#[derive(Clone, Copy)]
pub(crate) struct RingData {
    pub base: *mut u8,
}

impl RingData {
    /// Copies `src` into the ring starting at running position `at`,
    /// wrapping at the end. `src.len()` must not exceed `RING_SIZE`.
    pub fn put(self, at: u64, src: &[u8]) {
        let off = (at % RING_SIZE as u64) as usize;
        let first = src.len().min(RING_SIZE - off);
        let (a, b) = src.split_at(first);
        // SAFETY: `base` points to RING_SIZE bytes of a live mapping;
        // `off + a.len() <= RING_SIZE` and `b.len() <= off`; the source is
        // the caller's own memory, which cannot overlap the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(a.as_ptr(), self.base.add(off), a.len());
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.base, b.len().min(off));
        }
    }

    /// Copies from the ring starting at running position `at` into `dst`,
    /// wrapping at the end. `dst.len()` must not exceed `RING_SIZE`.
    pub fn get(self, at: u64, dst: &mut [u8]) {
        let off = (at % RING_SIZE as u64) as usize;
        let first = dst.len().min(RING_SIZE - off);
        let (a, b) = dst.split_at_mut(first);
        // SAFETY: as in `put`, the other way.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off), a.as_mut_ptr(), a.len());
            std::ptr::copy_nonoverlapping(self.base, b.as_mut_ptr(), b.len().min(off));
        }
    }
}

/// Copies up to `room` bytes of `srcs`, one after another, into the ring
/// from running position `at`. Returns the bytes copied.
pub(crate) fn put_all(ring: RingData, at: u64, srcs: &[&[u8]], room: usize) -> usize {
    let mut done = 0usize;
    for s in srcs {
        let n = s.len().min(room - done);
        ring.put(at + done as u64, s.get(..n).unwrap_or_default());
        done += n;
        if done == room {
            break;
        }
    }
    done
}

/// Copies up to `avail` bytes from the ring, from running position `at`,
/// into `dsts` one after another. Returns the bytes copied.
pub(crate) fn get_all(ring: RingData, at: u64, dsts: &mut [&mut [u8]], avail: usize) -> usize {
    let mut done = 0usize;
    for d in dsts.iter_mut() {
        let n = d.len().min(avail - done);
        ring.get(at + done as u64, d.get_mut(..n).unwrap_or_default());
        done += n;
        if done == avail {
            break;
        }
    }
    done
}
