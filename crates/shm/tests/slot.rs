//! Both sides of a slot over a real arena, the application's in threads.

use std::sync::atomic::Ordering;

use iopkt_shm::app::{AppEnd, Gone, Settle};
use iopkt_shm::stack::{Corrupt, StackEnd};
use iopkt_shm::{Arena, RING_SIZE};

fn slot(arena: &Arena, i: u32) -> (StackEnd, AppEnd) {
    let s = arena.slot(i).expect("slot");
    let stack = StackEnd::new(s);
    let generation = stack.reset().expect("free slot");
    (stack, AppEnd::new(s, generation))
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn bytes_cross_both_rings_in_order_across_threads() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 7);
    let total = 3 * RING_SIZE + 12_345;
    let up = pattern(total, 1);
    let down = pattern(total, 2);
    std::thread::scope(|sc| {
        // The application writes `up` in odd-sized pieces and reads `down`.
        sc.spawn(|| {
            let mut off = 0;
            while off < up.len() {
                let end = (off + 1000 + off % 7777).min(up.len());
                let mut tx = app.tx().unwrap();
                off += tx.put(&[&up[off..end]]);
            }
        });
        sc.spawn(|| {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4099];
            while got.len() < total {
                let mut rx = app.rx().unwrap();
                let n = rx.take(&mut [&mut buf[..]], false);
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == down, "stack → application bytes differ");
        });
        // io-pkt, in this thread: both directions at once.
        let mut got = Vec::new();
        let mut sent = 0;
        let mut a = vec![0u8; 3000];
        let mut b = vec![0u8; 5000];
        while got.len() < total || sent < total {
            let n = stack.tx_take(&mut [&mut a[..], &mut b[..]]).unwrap();
            let (x, y) = (n.min(a.len()), n.saturating_sub(a.len()));
            got.extend_from_slice(&a[..x]);
            got.extend_from_slice(&b[..y]);
            let end = (sent + 10_000).min(total);
            let mid = (sent + end) / 2;
            sent += stack.rx_put(&[&down[sent..mid], &down[mid..end]]).unwrap();
        }
        assert!(got == up, "application → stack bytes differ");
    });
}

#[test]
fn a_full_ring_takes_nothing_more_and_peek_leaves_bytes() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 0);
    let big = pattern(RING_SIZE + 10, 3);
    assert_eq!(app.tx().unwrap().put(&[&big]), RING_SIZE);
    assert_eq!(app.tx().unwrap().room(), 0);
    assert_eq!(stack.tx_pending().unwrap(), RING_SIZE);
    assert_eq!(stack.rx_put(&[&big]).unwrap(), RING_SIZE);
    assert_eq!(stack.rx_room().unwrap(), 0);
    let mut buf = [0u8; 10];
    assert_eq!(app.rx().unwrap().take(&mut [&mut buf[..]], true), 10);
    assert_eq!(app.readable_bytes().unwrap(), RING_SIZE);
    // A peek continuing an earlier one starts after it.
    let mut next = [0u8; 10];
    assert_eq!(
        app.rx().unwrap().take_from(&mut [&mut next[..]], 10, true),
        10
    );
    assert_eq!(next[..], big[10..20]);
    assert_eq!(app.rx().unwrap().take(&mut [&mut buf[..]], false), 10);
    assert_eq!(buf[..], big[..10]);
    assert_eq!(stack.rx_room().unwrap(), 10);
}

#[test]
fn counters_an_application_breaks_are_caught() {
    let (arena, _fd) = Arena::create().unwrap();
    let s = arena.slot(3).unwrap();
    let (stack, _app) = slot(&arena, 3);
    let h = s.header();
    h.tx_head.store(RING_SIZE as u64 + 1, Ordering::Relaxed);
    assert_eq!(stack.tx_pending(), Err(Corrupt));
    assert_eq!(stack.tx_take(&mut [&mut [0u8; 8][..]]), Err(Corrupt));
    h.rx_tail.store(5, Ordering::Relaxed);
    assert_eq!(stack.rx_room(), Err(Corrupt));
    assert_eq!(stack.rx_put(&[b"x"]), Err(Corrupt));
    assert_eq!(stack.rx_unread(), 0);
}

#[test]
fn a_descriptor_of_a_reused_slot_is_gone() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, old) = slot(&arena, 9);
    let new_gen = stack.reset().unwrap();
    assert!(matches!(old.tx(), Err(Gone)));
    assert!(matches!(old.rx(), Err(Gone)));
    let new = AppEnd::new(arena.slot(9).unwrap(), new_gen);
    assert!(new.tx().is_ok());
    // A slot whose lock a process holds is not handed out.
    let held = new.rx().unwrap();
    assert!(stack.reset().is_none());
    drop(held);
    assert!(stack.reset().is_some());
}

