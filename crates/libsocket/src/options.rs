//! setsockopt and getsockopt: the options the stack has (docs/protocol.md,
//! `SockOpt`), the ones the descriptor itself answers (timeouts), the ones
//! this library knows without asking, and a clear refusal for the rest.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use client::raw::{self, SockOptNameWire as N, SockOptWire as O};
use libc::{c_int, c_void, socklen_t};

use crate::entry::{errno_of, say_once};
use crate::fdtable::{self, Kind};
use crate::real::real;

/// Linux's TCP_CA_NAME_MAX: the size of a congestion control name field.
const TCP_CA_NAME_MAX: usize = 16;

/// How long asking for a non-blocking connect's outcome may wait.
pub const CONNECT_WAIT: Duration = Duration::from_secs(600);

/// What one option is to this library.
enum Map {
    /// An option of the stack.
    Stack(N),
    /// Handled by the descriptor (the socket pair): timeouts, low water.
    Pair,
    /// Harmless to ignore: a priority or traffic class the stack does not
    /// use changes nothing a program can observe but its queueing.
    Ignore,
    /// Answered here from what the library knows.
    Local,
    Unsupported,
}

fn map(level: c_int, name: c_int) -> Map {
    use libc::*;
    match (level, name) {
        (SOL_SOCKET, SO_REUSEADDR) => Map::Stack(N::ReuseAddr),
        (SOL_SOCKET, SO_REUSEPORT) => Map::Stack(N::ReusePort),
        (SOL_SOCKET, SO_BROADCAST) => Map::Stack(N::Broadcast),
        (SOL_SOCKET, SO_KEEPALIVE) => Map::Stack(N::KeepAlive),
        (SOL_SOCKET, SO_LINGER) => Map::Stack(N::Linger),
        (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => Map::Stack(N::RecvBuf),
        (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => Map::Stack(N::SendBuf),
        (SOL_SOCKET, SO_ERROR) => Map::Stack(N::Error),
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO | SO_RCVLOWAT) => Map::Pair,
        (SOL_SOCKET, SO_TYPE | SO_DOMAIN | SO_PROTOCOL | SO_ACCEPTCONN) => Map::Local,
        (SOL_SOCKET, SO_PRIORITY | SO_OOBINLINE) => Map::Ignore,
        (IPPROTO_IP, IP_TTL) => Map::Stack(N::Ttl),
        (IPPROTO_IP, IP_MULTICAST_TTL) => Map::Stack(N::MulticastTtl),
        (IPPROTO_IP, IP_MULTICAST_LOOP) => Map::Stack(N::MulticastLoop),
        (IPPROTO_IP, IP_MULTICAST_IF) => Map::Stack(N::MulticastIf),
        (IPPROTO_IP, IP_PKTINFO) => Map::Stack(N::PktInfo),
        (IPPROTO_IP, IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP) => Map::Local,
        (IPPROTO_IP, IP_TOS) => Map::Ignore,
        (IPPROTO_IPV6, IPV6_V6ONLY) => Map::Stack(N::V6Only),
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS) => Map::Stack(N::Ttl),
        (IPPROTO_IPV6, IPV6_MULTICAST_HOPS) => Map::Stack(N::MulticastTtl),
        (IPPROTO_IPV6, IPV6_MULTICAST_LOOP) => Map::Stack(N::MulticastLoop),
        (IPPROTO_IPV6, IPV6_MULTICAST_IF) => Map::Stack(N::MulticastIf),
        (IPPROTO_IPV6, IPV6_RECVPKTINFO) => Map::Stack(N::PktInfo),
        (IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP) => Map::Local,
        (IPPROTO_IPV6, IPV6_TCLASS) => Map::Ignore,
        (IPPROTO_TCP, TCP_NODELAY) => Map::Stack(N::NoDelay),
        (IPPROTO_TCP, TCP_KEEPIDLE) => Map::Stack(N::KeepIdle),
        (IPPROTO_TCP, TCP_KEEPINTVL) => Map::Stack(N::KeepIntvl),
        (IPPROTO_TCP, TCP_KEEPCNT) => Map::Stack(N::KeepCnt),
        (IPPROTO_TCP, TCP_CONGESTION) => Map::Stack(N::Congestion),
        (IPPROTO_TCP, TCP_MAXSEG) => Map::Stack(N::MaxSeg),
        (IPPROTO_TCP, TCP_INFO) => Map::Stack(N::TcpInfo),
        (IPPROTO_TCP, TCP_QUICKACK) => Map::Ignore,
        _ => Map::Unsupported,
    }
}

