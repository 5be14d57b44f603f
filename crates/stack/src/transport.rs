//! The socket calls of the BSD API as the stack offers them to the resource
//! manager, for every kind of socket. Each call dispatches on the socket's
//! kind to [`crate::udp`] or [`crate::tcp`]; what a kind does not support is
//! `Error::NotSupported` (EOPNOTSUPP), as with the kernel.
//!
//! Nothing here blocks: a call that would wait returns `Error::WouldBlock`
//! (or `Error::InProgress` for a connection attempt), and the stack calls
//! `Ctx::socket_ready` when [`Stack::socket_readiness`] may have changed, so
//! the resource manager can wake whoever waits.

use std::net::{IpAddr, SocketAddr};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::iface::IfIndex;
use crate::socket::{SocketId, SocketKind};
use crate::stack::Stack;

/// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Datagram,
}

/// What a socket is ready for, as poll(2) would say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Data to read, a connection to accept, or end of stream.
    pub readable: bool,
    /// Room to write (and, for TCP, connected).
    pub writable: bool,
    /// An error is pending (read it with [`Stack::socket_take_error`]).
    pub error: bool,
    /// Both directions are shut (POLLHUP).
    pub hup: bool,
}

/// What one receive call got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvInfo {
    /// Bytes written into the caller's buffer; 0 on a stream socket means
    /// end of stream.
    pub len: usize,
    /// The sender (datagram sockets).
    pub from: Option<SocketAddr>,
    /// The datagram was longer than the buffer (MSG_TRUNC); `full_len` is its
    /// real length.
    pub truncated: bool,
    pub full_len: usize,
    /// Destination address and arrival interface (IP_PKTINFO /
    /// IPV6_RECVPKTINFO), when enabled on the socket.
    pub pktinfo: Option<(IpAddr, IfIndex)>,
}

/// Socket options (SOL_SOCKET, IPPROTO_IP/IPV6, IPPROTO_TCP) the stack
/// understands. Sizes are bytes, times seconds unless named otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockOpt {
    ReuseAddr(bool),
    ReusePort(bool),
    Broadcast(bool),
    KeepAlive(bool),
    /// SO_LINGER: `None` off, `Some(secs)` on.
    Linger(Option<u32>),
    RecvBuf(usize),
    SendBuf(usize),
    /// IP_TTL / IPV6_UNICAST_HOPS.
    Ttl(u8),
    MulticastTtl(u8),
    MulticastLoop(bool),
    /// IP_MULTICAST_IF / IPV6_MULTICAST_IF (0: let the routes choose).
    MulticastIf(IfIndex),
    /// IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP (interface 0: the route's).
    JoinGroup(IpAddr, IfIndex),
    LeaveGroup(IpAddr, IfIndex),
    /// IP_PKTINFO / IPV6_RECVPKTINFO.
    PktInfo(bool),
    /// IPV6_V6ONLY.
    V6Only(bool),
    /// TCP_NODELAY.
    NoDelay(bool),
    /// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
    KeepIdle(u32),
    KeepIntvl(u32),
    KeepCnt(u32),
    /// TCP_CONGESTION: "cubic" or "newreno".
    Congestion(String),
    /// TCP_MAXSEG.
    MaxSeg(u16),
}

/// The name of an option, to read it back with [`Stack::socket_getopt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOptName {
    ReuseAddr,
    ReusePort,
    Broadcast,
    KeepAlive,
    Linger,
    RecvBuf,
    SendBuf,
    Ttl,
    MulticastTtl,
    MulticastLoop,
    MulticastIf,
    PktInfo,
    V6Only,
    NoDelay,
    KeepIdle,
    KeepIntvl,
    KeepCnt,
    Congestion,
    MaxSeg,
    /// SO_TYPE.
    Type,
}

/// One line of `netstat -a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    pub id: SocketId,
    /// "tcp", "tcp6", "udp", "udp6", "icmp", "icmp6".
    pub proto: &'static str,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// TCP state in RFC 9293 words ("LISTEN", "ESTABLISHED", …); empty for
    /// datagram sockets.
    pub state: &'static str,
    pub recv_queue: usize,
    pub send_queue: usize,
}

