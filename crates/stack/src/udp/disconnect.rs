//! connect(2) with AF_UNSPEC on a UDP socket: the association with the
//! peer is dissolved (POSIX connect(): "If the sa_family member of address
//! is AF_UNSPEC, the socket's peer address shall be reset"). As on Linux,
//! a source address that connect() chose for a wildcard-bound socket goes
//! back to the wildcard; the local port stays (as BSD keeps it), so the
//! socket keeps receiving on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::Error;
use crate::socket::{SocketId, SocketKind};
use crate::stack::Stack;

impl Stack {
    /// Dissolves a datagram socket's association (connect with
    /// AF_UNSPEC). Harmless on a socket that has none, as on Linux.
    pub fn socket_disconnect(&mut self, id: SocketId) -> Result<(), Error> {
        match self.sockets.get(id) {
            Some(SocketKind::Udp(_)) => {}
            Some(_) => {
                return Err(Error::NotSupported(
                    "connect(AF_UNSPEC) on a socket that is not UDP".into(),
                ));
            }
            None => return Err(Error::BadSocket),
        }
        let s = self.udp_sock_mut(id)?;
        s.peer = None;
        if s.source_from_connect {
            s.local_ip = if s.v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            s.source_from_connect = false;
        }
        Ok(())
    }
}
