//! sendfile and splice onto the stack's sockets.
//!
//! A TCP socket is a stream socket pair underneath, so the kernel's own
//! sendfile and splice move the bytes to it (and from it) unchanged: the
//! C library's functions serve them. A UDP socket's pair carries framed
//! datagrams (docs/protocol.md), so raw bytes spliced into it would not be
//! a datagram: as the kernel does for a UDP socket (the whole transfer
//! corked into one datagram, udp(7) MSG_MORE), the bytes become one
//! datagram, at most 65 527 bytes (EMSGSIZE beyond). Splicing *from* a UDP
//! socket is refused (EINVAL), saying so once.
//!
//! A TCP socket with shared rings takes its bytes in the ring, not on the
//! pair: sendfile reads the file in pieces and writes them through it;
//! splice to or from it is refused (EINVAL), saying so once (such a
//! program runs with `IOPKT_RINGS=off`).

use libc::{c_int, c_uint, c_void, iovec, off_t, size_t, ssize_t};

use client::raw::MAX_DGRAM_PAYLOAD;

use crate::entry::{check, guard};
use crate::fdtable;
use crate::real::real;
use crate::{dgram, unsupported};

/// Reads up to `buf.len()` bytes from `fd`, at `offset` (pread) or at
/// its position, until end of file or the buffer is full.
fn fill(fd: c_int, buf: &mut [u8], offset: Option<off_t>) -> Result<usize, c_int> {
    let read = real!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
    let mut got = 0;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        let n = match offset {
            Some(o) => {
                let at = o.saturating_add(got as off_t);
                // SAFETY: a buffer of its length.
                unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at) }
            }
            // SAFETY: a buffer of its length.
            None => unsafe { read(fd, rest.as_mut_ptr().cast(), rest.len()) },
        };
        match check(n) {
            Ok(0) => break,
            Ok(n) => got += n as usize,
            Err(libc::EINTR) => {}
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(got)
}

/// Sends `data` as one datagram on UDP socket `fd`.
fn send_one(fd: c_int, data: &[u8]) -> Result<ssize_t, c_int> {
    let v = iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: one iovec over `data`.
    unsafe { dgram::send(fd, &v, 1, None, 0) }
}

