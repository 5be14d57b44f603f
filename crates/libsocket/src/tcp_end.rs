//! How the end of a TCP connection looks to reads, as on a kernel socket
//! (tcp(7), RFC 9293 section 3.10.7.3): after a reset, a read returns the
//! data that arrived before it, then fails once with ECONNRESET (the
//! pending error, which that read consumes), then returns 0.
//!
//! io-pkt shuts its end of the pair when the connection ends with an
//! error (docs/protocol.md, "TCP data"), so the read sees end of stream;
//! the library then asks the stack once for the pending error and turns
//! that end of stream into it. Reads that return data never ask: the
//! question is on the path of a read that returned 0, once per descriptor.
//! A read failing with ECONNRESET from the pair itself (io-pkt closed its
//! end after a failed connect) is turned into the connection's real error
//! (ECONNREFUSED, ETIMEDOUT...) the same way.

use std::os::fd::BorrowedFd;

use client::raw::{self, SockOptNameWire as N, SockOptWire as O};
use libc::{c_int, ssize_t};

use crate::fdtable;

/// Whether `fd` is shut both ways (poll reports a hang-up). io-pkt shuts
/// both directions of its end when the connection ended with an error and
/// closes its end after a failed connect: the application's end is then
/// hung up. After a clean end (FIN) io-pkt shuts only its sending side,
/// which hangs the application's end up only if the application shut its
/// own sending side too; then the stack is asked, as for an error.
fn both_shut(fd: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd on the caller's open descriptor; no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    match n {
        0 => false,
        1 => p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        // Cannot tell: ask io-pkt.
        _ => true,
    }
}

/// The pending error of TCP socket `fd`, asked for at most once.
fn pending(fd: c_int) -> Option<c_int> {
    // A clean end of stream has no error to ask io-pkt for: that saves a
    // round trip to it on every connection's last read.
    if !both_shut(fd) {
        return None;
    }
    if !fdtable::take_end_check(fd) {
        return None;
    }
    // SAFETY: the caller's open descriptor, for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    match raw::getopt(b, N::Error) {
        Ok(O::Error(c)) if c != 0 => Some(c),
        // No error, or the stack cannot say: the end of stream stands.
        _ => None,
    }
}

/// The result of reading up to `len` bytes from TCP socket `fd` of ours,
/// as the kernel's read would have it.
pub fn after_read(fd: c_int, len: usize, r: Result<ssize_t, c_int>) -> Result<ssize_t, c_int> {
    match r {
        Ok(0) if len > 0 => match pending(fd) {
            Some(e) => Err(e),
            None => Ok(0),
        },
        Err(libc::ECONNRESET) => Err(pending(fd).unwrap_or(libc::ECONNRESET)),
        other => other,
    }
}

/// The total length of an iovec array (for the rare read that returned 0).
///
/// # Safety
/// `iov` must point to `n` iovecs, or be null.
pub unsafe fn iov_len(iov: *const libc::iovec, n: usize) -> usize {
    if iov.is_null() {
        return 0;
    }
    // SAFETY: as the caller promised.
    let v = unsafe { std::slice::from_raw_parts(iov, n.min(1024)) };
    v.iter()
        .map(|e| e.iov_len)
        .fold(0usize, usize::saturating_add)
}
