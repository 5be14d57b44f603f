//! A TCP socket's bytes between its shared rings and the stack, within
//! one visit to the stack (docs/protocol.md, "Shared rings").
//!
//! The application's bytes are copied from its ring straight into the
//! stack's send buffer, and the stack's into the application's ring: no
//! system call moves a byte. The pair carries wake-up bytes only: from
//! the application (bytes in its ring while io-pkt slept, room it made in
//! the other ring, the filler of a full ring) and to it (one byte while
//! its ring holds bytes or has ended). Its end of stream (the
//! application's shutdown or last close) still means what it meant: the
//! FIN follows what the ring holds. The stack's end of stream and errors
//! show on the pair as without rings: our end shut for writing, or both
//! ways after an error (writes then fail with EPIPE, polls report a
//! hang-up).

use iopkt_shm::stack::StackEnd;
use iopkt_stack::tcp::sink::RecvSink;
use iopkt_stack::{Ctx, Stack};
use rustix::net::{SendFlags, Shutdown};

use super::{AppSock, CHUNK, is_again, would_block};
use crate::proto::errno::{self, errno_of};

/// The stack's in-order bytes straight into the ring as they arrive
/// (`iopkt_stack::tcp::sink`): one copy inside io-pkt instead of two.
struct RingSink(StackEnd);

impl RecvSink for RingSink {
    fn take(&mut self, data: &[u8]) -> usize {
        // A broken ring takes nothing: the bytes wait in the stack, and
        // the next turn finds the ring broken.
        self.0.rx_put(&[data]).unwrap_or(0)
    }
}

/// Both directions. True when a budget ran out with more perhaps waiting.
pub(super) fn pump(
    s: &mut AppSock,
    end: StackEnd,
    st: &mut Stack,
    c: &mut impl Ctx,
    scratch: &mut Vec<u8>,
) -> bool {
    if !s.sink_set && !s.stack_eof {
        // Once the socket has a connection.
        s.sink_set = st
            .socket_set_recv_sink(s.id, Some(Box::new(RingSink(end))))
            .is_ok();
    }
    let mut more = from_app(s, end, st, c);
    let was_eof = s.app_eof;
    read_pair(s, end, scratch);
    if s.app_eof && !was_eof {
        // The end of stream came: the FIN follows the ring's last bytes.
        more |= from_app(s, end, st, c);
    }
    more |= to_app(s, end, st, c);
    if s.pair_shut {
        // The connection ended by an error: writes fail from now on, as
        // the pair says (EPIPE).
        end.tx_close();
    }
    if (s.stack_eof || end.rx_unread() > 0) && end.rx_signal() {
        // The descriptor turns readable (see iopkt_shm::app).
        let _ = rustix::net::send(&s.end, &[1], SendFlags::NOSIGNAL | SendFlags::DONTWAIT);
    }
    more
}

