//! Application sockets: each is a Unix socket pair, one end in the
//! application, the other here, registered in the server's loop. Bytes
//! (TCP) or framed datagrams (UDP) move between that end and the stack's
//! socket in bounded chunks; a listener's end carries one notification
//! byte while connections wait to be accepted.
//!
//! A request about a socket carries the application's end (SCM_RIGHTS);
//! the socket is found by that end's (st_dev, st_ino), recorded when the
//! pair was made. Whoever holds the descriptor may use the socket, as with
//! a kernel socket; the socket closes when every copy of the application's
//! end is closed (the server's end then reports a hang-up).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use iopkt_stack::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::transport::SockType;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, Shutdown, SocketFlags, SocketType};

mod ring;
mod stream;

use super::arenas::RingSlot;
use super::conn::Conn;
use super::connect_gate::Gate;
use super::{Loop, StackHost};
use crate::proto::errno::{self, errno_of};
use crate::proto::{
    DGRAM_HEADER_LEN, DGRAM_TRUNCATED, DgramHeader, MAX_DGRAM_PAYLOAD, Request, Response,
    SockOptNameWire, SockOptWire, SocketInfoWire, TcpInfoWire,
};

/// Application sockets one client connection may create.
pub const MAX_APP_SOCKETS_PER_CLIENT: usize = 4096;
/// Application sockets in all.
pub const MAX_APP_SOCKETS: usize = 65_536;
/// Bytes moved per socket and direction per wake-up, so that one busy
/// socket cannot starve the others.
const CHUNK: usize = 64 * 1024;
/// The scratch buffer's size for datagrams: the largest message either way.
const DGRAM_SCRATCH: usize = DGRAM_HEADER_LEN + MAX_DGRAM_PAYLOAD + 1;
/// `ConnectWait` requests waiting on one socket at most.
const MAX_WAITERS: usize = 16;
/// Finished TCP connections remembered for their names at most.
const MAX_TOMBS: usize = 4096;

/// What is left of a TCP connection whose both directions are shut: a
/// pair with both halves shut reports a hang-up just as one whose
/// application end is closed, so the stack's socket is closed then, but the
/// application may still ask for its names and SO_ERROR (as after a kernel
/// connection's FIN exchange). Kept in a bounded table, oldest first out.
pub(crate) struct Tomb {
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    error: Option<i32>,
    /// Ended by a failed connect (what a later `ConnectWait` says once
    /// the error was read).
    connect_failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Stream,
    Listener,
    Dgram,
}

pub(crate) struct AppSock {
    id: SocketId,
    /// io-pkt's end of the pair (non-blocking).
    end: OwnedFd,
    token: Token,
    class: Class,
    /// The connection that made it (its socket count).
    creator: Token,
    key: (u64, u64),
    /// The application shut its sending side (or closed): passed on.
    app_eof: bool,
    /// The stack refused the data for good (reset): the application's
    /// further bytes are read and dropped.
    send_dead: bool,
    /// Bytes (stream) or one message (datagram) for the application that
    /// did not fit its end yet.
    to_app: Vec<u8>,
    to_off: usize,
    /// End of the stack's stream passed on (our end shut for writing).
    stack_eof: bool,
    /// Datagram: one message from the application waiting for room.
    /// A datagram the stack could not take yet.
    dgram_out: Option<PendingDgram>,
    /// Listener: a notification byte is out and not yet answered by `Accept`.
    announced: bool,
    /// `ConnectWait` requests: (connection, request id).
    waiters: Vec<(Token, u32)>,
    /// The error that ended the connection, for SO_ERROR.
    error: Option<i32>,
    /// A connect under way keeps the application's end unwritable.
    gate: Option<Gate>,
    /// The connect failed: the socket closes (its end with the gate's
    /// filler unread).
    connect_failed: bool,
    /// Both directions of our end are shut after the connection ended
    /// with an error (reset, timeout).
    pair_shut: bool,
    /// Bytes held here, as counted against the creator's share.
    held: usize,
    /// Our end may have bytes to read / room to write: set by readiness
    /// events (edge-triggered), cleared when a read or write would block,
    /// so a pump started by stack news makes no call bound to fail.
    readable: bool,
    writable: bool,
    /// A readiness event said the application's end stopped writing (shut
    /// down or closed): end of stream waits behind what is left, and no
    /// further event will announce it.
    app_done_writing: bool,
    /// TCP with shared rings: the bytes go through them, the pair carries
    /// wake-ups only (appsock/ring.rs).
    ring: Option<RingSlot>,
    /// Rings: the application's end of stream was passed on (FIN).
    fin_sent: bool,
    /// Rings: the stack puts in-order bytes straight into the ring.
    sink_set: bool,
    /// Rings: the last pump emptied the application's ring without
    /// asking for a wake-up: the loop watches it (busy_poll.rs) or puts
    /// it to sleep.
    awake: bool,
}

