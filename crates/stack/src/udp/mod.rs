//! UDP (RFC 768) sockets: the socket calls, options, receive queues and
//! output. Port demux and bind rules are in [`demux`], input and ICMP
//! errors in `input`, multicast memberships in `multicast`.
//!
//! Semantics follow Linux where RFC 768 leaves them open: a datagram bigger
//! than the receive buffer allows is dropped and counted, a connected socket
//! learns of ICMP port unreachable as ECONNREFUSED on its next call, and a
//! send to a broadcast address needs SO_BROADCAST.

pub mod demux;
mod disconnect;
mod input;
mod multicast;
mod source;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use iopkt_pkt::PktBuf;
use iopkt_wire::checksum::{finish, pseudo_v4, pseudo_v6};
use iopkt_wire::udp::{HEADER_LEN, UdpHdr};
use iopkt_wire::{IntoBytes, ipproto};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::iface::IfIndex;
use crate::igmp::IgmpStats;
use crate::socket::{SocketId, SocketKind};
use crate::stack::Stack;
use crate::transport::{Readiness, RecvInfo, SockOpt, SockOptName, SocketInfo};

pub use input::{error_of_icmp4, error_of_icmp6};

/// Receive buffer of a new socket, Linux's `net.core.rmem_default`.
pub const DEFAULT_RCVBUF: usize = 212_992;
/// Send buffer of a new socket, Linux's `net.core.wmem_default`.
pub const DEFAULT_SNDBUF: usize = 212_992;
/// Smallest and largest buffer sizes SO_RCVBUF / SO_SNDBUF may set.
pub const MIN_BUF: usize = 2_304;
pub const MAX_BUF: usize = 16 << 20;
/// What a queued datagram costs its receive buffer beyond its payload, so
/// that empty datagrams cannot fill memory unbounded (Linux charges the
/// buffer's true size the same way).
pub const DATAGRAM_OVERHEAD: usize = 256;
/// Groups one socket may join (Linux's IP_MAX_MEMBERSHIPS).
pub const MAX_MEMBERSHIPS: usize = 20;
/// UDP sockets open at once at most.
pub const MAX_UDP_SOCKETS: usize = 16_384;
/// Largest payloads: the 16-bit lengths minus the headers (RFC 768, RFC 791,
/// RFC 8200; no jumbograms).
pub const MAX_PAYLOAD_V4: usize = 65_535 - 20 - HEADER_LEN;
pub const MAX_PAYLOAD_V6: usize = 65_535 - HEADER_LEN;
/// The ephemeral port range (Linux's `ip_local_port_range`; RFC 6056
/// section 3.2 recommends the whole 1024–65535, Linux's default is kept for
/// familiarity).
pub const EPHEMERAL_FIRST: u16 = 32_768;
pub const EPHEMERAL_LAST: u16 = 60_999;

/// UDP counters, as `netstat -s` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed to at least one socket.
    pub received: u64,
    pub sent: u64,
    pub bad_checksum: u64,
    /// Shorter than a header, or a length field that does not fit.
    pub bad_length: u64,
    /// Unicast datagrams for a port nobody listens on.
    pub no_port: u64,
    /// Broadcast or multicast datagrams nobody wanted.
    pub no_port_broadcast: u64,
    /// Dropped because the socket's receive buffer was full.
    pub full_buffers: u64,
}

/// UDP state of the stack beyond the sockets themselves.
#[derive(Debug, Default)]
pub struct UdpState {
    /// Local port → the sockets bound to it, in the order they bound.
    pub(crate) ports: HashMap<u16, Vec<SocketId>>,
    /// Sockets open.
    pub(crate) count: usize,
    /// (interface, group) → how many socket memberships hold it.
    pub(crate) groups4: HashMap<(IfIndex, Ipv4Addr), u32>,
    pub(crate) groups6: HashMap<(IfIndex, Ipv6Addr), u32>,
    pub stats: UdpStats,
    pub igmp: IgmpStats,
    /// Reports scheduled in answer to IGMP and MLD queries.
    pub(crate) queries: crate::group_query::PendingReports,
}

