//! One client connection: its credentials, its byte buffers and the sockets
//! it owns.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use iopkt_stack::socket::SocketId;
use mio::net::UnixStream;

use crate::proto::{Framer, ProtoError, Response, encode_response};

/// Sockets one connection may hold open.
pub const MAX_SOCKETS_PER_CLIENT: usize = 256;
/// While a connection has more than this many bytes waiting to go out, the
/// server stops reading its requests (the client must read its answers).
pub const OUTPUT_PAUSE: usize = 1 << 20;
/// A connection whose unread output (events it does not read) grows past this
/// is disconnected.
pub const OUTPUT_LIMIT: usize = 8 << 20;
/// `mount`/`destroy` requests one connection may have running at once.
pub const MAX_ASYNC_PER_CLIENT: usize = 4;

/// Descriptors a client may attach to one request; more are closed.
const MAX_FDS_PER_FRAME: usize = 4;

/// Bytes read from a socket per `read` call at most.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Conn {
    pub stream: UnixStream,
    /// The peer's user id (SO_PEERCRED at accept); `u32::MAX` if unknown.
    pub uid: u32,
    pub pid: i32,
    pub framer: Framer,
    out: VecDeque<u8>,
    /// Descriptors to attach to the output, each at its byte position in
    /// the stream (counted from the connection's start).
    out_fds: VecDeque<(u64, OwnedFd)>,
    /// Bytes written so far and bytes queued so far.
    sent: u64,
    queued: u64,
    /// Descriptors received with the frame being read. The server reads no
    /// further than one frame, so these belong to it.
    pub in_fds: Vec<OwnedFd>,
    /// Sockets opened through this connection, closed when it goes.
    pub sockets: BTreeSet<SocketId>,
    /// Running `mount`/`destroy` requests.
    pub running: usize,
    /// Read end-of-file or a fatal protocol error: answer what is pending,
    /// then close.
    pub closing: bool,
    /// The connection is finished and is to be dropped.
    pub dead: bool,
}

/// What one attempt to read produced.
pub(crate) enum ReadOutcome {
    /// Bytes were read (the caller cuts frames and may read again).
    Data,
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed its end.
    Eof,
}

impl Conn {
    pub fn new(stream: UnixStream, uid: u32, pid: i32) -> Conn {
        Conn {
            stream,
            uid,
            pid,
            framer: Framer::new(),
            out: VecDeque::new(),
            out_fds: VecDeque::new(),
            sent: 0,
            queued: 0,
            in_fds: Vec::new(),
            sockets: BTreeSet::new(),
            running: 0,
            closing: false,
            dead: false,
        }
    }

    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Whether the server may read more requests from this client now.
    pub fn may_read(&self) -> bool {
        !self.closing && !self.dead && self.out.len() < OUTPUT_PAUSE
    }

    /// Reads at most what the framer wants for its next frame, and any
    /// descriptors sent along (SCM_RIGHTS).
    pub fn read_some(&mut self) -> io::Result<ReadOutcome> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let want = self.framer.wanted().min(READ_CHUNK);
        let mut buf = vec![0u8; want];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME))];
        loop {
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            let r = rustix::net::recvmsg(
                &self.stream,
                &mut [IoSliceMut::new(&mut buf)],
                &mut anc,
                RecvFlags::CMSG_CLOEXEC,
            );
            // Descriptors beyond what a request uses are simply closed
            // (dropped); the kernel closes those that did not fit.
            for msg in anc.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = msg {
                    for fd in fds {
                        if self.in_fds.len() < MAX_FDS_PER_FRAME {
                            self.in_fds.push(fd);
                        }
                    }
                }
            }
            match r {
                Ok(m) if m.bytes == 0 => return Ok(ReadOutcome::Eof),
                Ok(m) => {
                    self.framer.push(buf.get(..m.bytes).unwrap_or_default());
                    return Ok(ReadOutcome::Data);
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(ReadOutcome::WouldBlock),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Queues an encoded message.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend(bytes);
        self.queued += bytes.len() as u64;
    }

    /// Queues the response to request `id` with `fd` attached to its first
    /// byte; the server's copy of `fd` is closed once it is sent.
    pub fn respond_with_fd(&mut self, id: u32, resp: &Response, fd: OwnedFd) {
        self.out_fds.push_back((self.queued, fd));
        self.respond(id, resp);
    }

    /// Queues the response to request `id`. A response too large to encode
    /// becomes an error response.
    pub fn respond(&mut self, id: u32, resp: &Response) {
        match encode_response(id, resp) {
            Ok(b) => self.queue(&b),
            Err(e) => {
                let code = e.errno();
                let fallback = Response::error(code, format!("cannot send the answer: {e}"));
                if let Ok(b) = encode_response(id, &fallback) {
                    self.queue(&b);
                }
            }
        }
    }

    /// Answers a protocol error; if the stream cannot be trusted any more,
    /// the connection closes once the answer is out.
    pub fn protocol_error(&mut self, id: u32, e: &ProtoError) {
        self.respond(id, &Response::error(e.errno(), e.to_string()));
        if !e.stream_intact() {
            self.closing = true;
        }
    }

    /// Writes queued output until the socket is full. Errors mean the peer
    /// is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut anc = SendAncillaryBuffer::new(&mut space);
            let mut len = a.len();
            let fds;
            if let Some((pos, fd)) = self.out_fds.front() {
                if *pos <= self.sent {
                    fds = [fd.as_fd()];
                    anc.push(SendAncillaryMessage::ScmRights(&fds));
                } else {
                    len = len.min(usize::try_from(*pos - self.sent).unwrap_or(usize::MAX));
                }
            }
            let chunk = a.get(..len).unwrap_or(a);
            // MSG_NOSIGNAL: a client that vanished must not raise SIGPIPE in
            // the daemon.
            match rustix::net::sendmsg(
                &self.stream,
                &[IoSlice::new(chunk)],
                &mut anc,
                SendFlags::NOSIGNAL,
            ) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    if self.out_fds.front().is_some_and(|(p, _)| *p <= self.sent) {
                        self.out_fds.pop_front();
                    }
                    self.out.drain(..n);
                    self.sent += n as u64;
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
