use std::ptr::NonNull;
use std::sync::Arc;

use crate::offload::{F_CSUM_PARTIAL, F_CSUM_VALID, F_GSO, F_OFFLOAD_MASK};
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
    /// With `F_CSUM_PARTIAL`: where the checksummed bytes start, counted
    /// from the first byte of the packet (`off`). [`PktBuf::prepend`] and
    /// [`PktBuf::advance`] move it with the start of the packet.
    pub csum_start: u16,
    /// With `F_CSUM_PARTIAL`: where the 16-bit checksum field is, counted
    /// from `csum_start` (16 for TCP, 6 for UDP, 2 for ICMP).
    pub csum_offset: u16,
    /// With `F_GSO_TCPV4` / `F_GSO_TCPV6`: the payload bytes of each
    /// segment the packet is to be cut into (the MSS).
    pub gso_size: u16,
    /// Zero; room for a later field without changing the size.
    pub reserved: u16,
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
            csum_start: 0,
            csum_offset: 0,
            gso_size: 0,
            reserved: 0,
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
        if let Some((start, _)) = self.csum_partial() {
            // A header in front moves the checksummed bytes back; where
            // that cannot be described in 16 bits the checksum is
            // completed now rather than lost.
            match u16::try_from(usize::from(start) + n) {
                Ok(v) => self.raw_mut().csum_start = v,
                Err(_) => {
                    self.finish_checksum();
                }
            }
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
        if r.flags & F_CSUM_PARTIAL != 0 {
            match r.csum_start.checked_sub(n as u16).filter(|_| n <= 0xffff) {
                Some(v) => r.csum_start = v,
                None => {
                    // Parsed past the checksummed bytes (a transport layer
                    // consuming its header): nothing can complete the
                    // checksum any more, but the data stays as trusted as
                    // it was.
                    r.flags = (r.flags & !F_CSUM_PARTIAL) | F_CSUM_VALID;
                    r.csum_start = 0;
                    r.csum_offset = 0;
                }
            }
        }
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
        r.csum_start = 0;
        r.csum_offset = 0;
        r.gso_size = 0;
        r.reserved = 0;
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
        p.copy_offload_from(self);
        p
    }

    /// Takes `other`'s flags and offload fields (a copy of its bytes into a
    /// buffer with more headroom keeps what they say).
    pub fn copy_offload_from(&mut self, other: &PktBuf) {
        let o = other.raw();
        let (flags, start, offset, gso) = (o.flags, o.csum_start, o.csum_offset, o.gso_size);
        let r = self.raw_mut();
        r.flags = flags;
        r.csum_start = start;
        r.csum_offset = offset;
        r.gso_size = gso;
    }

    /// Marks the transport checksum partial: the field `offset` bytes after
    /// `start` (counted from the first byte of the packet) holds the folded
    /// pseudo-header sum, and the sum from `start` to the end is still to
    /// be added. Clears `F_CSUM_VALID`.
    pub fn set_csum_partial(&mut self, start: u16, offset: u16) {
        let r = self.raw_mut();
        r.flags = (r.flags & !F_CSUM_VALID) | F_CSUM_PARTIAL;
        r.csum_start = start;
        r.csum_offset = offset;
    }

    /// `(csum_start, csum_offset)` when the checksum is partial.
    pub fn csum_partial(&self) -> Option<(u16, u16)> {
        let r = self.raw();
        (r.flags & F_CSUM_PARTIAL != 0).then_some((r.csum_start, r.csum_offset))
    }

    /// The transport checksum need not be verified: the device verified it
    /// or the packet was made on this host (`F_CSUM_VALID` or
    /// `F_CSUM_PARTIAL`).
    pub fn csum_trusted(&self) -> bool {
        self.raw().flags & (F_CSUM_VALID | F_CSUM_PARTIAL) != 0
    }

    /// The segment size of a GSO packet (`F_GSO_TCPV4` / `F_GSO_TCPV6`).
    pub fn gso_size(&self) -> Option<u16> {
        let r = self.raw();
        (r.flags & F_GSO != 0).then_some(r.gso_size)
    }

    /// Marks the packet one TCP segment to be cut into `mss`-byte payloads
    /// (`flag` is `F_GSO_TCPV4` or `F_GSO_TCPV6`).
    pub fn set_gso(&mut self, flag: u32, mss: u16) {
        let r = self.raw_mut();
        r.flags = (r.flags & !F_GSO) | (flag & F_GSO);
        r.gso_size = mss;
    }

    /// Forgets every offload flag and field (what a driver that declared
    /// no capability may have left in a buffer it passed along).
    pub fn clear_offload(&mut self) {
        let r = self.raw_mut();
        r.flags &= !F_OFFLOAD_MASK;
        r.csum_start = 0;
        r.csum_offset = 0;
        r.gso_size = 0;
    }

    /// Completes a partial transport checksum in software (RFC 1071): adds
    /// the bytes from `csum_start` to the end to the pseudo-header sum in
    /// the field, stores the complement, and clears `F_CSUM_PARTIAL`. A
    /// computed zero is stored as all ones, which means the same in one's
    /// complement and is what UDP needs (RFC 768). False if the offsets do
    /// not lie inside the packet (the flag is cleared all the same; the
    /// checksum is then wrong and the receiver drops the packet). Nothing
    /// to do, and true, when the checksum is not partial.
    pub fn finish_checksum(&mut self) -> bool {
        let Some((start, offset)) = self.csum_partial() else {
            return true;
        };
        self.raw_mut().flags &= !F_CSUM_PARTIAL;
        let start = usize::from(start);
        let field = start + usize::from(offset);
        let d = self.data_mut();
        if field + 2 > d.len() {
            return false;
        }
        let c = match iopkt_wire::checksum::finish(iopkt_wire::checksum::sum(0, &d[start..])) {
            0 => 0xffff,
            c => c,
        };
        d[field..field + 2].copy_from_slice(&c.to_be_bytes());
        true
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
    fn partial_checksum_follows_headers_and_completes() {
        // A "transport header" of 8 bytes with its checksum at offset 6,
        // and a pseudo-header sum of 0x1234 in the field.
        let mut p = PktBuf::with_capacity(64, 64);
        let seg = p.append(20);
        for (i, b) in seg.iter_mut().enumerate() {
            *b = i as u8 * 7;
        }
        seg[6..8].copy_from_slice(&0x1234u16.to_be_bytes());
        p.set_csum_partial(0, 6);
        assert!(p.csum_trusted());
        p.prepend(20).unwrap().fill(0xaa);
        p.prepend(14).unwrap().fill(0xbb);
        assert_eq!(p.csum_partial(), Some((34, 6)));
        let copy = p.duplicate();
        assert_eq!(copy.csum_partial(), Some((34, 6)));
        assert!(p.finish_checksum());
        assert_eq!(p.csum_partial(), None);
        assert!(!p.csum_trusted());
        // What a receiver checks: the segment as sent, with the
        // pseudo-header sum added, folds to all ones.
        let seg = &p.data()[34..];
        assert_eq!(
            iopkt_wire::checksum::finish(iopkt_wire::checksum::sum(0x1234, seg)),
            0
        );
    }

    #[test]
    fn advancing_past_the_checksummed_bytes_keeps_them_trusted() {
        let mut p = PktBuf::with_capacity(64, 64);
        p.append(40);
        p.set_csum_partial(20, 16);
        p.advance(14);
        assert_eq!(p.csum_partial(), Some((6, 16)));
        p.advance(10);
        assert_eq!(p.csum_partial(), None);
        assert!(p.csum_trusted());
    }

    #[test]
    fn offsets_outside_the_packet_do_not_panic() {
        let mut p = PktBuf::with_capacity(64, 64);
        p.append(10);
        p.set_csum_partial(9, 60_000);
        assert!(!p.finish_checksum());
        assert_eq!(p.csum_partial(), None);
        assert!(p.finish_checksum());
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