impl UdpState {
    /// Whether a socket joined IPv6 group `g` on `ifindex`.
    pub fn is_member6(&self, ifindex: IfIndex, g: &Ipv6Addr) -> bool {
        self.groups6.contains_key(&(ifindex, *g))
    }
    /// Whether a socket joined IPv4 group `g` on `ifindex`.
    pub fn is_member4(&self, ifindex: IfIndex, g: &Ipv4Addr) -> bool {
        self.groups4.contains_key(&(ifindex, *g))
    }
}

/// Per-socket options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpOptions {
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub broadcast: bool,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    /// IP_TTL / IPV6_UNICAST_HOPS; `None` is the stack's default.
    pub ttl: Option<u8>,
    /// Multicast stays on the link unless asked (RFC 1112 section 6.1).
    pub mcast_ttl: u8,
    pub mcast_loop: bool,
    pub mcast_if: IfIndex,
    pub pktinfo: bool,
    pub v6only: bool,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            reuse_addr: false,
            reuse_port: false,
            broadcast: false,
            rcvbuf: DEFAULT_RCVBUF,
            sndbuf: DEFAULT_SNDBUF,
            ttl: None,
            mcast_ttl: 1,
            mcast_loop: true,
            mcast_if: 0,
            pktinfo: false,
            v6only: false,
        }
    }
}

/// A datagram waiting to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub from: SocketAddr,
    pub data: Vec<u8>,
    /// Where it was sent and where it came in (for PKTINFO).
    pub dst: IpAddr,
    pub ifindex: IfIndex,
}

impl Datagram {
    fn charge(&self) -> usize {
        self.data.len() + DATAGRAM_OVERHEAD
    }
}

/// A UDP socket's state.
#[derive(Debug)]
pub struct UdpSocket {
    pub v6: bool,
    /// Bound address: 0.0.0.0 / :: for any; a v4-mapped address on an IPv6
    /// socket stands for that IPv4 address.
    pub local_ip: IpAddr,
    /// 0 while unbound.
    pub local_port: u16,
    /// The connected peer, in the socket's family.
    pub peer: Option<SocketAddr>,
    pub opts: UdpOptions,
    rx: VecDeque<Datagram>,
    /// What the queued datagrams charge the receive buffer.
    rx_bytes: usize,
    /// Datagrams dropped for a full receive buffer.
    pub rx_dropped: u64,
    error: Option<Error>,
    shut_rd: bool,
    shut_wr: bool,
    /// Groups joined: (group, interface).
    pub(crate) groups: Vec<(IpAddr, IfIndex)>,
    /// connect() filled in the source address of a wildcard-bound socket;
    /// dissolving the association gives the wildcard back.
    pub(crate) source_from_connect: bool,
}

impl UdpSocket {
    fn new(v6: bool) -> UdpSocket {
        UdpSocket {
            v6,
            local_ip: if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            local_port: 0,
            peer: None,
            opts: UdpOptions::default(),
            rx: VecDeque::new(),
            rx_bytes: 0,
            rx_dropped: 0,
            error: None,
            shut_rd: false,
            shut_wr: false,
            groups: Vec::new(),
            source_from_connect: false,
        }
    }

    /// Datagrams waiting.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    fn addr(&self, ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }
}

/// The IPv4 address an address stands for: itself, or the IPv4 address
/// inside a v4-mapped IPv6 address.
pub(crate) fn v4_of(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

/// `a` with v4-mapped IPv6 addresses turned into IPv4, to compare endpoints
/// of either family.
pub(crate) fn canon(a: SocketAddr) -> SocketAddr {
    match v4_of(a.ip()) {
        Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
        None => a,
    }
}

/// `a` as an IPv6 socket sees it (IPv4 becomes v4-mapped).
pub(crate) fn as_v6(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v) => {
            SocketAddr::V6(SocketAddrV6::new(v.ip().to_ipv6_mapped(), v.port(), 0, 0))
        }
        v6 => v6,
    }
}