/// The option's C name, for the one-line message.
fn name_of(level: c_int, name: c_int) -> String {
    use libc::*;
    let known = match (level, name) {
        (SOL_SOCKET, SO_BINDTODEVICE) => "SO_BINDTODEVICE",
        (SOL_SOCKET, SO_TIMESTAMP) => "SO_TIMESTAMP",
        (SOL_SOCKET, SO_MARK) => "SO_MARK",
        (SOL_SOCKET, SO_PASSCRED) => "SO_PASSCRED",
        (SOL_SOCKET, SO_PEERCRED) => "SO_PEERCRED",
        (SOL_SOCKET, SO_ZEROCOPY) => "SO_ZEROCOPY",
        (SOL_SOCKET, SO_SNDLOWAT) => "SO_SNDLOWAT",
        (IPPROTO_IP, IP_RECVERR) => "IP_RECVERR",
        (IPPROTO_IP, IP_MTU_DISCOVER) => "IP_MTU_DISCOVER",
        (IPPROTO_IP, IP_RECVTOS) => "IP_RECVTOS",
        (IPPROTO_IP, IP_RECVTTL) => "IP_RECVTTL",
        (IPPROTO_IP, IP_FREEBIND) => "IP_FREEBIND",
        (IPPROTO_IP, IP_TRANSPARENT) => "IP_TRANSPARENT",
        (IPPROTO_IPV6, IPV6_RECVERR) => "IPV6_RECVERR",
        (IPPROTO_IPV6, IPV6_MTU_DISCOVER) => "IPV6_MTU_DISCOVER",
        (IPPROTO_TCP, TCP_CORK) => "TCP_CORK",
        (IPPROTO_TCP, TCP_FASTOPEN) => "TCP_FASTOPEN",
        (IPPROTO_TCP, TCP_FASTOPEN_CONNECT) => "TCP_FASTOPEN_CONNECT",
        (IPPROTO_TCP, TCP_DEFER_ACCEPT) => "TCP_DEFER_ACCEPT",
        (IPPROTO_TCP, TCP_USER_TIMEOUT) => "TCP_USER_TIMEOUT",
        (IPPROTO_TCP, TCP_NOTSENT_LOWAT) => "TCP_NOTSENT_LOWAT",
        (IPPROTO_TCP, TCP_SYNCNT) => "TCP_SYNCNT",
        _ => "",
    };
    if known.is_empty() {
        format!("level {level} option {name}")
    } else {
        known.to_string()
    }
}

fn unsupported(call: &str, level: c_int, name: c_int) -> c_int {
    let opt = name_of(level, name);
    say_once(
        &format!("{call}/{level}/{name}"),
        format!("{call}({opt}) is not supported by the stack"),
    );
    libc::ENOPROTOOPT
}

/// The option's value as an int: C programs pass an int, some a single
/// byte for the multicast TTL and loop options (as Linux accepts).
///
/// # Safety
/// `val` must point to `len` readable bytes.
unsafe fn read_int(val: *const c_void, len: socklen_t) -> Result<i32, c_int> {
    if val.is_null() {
        return Err(libc::EFAULT);
    }
    if len as usize >= 4 {
        // SAFETY: 4 bytes readable.
        Ok(unsafe { std::ptr::read_unaligned(val.cast::<i32>()) })
    } else if len >= 1 {
        // SAFETY: 1 byte readable.
        Ok(i32::from(unsafe { *val.cast::<u8>() }))
    } else {
        Err(libc::EINVAL)
    }
}

fn u32_of(v: i32) -> Result<u32, c_int> {
    u32::try_from(v).map_err(|_| libc::EINVAL)
}

/// A hop limit: -1 means the default (RFC 3493 §5.1), which is 64 here.
fn hops(v: i32) -> Result<u8, c_int> {
    if v == -1 {
        return Ok(64);
    }
    u8::try_from(v).map_err(|_| libc::EINVAL)
}

/// # Safety
/// `val` must point to `len` readable bytes.
unsafe fn bytes<'a>(val: *const c_void, len: socklen_t) -> Result<&'a [u8], c_int> {
    if val.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: as the caller promised.
    Ok(unsafe { std::slice::from_raw_parts(val.cast::<u8>(), len as usize) })
}

