//! Reading and writing a TCP socket through its shared rings, with a
//! kernel socket's semantics (docs/protocol.md, "Shared rings").
//!
//! Bytes are copied between the caller's buffers and the rings; the pair
//! is touched only to wake io-pkt when it sleeps, to wait, and to keep the
//! descriptor's readiness true for poll, select and epoll:
//! - waiting for bytes is a blocking read of the pair's wake-up byte, so
//!   the kernel applies SO_RCVTIMEO, signals and SA_RESTART as on any
//!   socket;
//! - waiting for room is a blocking one-byte send on the pair after
//!   filling it (the ring is full, so the descriptor must poll
//!   unwritable), which returns once io-pkt, finding room, empties the
//!   pair; SO_SNDTIMEO, signals, EPIPE and SIGPIPE come from the kernel
//!   the same way;
//! - a write after shutdown(SHUT_WR) or after the stack refused the
//!   connection's data goes to the pair, whose failure (EPIPE, SIGPIPE
//!   unless MSG_NOSIGNAL) is the answer.

use iopkt_shm::app::{AppEnd, Rx, Settle, Tx};
use libc::{c_int, c_void, iovec, size_t, ssize_t};

use crate::entry::check;
use crate::real::real;
use crate::tcp_end;

/// Slices handed to the rings per copy.
const BATCH: usize = 8;
/// Filler sends at most (the pair's send buffer is the smallest Linux
/// allows: four sends of `FILLER` fill it).
const MAX_FILLER_SENDS: usize = 8;
const FILLER: usize = 1024;

/// The caller's iovecs from byte `skip` on, as (start, length) pieces.
///
/// # Safety
/// `iov` must point to `n` valid iovecs (or be null).
unsafe fn pieces<'a>(
    iov: *const iovec,
    n: usize,
    skip: usize,
) -> impl Iterator<Item = (*mut u8, usize)> + 'a {
    let v: &[iovec] = if iov.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: as the caller promised.
        unsafe { std::slice::from_raw_parts(iov, n) }
    };
    let mut skip = skip;
    v.iter().filter_map(move |e| {
        if e.iov_len <= skip {
            skip -= e.iov_len;
            return None;
        }
        let piece = (e.iov_base.cast::<u8>().wrapping_add(skip), e.iov_len - skip);
        skip = 0;
        Some(piece)
    })
}

/// Hands `f` the pieces in batches of at most `BATCH`, until one is not
/// taken whole; returns the bytes taken.
fn each_batch(
    pieces: impl Iterator<Item = (*mut u8, usize)>,
    mut f: impl FnMut(&[(*mut u8, usize)]) -> usize,
) -> usize {
    let mut batch = [(std::ptr::null_mut::<u8>(), 0usize); BATCH];
    let mut k = 0;
    let mut done = 0;
    let mut flush = |batch: &[(*mut u8, usize)]| {
        let offered: usize = batch.iter().map(|p| p.1).sum();
        let got = f(batch);
        done += got;
        got == offered
    };
    for p in pieces {
        if let Some(slot) = batch.get_mut(k) {
            *slot = p;
        }
        k += 1;
        if k == BATCH {
            if !flush(&batch) {
                return done;
            }
            k = 0;
        }
    }
    if k > 0 {
        flush(batch.get(..k).unwrap_or_default());
    }
    done
}

/// Writes the caller's bytes from byte `skip` on into the ring.
///
/// # Safety
/// `iov` must point to `n` valid iovecs, readable.
unsafe fn put_from(tx: &mut Tx<'_>, iov: *const iovec, n: usize, skip: usize) -> usize {
    // SAFETY: as the caller promised.
    each_batch(unsafe { pieces(iov, n, skip) }, |b| {
        let slices: [&[u8]; BATCH] = std::array::from_fn(|i| match b.get(i) {
            // SAFETY: the caller's buffer of that length.
            Some(&(p, len)) => unsafe { std::slice::from_raw_parts(p, len) },
            None => &[],
        });
        tx.put(slices.get(..b.len()).unwrap_or_default())
    })
}

