//! The three message bodies: [`Request`] (client to server), [`Response`]
//! (the answer to one request) and [`Event`] (pushed by the server).
//!
//! Postcard encodes an enum as the variant's index (a varint) followed by its
//! fields, so variants are only ever appended: a server that does not know a
//! newer request's index answers `ENOSYS` and the connection goes on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::sockets::{SockOptNameWire, SockOptWire, SocketInfoWire};
use super::types::{CounterGroupWire, IfInfo, NeighborEntry, RouteInfo, StatEntry, SysctlEntry};

/// Longest interface name (as the stack accepts them).
pub const MAX_IFNAME: usize = 15;
/// Longest sysctl name.
pub const MAX_SYSCTL_NAME: usize = 128;
/// Longest module name or path, and longest option string of `mount`.
pub const MAX_MODULE_ARG: usize = 4096;
/// Smallest and largest ICMP message a ping socket sends (8-byte header; an
/// IPv6 payload is at most 65535 bytes without jumbograms, RFC 8200 section 3).
pub const MIN_ICMP: usize = 8;
pub const MAX_ICMP: usize = 65_535;

/// How `SetAddr4`/`SetAddr6` change an interface's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddrOp {
    /// `ifconfig IF inet A/P`: IPv4 replaces the interface's other IPv4
    /// addresses (BSD behaviour); IPv6 adds.
    Set,
    /// `ifconfig IF inet A/P alias`: adds.
    Alias,
    /// `ifconfig IF inet A -alias` / `delete`: removes.
    Delete,
}

/// What kind of module `mount` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleKindWire {
    /// `devnp-NAME.so`.
    Driver,
    /// `lsm-NAME.so`.
    Protocol,
    /// A bare name or a path: the stack decides from the module itself (a
    /// bare name is looked for as `devnp-NAME.so`, then `lsm-NAME.so`).
    Any,
}

/// A route to add or delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub dest: IpAddr,
    pub plen: u8,
    /// Next hop; none for a route straight onto an interface (needs `ifname`
    /// when adding).
    pub gateway: Option<IpAddr>,
    /// `-ifp IF`: the interface to use (else found from the gateway).
    pub ifname: Option<String>,
}

