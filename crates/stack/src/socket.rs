//! The stack's sockets, as the resource manager sees them.
//!
//! Every socket lives in one [`SocketTable`] keyed by [`SocketId`], whatever
//! its kind; the kinds are the variants of [`SocketKind`] (ICMP echo now, UDP
//! and TCP as they come).
//!
//! ICMP echo ("ping") sockets for IPv4 and IPv6 behave as Linux's
//! SOCK_DGRAM/IPPROTO_ICMP sockets: the stack owns the echo identifier, so
//! unprivileged clients can ping without seeing each other's replies; the
//! client writes whole echo requests and reads the matching replies (and ICMP
//! errors that quote its requests).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use iopkt_wire::icmp::{self, v4, v6};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::stack::Stack;

/// A socket's handle; never reused while the stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// An echo reply (or ICMP error concerning one of our requests) waiting to
/// be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReply {
    pub from: IpAddr,
    /// The whole ICMP message, header included.
    pub icmp: Vec<u8>,
    /// TTL or hop limit of the reply.
    pub ttl: u8,
}

/// Ping sockets open at once at most: each holds one of the 65536 echo
/// identifiers of its family and a receive queue.
pub const MAX_PING_SOCKETS: usize = 1024;
/// Replies waiting on one ping socket at most; later ones are dropped.
pub const PING_RX_QUEUE: usize = 64;
/// Largest echo message a client may send: what fits an IPv4 datagram.
pub const MAX_PING_MESSAGE: usize = 65_535 - 20;

/// An ICMP or ICMPv6 echo socket.
#[derive(Debug)]
pub struct PingSocket {
    pub v6: bool,
    /// The echo identifier the stack writes into every request.
    pub ident: u16,
    rx: VecDeque<PingReply>,
    /// Replies dropped because the receive queue was full.
    pub rx_dropped: u64,
}

impl PingSocket {
    /// Replies waiting to be read.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

/// What a socket is.
#[derive(Debug)]
pub enum SocketKind {
    Ping(PingSocket),
    Udp(crate::udp::UdpSocket),
    Tcp(crate::tcp::TcpSocket),
}

/// Counters over all sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Echo replies (and errors) that matched no open socket.
    pub ping_unmatched: u64,
    /// Replies dropped because their socket's queue was full.
    pub ping_rx_dropped: u64,
}

#[derive(Debug, Default)]
pub struct SocketTable {
    pub(crate) socks: HashMap<SocketId, SocketKind>,
    /// (is IPv6, echo identifier) → socket, for reply demux.
    ping_by_ident: HashMap<(bool, u16), SocketId>,
    last_id: u32,
    pub stats: SocketStats,
}

impl SocketTable {
    /// A fresh handle, or `None` once all 2^32 - 1 are spent (they are never
    /// reused, so a stale handle cannot reach a new socket).
    pub(crate) fn next_id(&mut self) -> Option<SocketId> {
        self.last_id = self.last_id.checked_add(1)?;
        Some(SocketId(self.last_id))
    }

    pub fn get(&self, id: SocketId) -> Option<&SocketKind> {
        self.socks.get(&id)
    }

    pub fn len(&self) -> usize {
        self.socks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// Every socket, for listings (`netstat -a`).
    pub fn iter(&self) -> impl Iterator<Item = (SocketId, &SocketKind)> {
        self.socks.iter().map(|(id, s)| (*id, s))
    }

    /// Files a new socket of any kind; `None` once handles run out.
    pub(crate) fn insert(&mut self, kind: SocketKind) -> Option<SocketId> {
        let id = self.next_id()?;
        self.socks.insert(id, kind);
        Some(id)
    }

    /// Removes a socket whose kind's module has let go of it.
    pub(crate) fn remove(&mut self, id: SocketId) -> Option<SocketKind> {
        self.socks.remove(&id)
    }

    fn ping_mut(&mut self, id: SocketId) -> Option<&mut PingSocket> {
        match self.socks.get_mut(&id) {
            Some(SocketKind::Ping(p)) => Some(p),
            _ => None,
        }
    }

    fn ping_count(&self) -> usize {
        self.ping_by_ident.len()
    }
}

impl Stack {
    /// Opens an ICMP echo socket (`v6` for ICMPv6).
    pub fn ping_open(&mut self, ctx: &mut impl Ctx, v6: bool) -> Result<SocketId, Error> {
        let t = &mut self.sockets;
        if t.ping_count() >= MAX_PING_SOCKETS {
            return Err(Error::NoBuffers);
        }
        // A random first choice keeps identifiers unpredictable to other
        // hosts; the walk finds a free one since far fewer than 65536 are
        // taken.
        let start = ctx.random_below(1 << 16) as u16;
        let ident = (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|id| !t.ping_by_ident.contains_key(&(v6, *id)))
            .ok_or(Error::NoBuffers)?;
        let id = t.next_id().ok_or(Error::NoBuffers)?;
        t.socks.insert(
            id,
            SocketKind::Ping(PingSocket {
                v6,
                ident,
                rx: VecDeque::new(),
                rx_dropped: 0,
            }),
        );
        t.ping_by_ident.insert((v6, ident), id);
        Ok(id)
    }

