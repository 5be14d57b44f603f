//! A socket's shared ring as io-pkt sees it: every counter and flag the
//! application writes is outside data (a broken or hostile program may
//! put anything there, at any moment). Whatever they say, io-pkt's side
//! of the slot (`iopkt_shm::stack::StackEnd`) must not panic, must never
//! move more bytes than a ring holds or a buffer takes, and must report
//! impossible counters as `Corrupt` rather than act on them.

use std::sync::OnceLock;
use std::sync::atomic::Ordering::Relaxed;

use iopkt_shm::stack::StackEnd;
use iopkt_shm::{Arena, RING_SIZE};

fn arena() -> Option<&'static Arena> {
    static ARENA: OnceLock<Option<Arena>> = OnceLock::new();
    ARENA
        .get_or_init(|| Arena::create().ok().map(|(a, _fd)| a))
        .as_ref()
}

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// Fuzz input: a sequence of operations, each one byte (the operation)
/// and eight (its value): the application scribbling on a field, or one
/// of io-pkt's calls.
pub fn shm_ring(data: &[u8]) {
    let Some(arena) = arena() else {
        return;
    };
    let Some(slot) = arena.slot(1) else {
        return;
    };
    let end = StackEnd::new(slot);
    if end.reset().is_none() {
        return;
    }
    let h = slot.header();
    let mut buf = vec![0u8; 70_000];
    for op in data.chunks(9) {
        let Some((&code, rest)) = op.split_first() else {
            break;
        };
        let v = u64_at(rest, 0);
        let n = (v as usize) % buf.len();
        match code % 16 {
            // The application's writes: anything at all.
            0 => h.tx_head.store(v, Relaxed),
            1 => h.rx_tail.store(v, Relaxed),
            2 => h.tx_full.store(v as u32, Relaxed),
            3 => h.rx_signalled.store(v as u32, Relaxed),
            4 => h.stack_wants_room.store(v as u32, Relaxed),
            // io-pkt's calls.
            5 => {
                if let Ok(p) = end.tx_pending() {
                    assert!(p <= RING_SIZE, "pending {p}");
                }
            }
            6 => {
                let (a, b) = buf.split_at_mut(n / 2);
                let b_len = b.len().min(n - n / 2);
                if let Ok(t) = end.tx_take(&mut [a, &mut b[..b_len]]) {
                    assert!(t <= n && t <= RING_SIZE, "took {t} of {n}");
                }
            }
            7 => {
                let _ = end.tx_discard();
            }
            8 => {
                let _ = end.tx_sleep();
            }
            9 => {
                let _ = end.tx_hold_pair();
                let _ = end.tx_unfill();
            }
            10 => {
                if let Ok(r) = end.rx_room() {
                    assert!(r <= RING_SIZE, "room {r}");
                }
            }
            11 => {
                let src = buf.get(..n).unwrap_or_default();
                if let Ok(p) = end.rx_put(&[src, src]) {
                    assert!(p <= 2 * n && p <= RING_SIZE, "put {p} of {}", 2 * n);
                }
            }
            12 => {
                let _ = end.rx_sleep();
                let _ = end.rx_signal();
            }
            13 => assert!(end.rx_unread() <= RING_SIZE),
            14 => end.rx_finish(),
            _ => {
                // A new socket in the slot: everything starts over.
                let _ = end.reset();
            }
        }
    }
}