/// A request. Variant indexes (wire discriminants) are in the comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// 0: every interface. Answer: `Interfaces`.
    ListInterfaces,
    /// 1: add/alias/delete an IPv4 address. Privileged. Answer: `Ok`.
    SetAddr4 {
        ifname: String,
        addr: Ipv4Addr,
        plen: u8,
        op: AddrOp,
    },
    /// 2: the same for IPv6. Privileged.
    SetAddr6 {
        ifname: String,
        addr: Ipv6Addr,
        plen: u8,
        op: AddrOp,
    },
    /// 3: `ifconfig IF up|down`. Privileged.
    SetUp { ifname: String, up: bool },
    /// 4: `ifconfig IF mtu N`. Privileged.
    SetMtu { ifname: String, mtu: u32 },
    /// 5: `ifconfig IF destroy`. Privileged.
    DestroyInterface { ifname: String },
    /// 6: `route add`. Privileged. Answer: `Route` (what was added).
    RouteAdd(RouteSpec),
    /// 7: `route delete`. Privileged. Answer: `Route` (what was removed).
    RouteDelete(RouteSpec),
    /// 8: `route get DEST`. Answer: `Route`.
    RouteGet { dest: IpAddr },
    /// 9: both routing tables. Answer: `Routes`.
    RouteList,
    /// 10: the ARP cache. Answer: `Neighbors`.
    ArpList,
    /// 11: `arp -d ADDR`. Privileged. Answer: `Ok`.
    ArpDelete { addr: Ipv4Addr },
    /// 12: the IPv6 neighbour cache. Answer: `Neighbors`.
    NdpList,
    /// 13: every sysctl. Answer: `Sysctls`.
    SysctlList,
    /// 14: one sysctl. Answer: `Sysctl`.
    SysctlGet { name: String },
    /// 15: `sysctl -w`. Privileged. Answer: `Sysctl` (the old value).
    SysctlSet { name: String, value: i64 },
    /// 16: `mount -T io-pktN`. Privileged. Answer: `Mounted`.
    Mount {
        instance: u32,
        kind: ModuleKindWire,
        module: String,
        options: String,
    },
    /// 17: opens an ICMP echo socket owned by this connection. Answer:
    /// `SocketOpened`; replies arrive as `PingReply` events.
    PingOpen { v6: bool },
    /// 18: sends an echo request (the whole ICMP message; the stack sets the
    /// identifier and checksum). Answer: `Ok`.
    PingSend {
        sock: u32,
        dst: IpAddr,
        icmp: Vec<u8>,
    },
    /// 19: closes a socket of this connection. Answer: `Ok`.
    Close { sock: u32 },
    /// 20: interface totals and table sizes, as `group.counter` names.
    /// Answer: `Stats`.
    Stats,
    /// 21: every protocol counter of the stack, by protocol (`netstat -s`).
    /// Answer: `Counters`.
    Counters,
    // The application socket interface. Every request below except
    // `SocketOpen` and `SocketList` carries the socket's own descriptor as
    // SCM_RIGHTS ancillary data: possession of it is the authority.
    /// 22: socket(2). Answer: `SocketFd`, with the application's end of a
    /// new socket pair attached (SOCK_STREAM for TCP, SOCK_SEQPACKET for UDP).
    SocketOpen { v6: bool, stream: bool },
    /// 23: bind(2). Answer: `Ok`.
    Bind { addr: SocketAddr },
    /// 24: connect(2). Answer: `Ok` (UDP), or `EINPROGRESS` (TCP: the
    /// outcome comes with `ConnectWait` or SO_ERROR).
    Connect { addr: SocketAddr },
    /// 25: waits until a connection attempt ends. Answer: `Ok` once
    /// connected, or the error that ended it.
    ConnectWait,
    /// 26: listen(2). Answer: `Ok`.
    Listen { backlog: u32 },
    /// 27: accept(2), after reading one notification byte from the
    /// listener's pair. Answer: `SocketFd` (peer set, the new connection's
    /// end attached) or `EAGAIN`.
    Accept,
    /// 28: shutdown(2): 0 read, 1 write, 2 both. Answer: `Ok`.
    Shutdown { how: u8 },
    /// 29: setsockopt(2). Answer: `Ok`.
    SetOpt { opt: SockOptWire },
    /// 30: getsockopt(2). Answer: `Opt`.
    GetOpt { name: SockOptNameWire },
    /// 31: getsockname(2). Answer: `Addr`.
    GetName,
    /// 32: getpeername(2). Answer: `Addr`.
    GetPeer,
    /// 33: every socket of the stack (`netstat -a`). Answer: `Sockets`.
    SocketList,
    /// 34: connect(2) with AF_UNSPEC on a UDP socket: the association
    /// with the peer is dissolved. Answer: `Ok`.
    Disconnect,
    /// 35: socket(2) for TCP with the shared-memory data path
    /// (docs/protocol.md, "Shared rings"). Answer: `SocketRing`, or
    /// `SocketFd` when io-pkt could give the socket no ring (it is then a
    /// plain one).
    SocketOpenRing { v6: bool },
    /// 36: accept(2), the new connection with a ring. Answer:
    /// `SocketRing`, `SocketFd` (no ring) or `EAGAIN`.
    AcceptRing,
    /// 37: the ring of the socket whose descriptor is attached, with its
    /// arena: for a descriptor the process did not get from `SocketRing`
    /// itself (inherited across exec), or whose arena it has not mapped
    /// yet. Answer: `RingArena`, or `ENOENT` for a socket without a ring.
    RingOf,
}

/// Where a socket's rings are: its arena (the memfd's inode number, to
/// tell arenas apart), slot and the slot's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingRef {
    pub arena: u64,
    pub slot: u32,
    pub generation: u32,
}

/// A failure: an errno value (see [`super::errno`]) and one line for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// 0
    Ok,
    /// 1
    Error(WireError),
    /// 2
    Interfaces(Vec<IfInfo>),
    /// 3
    Routes(Vec<RouteInfo>),
    /// 4
    Route(RouteInfo),
    /// 5
    Neighbors(Vec<NeighborEntry>),
    /// 6
    Sysctls(Vec<SysctlEntry>),
    /// 7
    Sysctl(SysctlEntry),
    /// 8: names of the interfaces the module attached.
    Mounted { interfaces: Vec<String> },
    /// 9
    SocketOpened { sock: u32 },
    /// 10
    Stats(Vec<StatEntry>),
    /// 11: the stack's protocol counters, a group per protocol.
    Counters(Vec<CounterGroupWire>),
    /// 12: a socket's descriptor is attached (SCM_RIGHTS); `peer` is the
    /// remote address of an accepted connection.
    SocketFd { peer: Option<SocketAddr> },
    /// 13: a socket's address, if it has one.
    Addr(Option<SocketAddr>),
    /// 14: an option's value.
    Opt(SockOptWire),
    /// 15: every socket.
    Sockets(Vec<SocketInfoWire>),
    /// 16: like `SocketFd` (the socket's descriptor attached), for a TCP
    /// socket whose bytes go through its rings.
    SocketRing {
        peer: Option<SocketAddr>,
        ring: RingRef,
    },
    /// 17: a socket's ring; its arena's memfd is attached.
    RingArena { ring: RingRef },
}

impl Response {
    /// Whether a descriptor comes with this answer (SCM_RIGHTS).
    pub fn carries_fd(&self) -> bool {
        matches!(
            self,
            Response::SocketFd { .. } | Response::SocketRing { .. } | Response::RingArena { .. }
        )
    }
}

impl Response {
    pub fn error(code: i32, message: impl Into<String>) -> Response {
        Response::Error(WireError {
            code,
            message: message.into(),
        })
    }
}