/// Starts the UDP checksum of the segment at the front of `pkt`: the
/// folded pseudo-header sum goes into the field and the packet is marked
/// partial, to be completed where it leaves the host (a computed zero then
/// goes out as all ones, RFC 768; see `PktBuf::finish_checksum`). On `lo0`
/// it is never completed, and never verified.
fn start_checksum(src: IpAddr, dst: IpAddr, pkt: &mut PktBuf) {
    let len = pkt.len();
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_v4(s, d, ipproto::UDP, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_v6(s, d, ipproto::UDP, len as u32),
        _ => 0,
    };
    if let Some(field) = pkt.data_mut().get_mut(6..8) {
        field.copy_from_slice(&(!finish(pseudo)).to_be_bytes());
        pkt.set_csum_partial(0, 6);
    }
}

impl Stack {
    pub(crate) fn udp_sock(&self, id: SocketId) -> Result<&UdpSocket, Error> {
        match self.sockets.get(id) {
            Some(SocketKind::Udp(s)) => Ok(s),
            _ => Err(Error::BadSocket),
        }
    }

    pub(crate) fn udp_sock_mut(&mut self, id: SocketId) -> Result<&mut UdpSocket, Error> {
        match self.sockets.socks.get_mut(&id) {
            Some(SocketKind::Udp(s)) => Ok(s),
            _ => Err(Error::BadSocket),
        }
    }

    pub(crate) fn udp_open(&mut self, ctx: &mut impl Ctx, v6: bool) -> Result<SocketId, Error> {
        let _ = ctx;
        if self.udp.count >= MAX_UDP_SOCKETS {
            return Err(Error::NoBuffers);
        }
        let id = self.sockets.next_id().ok_or(Error::NoBuffers)?;
        self.sockets
            .socks
            .insert(id, SocketKind::Udp(UdpSocket::new(v6)));
        self.udp.count += 1;
        Ok(id)
    }

    /// `a` in the family of socket `id`: IPv4 sockets take IPv4 only; IPv6
    /// sockets take IPv4 as v4-mapped unless IPV6_V6ONLY.
    fn udp_family_addr(&self, id: SocketId, a: SocketAddr) -> Result<SocketAddr, Error> {
        let s = self.udp_sock(id)?;
        match (s.v6, a) {
            (false, SocketAddr::V4(_)) => Ok(a),
            (false, SocketAddr::V6(_)) => {
                Err(Error::Invalid("IPv6 address on an IPv4 socket".into()))
            }
            (true, a) => {
                let a = as_v6(a);
                if s.opts.v6only && v4_of(a.ip()).is_some() {
                    return Err(Error::Invalid(
                        "IPv4 address on an IPV6_V6ONLY socket".into(),
                    ));
                }
                Ok(a)
            }
        }
    }

    pub(crate) fn udp_bind(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        local: SocketAddr,
    ) -> Result<(), Error> {
        if self.udp_sock(id)?.local_port != 0 {
            return Err(Error::Invalid("socket already bound".into()));
        }
        let local = self.udp_family_addr(id, local)?;
        let ip = local.ip();
        let ok = match (v4_of(ip), ip) {
            (Some(a), _) => {
                a.is_unspecified()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || self.is_local4(a)
                    || self.is_any_subnet_broadcast4(a)
            }
            (None, IpAddr::V6(a)) => {
                a.is_unspecified()
                    || a.is_multicast()
                    || a.is_loopback()
                    || self.local_iface6(&a).is_some()
            }
            (None, IpAddr::V4(_)) => false,
        };
        if !ok {
            return Err(Error::AddrNotAvailable);
        }
        let port = if local.port() == 0 {
            self.udp_pick_port(ctx).ok_or(Error::AddrInUse)?
        } else {
            if self.udp_bind_conflict(id, ip, local.port()) {
                return Err(Error::AddrInUse);
            }
            local.port()
        };
        self.udp_attach(id, ip, port)
    }

