//! A byte ring whose free space can be written in place.
//!
//! The send buffer is filled by reading from a descriptor straight into
//! it (`SendBuf::fill_with`), so it must lend its free space as slices of
//! initialized memory. `VecDeque<u8>` lends only its contents; making room
//! in one means zeroing it first, a write of every payload byte that buys
//! nothing. This ring keeps its storage initialized once and reuses it:
//! it grows (doubling, up to what the caller needs) and never zeroes
//! again. No crate offers a safe byte ring with in-place writes into the
//! free space and growth, hence this small one.

#[derive(Debug, Default)]
pub struct ByteRing {
    /// Initialized storage; its length is the ring's capacity.
    buf: Vec<u8>,
    /// Index of the first byte held.
    head: usize,
    /// Bytes held.
    len: usize,
}

/// The smallest storage a ring allocates.
const MIN_STORAGE: usize = 4096;

impl ByteRing {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes held, in order, as two slices (the second may be empty).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        if self.head + self.len <= cap {
            (&self.buf[self.head..self.head + self.len], &[])
        } else {
            let (front, back) = self.buf.split_at(self.head);
            (back, &front[..self.head + self.len - cap])
        }
    }

    /// Makes the storage hold at least `total` bytes (doubling), moving
    /// what is held to its start when it grows.
    fn reserve_total(&mut self, total: usize) {
        let cap = self.buf.len();
        if total > cap {
            self.grow_to(total.max(cap.saturating_mul(2)).max(MIN_STORAGE));
        }
    }

    fn grow_to(&mut self, new_cap: usize) {
        let mut storage = vec![0u8; new_cap];
        let (a, b) = self.as_slices();
        storage[..a.len()].copy_from_slice(a);
        storage[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.buf = storage;
        self.head = 0;
    }

    /// Appends up to `n` bytes written in place by `fill`, which gets free
    /// space after the last byte as two slices (the second may be empty)
    /// and returns how many it wrote from the start of the first.
    ///
    /// The space offered is what the storage has free, up to `n`; only a
    /// full storage grows (doubling, from 4 KiB, never past what `n`
    /// allows). A caller offering room to a descriptor does not know how
    /// much will come, so the storage follows what does come: a socket
    /// that is read while nothing waits must not get a buffer for the
    /// most it could take. For the same reason a fill that brings nothing
    /// into an empty ring gives the storage back.
    pub fn fill_with(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> usize {
        if n == 0 {
            return 0;
        }
        if self.len == self.buf.len() {
            let grown = self
                .buf
                .len()
                .saturating_mul(2)
                .max(MIN_STORAGE)
                .min(self.len + n);
            self.grow_to(grown);
        }
        let cap = self.buf.len();
        let n = n.min(cap - self.len);
        let tail = (self.head + self.len) % cap;
        let wrote = if tail + n <= cap {
            fill(&mut self.buf[tail..tail + n], &mut [])
        } else {
            let (front, back) = self.buf.split_at_mut(tail);
            fill(back, &mut front[..tail + n - cap])
        };
        let wrote = wrote.min(n);
        self.len += wrote;
        if self.len == 0 {
            *self = ByteRing::default();
        }
        wrote
    }

    /// Appends all of `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.reserve_total(self.len + bytes.len());
        self.fill_with(bytes.len(), |a, b| {
            let (first, second) = bytes.split_at(a.len());
            a.copy_from_slice(first);
            b.copy_from_slice(second);
            bytes.len()
        });
    }

    /// Drops `n` bytes from the front (all, if fewer are held).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.buf.len()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(r: &ByteRing) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    #[test]
    fn wraps_and_keeps_order_through_growth() {
        let mut r = ByteRing::default();
        let block: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        r.extend_from_slice(&block);
        r.consume(2500);
        // The next bytes wrap around the 4096-byte storage.
        r.extend_from_slice(&block);
        assert_eq!(r.len(), 3500);
        let (a, b) = r.as_slices();
        assert!(!b.is_empty(), "the contents wrap");
        assert_eq!(a.len() + b.len(), 3500);
        let mut want = block[2500..].to_vec();
        want.extend_from_slice(&block);
        assert_eq!(contents(&r), want);
        // Growing while wrapped moves the contents in order.
        r.extend_from_slice(&block);
        want.extend_from_slice(&block);
        assert_eq!(contents(&r), want);
        r.consume(want.len());
        assert!(r.is_empty());
    }

    #[test]
    fn storage_follows_what_comes_not_what_is_offered() {
        let mut r = ByteRing::default();
        // Offered a lot, nothing comes: no storage kept.
        assert_eq!(r.fill_with(1 << 20, |_, _| 0), 0);
        assert_eq!(r.buf.len(), 0, "an empty read keeps no buffer");
        // Bytes come: the storage starts at 4 KiB and doubles only when full.
        let mut offers = Vec::new();
        for _ in 0..4 {
            r.fill_with(1 << 20, |a, b| {
                offers.push(a.len() + b.len());
                a.len() + b.len()
            });
        }
        assert_eq!(offers, [4096, 4096, 8192, 16384]);
        assert_eq!(r.len(), 32768);
        // Never past what the caller allows.
        r.consume(32768);
        assert!(r.is_empty());
        let mut r = ByteRing::default();
        assert_eq!(r.fill_with(100, |a, b| a.len() + b.len()), 100);
        assert_eq!(r.fill_with(10, |a, b| a.len() + b.len()), 10);
        assert!(r.buf.len() <= 4096);
    }

    #[test]
    fn a_fill_that_writes_less_leaves_the_rest_free() {
        let mut r = ByteRing::default();
        let wrote = r.fill_with(100, |a, b| {
            assert_eq!(a.len() + b.len(), 100);
            a[..3].copy_from_slice(b"abc");
            3
        });
        assert_eq!(wrote, 3);
        assert_eq!(contents(&r), b"abc");
        assert_eq!(r.fill_with(2, |_, _| 50), 2, "never more than offered");
        assert_eq!(r.len(), 5);
        assert_eq!(r.fill_with(0, |_, _| panic!("nothing offered")), 0);
    }
}
