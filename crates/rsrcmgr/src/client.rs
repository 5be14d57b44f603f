//! A blocking client: connect to a stack, send requests, wait for their
//! answers, receive pushed events.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::prefix::{client_prefix, socket_path};
use crate::proto::{
    Event, Framer, Kind, ProtoError, Request, Response, ServerMessage, WireError,
    decode_server_frame, encode_request,
};

/// How long [`Client::call`] waits for an answer by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors kept that came with answers not yet taken at most.
const MAX_QUEUED_FDS: usize = 16;

/// Events kept while waiting for an answer at most; older ones are dropped.
pub const MAX_QUEUED_EVENTS: usize = 4096;

#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens at the socket path.
    NotRunning {
        prefix: PathBuf,
    },
    /// Connecting failed otherwise (permissions, ...).
    Connect {
        path: PathBuf,
        err: io::Error,
    },
    Io(io::Error),
    /// No answer in time.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The server sent something this client cannot understand.
    Protocol(ProtoError),
    /// The server refused or failed the request.
    Remote(WireError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotRunning { prefix } => write!(
                f,
                "no io-pkt serving {}: is it running? (SOCK={})",
                socket_path(prefix).display(),
                prefix.display()
            ),
            ClientError::Connect { path, err } => {
                write!(f, "cannot connect to {}: {err}", path.display())
            }
            ClientError::Io(e) => write!(f, "talking to io-pkt: {e}"),
            ClientError::Timeout => f.write_str("io-pkt did not answer in time"),
            ClientError::Closed => f.write_str("io-pkt closed the connection"),
            ClientError::Protocol(e) => write!(f, "io-pkt sent a bad message: {e}"),
            ClientError::Remote(e) => f.write_str(&e.message),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
            _ => ClientError::Io(e),
        }
    }
}

/// A connection to one stack.
pub struct Client {
    stream: UnixStream,
    framer: Framer,
    next_id: u32,
    events: VecDeque<Event>,
    prefix: PathBuf,
    timeout: Duration,
    /// Descriptors received (SCM_RIGHTS), in order; each `SocketFd` answer
    /// takes the first.
    fds: VecDeque<OwnedFd>,
}

impl Client {
    /// Connects to the stack at `prefix` (`<prefix>/dev/socket`).
    pub fn connect(prefix: &Path) -> Result<Client, ClientError> {
        let path = socket_path(prefix);
        let stream = UnixStream::connect(&path).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                prefix: prefix.to_path_buf(),
            },
            _ => ClientError::Connect { path, err },
        })?;
        Ok(Client {
            stream,
            framer: Framer::new(),
            next_id: 1,
            events: VecDeque::new(),
            prefix: prefix.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
            fds: VecDeque::new(),
        })
    }

    /// Connects to the stack named by `$SOCK`, or the default prefix.
    pub fn connect_env() -> Result<Client, ClientError> {
        Client::connect(&client_prefix())
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// How long [`Client::call`] waits for an answer.
    pub fn set_timeout(&mut self, d: Duration) {
        self.timeout = d;
    }

    /// Sends a request without waiting; returns its id.
    pub fn send(&mut self, req: &Request) -> Result<u32, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let bytes = encode_request(id, req).map_err(ClientError::Protocol)?;
        self.stream.write_all(&bytes)?;
        Ok(id)
    }

    /// Sends a request with `fd` attached (SCM_RIGHTS), without waiting;
    /// returns its id.
    pub fn send_with_fd(
        &mut self,
        req: &Request,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<u32, ClientError> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let Some(fd) = fd else {
            return self.send(req);
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let bytes = encode_request(id, req).map_err(ClientError::Protocol)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        let fds = [fd];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
        // The descriptor rides on the first byte; the rest follows plainly.
        let mut sent = loop {
            match rustix::net::sendmsg(
                &self.stream,
                &[IoSlice::new(&bytes)],
                &mut anc,
                SendFlags::NOSIGNAL,
            ) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ClientError::Io(e.into())),
            }
        };
        while sent < bytes.len() {
            let rest = bytes.get(sent..).unwrap_or_default();
            match rustix::net::send(&self.stream, rest, SendFlags::NOSIGNAL) {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ClientError::Io(e.into())),
            }
        }
        Ok(id)
    }

    /// Sends a request about the socket `fd` and waits for its answer;
    /// a descriptor that came with it (`SocketFd`) is returned too.
    pub fn call_with_fd(
        &mut self,
        req: &Request,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(Response, Option<OwnedFd>), ClientError> {
        let id = self.send_with_fd(req, fd)?;
        match self.wait_response(id)? {
            Response::Error(e) => Err(ClientError::Remote(e)),
            r if r.carries_fd() => {
                let fd = self.fds.pop_front();
                Ok((r, fd))
            }
            r => Ok((r, None)),
        }
    }

    /// Sends a request and waits for its answer; an error answer comes back
    /// as `Err(ClientError::Remote)`. Events arriving meanwhile are kept for
    /// [`Client::next_event`].
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let id = self.send(req)?;
        match self.wait_response(id)? {
            Response::Error(e) => Err(ClientError::Remote(e)),
            r => Ok(r),
        }
    }

    /// Waits for the answer to request `id`.
    pub fn wait_response(&mut self, id: u32) -> Result<Response, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_message(deadline)? {
                Some(ServerMessage::Response(rid, r)) if rid == id => return Ok(r),
                // A protocol error the server reports on the stream itself.
                Some(ServerMessage::Response(0, Response::Error(e))) => {
                    return Err(ClientError::Remote(e));
                }
                // The late answer of a request given up on: its descriptor,
                // if it brought one, is not for anyone now.
                Some(ServerMessage::Response(_, r)) if r.carries_fd() => {
                    self.fds.pop_front();
                }
                Some(ServerMessage::Response(_, _)) => {}
                Some(ServerMessage::Event(ev)) => self.keep_event(ev),
                None => return Err(ClientError::Timeout),
            }
        }
    }

    /// The next event, waiting up to `timeout`; `None` if none came.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, ClientError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_message(deadline)? {
                Some(ServerMessage::Event(ev)) => return Ok(Some(ev)),
                Some(ServerMessage::Response(_, _)) => {}
                None => return Ok(None),
            }
        }
    }

    fn keep_event(&mut self, ev: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    /// Reads until one message is complete or `deadline` passes (`None`).
    fn read_message(&mut self, deadline: Instant) -> Result<Option<ServerMessage>, ClientError> {
        loop {
            if let Some(f) = self.framer.next_frame().map_err(ClientError::Protocol)? {
                match decode_server_frame(&f) {
                    Ok(m) => return Ok(Some(m)),
                    // An event this version does not know: skip it (the
                    // protocol only ever adds event variants).
                    Err(_) if f.header.kind == Kind::Event => continue,
                    Err(e) => return Err(ClientError::Protocol(e)),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut buf = vec![0u8; self.framer.wanted().min(64 * 1024)];
            match self.recv_some(&mut buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.framer.push(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Reads bytes and keeps the descriptors that come with them.
    fn recv_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let r = rustix::net::recvmsg(
            &self.stream,
            &mut [IoSliceMut::new(buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        );
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                for fd in fds {
                    if self.fds.len() >= MAX_QUEUED_FDS {
                        self.fds.pop_front();
                    }
                    self.fds.push_back(fd);
                }
            }
        }
        Ok(r?.bytes)
    }
}