/// sendfile onto UDP socket `out`.
///
/// # Safety
/// `offset` is the caller's (null or valid).
unsafe fn sendfile_dgram(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> Result<ssize_t, c_int> {
    if count > MAX_DGRAM_PAYLOAD {
        return Err(libc::EMSGSIZE);
    }
    let at = if offset.is_null() {
        None
    } else {
        // SAFETY: as the caller promised.
        Some(unsafe { *offset })
    };
    let mut buf = vec![0u8; count];
    let got = fill(input, &mut buf, at)?;
    let sent = send_one(out, buf.get(..got).unwrap_or_default());
    match (sent, at) {
        (Ok(_), Some(o)) => {
            // SAFETY: as the caller promised.
            unsafe { *offset = o.saturating_add(got as off_t) };
        }
        (Ok(_), None) => {}
        (Err(_), None) => {
            // Nothing was sent: the file position goes back, as if
            // nothing was read.
            // SAFETY: a plain call.
            unsafe { libc::lseek(input, -(got as off_t), libc::SEEK_CUR) };
        }
        (Err(_), Some(_)) => {}
    }
    sent.map(|_| got as ssize_t)
}

/// Bytes read from the file per write into a ring.
const RING_PIECE: usize = 128 * 1024;

/// sendfile onto a TCP socket with rings: the file in pieces through
/// them, as far as the socket takes them (all of it unless non-blocking).
///
/// # Safety
/// `offset` is the caller's (null or valid).
unsafe fn sendfile_ring(
    out: c_int,
    end: iopkt_shm::app::AppEnd,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> Result<ssize_t, c_int> {
    let mut at = if offset.is_null() {
        None
    } else {
        // SAFETY: as the caller promised.
        Some(unsafe { *offset })
    };
    let mut buf = vec![0u8; count.min(RING_PIECE)];
    let mut sent = 0usize;
    let mut result = Ok(());
    while sent < count {
        let want = (count - sent).min(buf.len());
        let got = match fill(input, buf.get_mut(..want).unwrap_or_default(), at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let v = iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: got,
        };
        // SAFETY: one iovec over `buf`.
        let took = match unsafe { crate::ring_io::send(out, end, &v, 1, 0) } {
            Ok(n) => n as usize,
            Err(e) => {
                result = Err(e);
                0
            }
        };
        sent += took;
        if let Some(o) = at.as_mut() {
            *o = o.saturating_add(took as off_t);
        }
        if took < got {
            if at.is_none() {
                // What was read and not sent goes back to the file.
                // SAFETY: a plain call.
                unsafe { libc::lseek(input, -((got - took) as off_t), libc::SEEK_CUR) };
            }
            break;
        }
    }
    if let Some(o) = at {
        // SAFETY: as the caller promised.
        unsafe { *offset = o };
    }
    match result {
        Err(e) if sent == 0 => Err(e),
        _ => Ok(sent as ssize_t),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    guard(-1, || {
        if fdtable::get(out).is_some_and(|k| k.dgram()) {
            return unsafe { sendfile_dgram(out, input, offset, count) };
        }
        if let Some(end) = crate::rings::get(out) {
            return unsafe { sendfile_ring(out, end, input, offset, count) };
        }
        let f = real!(sendfile: fn(c_int, c_int, *mut off_t, size_t) -> ssize_t);
        // SAFETY: the caller's arguments, unchanged.
        check(unsafe { f(out, input, offset, count) })
    })
}

/// off64_t is off_t on the 64-bit targets this library is built for.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    guard(-1, || {
        if fdtable::get(out).is_some_and(|k| k.dgram()) {
            return unsafe { sendfile_dgram(out, input, offset, count) };
        }
        if let Some(end) = crate::rings::get(out) {
            return unsafe { sendfile_ring(out, end, input, offset, count) };
        }
        let f = real!(sendfile64: fn(c_int, c_int, *mut off_t, size_t) -> ssize_t);
        // SAFETY: the caller's arguments, unchanged.
        check(unsafe { f(out, input, offset, count) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut libc::loff_t,
    fd_out: c_int,
    off_out: *mut libc::loff_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    guard(-1, || {
        if fdtable::get(fd_in).is_some_and(|k| k.dgram()) {
            return Err(unsupported::call("splice from a UDP socket", libc::EINVAL));
        }
        if crate::rings::get(fd_in).is_some() || crate::rings::get(fd_out).is_some() {
            return Err(unsupported::call(
                "splice on a TCP socket with shared rings (IOPKT_RINGS=off makes it plain)",
                libc::EINVAL,
            ));
        }
        if fdtable::get(fd_out).is_some_and(|k| k.dgram()) {
            // One end must be a pipe, which has no offset (ESPIPE, as the
            // kernel).
            if !off_in.is_null() || !off_out.is_null() {
                return Err(libc::ESPIPE);
            }
            let mut buf = vec![0u8; len.min(MAX_DGRAM_PAYLOAD)];
            let read = real!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
            // SAFETY: a buffer of its length.
            let got = check(unsafe { read(fd_in, buf.as_mut_ptr().cast(), buf.len()) })? as usize;
            if got == 0 {
                return Ok(0);
            }
            send_one(fd_out, buf.get(..got).unwrap_or_default())?;
            return Ok(got as ssize_t);
        }
        let f = real!(splice: fn(c_int, *mut libc::loff_t, c_int, *mut libc::loff_t, size_t, c_uint) -> ssize_t);
        // SAFETY: the caller's arguments, unchanged.
        check(unsafe { f(fd_in, off_in, fd_out, off_out, len, flags) })
    })
}