/// Application to stack.
fn from_app(s: &mut AppSock, end: StackEnd, st: &mut Stack, c: &mut impl Ctx) -> bool {
    let id = s.id;
    let mut budget = CHUNK;
    loop {
        if s.send_dead {
            // Refused for good: the application's bytes are dropped, and
            // its writes fail from now on.
            if end.tx_discard().is_err() {
                broken(s);
            }
            end.tx_close();
            return false;
        }
        let Ok(pending) = end.tx_pending() else {
            broken(s);
            continue;
        };
        if pending == 0 {
            if s.app_eof {
                if !s.fin_sent {
                    s.fin_sent = true;
                    // The application's shutdown(SHUT_WR) or close: our FIN
                    // follows the data (RFC 9293 3.6).
                    let _ = st.socket_shutdown(c, id, false, true);
                }
                return false;
            }
            // Emptied: io-pkt watches the ring a while before it sleeps
            // (busy_poll.rs decides).
            s.awake = true;
            return false;
        }
        if budget == 0 {
            return true;
        }
        let mut bad = false;
        let r = st.socket_send_with(c, id, budget.min(pending), |a, b| {
            end.tx_take(&mut [a, b]).unwrap_or_else(|_| {
                bad = true;
                0
            })
        });
        if bad {
            broken(s);
            continue;
        }
        match r {
            // The stack is full: its room brings news.
            Err(e) if would_block(&e) => return false,
            Err(e) => {
                super::stream::refused(s, &e);
                if s.error.is_some() {
                    // A reset or a timeout: the pair says so to writes
                    // (EPIPE) and, after the ring's last bytes, to reads.
                    super::stream::end_pair(s);
                }
            }
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

/// The pair's bytes from the application are all wake-ups: read them
/// out, except the filler of a full ring, which stays until there is room
/// (so the descriptor polls unwritable until then). Reading notices the
/// application's end of stream.
fn read_pair(s: &mut AppSock, end: StackEnd, scratch: &mut Vec<u8>) {
    let unfill = end.tx_unfill().unwrap_or(true);
    if !unfill && (!s.readable || end.tx_hold_pair().unwrap_or(false)) {
        return;
    }
    scratch.resize(scratch.len().max(4096), 0);
    loop {
        match rustix::io::read(&s.end, &mut scratch[..]) {
            Ok(0) => {
                s.app_eof = true;
                return;
            }
            Ok(n) if n < scratch.len() && !s.app_done_writing => {
                // A stream socket's read stops short only when its queue
                // is empty (stream.rs says more): no call to see EAGAIN.
                s.readable = false;
                return;
            }
            Ok(_) => {}
            Err(e) if is_again(e) => {
                if e == rustix::io::Errno::AGAIN {
                    s.readable = false;
                    return;
                }
            }
            Err(_) => {
                s.app_eof = true;
                return;
            }
        }
    }
}

/// Stack to application, as far as its ring has room.
fn to_app(s: &mut AppSock, end: StackEnd, st: &mut Stack, c: &mut impl Ctx) -> bool {
    let id = s.id;
    let mut budget = CHUNK;
    while !s.stack_eof {
        if budget == 0 {
            return true;
        }
        let room = match end.rx_room() {
            Ok(0) => match end.rx_sleep() {
                // The application's read brings a wake-up byte.
                Ok(true) => return false,
                Ok(false) => continue,
                Err(_) => 0,
            },
            Ok(n) => n,
            Err(_) => 0,
        };
        if room == 0 {
            broken(s);
            return false;
        }
        let mut offered = false;
        let got = st.socket_recv_with(c, id, budget.min(room), |a, b| {
            offered = true;
            end.rx_put(&[a, b]).unwrap_or(0)
        });
        match got {
            Ok(r) if offered => {
                if r.len == 0 {
                    // Room was checked: nothing moved means a broken ring.
                    broken(s);
                    return false;
                }
                budget = budget.saturating_sub(r.len);
            }
            // Nothing was readable: end of stream. It is said in the ring,
            // and on the pair as without rings (our end shut for writing,
            // so the descriptor polls POLLIN|POLLRDHUP for good).
            Ok(_) => {
                s.stack_eof = true;
                end.rx_finish();
                let _ = rustix::net::shutdown(&s.end, Shutdown::Write);
            }
            Err(e) if would_block(&e) && !s.send_dead => return false,
            Err(e) => {
                if !would_block(&e) {
                    s.error.get_or_insert(errno_of(&e));
                }
                s.stack_eof = true;
                end.rx_finish();
                super::stream::end_pair(s);
                return true;
            }
        }
    }
    false
}

/// The application broke its ring's counters: the socket is finished for
/// it, as after a reset.
fn broken(s: &mut AppSock) {
    if !s.send_dead {
        tracing::warn!(
            "resource manager: socket {}: the application broke its shared ring",
            s.id.0
        );
    }
    s.error.get_or_insert(errno::EPROTO);
    s.send_dead = true;
    s.app_eof = true;
    s.stack_eof = true;
    if let Some(r) = &s.ring {
        r.end.rx_finish();
        r.end.tx_close();
    }
    super::stream::end_pair(s);
}
