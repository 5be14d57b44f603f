use std::ptr::NonNull;
use std::sync::Arc;

use crate::pool::PoolInner;

/// The descriptor of one packet buffer, shared with modules through the C ABI
/// (`iopkt_pkt` in `include/iopkt/module.h`).
///
/// `buf[off .. off + len]` is the packet; `buf[.. off]` is headroom and
/// `buf[off + len .. cap]` is tailroom. Modules may change `off` and `len`
/// within `cap`, and read or write the bytes; they must not change `buf`,
/// `cap` or `pool`.
#[repr(C)]
#[derive(Debug)]
pub struct RawPkt {
    /// Start of the storage.
    pub buf: *mut u8,
    /// Size of the storage in bytes.
    pub cap: u32,
    /// Offset of the first byte of the packet (the headroom).
    pub off: u32,
    /// Length of the packet in bytes.
    pub len: u32,
    /// Flags for the driver and the stack (see `IOPKT_PKT_F_*`).
    pub flags: u32,
    /// Free for the current owner's use (drivers keep a queue index here).
    pub user: u64,
    /// Owning pool; opaque to modules.
    pub pool: *const core::ffi::c_void,
}

/// An owned packet buffer. Dropping it returns the storage to its pool.
pub struct PktBuf {
    raw: NonNull<RawPkt>,
}

// SAFETY: a PktBuf is the unique owner of its descriptor and storage; the pool
// it returns to is thread-safe.
unsafe impl Send for PktBuf {}
unsafe impl Sync for PktBuf {}

impl PktBuf {
    /// A buffer outside any pool with `headroom` bytes in front and room for
    /// `data` bytes after it (reassembled datagrams, tests).
    pub fn with_capacity(headroom: usize, data: usize) -> PktBuf {
        Self::alloc(headroom, data, std::ptr::null())
    }

    /// A buffer outside any pool holding a copy of `bytes` after the default
    /// headroom.
    pub fn from_slice(bytes: &[u8]) -> PktBuf {
        let mut p = Self::with_capacity(crate::DEFAULT_HEADROOM, bytes.len());
        p.append(bytes.len()).copy_from_slice(bytes);
        p
    }

    pub(crate) fn alloc(headroom: usize, data: usize, pool: *const PoolInner) -> PktBuf {
        let cap = headroom + data;
        assert!(cap <= u32::MAX as usize, "packet buffer too large");
        let storage: Box<[u8]> = vec![0u8; cap].into_boxed_slice();
        let buf = Box::into_raw(storage) as *mut u8;
        let raw = Box::new(RawPkt {
            buf,
            cap: cap as u32,
            off: headroom as u32,
            len: 0,
            flags: 0,
            user: 0,
            pool: pool as *const core::ffi::c_void,
        });
        if !pool.is_null() {
            // Each live buffer holds one count on its pool.
            // SAFETY: the pool pointer came from Arc::as_ptr of a live pool.
            unsafe { Arc::increment_strong_count(pool) };
        }
        PktBuf {
            raw: NonNull::from(Box::leak(raw)),
        }
    }

    fn raw(&self) -> &RawPkt {
        // SAFETY: we own the descriptor.
        unsafe { self.raw.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut RawPkt {
        // SAFETY: we own the descriptor.
        unsafe { self.raw.as_mut() }
    }

    /// Checks the invariants a module could have broken, clamping to a safe
    /// state: `off + len <= cap`.
    fn sanitize(&mut self) {
        let r = self.raw_mut();
        if r.off > r.cap {
            r.off = r.cap;
        }
        if r.len > r.cap - r.off {
            r.len = r.cap - r.off;
        }
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        let r = self.raw();
        // SAFETY: off + len <= cap is kept by every method and by sanitize().
        unsafe { std::slice::from_raw_parts(r.buf.add(r.off as usize), r.len as usize) }
    }

    /// The packet bytes, writable (forwarding and NAT edit headers in place).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let r = self.raw();
        // SAFETY: as in data(); we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(r.buf.add(r.off as usize), r.len as usize) }
    }

    pub fn len(&self) -> usize {
        self.raw().len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes free in front of the packet.
    pub fn headroom(&self) -> usize {
        self.raw().off as usize
    }

    /// Bytes free after the packet.
    pub fn tailroom(&self) -> usize {
        let r = self.raw();
        (r.cap - r.off - r.len) as usize
    }

    pub fn flags(&self) -> u32 {
        self.raw().flags
    }

    pub fn set_flags(&mut self, flags: u32) {
        self.raw_mut().flags = flags;
    }

    /// Grows the packet at the front by `n` bytes taken from the headroom and
    /// returns them for the caller to fill with a header. `None` when the
    /// headroom is too small (the caller then copies into a larger buffer).
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        let r = self.raw_mut();
        r.off -= n as u32;
        r.len += n as u32;
        let buf = r.buf;
        let off = r.off as usize;
        // SAFETY: the new range lies inside the storage.
        Some(unsafe { std::slice::from_raw_parts_mut(buf.add(off), n) })
    }

    /// Removes `n` bytes from the front (a parsed header); they become
    /// headroom. Panics if `n > len()`: callers check lengths while parsing.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len(), "advance past end of packet");
        let r = self.raw_mut();
        r.off += n as u32;
        r.len -= n as u32;
    }