/// Where a received transport segment came from, for UDP and TCP input.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // read by UDP and TCP input as they land
pub(crate) struct L4Rx {
    pub ifindex: IfIndex,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Offset of the transport header in the packet (the packet starts with
    /// the IP header, so ICMP errors can quote it).
    pub l4_off: usize,
    /// TTL or hop limit.
    pub hop: u8,
    /// Arrived in a link-layer broadcast or multicast frame.
    pub l2_multicast: bool,
    /// Sent to a broadcast or multicast IP address.
    pub to_group: bool,
}

fn unsupported(what: &str) -> Error {
    Error::NotSupported(what.to_string())
}

impl Stack {
    /// socket(2) for AF_INET (`v6 == false`) or AF_INET6.
    pub fn socket_open(
        &mut self,
        ctx: &mut impl Ctx,
        v6: bool,
        ty: SockType,
    ) -> Result<SocketId, Error> {
        match ty {
            SockType::Datagram => self.udp_open(ctx, v6),
            SockType::Stream => self.tcp_open(ctx, v6),
        }
    }

    fn kind(&self, id: SocketId) -> Result<&SocketKind, Error> {
        self.sockets.get(id).ok_or(Error::BadSocket)
    }

    /// bind(2). Port 0 picks an ephemeral port.
    pub fn socket_bind(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        local: SocketAddr,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_bind(ctx, id, local),
            SocketKind::Tcp(_) => self.tcp_bind(ctx, id, local),
            SocketKind::Ping(_) => Err(unsupported("bind on an ICMP socket")),
        }
    }

