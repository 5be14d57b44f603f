//! Keeps a connecting TCP socket's descriptor unwritable until the
//! handshake ends, so that poll, select and epoll in the application
//! report it writable when connect(2)'s outcome is known, as POSIX says of
//! a non-blocking connect ("...shall be marked writable when the
//! connection is established or the attempt fails").
//!
//! A Unix stream socket is writable (poll) while what it has sent and its
//! peer has not read yet takes at most a quarter of its send buffer, and a
//! send blocks once it fills the buffer (Linux `unix_writable`,
//! `sock_alloc_send_pskb`). So when a connect starts, io-pkt shrinks the
//! application end's send buffer to the minimum and fills it with bytes
//! of its own, sent from a copy of the application's end it keeps for the
//! time being: the application's descriptor (the same open file
//! description all along, so epoll registrations stay valid) is then
//! neither writable to poll nor to write, like a kernel socket in
//! SYN-SENT.
//!
//! - The handshake succeeds: io-pkt restores the send buffer and reads the
//!   filler back; the descriptor turns writable (with a wake-up).
//! - It fails: io-pkt closes its end with the filler unread. Linux then
//!   marks the application's end with a pending ECONNRESET and shuts it
//!   both ways, so poll reports POLLOUT|POLLERR|POLLHUP|POLLIN, as for a
//!   kernel socket whose connect was refused; the library reports the
//!   real error (SO_ERROR, read).
//!
//! Costs and limits: about 4.5 KiB of filler per connecting socket, and
//! while the attempt lasts io-pkt holds a copy of the application's
//! descriptor, so a close by the application is noticed only when the
//! attempt ends. Bytes written on the descriptor before connect (the
//! kernel refuses those) leave the gate open: the descriptor is then
//! writable at once, as before.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::SendFlags;

/// Filler written at most (the minimum send buffer takes a few KiB; this
/// only bounds a kernel that would behave otherwise).
const MAX_FILLER: usize = 256 * 1024;

/// A shut gate: what it takes to open it again.
pub(crate) struct Gate {
    /// A copy of the application's end, to restore its send buffer.
    app_end: OwnedFd,
    /// The application end's send buffer size before (as getsockopt
    /// reports it: twice what setsockopt was given).
    sndbuf: usize,
    /// Bytes of filler waiting at the head of io-pkt's end.
    filler: usize,
}

fn writable(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd on a descriptor we own; no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLOUT != 0
}

impl Gate {
    /// Shuts the gate on `app_end` (the descriptor that came with the
    /// Connect request), whose peer is `mine`. `None` if it cannot be shut;
    /// the descriptor then stays writable as before.
    pub(crate) fn shut(app_end: &OwnedFd, mine: &OwnedFd) -> Option<Gate> {
        if rustix::io::ioctl_fionread(mine).ok()? != 0 {
            return None;
        }
        let copy = app_end.try_clone().ok()?;
        let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&copy).ok()?;
        // The kernel raises a tiny value to its minimum (SOCK_MIN_SNDBUF).
        rustix::net::sockopt::set_socket_send_buffer_size(&copy, 1).ok()?;
        let mut gate = Gate {
            app_end: copy,
            sndbuf,
            filler: 0,
        };
        let zeros = [0u8; 4096];
        while gate.filler < MAX_FILLER {
            match rustix::net::send(
                gate.app_end.as_fd(),
                &zeros,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(n) => gate.filler += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    gate.open(mine);
                    return None;
                }
            }
        }
        if writable(&gate.app_end) {
            gate.open(mine);
            return None;
        }
        Some(gate)
    }

    /// The connection is established: the descriptor turns writable.
    pub(crate) fn open(self, mine: &OwnedFd) {
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&self.app_end, self.sndbuf / 2);
        // The filler is all queued, first in line: the application could
        // not write while the gate was shut.
        let mut left = self.filler;
        let mut buf = [0u8; 4096];
        while left > 0 {
            let n = left.min(buf.len());
            match rustix::io::read(mine, buf.get_mut(..n).unwrap_or_default()) {
                Ok(0) => break,
                Ok(got) => left = left.saturating_sub(got),
                Err(Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }

    /// The attempt failed: io-pkt's end is about to be closed with the
    /// filler unread, which is what marks the application's end with an
    /// error (see the module's text). Only the copy goes here.
    pub(crate) fn fail(self) {}
}