    /// Shortens the packet to `len` bytes (Ethernet padding, IP total length).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.raw_mut().len = len as u32;
        }
    }

    /// Grows the packet at the end by `n` bytes of tailroom and returns them.
    /// Panics if there is not enough tailroom; see [`PktBuf::try_append`].
    pub fn append(&mut self, n: usize) -> &mut [u8] {
        self.try_append(n).expect("append past end of buffer")
    }

    /// Grows the packet at the end by `n` bytes, or `None` if they do not fit.
    pub fn try_append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let r = self.raw_mut();
        let start = (r.off + r.len) as usize;
        r.len += n as u32;
        let buf = r.buf;
        // SAFETY: the new range lies inside the storage.
        Some(unsafe { std::slice::from_raw_parts_mut(buf.add(start), n) })
    }

    /// Resets the buffer to empty with `headroom` bytes in front.
    pub fn reset(&mut self, headroom: usize) {
        let r = self.raw_mut();
        r.off = (headroom as u32).min(r.cap);
        r.len = 0;
        r.flags = 0;
        r.user = 0;
    }

    /// Total storage size.
    pub fn capacity(&self) -> usize {
        self.raw().cap as usize
    }

    /// Gives up ownership to a module through the C ABI.
    pub fn into_raw(self) -> *mut RawPkt {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes back ownership of a buffer handed out with [`PktBuf::into_raw`]
    /// (or allocated for a module by the host).
    ///
    /// # Safety
    /// `raw` must come from `into_raw` and not have been taken back before.
    pub unsafe fn from_raw(raw: *mut RawPkt) -> PktBuf {
        let mut p = PktBuf {
            // SAFETY: caller guarantees a valid, uniquely owned descriptor.
            raw: unsafe { NonNull::new_unchecked(raw) },
        };
        p.sanitize();
        p
    }

    pub(crate) fn pool_ptr(&self) -> *const PoolInner {
        self.raw().pool as *const PoolInner
    }

    /// Copies this packet into a new buffer from the same pool (or outside any
    /// pool if it fits none): used only where a frame really goes two ways
    /// (loopback of a broadcast, duplication in an impairment).
    pub fn duplicate(&self) -> PktBuf {
        let pool = self.pool_ptr();
        let mut p = if !pool.is_null() {
            // SAFETY: a live buffer holds a count on its pool, so it is alive.
            let inner = unsafe { &*pool };
            inner.get_or_alloc(pool)
        } else {
            PktBuf::with_capacity(self.headroom(), self.len() + self.tailroom())
        };
        if p.capacity() < self.headroom() + self.len() {
            p = PktBuf::with_capacity(self.headroom(), self.len());
        }
        p.reset(self.headroom());
        p.append(self.len()).copy_from_slice(self.data());
        p.set_flags(self.flags());
        p
    }
}

impl Drop for PktBuf {
    fn drop(&mut self) {
        let pool = self.pool_ptr();
        if !pool.is_null() {
            // SAFETY: a live buffer holds a count on its pool.
            let inner = unsafe { &*pool };
            let raw = self.raw;
            // The pool takes the descriptor back (or frees it when full); then
            // we drop our count on the pool.
            inner.put(raw);
            // SAFETY: matches the increment in alloc().
            unsafe { Arc::decrement_strong_count(pool) };
        } else {
            free_raw(self.raw);
        }
    }
}

/// Frees a descriptor and its storage.
pub(crate) fn free_raw(raw: NonNull<RawPkt>) {
    // SAFETY: the descriptor was made by Box::new in alloc() and its storage
    // by Box<[u8]> of length cap; we are its last owner.
    unsafe {
        let r = Box::from_raw(raw.as_ptr());
        let slice = std::ptr::slice_from_raw_parts_mut(r.buf, r.cap as usize);
        drop(Box::from_raw(slice));
    }
}

impl std::fmt::Debug for PktBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PktBuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_advance_move_the_start_in_place() {
        let mut p = PktBuf::with_capacity(32, 64);
        p.append(4).copy_from_slice(b"data");
        let before = p.data().as_ptr();
        p.prepend(2).unwrap().copy_from_slice(b"hd");
        assert_eq!(p.data(), b"hddata");
        assert_eq!(p.data().as_ptr(), before.wrapping_sub(2));
        p.advance(2);
        assert_eq!(p.data(), b"data");
        assert_eq!(p.headroom(), 32);
        assert!(p.prepend(33).is_none());
        assert!(p.try_append(61).is_none());
    }

    #[test]
    fn raw_round_trip_clamps_a_broken_descriptor() {
        let p = PktBuf::from_slice(b"abc");
        let raw = p.into_raw();
        unsafe { (*raw).len = 1 << 30 };
        let p = unsafe { PktBuf::from_raw(raw) };
        assert!(p.headroom() + p.len() <= p.capacity());
    }
}
