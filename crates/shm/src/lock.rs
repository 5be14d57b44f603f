//! The application side's lock on one direction of a slot.
//!
//! A ring has one producer and one consumer, but a socket may be written
//! by several threads, or by a parent and the child it forked: the lock
//! makes them one producer (or consumer) again, as the kernel serializes
//! writers of one socket. It is held only while bytes are copied, never
//! while waiting for room or data, so contention is short; a waiter spins
//! a little, then yields.
//!
//! The lock word holds the holder's process id. A process killed while
//! holding it (it copies, it does not wait, so this is rare) would leave
//! it held for ever: a waiter that finds the holder gone takes the lock
//! over. io-pkt only ever tries the lock (when it hands a slot to a new
//! socket, [`crate::stack`]), never waits for it.

use std::sync::atomic::{AtomicU32, Ordering};

/// Spins before yielding the processor.
const SPINS: u32 = 64;
/// Yields between checks that the holder still lives.
const YIELDS_PER_CHECK: u32 = 256;

/// This process's id, asked once: a lock is taken on every read and
/// write, and getpid is a system call.
static PID: AtomicU32 = AtomicU32::new(0);

fn my_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => forked(),
        p => p,
    }
}

/// To be called in a child right after fork (pthread_atfork): its
/// process id is not its parent's. Returns it.
pub fn forked() -> u32 {
    let p = rustix::process::getpid().as_raw_nonzero().get() as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// Whether process `pid` is gone (not merely out of our reach).
fn gone(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    matches!(
        rustix::process::test_kill_process(p),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A held lock; released when dropped.
pub struct Held<'a> {
    word: &'a AtomicU32,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.word.store(0, Ordering::Release);
    }
}

/// Takes the lock, waiting for it.
pub fn lock(word: &AtomicU32) -> Held<'_> {
    let me = my_pid();
    let mut spins = 0u32;
    let mut yields = 0u32;
    loop {
        let cur = word.load(Ordering::Relaxed);
        if cur == 0 {
            if word
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Held { word };
            }
            continue;
        }
        if spins < SPINS {
            spins += 1;
            std::hint::spin_loop();
            continue;
        }
        yields += 1;
        if yields.is_multiple_of(YIELDS_PER_CHECK)
            && gone(cur)
            && word
                .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Held { word };
        }
        std::thread::yield_now();
    }
}

/// Takes the lock if it is free.
pub fn try_lock(word: &AtomicU32) -> Option<Held<'_>> {
    word.compare_exchange(0, my_pid(), Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| Held { word })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_cannot_be_tried_and_frees_on_drop() {
        let w = AtomicU32::new(0);
        let h = lock(&w);
        assert!(try_lock(&w).is_none());
        drop(h);
        assert!(try_lock(&w).is_some());
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over() {
        // A process id that cannot exist (beyond pid_max's ceiling).
        let w = AtomicU32::new(0x7fff_fff0);
        let h = lock(&w);
        assert_eq!(w.load(Ordering::Relaxed), my_pid());
        drop(h);
    }

    #[test]
    fn threads_take_turns() {
        let w = std::sync::Arc::new(AtomicU32::new(0));
        let n = std::sync::Arc::new(AtomicU32::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (w, n) = (w.clone(), n.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let _g = lock(&w);
                        // Not atomic as a whole: only the lock keeps it right.
                        let v = n.load(Ordering::Relaxed);
                        n.store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(n.load(Ordering::Relaxed), 4000);
    }
}
