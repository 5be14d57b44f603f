use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::buf::{PktBuf, RawPkt, free_raw};

/// A bounded pool of packet buffers of one size. Cloning it gives another
/// handle to the same pool.
///
/// The free list is lock-free so driver threads and the stack can allocate
/// and free concurrently; it holds at most `max_free` idle buffers, and
/// allocation beyond that simply makes new ones (the number in flight is
/// bounded by the queues that hold them, not here).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
    /// Buffers for packets too big for `inner`, if the pool has a second
    /// size class.
    large: Option<Arc<PoolInner>>,
}

pub(crate) struct PoolInner {
    free: ArrayQueue<NonNull<RawPkt>>,
    headroom: usize,
    data_size: usize,
    allocated: AtomicU64,
    reused: AtomicU64,
}

// SAFETY: the queue only holds descriptors no one else owns.
unsafe impl Send for PoolInner {}
unsafe impl Sync for PoolInner {}

/// Counters of a pool, for `nicinfo` and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub allocated: u64,
    pub reused: u64,
    pub idle: usize,
}

impl Pool {
    /// A pool of buffers with `headroom` + `data_size` bytes, keeping up to
    /// `max_free` idle buffers for reuse.
    pub fn new(headroom: usize, data_size: usize, max_free: usize) -> Pool {
        Pool {
            inner: PoolInner::new(headroom, data_size, max_free),
            large: None,
        }
    }

    /// The same pool with a second size class: packets longer than the
    /// pool's data size but at most `data_size` get pooled buffers of that
    /// size, up to `max_free` of them kept idle.
    pub fn with_large(mut self, data_size: usize, max_free: usize) -> Pool {
        self.large = Some(PoolInner::new(self.inner.headroom, data_size, max_free));
        self
    }

    /// The standard pool: default headroom and data size, 4096 idle buffers;
    /// large buffers for frames up to the largest MTU, 64 kept idle.
    pub fn standard() -> Pool {
        Pool::new(crate::DEFAULT_HEADROOM, crate::DEFAULT_DATA_SIZE, 4096)
            .with_large(crate::LARGE_DATA_SIZE, crate::LARGE_MAX_FREE)
    }

    /// An empty buffer with the pool's headroom in front.
    pub fn alloc(&self) -> PktBuf {
        self.inner.get_or_alloc(Arc::as_ptr(&self.inner))
    }

    /// An empty buffer for a packet of `len` bytes: from the pool if it fits,
    /// otherwise a buffer of its own.
    pub fn alloc_for(&self, len: usize) -> PktBuf {
        if len <= self.inner.data_size {
            return self.alloc();
        }
        match &self.large {
            Some(large) if len <= large.data_size => large.get_or_alloc(Arc::as_ptr(large)),
            _ => PktBuf::with_capacity(self.inner.headroom, len),
        }
    }

    pub fn headroom(&self) -> usize {
        self.inner.headroom
    }

    pub fn data_size(&self) -> usize {
        self.inner.data_size
    }

    /// Both size classes together.
    pub fn stats(&self) -> PoolStats {
        let mut st = self.inner.stats();
        if let Some(large) = &self.large {
            let l = large.stats();
            st.allocated += l.allocated;
            st.reused += l.reused;
            st.idle += l.idle;
        }
        st
    }
}

impl PoolInner {
    fn new(headroom: usize, data_size: usize, max_free: usize) -> Arc<PoolInner> {
        Arc::new(PoolInner {
            free: ArrayQueue::new(max_free.max(1)),
            headroom,
            data_size,
            allocated: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        })
    }

    fn stats(&self) -> PoolStats {
        PoolStats {
            allocated: self.allocated.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            idle: self.free.len(),
        }
    }

    pub(crate) fn get_or_alloc(&self, me: *const PoolInner) -> PktBuf {
        if let Some(raw) = self.free.pop() {
            self.reused.fetch_add(1, Ordering::Relaxed);
            // The idle descriptor held no count on the pool; a live one does.
            // SAFETY: `me` is this live pool.
            unsafe { Arc::increment_strong_count(me) };
            // SAFETY: idle descriptors are owned by the pool alone.
            let mut p = unsafe { PktBuf::from_raw(raw.as_ptr()) };
            p.reset(self.headroom);
            return p;
        }
        self.allocated.fetch_add(1, Ordering::Relaxed);
        PktBuf::alloc(self.headroom, self.data_size, me)
    }

    /// Takes back a descriptor whose PktBuf is being dropped.
    pub(crate) fn put(&self, raw: NonNull<RawPkt>) {
        if let Err(raw) = self.free.push(raw) {
            free_raw(raw);
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        while let Some(raw) = self.free.pop() {
            free_raw(raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_packets_get_reused_buffers_of_the_large_class() {
        let pool = Pool::new(64, 256, 4).with_large(4096, 2);
        let a = pool.alloc_for(3000);
        assert!(a.capacity() >= 64 + 3000);
        let ptr = a.data().as_ptr();
        drop(a);
        let b = pool.alloc_for(4000);
        assert_eq!(b.data().as_ptr(), ptr, "the large buffer came back");
        assert_eq!(b.headroom(), 64);
        assert_eq!(pool.stats().reused, 1);
        // Beyond the large class: a buffer of its own, not pooled.
        let c = pool.alloc_for(5000);
        assert!(c.capacity() >= 5000);
        drop(c);
        assert_eq!(pool.stats().idle, 0);
        drop(b);
        assert_eq!(pool.stats().idle, 1);
    }

    #[test]
    fn buffers_are_reused_and_outlive_the_pool_handle() {
        let pool = Pool::new(64, 256, 2);
        let a = pool.alloc();
        let ptr = a.data().as_ptr();
        drop(a);
        let b = pool.alloc();
        assert_eq!(b.data().as_ptr(), ptr);
        assert_eq!(b.headroom(), 64);
        assert_eq!(pool.stats().reused, 1);
        drop(pool);
        // The buffer keeps its pool alive and returns to it safely.
        let mut b = b;
        b.append(3).copy_from_slice(b"xyz");
        drop(b);
    }

    #[test]
    fn large_packets_get_their_own_buffer() {
        let pool = Pool::new(64, 256, 2);
        let p = pool.alloc_for(4000);
        assert!(p.tailroom() >= 4000);
        assert_eq!(pool.stats().allocated, 0);
    }

    #[test]
    fn pool_is_safe_across_threads() {
        let pool = Pool::new(16, 64, 8);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u32 {
                        let mut p = pool.alloc();
                        p.append(4).copy_from_slice(&i.to_be_bytes());
                        assert_eq!(p.data(), &i.to_be_bytes());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(pool.stats().idle <= 8);
    }
}