/// News the server pushes without being asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// 0: an echo reply, or an ICMP error about one of the socket's requests.
    PingReply {
        sock: u32,
        from: IpAddr,
        ttl: u8,
        /// The whole ICMP message, header included.
        icmp: Vec<u8>,
    },
}

impl Request {
    /// Whether the request names a socket by the descriptor attached to it.
    pub fn needs_fd(&self) -> bool {
        matches!(
            self,
            Request::Bind { .. }
                | Request::Connect { .. }
                | Request::ConnectWait
                | Request::Listen { .. }
                | Request::Accept
                | Request::Shutdown { .. }
                | Request::SetOpt { .. }
                | Request::GetOpt { .. }
                | Request::GetName
                | Request::GetPeer
                | Request::Disconnect
                | Request::AcceptRing
                | Request::RingOf
        )
    }

    /// Whether the request changes the stack's configuration and so needs a
    /// peer with uid 0 (ARCHITECTURE.md principle 6).
    pub fn is_privileged(&self) -> bool {
        matches!(
            self,
            Request::SetAddr4 { .. }
                | Request::SetAddr6 { .. }
                | Request::SetUp { .. }
                | Request::SetMtu { .. }
                | Request::DestroyInterface { .. }
                | Request::RouteAdd(_)
                | Request::RouteDelete(_)
                | Request::ArpDelete { .. }
                | Request::SysctlSet { .. }
                | Request::Mount { .. }
        )
    }

    /// Checks every field a client sent; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Request::ListInterfaces
            | Request::RouteList
            | Request::ArpList
            | Request::NdpList
            | Request::SysctlList
            | Request::Stats
            | Request::Counters
            | Request::PingOpen { .. }
            | Request::Close { .. }
            | Request::ArpDelete { .. }
            | Request::RouteGet { .. }
            | Request::SocketOpen { .. }
            | Request::Bind { .. }
            | Request::Connect { .. }
            | Request::ConnectWait
            | Request::Listen { .. }
            | Request::Accept
            | Request::GetOpt { .. }
            | Request::GetName
            | Request::GetPeer
            | Request::SocketList
            | Request::Disconnect
            | Request::SocketOpenRing { .. }
            | Request::AcceptRing
            | Request::RingOf => Ok(()),
            Request::Shutdown { how } => {
                if *how > 2 {
                    return Err(format!("shutdown how {how} (0 read, 1 write, 2 both)"));
                }
                Ok(())
            }
            Request::SetOpt { opt } => opt.validate(),
            Request::SetAddr4 { ifname, plen, .. } => {
                check_ifname(ifname)?;
                check_plen(*plen, 32)
            }
            Request::SetAddr6 { ifname, plen, .. } => {
                check_ifname(ifname)?;
                check_plen(*plen, 128)
            }
            Request::SetUp { ifname, .. }
            | Request::SetMtu { ifname, .. }
            | Request::DestroyInterface { ifname } => check_ifname(ifname),
            Request::RouteAdd(spec) | Request::RouteDelete(spec) => spec.validate(),
            Request::SysctlGet { name } | Request::SysctlSet { name, .. } => {
                check_sysctl_name(name)
            }
            Request::Mount {
                module, options, ..
            } => {
                if module.is_empty() {
                    return Err("empty module name".into());
                }
                check_text("module", module)?;
                check_text("options", options)
            }
            Request::PingSend { icmp, .. } => {
                if !(MIN_ICMP..=MAX_ICMP).contains(&icmp.len()) {
                    return Err(format!(
                        "ICMP message of {} bytes (allowed {MIN_ICMP} to {MAX_ICMP})",
                        icmp.len()
                    ));
                }
                Ok(())
            }
        }
    }
}

impl RouteSpec {
    pub fn validate(&self) -> Result<(), String> {
        let bits = if self.dest.is_ipv4() { 32 } else { 128 };
        check_plen(self.plen, bits)?;
        if let Some(g) = self.gateway
            && g.is_ipv4() != self.dest.is_ipv4()
        {
            return Err(format!(
                "gateway {g} is not of the destination's family ({})",
                self.dest
            ));
        }
        if let Some(i) = &self.ifname {
            check_ifname(i)?;
        }
        Ok(())
    }
}

/// Interface names as the stack allows them: 1 to 15 of `[A-Za-z0-9_.]`.
pub fn check_ifname(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= MAX_IFNAME
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!("bad interface name {n:?}"))
    }
}

fn check_plen(plen: u8, bits: u8) -> Result<(), String> {
    if plen > bits {
        Err(format!("prefix length {plen} (0 to {bits})"))
    } else {
        Ok(())
    }
}

fn check_sysctl_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= MAX_SYSCTL_NAME
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("bad sysctl name {n:?}"))
    }
}

fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_MODULE_ARG {
        return Err(format!("{what} longer than {MAX_MODULE_ARG} bytes"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}