impl AppSock {
    /// io-pkt's handle on the socket's ring, if it has one.
    pub(crate) fn ring_end(&self) -> Option<iopkt_shm::stack::StackEnd> {
        self.ring.as_ref().map(|r| r.end)
    }

    /// Bytes held here for the application, either way.
    fn held_now(&self) -> usize {
        self.to_app.len().saturating_sub(self.to_off)
            + self.dgram_out.as_ref().map_or(0, |(_, _, d)| d.len())
    }
}

/// What a pump found.
struct Pumped {
    close: bool,
    more: bool,
}

/// A datagram from the application: its destination (None: the peer),
/// the source it chose (IP_PKTINFO: address and interface) and payload.
type PendingDgram = (Option<SocketAddr>, Option<(IpAddr, u32)>, Vec<u8>);

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(errno::EINVAL)
}

/// (st_dev, st_ino) of a descriptor.
fn key_of(fd: &OwnedFd) -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Whether our end reports a hang-up: the application closed every copy
/// of its end (or both directions are shut).
fn hung_up(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a descriptor we own, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLHUP != 0
}

fn would_block(e: &Error) -> bool {
    matches!(
        e,
        Error::WouldBlock | Error::InProgress | Error::NotConnected | Error::Already
    )
}

fn is_again(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR
}

/// A new pair: (io-pkt's end, non-blocking; the application's end).
fn make_pair(stream: bool) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let ty = if stream {
        SocketType::STREAM
    } else {
        SocketType::SEQPACKET
    };
    let (mine, theirs) =
        rustix::net::socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)?;
    // Non-blocking on our end only: the flag belongs to the open file
    // description, which the application's end must not share.
    rustix::io::ioctl_fionbio(&mine, true)?;
    Ok((mine, theirs))
}

impl<H: StackHost> Loop<H> {
    /// Whether `token` is one of the application sockets' ends.
    pub(crate) fn is_app_token(&self, token: Token) -> bool {
        self.app_tokens.contains_key(&token)
    }

    /// Readiness on our end of a pair.
    pub(crate) fn app_event(&mut self, token: Token, ev: &mio::event::Event) {
        if let Some(&id) = self.app_tokens.get(&token) {
            if let Some(s) = self.apps.get_mut(&id) {
                // A hang-up or an error is news for both directions: the
                // next call reports it.
                let news = ev.is_read_closed() || ev.is_write_closed() || ev.is_error();
                s.readable |= ev.is_readable() || news;
                s.app_done_writing |= ev.is_read_closed();
                s.writable |= ev.is_writable() || news;
            }
            self.pump(id);
        }
    }

    /// Whether `id` is an application socket (its news is pumped).
    pub(crate) fn is_app_sock(&self, id: SocketId) -> bool {
        self.apps.contains_key(&id)
    }