/// Fills the caller's buffers from byte `skip` on from the ring.
///
/// # Safety
/// `iov` must point to `n` valid iovecs, writable.
unsafe fn take_into(
    rx: &mut Rx<'_>,
    iov: *const iovec,
    n: usize,
    skip: usize,
    peek: bool,
) -> usize {
    let mut skip_peeked = 0;
    // SAFETY: as the caller promised.
    each_batch(unsafe { pieces(iov, n, skip) }, |b| {
        let mut slices: [&mut [u8]; BATCH] = std::array::from_fn(|i| match b.get(i) {
            // SAFETY: the caller's buffer of that length, written only here.
            Some(&(p, len)) => unsafe { std::slice::from_raw_parts_mut(p, len) },
            None => &mut [],
        });
        let len = b.len();
        let got = rx.take_from(slices.get_mut(..len).unwrap_or_default(), skip_peeked, peek);
        if peek {
            // A peek leaves the bytes: the next batch starts after them.
            skip_peeked += got;
        }
        got
    })
}

/// The total length of `n` iovecs.
///
/// # Safety
/// `iov` must point to `n` valid iovecs (or be null).
pub unsafe fn total(iov: *const iovec, n: usize) -> usize {
    // SAFETY: as the caller promised.
    unsafe { tcp_end::iov_len(iov, n) }
}

