//! A TCP socket's bytes between its pair and the stack, within one visit
//! to the stack.
//!
//! Bytes are read from the pair straight into the stack's send buffer and
//! written into the pair straight from its receive buffer
//! (`Stack::socket_send_with` / `socket_recv_with`): io-pkt holds no stream
//! bytes of its own, and each side takes only what the other has room for,
//! so a full stack fills the pair (the application blocks) and a full pair
//! leaves the bytes in the stack (its window closes).

use std::io::{IoSlice, IoSliceMut};

use iopkt_stack::{Ctx, Error, Stack};
use rustix::net::{SendFlags, Shutdown};

use super::{AppSock, CHUNK, is_again, would_block};
use crate::proto::errno::errno_of;

/// Application to stack. True when the turn's budget ran out with more
/// perhaps waiting.
pub(super) fn from_app(
    s: &mut AppSock,
    st: &mut Stack,
    c: &mut impl Ctx,
    scratch: &mut Vec<u8>,
) -> bool {
    let id = s.id;
    let mut budget = CHUNK;
    while !s.app_eof {
        if budget == 0 {
            return true;
        }
        if !s.readable {
            // Drained since the last readiness event (edge-triggered):
            // the next byte the application writes brings another.
            return false;
        }
        if s.send_dead {
            // Refused for good: the application's bytes are read and
            // dropped, so its writes do not block forever.
            discard(s, scratch);
            continue;
        }
        let end = &s.end;
        let mut read: Option<(usize, Result<usize, rustix::io::Errno>)> = None;
        let sent = st.socket_send_with(c, id, budget, |a, b| {
            let offered = a.len() + b.len();
            let r = rustix::io::readv(end, &mut [IoSliceMut::new(a), IoSliceMut::new(b)]);
            let n = r.unwrap_or(0);
            read = Some((offered, r));
            n
        });
        match sent {
            // The stack is full: its room brings news.
            Err(e) if would_block(&e) => return false,
            Err(e) => {
                refused(s, &e);
                continue;
            }
            Ok(_) => {}
        }
        match read {
            None => return false,
            Some((_, Ok(0))) => {
                s.app_eof = true;
                // The application's shutdown(SHUT_WR) or close: our FIN
                // follows the data (RFC 9293 3.6).
                let _ = st.socket_shutdown(c, id, false, true);
            }
            Some((offered, Ok(n))) => {
                budget = budget.saturating_sub(n);
                if n < offered && !s.app_done_writing {
                    // A stream socket's read stops short only when its
                    // queue is empty: no need for a call that would say
                    // EAGAIN. Bytes arriving since raise a new edge. Not so
                    // for end of stream once the application stopped
                    // writing: the event saying so came already, so read
                    // on until it shows.
                    s.readable = false;
                }
            }
            Some((_, Err(e))) if is_again(e) => {
                if e == rustix::io::Errno::AGAIN {
                    s.readable = false;
                }
                return false;
            }
            Some((_, Err(_))) => s.app_eof = true,
        }
    }
    false
}

/// Reads and drops what the application wrote after the stack refused its
/// data for good.
fn discard(s: &mut AppSock, scratch: &mut Vec<u8>) {
    scratch.resize(CHUNK, 0);
    match rustix::io::read(&s.end, scratch) {
        Ok(0) => s.app_eof = true,
        Ok(_) => {}
        Err(e) if is_again(e) => {
            if e == rustix::io::Errno::AGAIN {
                s.readable = false;
            }
        }
        Err(_) => s.app_eof = true,
    }
}

/// The stack refused the application's data for good (a reset, a timeout,
/// the connection closed): later bytes are dropped.
pub(super) fn refused(s: &mut AppSock, e: &Error) {
    // EPIPE (the connection is closed) is no pending error; a reset or a
    // timeout is (SO_ERROR, read).
    if !matches!(e, Error::BrokenPipe) {
        s.error.get_or_insert(errno_of(e));
    }
    s.send_dead = true;
}

/// Stack to application, only as far as the pair takes the bytes. True
/// when the turn's budget ran out or the connection ended with more to
/// tell.
pub(super) fn to_app(s: &mut AppSock, st: &mut Stack, c: &mut impl Ctx) -> bool {
    let id = s.id;
    let mut budget = CHUNK;
    let mut more = false;
    while !s.stack_eof {
        if budget == 0 {
            return true;
        }
        if !s.writable && !s.send_dead {
            return more;
        }
        let end = &s.end;
        let mut wrote: Option<(usize, Result<usize, rustix::io::Errno>)> = None;
        let got = st.socket_recv_with(c, id, budget, |a, b| {
            let offered = a.len() + b.len();
            let r = rustix::net::sendmsg(
                end,
                &[IoSlice::new(a), IoSlice::new(b)],
                &mut Default::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            );
            let n = r.unwrap_or(0);
            wrote = Some((offered, r));
            n
        });
        match (got, wrote) {
            (Ok(_), Some((offered, Ok(n)))) => {
                budget = budget.saturating_sub(n);
                if n < offered {
                    // A short write: the pair is full.
                    s.writable = false;
                    return more;
                }
            }
            (Ok(_), Some((_, Err(e)))) if is_again(e) => {
                if e == rustix::io::Errno::AGAIN {
                    s.writable = false;
                }
                return more;
            }
            // The application's end is gone for reading: the stream is
            // over for it.
            (Ok(_), Some((_, Err(_)))) => s.stack_eof = true,
            // Nothing was readable: end of stream.
            (Ok(_), None) => {
                s.stack_eof = true;
                let _ = rustix::net::shutdown(&s.end, Shutdown::Write);
            }
            // Once the stack refused data for good, nothing more comes
            // either: the connection is over.
            (Err(e), _) if would_block(&e) && !s.send_dead => return more,
            (Err(e), _) => {
                if !would_block(&e) {
                    s.error.get_or_insert(errno_of(&e));
                }
                s.stack_eof = true;
                end_pair(s);
                more = true;
            }
        }
    }
    more
}

/// The connection ended by an error (a reset, a timeout) or is closed for
/// sending: io-pkt's end is shut both ways once what came before is in
/// the pair. The application then reads what is left, then end of stream
/// (which the library turns into the pending error, as the kernel's read
/// returns ECONNRESET), and its writes fail with EPIPE (SIGPIPE unless
/// MSG_NOSIGNAL), as on a kernel socket after a reset. Our end then
/// reports a hang-up and the socket closes, its names and error kept
/// (`Tomb`).
pub(super) fn end_pair(s: &mut AppSock) {
    if s.pair_shut {
        return;
    }
    let how = if s.error.is_some() || s.send_dead {
        s.pair_shut = true;
        Shutdown::Both
    } else {
        Shutdown::Write
    };
    let _ = rustix::net::shutdown(&s.end, how);
}
