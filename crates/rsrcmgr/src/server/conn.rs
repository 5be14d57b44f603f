//! One client connection: its credentials, its byte buffers and the sockets
//! it owns.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read};

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

/// Bytes read from a socket per `read` call at most.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Conn {
    pub stream: UnixStream,
    /// The peer's user id (SO_PEERCRED at accept); `u32::MAX` if unknown.
    pub uid: u32,
    pub pid: i32,
    pub framer: Framer,
    out: VecDeque<u8>,
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

    /// Reads at most what the framer wants for its next frame.
    pub fn read_some(&mut self) -> io::Result<ReadOutcome> {
        let want = self.framer.wanted().min(READ_CHUNK);
        let mut buf = vec![0u8; want];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(n) => {
                    self.framer.push(buf.get(..n).unwrap_or_default());
                    return Ok(ReadOutcome::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::WouldBlock);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues an encoded message.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend(bytes);
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
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            // MSG_NOSIGNAL: a client that vanished must not raise SIGPIPE in
            // the daemon.
            match rustix::net::send(&self.stream, a, rustix::net::SendFlags::NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