    /// Makes the pair for stack socket `id` and starts serving it. On
    /// failure the stack socket is closed.
    fn adopt(
        &mut self,
        creator: Token,
        id: SocketId,
        class: Class,
        ring: Option<RingSlot>,
    ) -> Result<OwnedFd, Response> {
        let fail = |this: &mut Self, what: String| {
            this.host.socket_close(&[id]);
            Response::error(errno::ENOBUFS, what)
        };
        let (mine, theirs) = match make_pair(class != Class::Dgram) {
            Ok(p) => p,
            Err(e) => {
                let code = io_errno(&e);
                self.host.socket_close(&[id]);
                return Err(Response::error(
                    code,
                    format!("cannot make a socket pair: {e}"),
                ));
            }
        };
        let Some(key) = key_of(&theirs) else {
            if let Some(r) = ring {
                self.arenas.give_back(r, false);
            }
            return Err(fail(self, "cannot identify a socket pair".into()));
        };
        if ring.is_some() {
            // Only wake-up bytes and a full ring's filler go this way: the
            // smallest send buffer makes a few bytes of filler enough to
            // make the descriptor poll unwritable (see connect_gate.rs on
            // how Linux decides).
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&theirs, 1);
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let raw = mine.as_raw_fd();
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&raw),
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            if let Some(r) = ring {
                self.arenas.give_back(r, false);
            }
            return Err(fail(self, format!("cannot watch a socket pair: {e}")));
        }
        self.app_tokens.insert(token, id);
        self.app_keys.insert(key, id);
        *self.app_counts.entry(creator).or_default() += 1;
        self.apps.insert(
            id,
            AppSock {
                id,
                end: mine,
                token,
                class,
                creator,
                key,
                app_eof: false,
                send_dead: false,
                to_app: Vec::new(),
                to_off: 0,
                stack_eof: false,
                dgram_out: None,
                announced: false,
                waiters: Vec::new(),
                error: None,
                gate: None,
                connect_failed: false,
                pair_shut: false,
                held: 0,
                readable: true,
                writable: true,
                app_done_writing: false,
                ring,
                fin_sent: false,
                sink_set: false,
                awake: false,
            },
        );
        Ok(theirs)
    }

    fn room_for_socket(&self, creator: Token) -> Result<(), Response> {
        let mine = self.app_counts.get(&creator).copied().unwrap_or(0);
        if mine >= MAX_APP_SOCKETS_PER_CLIENT || self.apps.len() >= MAX_APP_SOCKETS {
            return Err(Response::error(
                errno::EMFILE,
                format!(
                    "too many sockets ({MAX_APP_SOCKETS_PER_CLIENT} per connection, {MAX_APP_SOCKETS} in all)"
                ),
            ));
        }
        Ok(())
    }

    /// Closes an application socket: the stack's socket goes (a TCP
    /// connection finishes in the background, as the kernel's do).
    fn drop_app(&mut self, s: AppSock) {
        if s.class == Class::Stream {
            let id = s.id;
            let (local, peer) = self
                .host
                .with_stack(|st, _| (st.socket_local(id), st.socket_peer(id)));
            if self.tomb_order.len() >= MAX_TOMBS
                && let Some(old) = self.tomb_order.pop_front()
            {
                self.tombs.remove(&old);
            }
            if self
                .tombs
                .insert(
                    s.key,
                    Tomb {
                        local,
                        peer,
                        error: s.error,
                        connect_failed: s.connect_failed,
                    },
                )
                .is_none()
            {
                self.tomb_order.push_back(s.key);
            }
        }
        self.account_held(s.creator, s.held, 0);
        if let Some(r) = &s.ring
            && !s.stack_eof
            && !s.pair_shut
            && r.end.rx_unread() > 0
        {
            // The application closed with bytes unread (a hang-up before
            // the stack's end of stream can only mean its last close): as
            // a kernel socket, the connection is reset, not closed
            // (RFC 9293 section 3.10.4, RFC 2525 2.17). The stack's own
            // close does so for bytes in its buffer; these are in the ring.
            let id = s.id;
            self.host.with_stack(|st, c| {
                st.socket_setopt(c, id, iopkt_stack::transport::SockOpt::Linger(Some(0)))
                    .ok()
            });
        }
        if s.sink_set {
            // The connection may outlive the socket (its FIN exchange):
            // its bytes must not reach a slot that serves another socket.
            let id = s.id;
            self.host
                .with_stack(|st, _| st.socket_set_recv_sink(id, None).ok());
        }
        if let Some(r) = s.ring {
            // A hang-up on the pair means the application closed its last
            // descriptor, or that both directions are shut while it may
            // still hold one: then bytes it has not read yet must stay
            // until it does (arenas.rs). An empty ring can serve another
            // socket at once: the old descriptor then finds its slot gone
            // and reads end of stream.
            let may_read = r.end.rx_unread() > 0;
            self.arenas.give_back(r, may_read);
        }
        let raw = s.end.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        self.app_tokens.remove(&s.token);
        self.app_keys.remove(&s.key);
        if let Some(n) = self.app_counts.get_mut(&s.creator) {
            *n = n.saturating_sub(1);
        }
        for (t, rid) in s.waiters {
            self.deferred.push((
                t,
                rid,
                Response::error(errno::EBADF, "the socket was closed"),
            ));
        }
        self.host.socket_close(&[s.id]);
    }

    /// Closes every application socket (the server stops).
    pub(crate) fn close_all_apps(&mut self) {
        let ids: Vec<SocketId> = self.apps.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.apps.remove(&id) {
                self.drop_app(s);
            }
        }
    }

    /// Moves what can be moved for socket `id`, and closes it if its
    /// application is gone.
    pub(crate) fn pump(&mut self, id: SocketId) {
        let Some(mut s) = self.apps.remove(&id) else {
            return;
        };
        let p = match s.class {
            Class::Stream => self.pump_stream(&mut s),
            Class::Dgram => self.pump_dgram(&mut s),
            Class::Listener => self.pump_listener(&mut s),
        };
        self.answer_waiters(&mut s);
        let held = s.held_now();
        self.account_held(s.creator, s.held, held);
        s.held = held;
        if p.close {
            self.drop_app(s);
            return;
        }
        if p.more {
            self.again.insert(id);
        }
        let awake = std::mem::take(&mut s.awake);
        let end = s.ring_end();
        self.apps.insert(id, s);
        if awake
            && let Some(end) = end
            && !self.keep_hot(id)
        {
            // Not watched: asleep, woken by the application's next bytes.
            if !end.tx_sleep().unwrap_or(true) {
                self.again.insert(id);
            }
        }
    }

    fn answer_waiters(&mut self, s: &mut AppSock) {
        if s.waiters.is_empty() {
            return;
        }
        if let Some(r) = self.connect_outcome(s) {
            for (t, rid) in s.waiters.drain(..) {
                self.deferred.push((t, rid, r.clone()));
            }
        }
    }

    /// `Ok` once connected, the error that ended the attempt, or `None`
    /// while it goes on.
    fn connect_outcome(&mut self, s: &mut AppSock) -> Option<Response> {
        let id = s.id;
        let (rd, err) = self.host.with_stack(|st, _| {
            let rd = st.socket_readiness(id);
            let err = if rd.error {
                st.socket_take_error(id)
            } else {
                None
            };
            (rd, err)
        });
        if let Some(e) = err {
            s.error = Some(errno_of(&e));
            return Some(Response::error(errno_of(&e), format!("connect: {e}")));
        }
        if let Some(code) = s.error {
            return Some(Response::error(code, "connect failed"));
        }
        if rd.writable {
            return Some(Response::Ok);
        }
        if rd.hup {
            return Some(Response::error(errno::ECONNREFUSED, "connection closed"));
        }
        None
    }

    /// A connect under way: the gate opens when it ends. `Some` when
    /// there is nothing more to do this turn.
    fn pump_gate(&mut self, s: &mut AppSock) -> Option<Pumped> {
        let gate = s.gate.take()?;
        match self.connect_outcome(s) {
            None => {
                s.gate = Some(gate);
                Some(Pumped {
                    close: false,
                    more: false,
                })
            }
            Some(Response::Ok) => {
                gate.open(&s.end);
                if let Some(r) = &s.ring {
                    r.end.tx_gate(false);
                }
                None
            }
            Some(other) => {
                if s.error.is_none() {
                    let code = match other {
                        Response::Error(e) => e.code,
                        _ => errno::ECONNREFUSED,
                    };
                    s.error = Some(code);
                }
                gate.fail();
                if let Some(r) = &s.ring {
                    // Writes fail as the pair says (the attempt's error).
                    r.end.tx_close();
                    r.end.rx_finish();
                }
                s.connect_failed = true;
                Some(Pumped {
                    close: true,
                    more: false,
                })
            }
        }
    }

    fn pump_stream(&mut self, s: &mut AppSock) -> Pumped {
        if let Some(p) = self.pump_gate(s) {
            return p;
        }
        // Both directions in one visit to the stack: each visit costs a
        // lock and a look at every timer.
        let host = self.host.clone();
        let scratch = &mut self.scratch;
        let ring_end = s.ring.as_ref().map(|r| r.end);
        let more = host.with_stack(|st, c| match ring_end {
            Some(end) => ring::pump(s, end, st, c, scratch),
            None => {
                let more = stream::from_app(s, st, c, scratch);
                stream::to_app(s, st, c) || more
            }
        });
        // With rings, the application's last bytes may still wait for room
        // in the stack when its end closes: the socket stays until they
        // are in.
        let drained = s.send_dead
            || s.ring
                .as_ref()
                .is_none_or(|r| r.end.tx_pending().is_ok_and(|n| n == 0));
        let close = s.app_eof && drained && hung_up(&s.end);
        Pumped { close, more }
    }

    fn pump_listener(&mut self, s: &mut AppSock) -> Pumped {
        // Nothing is expected from the application on a listener's pair:
        // drain it to notice its end closing.
        let mut buf = [0u8; 256];
        loop {
            match rustix::io::read(&s.end, &mut buf) {
                Ok(0) => {
                    s.app_eof = true;
                    break;
                }
                Ok(_) => continue,
                Err(e) if is_again(e) => break,
                Err(_) => {
                    s.app_eof = true;
                    break;
                }
            }
        }
        if s.app_eof && hung_up(&s.end) {
            return Pumped {
                close: true,
                more: false,
            };
        }
        self.announce(s);
        Pumped {
            close: false,
            more: false,
        }
    }

    /// Writes the notification byte if a connection waits and none is out.
    fn announce(&mut self, s: &mut AppSock) {
        if s.announced {
            return;
        }
        let id = s.id;
        let rd = self.host.with_stack(|st, _| st.socket_readiness(id));
        if rd.readable
            && rustix::net::send(&s.end, &[1], SendFlags::NOSIGNAL | SendFlags::DONTWAIT).is_ok()
        {
            s.announced = true;
        }
    }

    fn pump_dgram(&mut self, s: &mut AppSock) -> Pumped {
        let id = s.id;
        let mut more = false;
        let mut budget = CHUNK;
        // The loop's scratch buffer, for the largest message either way.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(buf.len().max(DGRAM_SCRATCH), 0);
        // Application to stack, a datagram at a time.
        loop {
            if let Some((dst, src, data)) = s.dgram_out.take() {
                match self.dgram_send(id, &data, dst, src) {
                    Ok(_) => {}
                    Err(Error::WouldBlock) => {
                        // Wait for room, unless the client holds its share
                        // already: then the datagram is lost, as one the
                        // kernel has no buffer for.
                        if self.may_hold(s.creator, s.held, data.len()) {
                            s.dgram_out = Some((dst, src, data));
                        }
                        break;
                    }
                    Err(e) => self.dgram_error(s, errno_of(&e)),
                }
            }
            if s.app_eof {
                break;
            }
            if budget == 0 {
                more = true;
                break;
            }
            match rustix::net::recv(&s.end, &mut buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => s.app_eof = true,
                Ok((n, _)) => {
                    budget = budget.saturating_sub(n);
                    let msg = buf.get(..n).unwrap_or_default();
                    // A malformed message or an oversized one is dropped,
                    // as a kernel drops what it cannot send.
                    if n > DGRAM_HEADER_LEN + MAX_DGRAM_PAYLOAD {
                        self.dgram_error(s, errno::EMSGSIZE);
                        continue;
                    }
                    match DgramHeader::decode(msg) {
                        Ok(h) => {
                            // Sent straight from the scratch buffer; copied
                            // only if it has to wait for room.
                            let payload = msg.get(DGRAM_HEADER_LEN..).unwrap_or_default();
                            match self.dgram_send(id, payload, h.addr, h.pktinfo) {
                                Ok(_) => {}
                                Err(Error::WouldBlock) => {
                                    // As above: wait within the share.
                                    if self.may_hold(s.creator, s.held, payload.len()) {
                                        s.dgram_out = Some((h.addr, h.pktinfo, payload.to_vec()));
                                    }
                                    break;
                                }
                                Err(e) => self.dgram_error(s, errno_of(&e)),
                            }
                        }
                        Err(_) => self.dgram_error(s, errno::EINVAL),
                    }
                }
                Err(e) if is_again(e) => break,
                Err(_) => s.app_eof = true,
            }
        }
        // Stack to application.
        let mut budget = CHUNK;
        loop {
            if s.to_off < s.to_app.len() {
                match rustix::net::send(
                    &s.end,
                    &s.to_app,
                    SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
                ) {
                    Ok(_) => {}
                    Err(e) if is_again(e) => {
                        // The application's end is full: keep the datagram
                        // for later within the client's share, else drop
                        // it as a full receive buffer does; the stack
                        // keeps the ones after it.
                        if !self.may_hold(s.creator, s.held, s.to_app.len()) {
                            s.to_app.clear();
                            s.to_off = 0;
                        }
                        break;
                    }
                    Err(_) => {}
                }
                s.to_app.clear();
                s.to_off = 0;
            }
            if budget == 0 {
                more = true;
                break;
            }
            let space = buf.get_mut(..MAX_DGRAM_PAYLOAD).unwrap_or_default();
            let got = self.host.with_stack(|st, c| {
                let rd = st.socket_readiness(id);
                if rd.error
                    && let Some(e) = st.socket_take_error(id)
                {
                    return Err(e);
                }
                st.socket_recv(c, id, space, false)
            });
            let (h, len) = match got {
                Ok(r) => {
                    budget = budget.saturating_sub(r.len + DGRAM_HEADER_LEN);
                    let h = DgramHeader {
                        addr: r.from,
                        flags: if r.truncated { DGRAM_TRUNCATED } else { 0 },
                        errno: 0,
                        pktinfo: r.pktinfo,
                    };
                    (h, r.len)
                }
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    budget = budget.saturating_sub(DGRAM_HEADER_LEN);
                    let h = DgramHeader {
                        errno: errno_of(&e),
                        ..DgramHeader::default()
                    };
                    (h, 0)
                }
            };
            // Header and payload go as one message straight from the
            // scratch buffer; only a message the pair has no room for is
            // copied, to wait.
            let head = h.encode();
            let payload = buf.get(..len).unwrap_or_default();
            let parts = [std::io::IoSlice::new(&head), std::io::IoSlice::new(payload)];
            match rustix::net::sendmsg(
                &s.end,
                &parts,
                &mut rustix::net::SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(_) => {}
                Err(e) if is_again(e) => {
                    // Kept within the client's share, else dropped as a
                    // full receive buffer drops it (see above).
                    if self.may_hold(s.creator, s.held, DGRAM_HEADER_LEN + len) {
                        let mut m = head.to_vec();
                        m.extend_from_slice(payload);
                        s.to_app = m;
                        s.to_off = 0;
                    }
                    break;
                }
                Err(_) => {}
            }
        }
        self.scratch = buf;
        let close = s.app_eof && hung_up(&s.end);
        Pumped { close, more }
    }

    /// Hands one datagram to the stack: to `dst` (None: the peer), from
    /// the source the application chose (IP_PKTINFO), if any.
    fn dgram_send(
        &self,
        id: SocketId,
        data: &[u8],
        dst: Option<SocketAddr>,
        src: Option<(IpAddr, u32)>,
    ) -> Result<usize, Error> {
        self.host.with_stack(|st, c| match src {
            Some((ip, ifindex)) => st.socket_send_from(c, id, data, dst, Some(ip), ifindex),
            None => st.socket_send(c, id, data, dst),
        })
    }

    /// An asynchronous error for a datagram socket: a connected socket gets
    /// it as an error message on its pair (as the kernel reports ICMP
    /// errors only to connected UDP sockets); others drop it.
    fn dgram_error(&mut self, s: &mut AppSock, code: i32) {
        let id = s.id;
        let connected = self.host.with_stack(|st, _| st.socket_peer(id)).is_some();
        if !connected {
            return;
        }
        let h = DgramHeader {
            errno: code,
            ..DgramHeader::default()
        };
        let _ = rustix::net::send(
            &s.end,
            &h.encode(),
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        );
    }

    /// SIOCOUTQ: what the application wrote that has not left yet: in
    /// the pair, here, and in the stack's send buffer (unacknowledged
    /// bytes included, as the kernel counts them).
    fn out_queue(&self, id: SocketId) -> u32 {
        let Some(s) = self.apps.get(&id) else {
            return 0;
        };
        let in_pair = rustix::io::ioctl_fionread(&s.end).unwrap_or(0) as usize;
        let here = s.dgram_out.as_ref().map_or(0, |(_, _, d)| d.len());
        let stack = self.host.with_stack(|st, _| {
            st.socket_list()
                .into_iter()
                .find(|i| i.id == id)
                .map_or(0, |i| i.send_queue)
        });
        let filler_free = if s.gate.is_some() { 0 } else { in_pair };
        u32::try_from(filler_free + here + stack).unwrap_or(u32::MAX)
    }

    /// The socket named by the descriptor sent with a request.
    fn app_by_fd(&self, fd: Option<&OwnedFd>) -> Result<SocketId, Response> {
        let not_ours = || {
            Response::error(
                errno::EBADF,
                "the descriptor sent is not a socket of this stack (send the socket's own descriptor)",
            )
        };
        let fd = fd.ok_or_else(|| {
            Response::error(errno::EBADF, "no socket descriptor came with the request")
        })?;
        let key = key_of(fd).ok_or_else(not_ours)?;
        self.app_keys.get(&key).copied().ok_or_else(not_ours)
    }

    /// Answers the application socket requests. `fds` came with the
    /// request; they are closed when it is answered.
    pub(crate) fn socket_request(
        &mut self,
        token: Token,
        conn: &mut Conn,
        rid: u32,
        req: Request,
        fds: Vec<OwnedFd>,
    ) {
        let resp = match self.socket_request_inner(token, conn, rid, req, fds.first()) {
            Ok(Some((r, fd))) => {
                conn.respond_with_fd(rid, &r, fd);
                return;
            }
            Ok(None) => return,
            Err(r) => r,
        };
        conn.respond(rid, &resp);
    }

    /// `Ok(Some)`: an answer with a descriptor; `Ok(None)`: answered later;
    /// `Err`: the answer (success or failure) without one.
    #[allow(clippy::type_complexity)]
    fn socket_request_inner(
        &mut self,
        token: Token,
        _conn: &mut Conn,
        rid: u32,
        req: Request,
        fd: Option<&OwnedFd>,
    ) -> Result<Option<(Response, OwnedFd)>, Response> {
        let done = |r: Result<(), Error>, what: &str| match r {
            Ok(()) => Response::Ok,
            Err(e) => Response::error(errno_of(&e), format!("{what}: {e}")),
        };
        match req {
            Request::SocketOpenRing { v6 } => {
                self.room_for_socket(token)?;
                let id = self
                    .host
                    .with_stack(|st, c| st.socket_open(c, v6, SockType::Stream))
                    .map_err(|e| {
                        Response::error(errno_of(&e), format!("cannot open a socket: {e}"))
                    })?;
                let ring = self.arenas.take(token);
                let answer = match &ring {
                    Some(r) => Response::SocketRing {
                        peer: None,
                        ring: r.ring,
                    },
                    None => Response::SocketFd { peer: None },
                };
                let theirs = self.adopt(token, id, Class::Stream, ring)?;
                Ok(Some((answer, theirs)))
            }
            Request::SocketOpen { v6, stream } => {
                self.room_for_socket(token)?;
                let ty = if stream {
                    SockType::Stream
                } else {
                    SockType::Datagram
                };
                let id = self
                    .host
                    .with_stack(|st, c| st.socket_open(c, v6, ty))
                    .map_err(|e| {
                        Response::error(errno_of(&e), format!("cannot open a socket: {e}"))
                    })?;
                let class = if stream { Class::Stream } else { Class::Dgram };
                let theirs = self.adopt(token, id, class, None)?;
                Ok(Some((Response::SocketFd { peer: None }, theirs)))
            }
            Request::SocketList => {
                let list = self.host.with_stack(|st, _| st.socket_list_all());
                Err(Response::Sockets(
                    list.iter().map(SocketInfoWire::from).collect(),
                ))
            }
            req => match self.app_by_fd(fd) {
                Ok(id) => self.on_socket(token, rid, id, req, fd, done),
                Err(r) => match fd.and_then(key_of).and_then(|k| self.tombs.get_mut(&k)) {
                    Some(t) => Err(tomb_answer(t, &req)),
                    None => Err(r),
                },
            },
        }
    }

    #[allow(clippy::type_complexity)]
    fn on_socket(
        &mut self,
        token: Token,
        rid: u32,
        id: SocketId,
        req: Request,
        fd: Option<&OwnedFd>,
        done: impl Fn(Result<(), Error>, &str) -> Response,
    ) -> Result<Option<(Response, OwnedFd)>, Response> {
        let resp = match req {
            Request::Bind { addr } => done(
                self.host.with_stack(|st, c| st.socket_bind(c, id, addr)),
                &format!("bind {addr}"),
            ),
            Request::Connect { addr } => {
                let (r, established) = self.host.with_stack(|st, c| {
                    let r = st.socket_connect(c, id, addr);
                    // Over lo0 the whole handshake runs here: then connect
                    // succeeds now, as POSIX allows, and a blocking connect
                    // needs no `ConnectWait` round trip.
                    st.run_loopback(c);
                    let rd = st.socket_readiness(id);
                    let done =
                        matches!(r, Err(Error::InProgress)) && rd.writable && !rd.error && !rd.hup;
                    (r, done)
                });
                let r = if established { Ok(()) } else { r };
                if matches!(r, Err(Error::InProgress))
                    && let (Some(fd), Some(s)) = (fd, self.apps.get_mut(&id))
                    && s.class == Class::Stream
                    && s.gate.is_none()
                {
                    s.gate = Gate::shut(fd, &s.end);
                    if let (Some(r), true) = (&s.ring, s.gate.is_some()) {
                        r.end.tx_gate(true);
                    }
                }
                // Data the application wrote meanwhile may go now.
                self.again.insert(id);
                done(r, &format!("connect {addr}"))
            }
            Request::ConnectWait => {
                let Some(mut s) = self.apps.remove(&id) else {
                    return Err(Response::error(errno::EBADF, "no such socket"));
                };
                let out = self.connect_outcome(&mut s);
                // Established before its news reached the pump: the
                // descriptor must be writable when connect(2) returns.
                if matches!(out, Some(Response::Ok))
                    && let Some(g) = s.gate.take()
                {
                    g.open(&s.end);
                    if let Some(r) = &s.ring {
                        r.end.tx_gate(false);
                    }
                }
                let r = match out {
                    Some(r) => Err(r),
                    None if s.waiters.len() >= MAX_WAITERS => Err(Response::error(
                        errno::EBUSY,
                        "too many waits on this socket",
                    )),
                    None => {
                        s.waiters.push((token, rid));
                        Ok(None)
                    }
                };
                self.apps.insert(id, s);
                return r;
            }
            Request::Listen { backlog } => {
                let r = self
                    .host
                    .with_stack(|st, c| st.socket_listen(c, id, backlog));
                if r.is_ok()
                    && let Some(s) = self.apps.get_mut(&id)
                {
                    s.class = Class::Listener;
                    self.again.insert(id);
                }
                done(r, "listen")
            }
            Request::Accept | Request::AcceptRing => {
                if let Some(s) = self.apps.get_mut(&id) {
                    s.announced = false;
                }
                self.room_for_socket(token)?;
                let r = self.host.with_stack(|st, c| st.socket_accept(c, id));
                // Announce the next waiting connection, if any.
                self.again.insert(id);
                match r {
                    Ok((nid, peer)) => {
                        let ring = match req {
                            Request::AcceptRing => self.arenas.take(token),
                            _ => None,
                        };
                        let answer = match &ring {
                            Some(r) => Response::SocketRing {
                                peer: Some(peer),
                                ring: r.ring,
                            },
                            None => Response::SocketFd { peer: Some(peer) },
                        };
                        let theirs = self.adopt(token, nid, Class::Stream, ring)?;
                        self.again.insert(nid);
                        return Ok(Some((answer, theirs)));
                    }
                    Err(e) => Response::error(errno_of(&e), format!("accept: {e}")),
                }
            }
            Request::Shutdown { how } => {
                let read = how != 1;
                let write = how != 0;
                let r = self
                    .host
                    .with_stack(|st, c| st.socket_shutdown(c, id, read, false));
                let is_stream = self.apps.get(&id).is_some_and(|s| s.class != Class::Dgram);
                if read
                    && is_stream
                    && let Some(s) = self.apps.get_mut(&id)
                {
                    // Reads after SHUT_RD see end of stream.
                    s.stack_eof = true;
                    s.to_app.clear();
                    s.to_off = 0;
                    match &s.ring {
                        Some(r) => r.end.rx_finish(),
                        None => {
                            let _ = rustix::net::shutdown(&s.end, Shutdown::Write);
                        }
                    }
                }
                if write {
                    if is_stream {
                        // Shutting the application's own end keeps the order:
                        // the stack sees the end after the bytes before it.
                        if let Some(fd) = fd {
                            let _ = rustix::net::shutdown(fd, Shutdown::Write);
                        }
                    } else {
                        let _ = self
                            .host
                            .with_stack(|st, c| st.socket_shutdown(c, id, false, true));
                    }
                }
                self.again.insert(id);
                done(r, "shutdown")
            }
            Request::SetOpt { opt } => match opt.to_stack() {
                Some(o) => done(
                    self.host.with_stack(|st, c| st.socket_setopt(c, id, o)),
                    "setsockopt",
                ),
                None => Response::error(errno::EINVAL, "the option can only be read"),
            },
            Request::GetOpt { name } => match name {
                SockOptNameWire::Error => {
                    let mine = self.apps.get_mut(&id).and_then(|s| s.error.take());
                    let e = self.host.with_stack(|st, _| st.socket_take_error(id));
                    let code = e.as_ref().map(errno_of).or(mine).unwrap_or(0);
                    Response::Opt(SockOptWire::Error(code))
                }
                SockOptNameWire::OutQueue => {
                    Response::Opt(SockOptWire::OutQueue(self.out_queue(id)))
                }
                SockOptNameWire::Type => {
                    let dgram = self.apps.get(&id).is_some_and(|s| s.class == Class::Dgram);
                    Response::Opt(SockOptWire::Type(if dgram { 2 } else { 1 }))
                }
                SockOptNameWire::TcpInfo => {
                    if self.apps.get(&id).is_some_and(|s| s.class == Class::Dgram) {
                        // As Linux: TCP options on a UDP socket.
                        Response::error(errno::ENOPROTOOPT, "TCP_INFO of a UDP socket")
                    } else {
                        let info = self.host.with_stack(|st, _| st.tcp_info_of(id));
                        Response::Opt(SockOptWire::TcpInfo(
                            info.as_ref()
                                .map_or_else(TcpInfoWire::closed, TcpInfoWire::from),
                        ))
                    }
                }
                other => match other.to_stack() {
                    Some(n) => match self.host.with_stack(|st, _| st.socket_getopt(id, n)) {
                        Ok(o) => Response::Opt(SockOptWire::from_stack(o)),
                        Err(e) => Response::error(errno_of(&e), format!("getsockopt: {e}")),
                    },
                    None => Response::error(errno::EINVAL, "unknown option"),
                },
            },
            Request::GetName => Response::Addr(self.host.with_stack(|st, _| st.socket_local(id))),
            Request::GetPeer => match self.host.with_stack(|st, _| st.socket_peer(id)) {
                Some(a) => Response::Addr(Some(a)),
                None => Response::error(errno::ENOTCONN, "the socket is not connected"),
            },
            Request::Disconnect => done(
                self.host.with_stack(|st, _| st.socket_disconnect(id)),
                "connect AF_UNSPEC",
            ),
            Request::RingOf => {
                let ring = self
                    .apps
                    .get(&id)
                    .and_then(|s| s.ring.as_ref())
                    .map(|r| r.ring);
                match ring.and_then(|r| Some((r, self.arenas.memfd(&r)?))) {
                    Some((ring, memfd)) => {
                        return Ok(Some((Response::RingArena { ring }, memfd)));
                    }
                    None => Response::error(errno::ENOENT, "the socket has no shared ring"),
                }
            }
            _ => Response::error(errno::ENOSYS, "request not supported"),
        };
        Err(resp)
    }
}