/// The wire option for a join or leave: `ip_mreq`/`ip_mreqn` (IPv4) or
/// `ipv6_mreq`. An IPv4 group's interface is given by index, by one of
/// its addresses (looked up here), or left to the route (INADDR_ANY).
fn membership(level: c_int, name: c_int, b: &[u8]) -> Result<O, c_int> {
    let join = matches!(name, libc::IP_ADD_MEMBERSHIP | libc::IPV6_ADD_MEMBERSHIP);
    let (group, ifindex) = if level == libc::IPPROTO_IP {
        let g: [u8; 4] = b
            .get(0..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(libc::EINVAL)?;
        let local: [u8; 4] = b
            .get(4..8)
            .and_then(|s| s.try_into().ok())
            .ok_or(libc::EINVAL)?;
        let index = b
            .get(8..12)
            .and_then(|s| s.try_into().ok())
            .map(i32::from_ne_bytes)
            .unwrap_or(0);
        // An interface named by one of its addresses is looked up among
        // the stack's; none has it: ENODEV, as the kernel answers.
        let index = if index == 0 && local != [0; 4] {
            crate::interfaces::index_of_addr4(Ipv4Addr::from(local)).ok_or(libc::ENODEV)?
        } else {
            u32_of(index)?
        };
        (IpAddr::V4(Ipv4Addr::from(g)), index)
    } else {
        let g: [u8; 16] = b
            .get(0..16)
            .and_then(|s| s.try_into().ok())
            .ok_or(libc::EINVAL)?;
        let index: [u8; 4] = b
            .get(16..20)
            .and_then(|s| s.try_into().ok())
            .ok_or(libc::EINVAL)?;
        (IpAddr::V6(Ipv6Addr::from(g)), u32::from_ne_bytes(index))
    };
    Ok(if join {
        O::JoinGroup(group, ifindex)
    } else {
        O::LeaveGroup(group, ifindex)
    })
}

/// setsockopt on one of our sockets.
///
/// # Safety
/// `val` must point to `len` readable bytes.
pub unsafe fn set(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> Result<c_int, c_int> {
    use std::os::fd::AsRawFd;
    let opt = match map(level, name) {
        Map::Ignore => return Ok(0),
        Map::Unsupported => return Err(unsupported("setsockopt", level, name)),
        Map::Pair => {
            let f = real!(setsockopt: fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int);
            // SAFETY: the caller's arguments, passed on unchanged.
            return crate::entry::check(unsafe { f(fd.as_raw_fd(), level, name, val, len) });
        }
        // Read-only options: the kernel answers ENOPROTOOPT to setting them.
        Map::Stack(N::Error | N::Type | N::TcpInfo) => return Err(libc::ENOPROTOOPT),
        Map::Local => {
            // SAFETY: as the caller promised.
            let b = unsafe { bytes(val, len) }?;
            if matches!(
                name,
                libc::IP_ADD_MEMBERSHIP
                    | libc::IP_DROP_MEMBERSHIP
                    | libc::IPV6_ADD_MEMBERSHIP
                    | libc::IPV6_DROP_MEMBERSHIP
            ) && level != libc::SOL_SOCKET
            {
                membership(level, name, b)?
            } else {
                return Err(libc::ENOPROTOOPT);
            }
        }
        Map::Stack(n) => {
            if n == N::Linger {
                // SAFETY: as the caller promised.
                let b = unsafe { bytes(val, len) }?;
                let on = b
                    .get(0..4)
                    .and_then(|s| s.try_into().ok())
                    .map(i32::from_ne_bytes);
                let secs = b
                    .get(4..8)
                    .and_then(|s| s.try_into().ok())
                    .map(i32::from_ne_bytes);
                let (Some(on), Some(secs)) = (on, secs) else {
                    return Err(libc::EINVAL);
                };
                O::Linger((on != 0).then_some(u32::try_from(secs).unwrap_or(0)))
            } else if n == N::Congestion {
                // SAFETY: as the caller promised.
                let b = unsafe { bytes(val, len) }?;
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                let s = std::str::from_utf8(b.get(..end).unwrap_or_default())
                    .map_err(|_| libc::ENOENT)?;
                O::Congestion(s.to_string())
            } else if n == N::MulticastIf && level == libc::IPPROTO_IP {
                // in_addr (4 bytes) or ip_mreqn (12 bytes, index last).
                // SAFETY: as the caller promised.
                let b = unsafe { bytes(val, len) }?;
                let index = b
                    .get(8..12)
                    .and_then(|s| s.try_into().ok())
                    .map(i32::from_ne_bytes);
                let addr: Option<[u8; 4]> = b.get(0..4).and_then(|s| s.try_into().ok());
                match (index, addr) {
                    (Some(i), _) if i != 0 => O::MulticastIf(u32_of(i)?),
                    (_, None | Some([0, 0, 0, 0])) => O::MulticastIf(0),
                    // By address: the stack's interface that has it
                    // (EADDRNOTAVAIL if none, as the kernel answers).
                    (_, Some(a)) => O::MulticastIf(
                        crate::interfaces::index_of_addr4(Ipv4Addr::from(a))
                            .ok_or(libc::EADDRNOTAVAIL)?,
                    ),
                }
            } else {
                // SAFETY: as the caller promised.
                let v = unsafe { read_int(val, len) }?;
                match n {
                    N::ReuseAddr => O::ReuseAddr(v != 0),
                    N::ReusePort => O::ReusePort(v != 0),
                    N::Broadcast => O::Broadcast(v != 0),
                    N::KeepAlive => O::KeepAlive(v != 0),
                    // The kernel clamps buffer sizes rather than refusing.
                    N::RecvBuf => O::RecvBuf(u32::try_from(v).unwrap_or(0)),
                    N::SendBuf => O::SendBuf(u32::try_from(v).unwrap_or(0)),
                    N::Ttl => O::Ttl(hops(v)?),
                    N::MulticastTtl => O::MulticastTtl(hops(v)?),
                    N::MulticastLoop => O::MulticastLoop(v != 0),
                    N::MulticastIf => O::MulticastIf(u32_of(v)?),
                    N::PktInfo => O::PktInfo(v != 0),
                    N::V6Only => O::V6Only(v != 0),
                    N::NoDelay => O::NoDelay(v != 0),
                    N::KeepIdle => O::KeepIdle(u32_of(v)?),
                    N::KeepIntvl => O::KeepIntvl(u32_of(v)?),
                    N::KeepCnt => O::KeepCnt(u32_of(v)?),
                    N::MaxSeg => O::MaxSeg(u16::try_from(v).map_err(|_| libc::EINVAL)?),
                    _ => return Err(libc::ENOPROTOOPT),
                }
            }
        }
    };
    raw::setopt(fd, opt).map_err(|e| errno_of(&e))?;
    Ok(0)
}

/// Writes an int answer (or a single byte when the caller gave one byte,
/// as Linux does for the multicast options).
///
/// # Safety
/// `val` must point to `*len` writable bytes; `len` valid or null.
unsafe fn write_int(v: i32, val: *mut c_void, len: *mut socklen_t) -> Result<c_int, c_int> {
    if val.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: as the caller promised.
    unsafe {
        if *len as usize >= 4 {
            std::ptr::write_unaligned(val.cast::<i32>(), v);
            *len = 4;
        } else if *len >= 1 {
            *val.cast::<u8>() = v as u8;
            *len = 1;
        } else {
            return Err(libc::EINVAL);
        }
    }
    Ok(0)
}

/// # Safety
/// As [`write_int`].
unsafe fn write_bytes(b: &[u8], val: *mut c_void, len: *mut socklen_t) -> Result<c_int, c_int> {
    if val.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: as the caller promised.
    unsafe {
        let n = (*len as usize).min(b.len());
        std::ptr::copy_nonoverlapping(b.as_ptr(), val.cast::<u8>(), n);
        *len = n as socklen_t;
    }
    Ok(0)
}

/// SO_ERROR, without waiting: 0 while a non-blocking connect is under
/// way, as the kernel's. The descriptor turns writable only when the
/// attempt ends (io-pkt keeps it unwritable until then; docs/protocol.md,
/// "Connecting"), so a program that waits for POLLOUT reads the outcome
/// here.
fn so_error(fd: BorrowedFd<'_>) -> Result<i32, c_int> {
    use std::os::fd::AsRawFd;
    let code = match raw::getopt(fd, N::Error).map_err(|e| errno_of(&e))? {
        O::Error(c) => c,
        _ => 0,
    };
    // The pair's own pending error (set when io-pkt closed its end after
    // a failed connect) is read with it, so poll stops reporting POLLERR,
    // as after reading a kernel socket's SO_ERROR.
    let f = real!(getsockopt: fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int);
    let mut v: c_int = 0;
    let mut l = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: an int-sized buffer and its length.
    unsafe {
        f(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut v).cast(),
            &mut l,
        )
    };
    if code != 0 {
        // The attempt is over: a later connect starts afresh.
        fdtable::set_connecting(fd.as_raw_fd(), false);
    }
    Ok(code)
}

/// getsockopt on one of our sockets.
///
/// # Safety
/// `val` must point to `*len` writable bytes.
pub unsafe fn get(
    fd: BorrowedFd<'_>,
    kind: Kind,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> Result<c_int, c_int> {
    use std::os::fd::AsRawFd;
    let n = match map(level, name) {
        Map::Ignore => return unsafe { write_int(0, val, len) },
        Map::Unsupported => return Err(unsupported("getsockopt", level, name)),
        Map::Pair => {
            let f =
                real!(getsockopt: fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int);
            // SAFETY: the caller's arguments, passed on unchanged.
            return crate::entry::check(unsafe { f(fd.as_raw_fd(), level, name, val, len) });
        }
        Map::Local => {
            let v = match name {
                libc::SO_TYPE if level == libc::SOL_SOCKET => {
                    if kind.dgram() {
                        libc::SOCK_DGRAM
                    } else {
                        libc::SOCK_STREAM
                    }
                }
                libc::SO_DOMAIN if level == libc::SOL_SOCKET => {
                    if kind.v6() {
                        libc::AF_INET6
                    } else {
                        libc::AF_INET
                    }
                }
                libc::SO_PROTOCOL if level == libc::SOL_SOCKET => {
                    if kind.dgram() {
                        libc::IPPROTO_UDP
                    } else {
                        libc::IPPROTO_TCP
                    }
                }
                libc::SO_ACCEPTCONN if level == libc::SOL_SOCKET => i32::from(kind.listening()),
                _ => return Err(libc::ENOPROTOOPT),
            };
            return unsafe { write_int(v, val, len) };
        }
        Map::Stack(N::Error) => return unsafe { write_int(so_error(fd)?, val, len) },
        // As Linux: a TCP option on a UDP socket.
        Map::Stack(N::TcpInfo) if kind.dgram() => return Err(libc::ENOPROTOOPT),
        Map::Stack(n) => n,
    };
    let o = raw::getopt(fd, n).map_err(|e| errno_of(&e))?;
    // SAFETY (all arms): as the caller promised.
    unsafe {
        match o {
            O::Linger(l) => {
                let mut b = [0u8; 8];
                b[0..4].copy_from_slice(&i32::from(l.is_some()).to_ne_bytes());
                let secs = i32::try_from(l.unwrap_or(0)).unwrap_or(i32::MAX);
                b[4..8].copy_from_slice(&secs.to_ne_bytes());
                write_bytes(&b, val, len)
            }
            O::Congestion(s) => {
                // Linux copies the name from its TCP_CA_NAME_MAX-byte,
                // NUL-padded field, so a caller passing 16 gets a
                // terminated string (iperf3 relies on it).
                let mut name = [0u8; TCP_CA_NAME_MAX];
                let n = s.len().min(TCP_CA_NAME_MAX - 1);
                name[..n].copy_from_slice(&s.as_bytes()[..n]);
                write_bytes(&name, val, len)
            }
            O::TcpInfo(i) => write_bytes(&crate::tcp_info::linux_layout(&i), val, len),
            O::ReuseAddr(b)
            | O::ReusePort(b)
            | O::Broadcast(b)
            | O::KeepAlive(b)
            | O::MulticastLoop(b)
            | O::PktInfo(b)
            | O::V6Only(b)
            | O::NoDelay(b) => write_int(i32::from(b), val, len),
            O::RecvBuf(v)
            | O::SendBuf(v)
            | O::MulticastIf(v)
            | O::KeepIdle(v)
            | O::KeepIntvl(v)
            | O::KeepCnt(v) => write_int(i32::try_from(v).unwrap_or(i32::MAX), val, len),
            O::Ttl(v) | O::MulticastTtl(v) | O::Type(v) => write_int(i32::from(v), val, len),
            O::MaxSeg(v) => write_int(i32::from(v), val, len),
            O::Error(v) => write_int(v, val, len),
            O::OutQueue(v) => write_int(i32::try_from(v).unwrap_or(i32::MAX), val, len),
            O::JoinGroup(..) | O::LeaveGroup(..) => Err(libc::ENOPROTOOPT),
        }
    }
}