    /// Binds to the wildcard address and an ephemeral port, for a send or
    /// connect on an unbound socket.
    fn udp_autobind(&mut self, ctx: &mut impl Ctx, id: SocketId) -> Result<(), Error> {
        let ip = self.udp_sock(id)?.local_ip;
        let port = self.udp_pick_port(ctx).ok_or(Error::AddrInUse)?;
        self.udp_attach(id, ip, port)
    }

    fn udp_attach(&mut self, id: SocketId, ip: IpAddr, port: u16) -> Result<(), Error> {
        let s = self.udp_sock_mut(id)?;
        s.local_ip = ip;
        s.local_port = port;
        self.udp.ports.entry(port).or_default().push(id);
        Ok(())
    }

    pub(crate) fn udp_connect(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        remote: SocketAddr,
    ) -> Result<(), Error> {
        let remote = self.udp_family_addr(id, remote)?;
        if remote.port() == 0 {
            return Err(Error::Invalid("port 0".into()));
        }
        if remote.ip().is_unspecified() {
            return Err(Error::Invalid("unspecified peer address".into()));
        }
        // As Linux does, a wildcard-bound socket takes the source address
        // of its route, so getsockname() shows it and replies to other
        // addresses of ours do not reach it.
        let s = self.udp_sock(id)?;
        let wildcard =
            s.local_ip.is_unspecified() || v4_of(s.local_ip).is_some_and(|a| a.is_unspecified());
        let v6 = s.v6;
        let src = if wildcard {
            let sel = match v4_of(remote.ip()) {
                Some(d) => self.ipv4_path(d, None)?.src.into(),
                None => match remote.ip() {
                    IpAddr::V6(d) => {
                        let oif = match remote {
                            SocketAddr::V6(v) if v.scope_id() != 0 => Some(v.scope_id()),
                            _ => None,
                        };
                        self.ipv6_route_for(&d, oif)?;
                        IpAddr::V6(
                            self.ipv6_select_source_on(&d, oif)
                                .ok_or(Error::AddrNotAvailable)?,
                        )
                    }
                    IpAddr::V4(_) => return Err(Error::Invalid("address family".into())),
                },
            };
            Some(match (v6, sel) {
                (true, IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
                (_, a) => a,
            })
        } else {
            None
        };
        if self.udp_sock(id)?.local_port == 0 {
            self.udp_autobind(ctx, id)?;
        }
        let s = self.udp_sock_mut(id)?;
        if let Some(src) = src {
            s.local_ip = src;
            s.source_from_connect = true;
        }
        s.peer = Some(remote);
        Ok(())
    }

    pub(crate) fn udp_send(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        data: &[u8],
        dst: Option<SocketAddr>,
    ) -> Result<usize, Error> {
        let s = self.udp_sock_mut(id)?;
        if s.shut_wr {
            return Err(Error::BrokenPipe);
        }
        // A pending asynchronous error (ICMP port unreachable) is reported
        // by the next call, as with Linux.
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        // sendto() with an address on a connected socket uses that address
        // (Linux; BSD would say EISCONN).
        let dst = match dst.or(s.peer) {
            Some(d) => self.udp_family_addr(id, d)?,
            None => return Err(Error::NotConnected),
        };
        if dst.port() == 0 {
            return Err(Error::Invalid("destination port 0".into()));
        }
        let dst_v4 = v4_of(dst.ip());
        let max = if dst_v4.is_some() {
            MAX_PAYLOAD_V4
        } else {
            MAX_PAYLOAD_V6
        };
        if data.len() > max {
            return Err(Error::MessageTooLarge);
        }
        if self.udp_sock(id)?.local_port == 0 {
            self.udp_autobind(ctx, id)?;
        }
        let s = self.udp_sock(id)?;
        let (sport, local_ip, opts) = (s.local_port, s.local_ip, s.opts.clone());
        let len = HEADER_LEN + data.len();
        let mut pkt = self.pool.alloc_for(len);
        let Some(seg) = pkt.try_append(len) else {
            return Err(Error::NoBuffers);
        };
        seg[..HEADER_LEN].copy_from_slice(UdpHdr::new(sport, dst.port(), len as u16).as_bytes());
        seg[HEADER_LEN..].copy_from_slice(data);
        match (dst_v4, dst.ip()) {
            (Some(d), _) => {
                let bcast = d.is_broadcast() || self.is_any_subnet_broadcast4(d);
                if bcast && !opts.broadcast {
                    return Err(Error::PermissionDenied);
                }
                let bound = v4_of(local_ip).filter(|a| !a.is_unspecified() && !a.is_multicast());
                // IP_MULTICAST_IF: leave by that interface, from its address.
                let via_if = (d.is_multicast() && opts.mcast_if != 0)
                    .then(|| self.iface(opts.mcast_if))
                    .flatten()
                    .and_then(|i| i.addrs4.first().map(|a| a.addr));
                let path = self.ipv4_path(d, bound.or(via_if))?;
                start_checksum(IpAddr::V4(path.src), IpAddr::V4(d), &mut pkt);
                let ttl = if d.is_multicast() {
                    Some(opts.mcast_ttl)
                } else {
                    opts.ttl
                };
                let looped = (d.is_multicast() && opts.mcast_loop).then(|| pkt.data().to_vec());
                self.ipv4_send(ctx, Some(path.src), d, ipproto::UDP, pkt, ttl, false)?;
                if let Some(seg) = looped {
                    // IP_MULTICAST_LOOP: members on this host get a copy.
                    let from = SocketAddr::new(IpAddr::V4(path.src), sport);
                    self.udp_deliver_group(
                        ctx,
                        from,
                        dst,
                        path.ifindex,
                        seg.get(HEADER_LEN..).unwrap_or_default(),
                    );
                }
            }
            (None, IpAddr::V6(d)) => {
                let bound = match local_ip {
                    IpAddr::V6(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
                    _ => None,
                };
                let scope = match dst {
                    SocketAddr::V6(v) if v.scope_id() != 0 => Some(v.scope_id()),
                    _ => None,
                };
                let oif = if d.is_multicast() && opts.mcast_if != 0 {
                    Some(opts.mcast_if)
                } else {
                    scope
                };
                let (out_if, _) = self.ipv6_route_for(&d, oif)?;
                let src = match bound {
                    Some(b) => b,
                    None => self
                        .ipv6_select_source_on(&d, oif)
                        .ok_or(Error::AddrNotAvailable)?,
                };
                start_checksum(IpAddr::V6(src), IpAddr::V6(d), &mut pkt);
                let hop = if d.is_multicast() {
                    Some(opts.mcast_ttl)
                } else {
                    opts.ttl
                };
                let looped = (d.is_multicast() && opts.mcast_loop).then(|| pkt.data().to_vec());
                match oif {
                    Some(i) => self.ipv6_send_on(ctx, i, Some(src), d, ipproto::UDP, pkt, hop)?,
                    None => self.ipv6_send(ctx, Some(src), d, ipproto::UDP, pkt, hop)?,
                }
                if let Some(seg) = looped {
                    let from = SocketAddr::new(IpAddr::V6(src), sport);
                    self.udp_deliver_group(
                        ctx,
                        from,
                        dst,
                        out_if,
                        seg.get(HEADER_LEN..).unwrap_or_default(),
                    );
                }
            }
            (None, IpAddr::V4(_)) => return Err(Error::Invalid("address family".into())),
        }
        self.udp.stats.sent += 1;
        Ok(data.len())
    }

    pub(crate) fn udp_recv(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvInfo, Error> {
        let _ = ctx;
        let s = self.udp_sock_mut(id)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let Some(dg) = s.rx.front() else {
            if s.shut_rd {
                return Ok(RecvInfo {
                    len: 0,
                    from: None,
                    truncated: false,
                    full_len: 0,
                    pktinfo: None,
                });
            }
            return Err(Error::WouldBlock);
        };
        let n = buf.len().min(dg.data.len());
        buf[..n].copy_from_slice(&dg.data[..n]);
        let info = RecvInfo {
            len: n,
            from: Some(dg.from),
            truncated: dg.data.len() > n,
            full_len: dg.data.len(),
            pktinfo: s.opts.pktinfo.then_some((dg.dst, dg.ifindex)),
        };
        if !peek && let Some(dg) = s.rx.pop_front() {
            s.rx_bytes = s.rx_bytes.saturating_sub(dg.charge());
        }
        Ok(info)
    }

    pub(crate) fn udp_shutdown(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        read: bool,
        write: bool,
    ) -> Result<(), Error> {
        let s = self.udp_sock_mut(id)?;
        s.shut_rd |= read;
        s.shut_wr |= write;
        if read {
            s.rx.clear();
            s.rx_bytes = 0;
        }
        // A reader blocked in recv() wakes up to see end of data.
        ctx.socket_ready(id);
        Ok(())
    }

    pub(crate) fn udp_setopt(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        opt: SockOpt,
    ) -> Result<(), Error> {
        let (v6, bound) = {
            let s = self.udp_sock(id)?;
            (s.v6, s.local_port != 0)
        };
        match opt {
            SockOpt::JoinGroup(g, ifx) => return self.udp_join(ctx, id, g, ifx),
            SockOpt::LeaveGroup(g, ifx) => return self.udp_leave(ctx, id, g, ifx),
            SockOpt::MulticastIf(i) if i != 0 && self.iface(i).is_none() => {
                return Err(Error::NoSuchInterface(format!("#{i}")));
            }
            _ => {}
        }
        let s = self.udp_sock_mut(id)?;
        let o = &mut s.opts;
        match opt {
            SockOpt::ReuseAddr(b) => o.reuse_addr = b,
            SockOpt::ReusePort(b) => o.reuse_port = b,
            SockOpt::Broadcast(b) => o.broadcast = b,
            SockOpt::RecvBuf(n) => o.rcvbuf = n.clamp(MIN_BUF, MAX_BUF),
            SockOpt::SendBuf(n) => o.sndbuf = n.clamp(MIN_BUF, MAX_BUF),
            SockOpt::Ttl(0) => return Err(Error::Invalid("TTL 0".into())),
            SockOpt::Ttl(t) => o.ttl = Some(t),
            SockOpt::MulticastTtl(t) => o.mcast_ttl = t,
            SockOpt::MulticastLoop(b) => o.mcast_loop = b,
            SockOpt::MulticastIf(i) => o.mcast_if = i,
            SockOpt::PktInfo(b) => o.pktinfo = b,
            SockOpt::V6Only(_) if !v6 => {
                return Err(Error::NotSupported("IPV6_V6ONLY on an IPv4 socket".into()));
            }
            SockOpt::V6Only(_) if bound => {
                return Err(Error::Invalid("IPV6_V6ONLY after bind".into()));
            }
            SockOpt::V6Only(b) => o.v6only = b,
            other => return Err(Error::NotSupported(format!("{other:?} on a UDP socket"))),
        }
        Ok(())
    }

    pub(crate) fn udp_getopt(&self, id: SocketId, name: SockOptName) -> Result<SockOpt, Error> {
        let s = self.udp_sock(id)?;
        let o = &s.opts;
        Ok(match name {
            SockOptName::ReuseAddr => SockOpt::ReuseAddr(o.reuse_addr),
            SockOptName::ReusePort => SockOpt::ReusePort(o.reuse_port),
            SockOptName::Broadcast => SockOpt::Broadcast(o.broadcast),
            SockOptName::RecvBuf => SockOpt::RecvBuf(o.rcvbuf),
            SockOptName::SendBuf => SockOpt::SendBuf(o.sndbuf),
            SockOptName::Ttl => SockOpt::Ttl(o.ttl.unwrap_or(if s.v6 {
                self.config.hop_limit
            } else {
                self.config.ttl
            })),
            SockOptName::MulticastTtl => SockOpt::MulticastTtl(o.mcast_ttl),
            SockOptName::MulticastLoop => SockOpt::MulticastLoop(o.mcast_loop),
            SockOptName::MulticastIf => SockOpt::MulticastIf(o.mcast_if),
            SockOptName::PktInfo => SockOpt::PktInfo(o.pktinfo),
            SockOptName::V6Only if s.v6 => SockOpt::V6Only(o.v6only),
            other => return Err(Error::NotSupported(format!("{other:?} on a UDP socket"))),
        })
    }

    pub(crate) fn udp_readiness(&self, id: SocketId) -> Readiness {
        match self.udp_sock(id) {
            Ok(s) => Readiness {
                readable: !s.rx.is_empty() || s.shut_rd || s.error.is_some(),
                // Datagrams leave at once: there is always room unless the
                // socket was shut for writing.
                writable: !s.shut_wr,
                error: s.error.is_some(),
                hup: s.shut_rd && s.shut_wr,
            },
            Err(_) => Readiness {
                error: true,
                hup: true,
                ..Readiness::default()
            },
        }
    }

    pub(crate) fn udp_take_error(&mut self, id: SocketId) -> Option<Error> {
        self.udp_sock_mut(id).ok()?.error.take()
    }

    pub(crate) fn udp_local(&self, id: SocketId) -> Option<SocketAddr> {
        let s = self.udp_sock(id).ok()?;
        Some(s.addr(s.local_ip, s.local_port))
    }

    pub(crate) fn udp_peer(&self, id: SocketId) -> Option<SocketAddr> {
        self.udp_sock(id).ok()?.peer
    }

    pub(crate) fn udp_info(&self, id: SocketId) -> Option<SocketInfo> {
        let s = self.udp_sock(id).ok()?;
        Some(SocketInfo {
            id,
            proto: if s.v6 { "udp6" } else { "udp" },
            local: (s.local_port != 0).then(|| s.addr(s.local_ip, s.local_port)),
            remote: s.peer,
            state: "",
            recv_queue: s.rx.iter().map(|d| d.data.len()).sum(),
            send_queue: 0,
        })
    }

    /// Closes a UDP socket (called by `socket_close`): out of the port
    /// table, out of its groups.
    pub(crate) fn udp_close(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Ok(s) = self.udp_sock(id) else {
            return;
        };
        let (port, groups) = (s.local_port, s.groups.clone());
        for (g, ifx) in groups {
            let _ = self.udp_leave(ctx, id, g, ifx);
        }
        if let Some(v) = self.udp.ports.get_mut(&port) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.udp.ports.remove(&port);
            }
        }
        self.sockets.socks.remove(&id);
        self.udp.count = self.udp.count.saturating_sub(1);
    }

    /// Queues `dg` on socket `id` if its receive buffer has room. Returns
    /// whether it was queued.
    pub(crate) fn udp_enqueue(&mut self, ctx: &mut impl Ctx, id: SocketId, dg: Datagram) -> bool {
        let Ok(s) = self.udp_sock_mut(id) else {
            return false;
        };
        if s.shut_rd {
            return false;
        }
        // One datagram is always let into an empty queue, so a buffer set
        // smaller than a datagram still passes datagrams one at a time.
        if !s.rx.is_empty() && s.rx_bytes + dg.charge() > s.opts.rcvbuf {
            s.rx_dropped += 1;
            self.udp.stats.full_buffers += 1;
            return false;
        }
        s.rx_bytes += dg.charge();
        s.rx.push_back(dg);
        ctx.socket_ready(id);
        true
    }
}