/// The answer about a finished TCP connection.
fn tomb_answer(t: &mut Tomb, req: &Request) -> Response {
    match req {
        Request::GetName => Response::Addr(t.local),
        Request::GetPeer => match t.peer {
            Some(a) => Response::Addr(Some(a)),
            None => Response::error(errno::ENOTCONN, "the socket is not connected"),
        },
        Request::GetOpt {
            name: SockOptNameWire::Error,
        } => Response::Opt(SockOptWire::Error(t.error.take().unwrap_or(0))),
        Request::GetOpt {
            name: SockOptNameWire::Type,
        } => Response::Opt(SockOptWire::Type(1)),
        // The connection is over as far as the application can tell.
        Request::GetOpt {
            name: SockOptNameWire::TcpInfo,
        } => Response::Opt(SockOptWire::TcpInfo(TcpInfoWire::closed())),
        Request::GetOpt {
            name: SockOptNameWire::OutQueue,
        } => Response::Opt(SockOptWire::OutQueue(0)),
        // Both directions are shut already.
        Request::Shutdown { .. } => Response::Ok,
        // The outcome of a connect that failed, until SO_ERROR read it.
        Request::ConnectWait => match t.error {
            Some(code) => Response::error(code, "connect failed"),
            None if t.connect_failed => Response::error(errno::ECONNABORTED, "connect failed"),
            None => Response::Ok,
        },
        _ => Response::error(errno::EINVAL, "the connection is finished"),
    }
}