    /// Sends an echo request: `icmp` is the whole message (type 8 or 128);
    /// the stack sets the identifier to the socket's and fills the checksum.
    pub fn ping_send(
        &mut self,
        ctx: &mut impl Ctx,
        sock: SocketId,
        dst: IpAddr,
        icmp: &[u8],
    ) -> Result<(), Error> {
        let p = self.sockets.ping_mut(sock).ok_or(Error::BadSocket)?;
        let (v6, ident) = (p.v6, p.ident);
        if dst.is_ipv6() != v6 {
            return Err(Error::Invalid("address family of the socket".into()));
        }
        let Some(hdr) = icmp::IcmpHdr::parse(icmp) else {
            return Err(Error::Invalid("echo request shorter than 8 bytes".into()));
        };
        if icmp.len() > MAX_PING_MESSAGE {
            return Err(Error::MessageTooLarge);
        }
        let want = if v6 {
            v6::ECHO_REQUEST
        } else {
            v4::ECHO_REQUEST
        };
        if hdr.ty != want || hdr.code != 0 {
            return Err(Error::Invalid(format!(
                "ICMP type {} code {} (only echo requests, type {want})",
                hdr.ty, hdr.code
            )));
        }
        let mut rest = hdr.rest;
        rest[..2].copy_from_slice(&ident.to_be_bytes());
        let body = icmp.get(icmp::HEADER_LEN..).unwrap_or_default();
        match dst {
            IpAddr::V4(d) => self.icmp4_send(ctx, d, hdr.ty, 0, rest, body),
            IpAddr::V6(d) => self.icmp6_send(ctx, d, hdr.ty, 0, rest, body),
        }
    }

    /// The next reply waiting on `sock`.
    pub fn ping_recv(&mut self, sock: SocketId) -> Option<PingReply> {
        self.sockets.ping_mut(sock)?.rx.pop_front()
    }

    /// Closes any socket (close(2)): a TCP connection goes on closing in the
    /// background as the kernel's does.
    pub fn socket_close(&mut self, ctx: &mut impl Ctx, sock: SocketId) {
        match self.sockets.socks.get(&sock) {
            Some(SocketKind::Udp(_)) => self.udp_close(ctx, sock),
            Some(SocketKind::Tcp(_)) => self.tcp_close(ctx, sock),
            Some(SocketKind::Ping(_)) => {
                let t = &mut self.sockets;
                if let Some(SocketKind::Ping(p)) = t.socks.remove(&sock) {
                    t.ping_by_ident.remove(&(p.v6, p.ident));
                }
            }
            None => {}
        }
    }

    /// An echo reply for identifier `ident` arrived: hand it to its socket.
    /// Called by ICMPv4 and ICMPv6 input. Returns whether a socket took it.
    pub(crate) fn deliver_echo_reply(
        &mut self,
        ctx: &mut impl Ctx,
        from: IpAddr,
        ident: u16,
        icmp: &[u8],
        ttl: u8,
    ) -> bool {
        let t = &mut self.sockets;
        let Some(&id) = t.ping_by_ident.get(&(from.is_ipv6(), ident)) else {
            t.stats.ping_unmatched += 1;
            return false;
        };
        let Some(SocketKind::Ping(p)) = t.socks.get_mut(&id) else {
            t.stats.ping_unmatched += 1;
            return false;
        };
        if p.rx.len() >= PING_RX_QUEUE {
            p.rx_dropped += 1;
            t.stats.ping_rx_dropped += 1;
            return false;
        }
        p.rx.push_back(PingReply {
            from,
            icmp: icmp.to_vec(),
            ttl,
        });
        ctx.socket_ready(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::iface::IfIndex;
    use crate::time::Instant;
    use iopkt_pkt::{PktBuf, Pool};

    /// A context whose random source always gives the same value, the worst
    /// case for identifier collisions.
    struct Stuck;

    impl Ctx for Stuck {
        fn now(&self) -> Instant {
            Instant::ZERO
        }
        fn random_u64(&mut self) -> u64 {
            4242
        }
        fn transmit(&mut self, _: IfIndex, _: PktBuf) {}
    }

    #[test]
    fn identifiers_are_unique_per_family_and_sockets_bounded() {
        let mut ctx = Stuck;
        let mut s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let mut idents = std::collections::HashSet::new();
        let mut ids = Vec::new();
        for _ in 0..MAX_PING_SOCKETS {
            let id = s.ping_open(&mut ctx, false).unwrap();
            let Some(SocketKind::Ping(p)) = s.sockets.get(id) else {
                panic!("not a ping socket");
            };
            assert!(idents.insert(p.ident), "identifier {} twice", p.ident);
            ids.push(id);
        }
        assert_eq!(s.ping_open(&mut ctx, true), Err(Error::NoBuffers));
        s.socket_close(&mut ctx, ids[0]);
        // The freed identifier is the first one tried again; handles are not
        // reused.
        let id = s.ping_open(&mut ctx, true).unwrap();
        assert!(!ids.contains(&id));
        let Some(SocketKind::Ping(p)) = s.sockets.get(id) else {
            panic!("not a ping socket");
        };
        assert_eq!(p.ident, 4242);
        assert_eq!(s.ping_recv(ids[0]), None);
    }

    #[test]
    fn replies_reach_only_the_socket_of_their_family_and_identifier() {
        let mut ctx = Stuck;
        let mut s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let v4 = s.ping_open(&mut ctx, false).unwrap();
        let v6 = s.ping_open(&mut ctx, true).unwrap();
        let from4 = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        let from6: IpAddr = "fd00::2".parse().unwrap();
        assert!(s.deliver_echo_reply(&mut ctx, from4, 4242, &[0; 8], 64));
        assert!(s.deliver_echo_reply(&mut ctx, from6, 4242, &[129, 0, 0, 0, 0, 0, 0, 0], 64));
        assert!(!s.deliver_echo_reply(&mut ctx, from4, 4243, &[0; 8], 64));
        assert_eq!(s.ping_recv(v4).map(|r| r.from), Some(from4));
        assert_eq!(s.ping_recv(v6).map(|r| r.from), Some(from6));
        assert_eq!(s.ping_recv(v4), None);
        assert_eq!(s.sockets.stats.ping_unmatched, 1);
    }
}