#[test]
fn io_pkt_sleeps_only_when_the_ring_is_empty_and_is_woken_once() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 1);
    // A new slot's io-pkt sleeps: the first bytes wake it, the next do not.
    let mut tx = app.tx().unwrap();
    tx.put(&[b"hello"]);
    assert!(tx.wake_needed());
    tx.put(&[b"again"]);
    assert!(!tx.wake_needed());
    drop(tx);
    // Bytes waiting: no sleep.
    assert!(!stack.tx_sleep().unwrap());
    stack.tx_take(&mut [&mut [0u8; 64][..]]).unwrap();
    assert!(stack.tx_sleep().unwrap());
    let mut tx = app.tx().unwrap();
    tx.put(&[b"x"]);
    assert!(tx.wake_needed());
}

#[test]
fn a_full_ring_holds_the_pair_until_room_appears() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 2);
    let tx = app.tx().unwrap();
    drop(tx);
    app.tx().unwrap().put(&[&vec![0u8; RING_SIZE]]);
    app.tx().unwrap().mark_full();
    assert!(stack.tx_hold_pair().unwrap());
    assert!(!stack.tx_unfill().unwrap());
    // A little room is not enough to wake the writer.
    stack.tx_take(&mut [&mut [0u8; 1][..]]).unwrap();
    assert!(stack.tx_hold_pair().unwrap());
    assert!(!stack.tx_unfill().unwrap());
    stack
        .tx_take(&mut [&mut vec![0u8; iopkt_shm::stack::WRITE_SPACE][..]])
        .unwrap();
    assert!(!stack.tx_hold_pair().unwrap());
    assert!(stack.tx_unfill().unwrap());
    // Once only.
    assert!(!stack.tx_unfill().unwrap());
}

/// The pair's wake-up bytes, counted, under every order of one reader's
/// settle and one put by io-pkt: the descriptor is never left unreadable
/// with bytes waiting.
#[test]
fn readability_follows_the_ring() {
    let (arena, _fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 4);
    let mut pair = 0u32; // wake-up bytes toward the application
    let put = |pair: &mut u32, data: &[u8]| {
        stack.rx_put(&[data]).unwrap();
        if stack.rx_signal() {
            *pair += 1;
        }
    };
    put(&mut pair, b"abc");
    assert_eq!(pair, 1);
    // A partial read leaves the byte.
    let mut rx = app.rx().unwrap();
    let mut b = [0u8; 2];
    rx.take(&mut [&mut b[..]], false);
    assert_eq!(rx.settle(false), Settle::Done);
    // Emptying it asks for the byte to be read out.
    let mut b = [0u8; 8];
    rx.take(&mut [&mut b[..]], false);
    assert_eq!(rx.settle(false), Settle::DrainWakes);
    pair = 0;
    drop(rx);
    // The next put writes a fresh byte.
    put(&mut pair, b"d");
    assert_eq!(pair, 1);
    // A reader that consumed the byte while waiting and leaves bytes
    // asks io-pkt for a fresh one.
    pair = 0;
    put(&mut pair, b"ef");
    let mut rx = app.rx().unwrap();
    let mut b = [0u8; 1];
    rx.take(&mut [&mut b[..]], false);
    assert_eq!(rx.settle(true), Settle::Resignal);
    drop(rx);
    // io-pkt, woken, finds bytes unread and the flag clear.
    assert!(stack.rx_unread() > 0);
    assert!(stack.rx_signal());
    // The end of stream keeps the descriptor readable.
    let mut rx = app.rx().unwrap();
    let mut b = [0u8; 8];
    rx.take(&mut [&mut b[..]], false);
    stack.rx_finish();
    assert!(rx.finished());
    assert_eq!(rx.settle(false), Settle::Done);
}

#[test]
fn trimmed_rings_read_as_zeros() {
    let (arena, fd) = Arena::create().unwrap();
    let (stack, app) = slot(&arena, 5);
    stack.rx_put(&[b"secret"]).unwrap();
    arena.trim(std::os::fd::AsFd::as_fd(&fd), 5).unwrap();
    let mut b = [9u8; 6];
    app.rx().unwrap().take(&mut [&mut b[..]], true);
    assert_eq!(b, [0u8; 6]);
}

#[test]
fn an_arena_opens_from_its_memfd_and_shares_memory() {
    let (arena, fd) = Arena::create().unwrap();
    let other = Arena::open(std::os::fd::AsFd::as_fd(&fd)).unwrap();
    let (stack, _app) = slot(&arena, 11);
    stack.rx_put(&[b"shared"]).unwrap();
    let app = AppEnd::new(other.slot(11).unwrap(), stack.generation());
    let mut b = [0u8; 6];
    assert_eq!(app.rx().unwrap().take(&mut [&mut b[..]], false), 6);
    assert_eq!(&b, b"shared");
    // A file of another size is refused.
    let f = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert!(Arena::open(std::os::fd::AsFd::as_fd(&f)).is_err());
}
