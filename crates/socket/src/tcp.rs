//! TCP: `TcpStream` and `TcpListener`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use iopkt_rsrcmgr::proto::{
    Request, Response, SockOptNameWire, SockOptWire, TcpInfoWire as TcpInfo,
};

use crate::ctl;

/// A TCP connection. Its descriptor is a stream socket whose bytes are the
/// connection's: `read`, `write`, `poll` and `epoll` work on it natively.
#[derive(Debug)]
pub struct TcpStream {
    inner: UnixStream,
}

impl TcpStream {
    fn from_owned(fd: OwnedFd) -> TcpStream {
        TcpStream {
            inner: UnixStream::from(fd),
        }
    }

    /// Connects to the first address that answers.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        ctl::each_addr(addr, |a| Self::connect_one(a, None))
    }

    /// Connects, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        Self::connect_one(*addr, Some(timeout))
    }

    fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let fd = ctl::open(addr.is_ipv6(), true)?;
        match ctl::call(&Request::Connect { addr }, Some(fd.as_fd())) {
            Ok(_) => return Ok(Self::from_owned(fd)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // A blocking connect is the attempt plus a wait for its outcome.
        // Giving up closes the descriptor, which abandons the attempt.
        ctl::call_alone(&Request::ConnectWait, fd.as_fd(), timeout)?;
        Ok(Self::from_owned(fd))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ctl::addr(&Request::GetPeer, self.as_fd())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ctl::addr(&Request::GetName, self.as_fd())
    }

    /// Shuts down one or both directions. Shutting the write side is done on
    /// the descriptor itself, so the stack sees it after the bytes written
    /// before it.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match how {
            Shutdown::Write => self.inner.shutdown(Shutdown::Write),
            Shutdown::Read => ctl::call_ok(&Request::Shutdown { how: 0 }, self.as_fd()),
            Shutdown::Both => {
                self.inner.shutdown(Shutdown::Write)?;
                ctl::call_ok(&Request::Shutdown { how: 0 }, self.as_fd())
            }
        }
    }

    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.try_clone()?,
        })
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::NoDelay(on))
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        ctl::get_bool(self.as_fd(), SockOptNameWire::NoDelay)
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::Ttl(ctl::ttl_u8(ttl)?))
    }

    pub fn ttl(&self) -> io::Result<u32> {
        ctl::get_ttl(self.as_fd(), SockOptNameWire::Ttl)
    }

    /// SO_LINGER in whole seconds; `Some(ZERO)` makes closing reset the
    /// connection.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let secs = linger.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        ctl::setopt(self.as_fd(), SockOptWire::Linger(secs))
    }

    pub fn linger(&self) -> io::Result<Option<Duration>> {
        match ctl::getopt(self.as_fd(), SockOptNameWire::Linger)? {
            SockOptWire::Linger(l) => Ok(l.map(|s| Duration::from_secs(u64::from(s)))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected answer from io-pkt",
            )),
        }
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.set_nonblocking(on)
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(d)
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.inner.read_timeout()
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.inner.write_timeout()
    }

    /// SO_ERROR: the error that ended the connection, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        ctl::take_error(self.as_fd())
    }

    /// TCP_INFO: the connection's state, round-trip time, windows and
    /// counters as the stack keeps them (docs/protocol.md, `TcpInfo`).
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        match ctl::getopt(self.as_fd(), SockOptNameWire::TcpInfo)? {
            SockOptWire::TcpInfo(i) => Ok(i),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected answer from io-pkt",
            )),
        }
    }

    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, _) = rustix::net::recv(&self.inner, buf, rustix::net::RecvFlags::PEEK)?;
        Ok(n)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.inner).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.inner).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening TCP socket. Its descriptor turns readable when a
/// connection waits to be accepted.
#[derive(Debug)]
pub struct TcpListener {
    inner: UnixStream,
}

/// Connections as they arrive (`TcpListener::incoming`).
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// listen(2) backlog, as std uses.
const BACKLOG: u32 = 128;

impl TcpListener {
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        ctl::each_addr(addr, |a| {
            let fd = ctl::open(a.is_ipv6(), true)?;
            // As std on Unix: a restarted server may rebind at once.
            ctl::setopt(fd.as_fd(), SockOptWire::ReuseAddr(true))?;
            ctl::call_ok(&Request::Bind { addr: a }, fd.as_fd())?;
            ctl::call_ok(&Request::Listen { backlog: BACKLOG }, fd.as_fd())?;
            Ok(TcpListener {
                inner: UnixStream::from(fd),
            })
        })
    }

    /// Waits for a connection (or, non-blocking, `WouldBlock`).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            // One notification byte per connection ready: another holder
            // of this listener may take the connection first, so an EAGAIN
            // answer means wait again.
            let mut b = [0u8; 1];
            let n = (&self.inner).read(&mut b)?;
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            match ctl::call(&Request::Accept, Some(self.as_fd())) {
                Ok((Response::SocketFd { peer: Some(peer) }, Some(fd))) => {
                    return Ok((TcpStream::from_owned(fd), peer));
                }
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected answer from io-pkt",
                    ));
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ctl::addr(&Request::GetName, self.as_fd())
    }

    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.try_clone()?,
        })
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.set_nonblocking(on)
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::Ttl(ctl::ttl_u8(ttl)?))
    }

    pub fn ttl(&self) -> io::Result<u32> {
        ctl::get_ttl(self.as_fd(), SockOptNameWire::Ttl)
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        ctl::take_error(self.as_fd())
    }
}

macro_rules! fd_traits {
    ($t:ty) => {
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                self.inner.into_raw_fd()
            }
        }
        impl FromRawFd for $t {
            /// # Safety
            /// `fd` must be an open descriptor of this kind of socket, owned
            /// by the caller.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: as the caller promised.
                Self {
                    inner: unsafe { FromRawFd::from_raw_fd(fd) },
                }
            }
        }
        impl From<OwnedFd> for $t {
            fn from(fd: OwnedFd) -> Self {
                Self { inner: fd.into() }
            }
        }
    };
}
pub(crate) use fd_traits;

fd_traits!(TcpStream);
fd_traits!(TcpListener);