    /// connect(2). For TCP the handshake starts and `Error::InProgress` is
    /// returned; the socket turns writable (or gets an error) when it ends.
    pub fn socket_connect(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        remote: SocketAddr,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_connect(ctx, id, remote),
            SocketKind::Tcp(_) => self.tcp_connect(ctx, id, remote),
            SocketKind::Ping(_) => Err(unsupported("connect on an ICMP socket")),
        }
    }

    /// listen(2).
    pub fn socket_listen(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        backlog: u32,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Tcp(_) => self.tcp_listen(ctx, id, backlog),
            _ => Err(unsupported("listen on a datagram socket")),
        }
    }

    /// accept(2): the next established connection, or `Error::WouldBlock`.
    pub fn socket_accept(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
    ) -> Result<(SocketId, SocketAddr), Error> {
        match self.kind(id)? {
            SocketKind::Tcp(_) => self.tcp_accept(ctx, id),
            _ => Err(unsupported("accept on a datagram socket")),
        }
    }

    /// send(2)/sendto(2): how many bytes were taken (a datagram is taken
    /// whole or not at all), or `Error::WouldBlock` when there is no room.
    pub fn socket_send(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        data: &[u8],
        dst: Option<SocketAddr>,
    ) -> Result<usize, Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_send(ctx, id, data, dst),
            SocketKind::Tcp(_) => self.tcp_send(ctx, id, data),
            SocketKind::Ping(_) => Err(unsupported("send on an ICMP socket; use ping_send")),
        }
    }

    /// recv(2)/recvfrom(2) into `buf`; `peek` leaves the data queued
    /// (MSG_PEEK). `Error::WouldBlock` when nothing is there.
    pub fn socket_recv(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvInfo, Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_recv(ctx, id, buf, peek),
            SocketKind::Tcp(_) => self.tcp_recv(ctx, id, buf, peek),
            SocketKind::Ping(_) => Err(unsupported("recv on an ICMP socket; use ping_recv")),
        }
    }

    /// A stream send whose bytes `fill` writes into the socket's send
    /// buffer in place (up to `max`; two slices, as a ring's room may
    /// wrap); returns how many it wrote. For a caller that reads the bytes
    /// from a descriptor: no copy through a buffer of its own.
    /// `Error::WouldBlock` when there is no room (`fill` is not called).
    pub fn socket_send_with(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        match self.kind(id)? {
            SocketKind::Tcp(_) => self.tcp_send_with(ctx, id, max, fill),
            _ => Err(unsupported("in-place send on a datagram socket")),
        }
    }

    /// A stream receive that offers the readable bytes (up to `max`) in
    /// place to `drain`, which returns how many it took. `Ok` with that
    /// count when bytes were readable (even 0); otherwise as
    /// [`Stack::socket_recv`]: `Ok(0)` at end of stream, the pending
    /// error, or `Error::WouldBlock`.
    pub fn socket_recv_with(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        max: usize,
        drain: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Result<RecvInfo, Error> {
        match self.kind(id)? {
            SocketKind::Tcp(_) => self.tcp_recv_with(ctx, id, max, drain),
            _ => Err(unsupported("in-place receive on a datagram socket")),
        }
    }

    /// Gives a connected TCP socket a receive sink (`None` takes it
    /// away): its in-order bytes go there as they arrive while nothing
    /// waits before them (`tcp::sink`). `Error::NotConnected` while the
    /// socket has no connection yet.
    pub fn socket_set_recv_sink(
        &mut self,
        id: SocketId,
        sink: Option<Box<dyn crate::tcp::sink::RecvSink>>,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Tcp(_) => match self.tcp.conns.get_mut(&id) {
                Some(t) => {
                    t.sink.0 = sink;
                    Ok(())
                }
                None => Err(Error::NotConnected),
            },
            _ => Err(unsupported("a receive sink on a datagram socket")),
        }
    }

    /// shutdown(2).
    pub fn socket_shutdown(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        read: bool,
        write: bool,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_shutdown(ctx, id, read, write),
            SocketKind::Tcp(_) => self.tcp_shutdown(ctx, id, read, write),
            SocketKind::Ping(_) => Err(unsupported("shutdown on an ICMP socket")),
        }
    }

    /// setsockopt(2).
    pub fn socket_setopt(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        opt: SockOpt,
    ) -> Result<(), Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_setopt(ctx, id, opt),
            SocketKind::Tcp(_) => self.tcp_setopt(ctx, id, opt),
            SocketKind::Ping(_) => Err(unsupported("options on an ICMP socket")),
        }
    }

    /// getsockopt(2).
    pub fn socket_getopt(&self, id: SocketId, name: SockOptName) -> Result<SockOpt, Error> {
        match self.kind(id)? {
            SocketKind::Udp(_) => self.udp_getopt(id, name),
            SocketKind::Tcp(_) => self.tcp_getopt(id, name),
            SocketKind::Ping(_) => Err(unsupported("options on an ICMP socket")),
        }
    }

    /// What the socket is ready for now.
    pub fn socket_readiness(&self, id: SocketId) -> Readiness {
        match self.sockets.get(id) {
            Some(SocketKind::Udp(_)) => self.udp_readiness(id),
            Some(SocketKind::Tcp(_)) => self.tcp_readiness(id),
            Some(SocketKind::Ping(p)) => Readiness {
                readable: p.queued() > 0,
                writable: true,
                ..Readiness::default()
            },
            None => Readiness {
                error: true,
                hup: true,
                ..Readiness::default()
            },
        }
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn socket_take_error(&mut self, id: SocketId) -> Option<Error> {
        match self.sockets.get(id) {
            Some(SocketKind::Udp(_)) => self.udp_take_error(id),
            Some(SocketKind::Tcp(_)) => self.tcp_take_error(id),
            _ => None,
        }
    }

    /// getsockname(2).
    pub fn socket_local(&self, id: SocketId) -> Option<SocketAddr> {
        match self.sockets.get(id)? {
            SocketKind::Udp(_) => self.udp_local(id),
            SocketKind::Tcp(_) => self.tcp_local(id),
            SocketKind::Ping(_) => None,
        }
    }

    /// getpeername(2).
    pub fn socket_peer(&self, id: SocketId) -> Option<SocketAddr> {
        match self.sockets.get(id)? {
            SocketKind::Udp(_) => self.udp_peer(id),
            SocketKind::Tcp(_) => self.tcp_peer(id),
            SocketKind::Ping(_) => None,
        }
    }

    /// Every socket, for `netstat -a`.
    pub fn socket_list(&self) -> Vec<SocketInfo> {
        let mut v: Vec<SocketInfo> = self
            .sockets
            .iter()
            .filter_map(|(id, k)| match k {
                SocketKind::Udp(_) => self.udp_info(id),
                SocketKind::Tcp(_) => self.tcp_info(id),
                SocketKind::Ping(p) => Some(SocketInfo {
                    id,
                    proto: if p.v6 { "icmp6" } else { "icmp" },
                    local: None,
                    remote: None,
                    state: "",
                    recv_queue: p.queued(),
                    send_queue: 0,
                }),
            })
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    /// What `netstat -a` shows: every socket of [`Self::socket_list`], and
    /// also the TCP connections the application already closed (FIN-WAIT,
    /// TIME-WAIT, LAST-ACK, ...), which have no handle any more but still
    /// hold their address pair (RFC 9293 section 3.6), as the kernel lists
    /// them. Sorted by id.
    pub fn socket_list_all(&self) -> Vec<SocketInfo> {
        let mut v = self.socket_list();
        v.extend(
            self.tcp_connections()
                .into_iter()
                .filter(|i| self.sockets.get(i.id).is_none()),
        );
        v.sort_by_key(|i| i.id);
        v
    }
}
