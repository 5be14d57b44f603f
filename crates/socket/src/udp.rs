//! UDP: `UdpSocket`. Each datagram travels on the descriptor (a
//! SOCK_SEQPACKET socket) behind a fixed header ([`DgramHeader`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use iopkt_rsrcmgr::proto::{
    DGRAM_HEADER_LEN, DgramHeader, MAX_DGRAM_PAYLOAD, Request, SockOptNameWire, SockOptWire,
};
use rustix::net::{RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::ctl;
use crate::tcp::fd_traits;

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    inner: UnixDatagram,
}

impl UdpSocket {
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        ctl::each_addr(addr, |a| {
            let fd = ctl::open(a.is_ipv6(), false)?;
            ctl::call_ok(&Request::Bind { addr: a }, fd.as_fd())?;
            Ok(UdpSocket::from(fd))
        })
    }

    /// Sets the default destination and the only source `recv` accepts.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        ctl::each_addr(addr, |a| {
            ctl::call_ok(&Request::Connect { addr: a }, self.as_fd())
        })
    }

    fn send_msg(&self, buf: &[u8], dst: Option<SocketAddr>) -> io::Result<usize> {
        if buf.len() > MAX_DGRAM_PAYLOAD {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let h = DgramHeader {
            addr: dst,
            ..DgramHeader::default()
        }
        .encode();
        let mut anc = SendAncillaryBuffer::default();
        loop {
            match rustix::net::sendmsg(
                &self.inner,
                &[IoSlice::new(&h), IoSlice::new(buf)],
                &mut anc,
                SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(buf.len()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let a = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to send to"))?;
        self.send_msg(buf, Some(a))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_msg(buf, None)
    }

    fn recv_msg(&self, buf: &mut [u8], flags: RecvFlags) -> io::Result<(usize, SocketAddr)> {
        loop {
            let mut h = [0u8; DGRAM_HEADER_LEN];
            let mut anc = RecvAncillaryBuffer::default();
            let r = rustix::net::recvmsg(
                &self.inner,
                &mut [IoSliceMut::new(&mut h), IoSliceMut::new(buf)],
                &mut anc,
                flags,
            );
            let n = match r {
                Ok(m) => m.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                // io-pkt closed its end: the socket is gone.
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            let hdr = DgramHeader::decode(h.get(..n.min(DGRAM_HEADER_LEN)).unwrap_or(&h))
                .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
            if hdr.errno != 0 {
                // An asynchronous error (ICMP port unreachable...), as the
                // kernel reports it on the next call.
                return Err(io::Error::from_raw_os_error(hdr.errno));
            }
            let Some(from) = hdr.addr else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "datagram without a sender",
                ));
            };
            return Ok(((n - DGRAM_HEADER_LEN).min(buf.len()), from));
        }
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_msg(buf, RecvFlags::empty())
    }

    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_msg(buf, RecvFlags::PEEK)
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_from(buf).map(|(n, _)| n)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ctl::addr(&Request::GetName, self.as_fd())
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ctl::addr(&Request::GetPeer, self.as_fd())
    }

    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.try_clone()?,
        })
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

    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::Broadcast(on))
    }

    pub fn broadcast(&self) -> io::Result<bool> {
        ctl::get_bool(self.as_fd(), SockOptNameWire::Broadcast)
    }

    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::Ttl(ctl::ttl_u8(ttl)?))
    }

    pub fn ttl(&self) -> io::Result<u32> {
        ctl::get_ttl(self.as_fd(), SockOptNameWire::Ttl)
    }

    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::MulticastTtl(ctl::ttl_u8(ttl)?))
    }

    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        ctl::get_ttl(self.as_fd(), SockOptNameWire::MulticastTtl)
    }

    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::MulticastLoop(on))
    }

    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        ctl::setopt(self.as_fd(), SockOptWire::MulticastLoop(on))
    }

    /// Joins `group`. The stack picks the interface by route: `interface`
    /// must be 0.0.0.0 (an interface address is not looked up yet).
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        if !interface.is_unspecified() {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        ctl::setopt(self.as_fd(), SockOptWire::JoinGroup((*group).into(), 0))
    }

    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        if !interface.is_unspecified() {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        ctl::setopt(self.as_fd(), SockOptWire::LeaveGroup((*group).into(), 0))
    }

    /// Joins `group` on interface index `interface` (0: the route's).
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        ctl::setopt(
            self.as_fd(),
            SockOptWire::JoinGroup((*group).into(), interface),
        )
    }

    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        ctl::setopt(
            self.as_fd(),
            SockOptWire::LeaveGroup((*group).into(), interface),
        )
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        ctl::take_error(self.as_fd())
    }
}

fd_traits!(UdpSocket);
