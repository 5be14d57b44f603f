//! The per-process control connection to the stack.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use iopkt_rsrcmgr::client::DEFAULT_TIMEOUT;
use iopkt_rsrcmgr::proto::{Request, Response, SockOptNameWire, SockOptWire};
use iopkt_rsrcmgr::{Client, ClientError, client_prefix};

struct Ctl {
    prefix: Option<PathBuf>,
    /// The connection and the process that opened it: a forked child
    /// opens its own, since it would share the parent's byte stream.
    conn: Option<(u32, Client)>,
}

static CTL: Mutex<Ctl> = Mutex::new(Ctl {
    prefix: None,
    conn: None,
});

fn lock() -> MutexGuard<'static, Ctl> {
    CTL.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The connection's lock, held by the forking thread across `fork`.
    static HELD_FOR_FORK: RefCell<Option<MutexGuard<'static, Ctl>>> = const { RefCell::new(None) };
}

/// To be called just before `fork` (a `pthread_atfork` prepare handler):
/// waits for a call another thread has in progress and keeps the lock, so
/// the child does not inherit it locked by a thread it does not have.
pub fn before_fork() {
    let g = lock();
    HELD_FOR_FORK.with(|h| *h.borrow_mut() = Some(g));
}

/// To be called just after `fork`, in the parent and in the child, by the
/// thread that called [`before_fork`]. The child then opens its own
/// connection on its first call (the process id differs).
pub fn after_fork() {
    HELD_FOR_FORK.with(|h| drop(h.borrow_mut().take()));
}

/// Uses the stack at `prefix` (`<prefix>/dev/socket`) from now on, instead
/// of `$SOCK` or the default prefix.
pub fn set_prefix(prefix: impl Into<PathBuf>) {
    let mut c = lock();
    c.prefix = Some(prefix.into());
    c.conn = None;
}

pub fn to_io(e: ClientError) -> io::Error {
    match e {
        ClientError::Remote(w) => io::Error::from_raw_os_error(w.code),
        ClientError::Io(e) => e,
        ClientError::Timeout => io::Error::new(io::ErrorKind::TimedOut, e.to_string()),
        other => io::Error::new(io::ErrorKind::NotConnected, other.to_string()),
    }
}

/// Sends `req` (about the socket `fd`, if any) and waits for the answer.
pub fn call(req: &Request, fd: Option<BorrowedFd<'_>>) -> io::Result<(Response, Option<OwnedFd>)> {
    call_timeout(req, fd, None)
}

/// [`call`], waiting at most `timeout` (else the connection's default).
/// An answer that comes later is skipped by the next call.
pub fn call_timeout(
    req: &Request,
    fd: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> io::Result<(Response, Option<OwnedFd>)> {
    let mut c = lock();
    let pid = std::process::id();
    if c.conn.as_ref().is_none_or(|(p, _)| *p != pid) {
        let prefix = c.prefix.clone().unwrap_or_else(client_prefix);
        let client = Client::connect(&prefix).map_err(to_io)?;
        c.conn = Some((pid, client));
    }
    let Some((_, client)) = c.conn.as_mut() else {
        return Err(io::Error::from(io::ErrorKind::NotConnected));
    };
    client.set_timeout(timeout.unwrap_or(DEFAULT_TIMEOUT));
    match client.call_with_fd(req, fd) {
        Ok(r) => Ok(r),
        // Only the wait ended; the stream is intact.
        Err(ClientError::Timeout) if timeout.is_some() => {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        }
        Err(e @ ClientError::Remote(_)) => Err(to_io(e)),
        Err(e) => {
            // The connection is in an unknown state: start afresh next time.
            c.conn = None;
            Err(to_io(e))
        }
    }
}

/// Sends a request that may wait long (`ConnectWait`) on a connection of
/// its own, so other threads' calls do not queue behind it.
pub fn call_alone(
    req: &Request,
    fd: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Response> {
    let prefix = {
        let c = lock();
        c.prefix.clone().unwrap_or_else(client_prefix)
    };
    let mut client = Client::connect(&prefix).map_err(to_io)?;
    client.set_timeout(timeout.unwrap_or(DEFAULT_TIMEOUT));
    match client.call_with_fd(req, Some(fd)) {
        Ok((r, _)) => Ok(r),
        Err(ClientError::Timeout) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        Err(e) => Err(to_io(e)),
    }
}

/// A request whose answer is `Ok`.
pub fn call_ok(req: &Request, fd: BorrowedFd<'_>) -> io::Result<()> {
    call(req, Some(fd)).map(|_| ())
}

fn unexpected() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "unexpected answer from io-pkt")
}

/// Opens a socket; returns the application's end.
pub fn open(v6: bool, stream: bool) -> io::Result<OwnedFd> {
    match call(&Request::SocketOpen { v6, stream }, None)? {
        (Response::SocketFd { .. }, Some(fd)) => Ok(fd),
        _ => Err(unexpected()),
    }
}

pub fn addr(req: &Request, fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    match call(req, Some(fd))? {
        (Response::Addr(Some(a)), _) => Ok(a),
        (Response::Addr(None), _) => Err(io::Error::from_raw_os_error(libc::ENOTCONN)),
        _ => Err(unexpected()),
    }
}

pub fn setopt(fd: BorrowedFd<'_>, opt: SockOptWire) -> io::Result<()> {
    call_ok(&Request::SetOpt { opt }, fd)
}

pub fn getopt(fd: BorrowedFd<'_>, name: SockOptNameWire) -> io::Result<SockOptWire> {
    match call(&Request::GetOpt { name }, Some(fd))? {
        (Response::Opt(o), _) => Ok(o),
        _ => Err(unexpected()),
    }
}

/// SO_ERROR as `take_error` reports it.
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    match getopt(fd, SockOptNameWire::Error)? {
        SockOptWire::Error(0) => Ok(None),
        SockOptWire::Error(c) => Ok(Some(io::Error::from_raw_os_error(c))),
        _ => Err(unexpected()),
    }
}

/// Tries each address in turn, as std does; the last error if none works.
pub(crate) fn each_addr<T>(
    addrs: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addrs.to_socket_addrs()? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// A bool option.
pub(crate) fn get_bool(fd: BorrowedFd<'_>, name: SockOptNameWire) -> io::Result<bool> {
    match getopt(fd, name)? {
        SockOptWire::NoDelay(b)
        | SockOptWire::Broadcast(b)
        | SockOptWire::MulticastLoop(b)
        | SockOptWire::V6Only(b)
        | SockOptWire::ReuseAddr(b) => Ok(b),
        _ => Err(unexpected()),
    }
}

pub(crate) fn get_ttl(fd: BorrowedFd<'_>, name: SockOptNameWire) -> io::Result<u32> {
    match getopt(fd, name)? {
        SockOptWire::Ttl(t) | SockOptWire::MulticastTtl(t) => Ok(u32::from(t)),
        _ => Err(unexpected()),
    }
}

pub(crate) fn ttl_u8(ttl: u32) -> io::Result<u8> {
    u8::try_from(ttl).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