/// One wake-up byte to io-pkt; if the pair is full, io-pkt has bytes to
/// read already and will look.
fn wake(fd: c_int) {
    let send = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
    let b = [1u8];
    // SAFETY: a one-byte buffer.
    unsafe {
        send(
            fd,
            b.as_ptr().cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Fills the pair (the ring is full): the descriptor then polls
/// unwritable until io-pkt, finding room, empties it. Stops early once
/// io-pkt has done so already.
fn fill(fd: c_int, end: &AppEnd) {
    let send = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
    let zeros = [0u8; FILLER];
    for _ in 0..MAX_FILLER_SENDS {
        if !end.marked_full() {
            return;
        }
        // SAFETY: a buffer of its length.
        let r = unsafe {
            send(
                fd,
                zeros.as_ptr().cast(),
                zeros.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r < 0 {
            return;
        }
    }
}

/// Reads out the ring's wake-up byte (not waiting). One byte only: io-pkt
/// may have put a fresh one behind it for bytes that came meanwhile,
/// which must stay (a spare one left by a race costs one spurious
/// wake-up, whose read takes it).
fn drain(fd: c_int) {
    let recv = real!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
    let mut b = [0u8; 1];
    // SAFETY: a buffer of its length.
    unsafe { recv(fd, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) };
}

/// Writes through the ring: `send`, `write`, `writev`, `sendmsg`.
///
/// # Safety
/// `iov` must point to `n` valid iovecs.
pub unsafe fn send(
    fd: c_int,
    end: AppEnd,
    iov: *const iovec,
    n: usize,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    // SAFETY: as the caller promised.
    let want = unsafe { total(iov, n) };
    let mut done = 0usize;
    loop {
        let Ok(mut tx) = end.tx() else {
            // The socket is gone: the pair says how (EPIPE).
            return unsafe { send_on_pair(fd, iov, n, done, flags) };
        };
        if tx.closed() {
            drop(tx);
            if done > 0 {
                return Ok(done as ssize_t);
            }
            return unsafe { send_on_pair(fd, iov, n, 0, flags) };
        }
        if tx.gated() {
            // Connecting: wait as a kernel socket's write does (EAGAIN
            // when non-blocking), on the pair io-pkt keeps full.
            drop(tx);
            wait_room(fd, flags)?;
            continue;
        }
        // SAFETY: as the caller promised.
        let put = unsafe { put_from(&mut tx, iov, n, done) };
        let wake_stack = put > 0 && tx.wake_needed();
        done += put;
        let full = done < want && tx.room() == 0;
        if full {
            tx.mark_full();
        }
        drop(tx);
        if wake_stack {
            wake(fd);
        }
        if done >= want {
            return Ok(done as ssize_t);
        }
        if full {
            // If io-pkt made room before it saw the mark, the filler's
            // arrival has it look again: no need to check here.
            fill(fd, &end);
        }
        // A non-blocking descriptor (or MSG_DONTWAIT) makes this EAGAIN.
        if let Err(e) = wait_room(fd, flags) {
            return if done > 0 {
                Ok(done as ssize_t)
            } else {
                Err(e)
            };
        }
    }
}

/// Blocks until the pair takes a byte: io-pkt emptied it, having found
/// room in the ring (or the connection is over: EPIPE).
fn wait_room(fd: c_int, flags: c_int) -> Result<(), c_int> {
    let send = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
    let b = [0u8];
    // SAFETY: a one-byte buffer.
    let flags = flags & (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
    check(unsafe { send(fd, b.as_ptr().cast(), 1, flags) }).map(|_| ())
}

/// A write the ring does not take: the pair's own answer (EPIPE after a
/// shutdown or a reset, with SIGPIPE unless MSG_NOSIGNAL).
///
/// # Safety
/// As [`send`].
unsafe fn send_on_pair(
    fd: c_int,
    iov: *const iovec,
    n: usize,
    done: usize,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    // The first of the caller's bytes not taken yet.
    // SAFETY: as the caller promised.
    let first = unsafe { pieces(iov, n, done) }
        .next()
        .unwrap_or((std::ptr::null_mut(), 0));
    let send = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
    // SAFETY: the caller's buffer.
    check(unsafe { send(fd, first.0.cast(), first.1, flags) })
}

/// Reads through the ring: `recv`, `read`, `readv`, `recvmsg`.
///
/// # Safety
/// `iov` must point to `n` valid iovecs.
pub unsafe fn recv(
    fd: c_int,
    end: AppEnd,
    iov: *const iovec,
    n: usize,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EINVAL);
    }
    let peek = flags & libc::MSG_PEEK != 0;
    let waitall = flags & libc::MSG_WAITALL != 0 && !peek;
    // SAFETY: as the caller promised.
    let want = unsafe { total(iov, n) };
    if want == 0 {
        return zero_length(fd, end, flags);
    }
    let mut got = 0usize;
    let mut consumed = false;
    let mut pair_ended = false;
    loop {
        let Ok(mut rx) = end.rx() else {
            // The socket is gone: end of stream, or its error.
            return if got > 0 {
                Ok(got as ssize_t)
            } else {
                tcp_end::after_read(fd, want, Ok(0))
            };
        };
        // SAFETY: as the caller promised.
        let took = unsafe { take_into(&mut rx, iov, n, got, peek) };
        let room_wake = took > 0 && !peek && rx.room_wake_needed();
        let finished = rx.avail() == 0 && rx.finished();
        got += took;
        let more_wanted = got == 0 || (waitall && got < want);
        let settle = if peek {
            Settle::Done
        } else {
            rx.settle(consumed)
        };
        drop(rx);
        consumed = false;
        // About to wait: the wait itself reads the byte.
        let will_wait = more_wanted && !finished && !pair_ended;
        if settle == Settle::DrainWakes && !will_wait {
            drain(fd);
        }
        // One byte wakes io-pkt for both reasons.
        if settle == Settle::Resignal || room_wake {
            wake(fd);
        }
        if !more_wanted {
            return Ok(got as ssize_t);
        }
        if !will_wait {
            return if got > 0 {
                Ok(got as ssize_t)
            } else {
                tcp_end::after_read(fd, want, Ok(0))
            };
        }
        // A non-blocking descriptor (or MSG_DONTWAIT) makes this EAGAIN.
        match wait_bytes(fd, flags) {
            Ok(0) => pair_ended = true,
            Ok(_) => consumed = true,
            Err(e) => {
                return if got > 0 {
                    Ok(got as ssize_t)
                } else if e == libc::EAGAIN {
                    Err(e)
                } else {
                    tcp_end::after_read(fd, want, Err(e))
                };
            }
        }
    }
}

/// A recv of no bytes: as on a kernel TCP socket, it waits for bytes (or
/// the end) to be there, then returns 0 (read and readv of no bytes
/// return at once; their callers do not come here).
fn zero_length(fd: c_int, end: AppEnd, flags: c_int) -> Result<ssize_t, c_int> {
    loop {
        let ready = end.rx().map_or(true, |rx| rx.avail() > 0 || rx.finished());
        if ready {
            return Ok(0);
        }
        if flags & libc::MSG_DONTWAIT != 0 || crate::nonblocking(fd) {
            return Err(libc::EAGAIN);
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        check(unsafe { libc::poll(&mut p, 1, -1) })?;
        if p.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) != 0 {
            return Ok(0);
        }
        if end.rx().is_ok_and(|rx| rx.avail() == 0 && !rx.finished()) {
            // A spare wake-up byte (see iopkt_shm::app): not worth taking
            // from under a reader; look again shortly.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// Blocks until io-pkt writes a wake-up byte (reading it, and any other
/// waiting); 0 when io-pkt's end is shut or gone.
fn wait_bytes(fd: c_int, flags: c_int) -> Result<ssize_t, c_int> {
    let recv = real!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
    let mut b = [0u8; 64];
    let flags = flags & libc::MSG_DONTWAIT;
    // SAFETY: a buffer of its length.
    check(unsafe { recv(fd, b.as_mut_ptr().cast(), b.len(), flags) })
}
