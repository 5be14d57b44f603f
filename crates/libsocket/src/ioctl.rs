//! ioctl on the stack's sockets, as Linux answers them for an AF_INET or
//! AF_INET6 socket (netdevice(7), tcp(7), udp(7)):
//!
//! - the interface queries (SIOCGIFCONF, SIOCGIFADDR, SIOCGIFFLAGS, ...)
//!   answer with the stack's interfaces, not the kernel's;
//! - SIOCINQ (FIONREAD), SIOCOUTQ (TIOCOUTQ) and SIOCATMARK count what the
//!   socket holds (no urgent data is ever marked: the stack delivers it
//!   inline);
//! - the descriptor's own requests (FIONBIO, FIOASYNC, FIOCLEX, owner)
//!   act on the descriptor, which is the socket;
//! - anything else fails as Linux fails a request a socket does not know
//!   (ENOTTY), or a change of the network configuration, which belongs to
//!   `iopkt ifconfig` and `iopkt route` (EOPNOTSUPP), saying so once.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;

use client::raw::{self, DGRAM_HEADER_LEN, SockOptNameWire, SockOptWire};
use iopkt_rsrcmgr::proto::{IfInfo, IfKindWire};
use libc::{c_int, c_ulong, c_void, ssize_t};

use crate::entry::{check, errno_of};
use crate::fdtable::Kind;
use crate::interfaces;
use crate::real::real;
use crate::unsupported;

// Request numbers (include/uapi/linux/sockios.h, asm-generic/ioctls.h).
const FIONREAD: c_ulong = 0x541B; // SIOCINQ
const TIOCOUTQ: c_ulong = 0x5411; // SIOCOUTQ
const FIONBIO: c_ulong = 0x5421;
const FIONCLEX: c_ulong = 0x5450;
const FIOCLEX: c_ulong = 0x5451;
const FIOASYNC: c_ulong = 0x5452;
const FIOSETOWN: c_ulong = 0x8901;
const SIOCSPGRP: c_ulong = 0x8902;
const FIOGETOWN: c_ulong = 0x8903;
const SIOCGPGRP: c_ulong = 0x8904;
const SIOCATMARK: c_ulong = 0x8905;
const SIOCADDRT: c_ulong = 0x890B;
const SIOCDELRT: c_ulong = 0x890C;
const SIOCGIFNAME: c_ulong = 0x8910;
const SIOCGIFCONF: c_ulong = 0x8912;
const SIOCGIFFLAGS: c_ulong = 0x8913;
const SIOCSIFFLAGS: c_ulong = 0x8914;
const SIOCGIFADDR: c_ulong = 0x8915;
const SIOCSIFADDR: c_ulong = 0x8916;
const SIOCSIFDSTADDR: c_ulong = 0x8918;
const SIOCGIFBRDADDR: c_ulong = 0x8919;
const SIOCSIFBRDADDR: c_ulong = 0x891A;
const SIOCGIFNETMASK: c_ulong = 0x891B;
const SIOCSIFNETMASK: c_ulong = 0x891C;
const SIOCGIFMTU: c_ulong = 0x8921;
const SIOCSIFMTU: c_ulong = 0x8922;
const SIOCSIFNAME: c_ulong = 0x8923;
const SIOCSIFHWADDR: c_ulong = 0x8924;
const SIOCGIFHWADDR: c_ulong = 0x8927;
const SIOCGIFINDEX: c_ulong = 0x8933;
const SIOCDARP: c_ulong = 0x8953;
const SIOCSARP: c_ulong = 0x8955;

/// `struct ifreq`: the name, then a 24-byte union.
const IFREQ_SIZE: usize = 40;
const IFNAMSIZ: usize = 16;

/// `struct ifconf`.
#[repr(C)]
struct IfConf {
    len: c_int,
    buf: *mut u8,
}

/// The answer for one of our sockets: `None` when the descriptor itself
/// should answer (the C library's ioctl on it).
///
/// # Safety
/// `arg` is the caller's argument for `req`.
pub unsafe fn ours(
    fd: c_int,
    kind: Kind,
    req: c_ulong,
    arg: *mut c_void,
) -> Option<Result<c_int, c_int>> {
    // The request is an int in the kernel's interface; callers passing
    // a negative int get it sign-extended.
    let req = req & 0xffff_ffff;
    Some(match req {
        FIONBIO | FIONCLEX | FIOCLEX | FIOASYNC | FIOSETOWN | SIOCSPGRP | FIOGETOWN | SIOCGPGRP => {
            return None;
        }
        // A listener has no queues (Linux: EINVAL).
        FIONREAD | TIOCOUTQ if kind.listening() => Err(libc::EINVAL),
        FIONREAD if kind.dgram() => next_datagram_len(fd).and_then(|n| unsafe { put_int(arg, n) }),
        // The bytes readable now are the ring's, or the pair's.
        FIONREAD => match crate::rings::get(fd) {
            Some(end) => match end.readable_bytes() {
                Ok(n) => unsafe { put_int(arg, c_int::try_from(n).unwrap_or(c_int::MAX)) },
                Err(_) => unsafe { put_int(arg, 0) },
            },
            None => return None,
        },
        TIOCOUTQ => out_queue(fd).and_then(|n| {
            // Bytes still in the ring are unsent too.
            let ring = crate::rings::get(fd)
                .and_then(|e| e.unsent_bytes().ok())
                .and_then(|u| c_int::try_from(u).ok())
                .unwrap_or(0);
            unsafe { put_int(arg, n.saturating_add(ring)) }
        }),
        SIOCATMARK if !kind.dgram() => unsafe { put_int(arg, 0) },
        SIOCGIFCONF => unsafe { ifconf(arg.cast()) },
        SIOCGIFNAME | SIOCGIFFLAGS | SIOCGIFADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK | SIOCGIFMTU
        | SIOCGIFHWADDR | SIOCGIFINDEX => unsafe { ifreq(req, arg.cast()) },
        SIOCADDRT | SIOCDELRT | SIOCSIFFLAGS | SIOCSIFADDR | SIOCSIFDSTADDR | SIOCSIFBRDADDR
        | SIOCSIFNETMASK | SIOCSIFMTU | SIOCSIFNAME | SIOCSIFHWADDR | SIOCDARP | SIOCSARP => {
            crate::entry::say_once(
                "ioctl/config",
                "the stack's configuration is changed with iopkt ifconfig, route and arp, \
                 not with ioctl"
                    .into(),
            );
            Err(unsupported::ioctl(req, libc::EOPNOTSUPP))
        }
        _ => Err(unsupported::ioctl(req, libc::ENOTTY)),
    })
}

/// # Safety
/// `arg` must be the caller's `int *`.
unsafe fn put_int(arg: *mut c_void, v: c_int) -> Result<c_int, c_int> {
    if arg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: as the caller promised.
    unsafe { std::ptr::write_unaligned(arg.cast::<c_int>(), v) };
    Ok(0)
}

/// SIOCINQ on UDP: the payload of the next datagram (udp(7)), not the
/// whole of what waits on the pair (which Linux sums for SEQPACKET).
fn next_datagram_len(fd: c_int) -> Result<c_int, c_int> {
    let recv = real!(recv: fn(c_int, *mut c_void, usize, c_int) -> ssize_t);
    let mut h = [0u8; DGRAM_HEADER_LEN];
    // SAFETY: a buffer of its length; MSG_TRUNC makes the answer the
    // message's full length.
    let n = unsafe {
        recv(
            fd,
            h.as_mut_ptr().cast(),
            h.len(),
            libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    match check(n) {
        Ok(n) => Ok(
            c_int::try_from((n as usize).saturating_sub(DGRAM_HEADER_LEN)).unwrap_or(c_int::MAX),
        ),
        Err(libc::EAGAIN) => Ok(0),
        Err(e) => Err(e),
    }
}

fn out_queue(fd: c_int) -> Result<c_int, c_int> {
    // SAFETY: the caller's open descriptor, for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    match raw::getopt(b, SockOptNameWire::OutQueue).map_err(|e| errno_of(&e))? {
        SockOptWire::OutQueue(n) => Ok(c_int::try_from(n).unwrap_or(c_int::MAX)),
        _ => Err(libc::EPROTO),
    }
}

/// The stack's interfaces; ENODEV when it cannot be reached (the list
/// is the stack's or none).
fn stack_interfaces() -> Result<Vec<IfInfo>, c_int> {
    interfaces::list().ok_or(libc::ENODEV)
}

/// Writes a `sockaddr_in` for `ip` at `p` (16 bytes).
///
/// # Safety
/// `p` must have 16 writable bytes.
unsafe fn put_sin(p: *mut u8, ip: Ipv4Addr) {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    b[4..8].copy_from_slice(&ip.octets());
    // SAFETY: as the caller promised.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
}

/// # Safety
/// `p` must have IFNAMSIZ writable bytes.
unsafe fn put_name(p: *mut u8, name: &str) {
    let mut b = [0u8; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    b[..n].copy_from_slice(name.as_bytes().get(..n).unwrap_or_default());
    // SAFETY: as the caller promised.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, IFNAMSIZ) };
}

/// SIOCGIFCONF: one `ifreq` per IPv4 address (netdevice(7)); with a null
/// buffer, the length needed.
///
/// # Safety
/// `conf` is the caller's `struct ifconf *`, its buffer `len` bytes.
unsafe fn ifconf(conf: *mut IfConf) -> Result<c_int, c_int> {
    if conf.is_null() {
        return Err(libc::EFAULT);
    }
    let ifs = stack_interfaces()?;
    let all: Vec<(&str, Ipv4Addr)> = ifs
        .iter()
        .flat_map(|i| i.addrs4.iter().map(move |a| (i.name.as_str(), a.addr)))
        .collect();
    // SAFETY: as the caller promised.
    unsafe {
        let buf = (*conf).buf;
        if buf.is_null() {
            (*conf).len = c_int::try_from(all.len() * IFREQ_SIZE).unwrap_or(c_int::MAX);
            return Ok(0);
        }
        let room = usize::try_from((*conf).len).unwrap_or(0) / IFREQ_SIZE;
        let n = all.len().min(room);
        for (k, (name, ip)) in all.iter().take(n).enumerate() {
            let e = buf.add(k * IFREQ_SIZE);
            std::ptr::write_bytes(e, 0, IFREQ_SIZE);
            put_name(e, name);
            put_sin(e.add(IFNAMSIZ), *ip);
        }
        (*conf).len = (n * IFREQ_SIZE) as c_int;
    }
    Ok(0)
}

/// The other interface queries: one `struct ifreq`, named by its name
/// (SIOCGIFNAME: by its index).
///
/// # Safety
/// `r` is the caller's `struct ifreq *`.
unsafe fn ifreq(req: c_ulong, r: *mut u8) -> Result<c_int, c_int> {
    if r.is_null() {
        return Err(libc::EFAULT);
    }
    let ifs = stack_interfaces()?;
    // SAFETY (all blocks): `r` is a 40-byte ifreq (caller); the union
    // starts at IFNAMSIZ.
    let u = unsafe { r.add(IFNAMSIZ) };
    if req == SIOCGIFNAME {
        let index = unsafe { std::ptr::read_unaligned(u.cast::<c_int>()) };
        let i = ifs
            .iter()
            .find(|i| c_int::try_from(i.index).ok() == Some(index))
            .ok_or(libc::ENODEV)?;
        unsafe { put_name(r, &i.name) };
        return Ok(0);
    }
    let mut raw_name = [0u8; IFNAMSIZ];
    unsafe { std::ptr::copy_nonoverlapping(r, raw_name.as_mut_ptr(), IFNAMSIZ) };
    let end = raw_name.iter().position(|&c| c == 0).unwrap_or(IFNAMSIZ);
    let name = raw_name.get(..end).unwrap_or_default();
    let i = ifs
        .iter()
        .find(|i| i.name.as_bytes() == name)
        .ok_or(libc::ENODEV)?;
    let first4 = i.addrs4.first();
    match req {
        SIOCGIFFLAGS => {
            let f = interfaces::linux_flags(i) as u16 as i16;
            unsafe { std::ptr::write_unaligned(u.cast::<i16>(), f) };
        }
        SIOCGIFINDEX => {
            let index = c_int::try_from(i.index).unwrap_or(0);
            unsafe { std::ptr::write_unaligned(u.cast::<c_int>(), index) };
        }
        SIOCGIFMTU => {
            let mtu = c_int::try_from(i.mtu).unwrap_or(c_int::MAX);
            unsafe { std::ptr::write_unaligned(u.cast::<c_int>(), mtu) };
        }
        SIOCGIFHWADDR => {
            let family = match i.kind {
                IfKindWire::Loopback => libc::ARPHRD_LOOPBACK,
                IfKindWire::Ethernet => libc::ARPHRD_ETHER,
            };
            let mut b = [0u8; 16];
            b[0..2].copy_from_slice(&family.to_ne_bytes());
            b[2..8].copy_from_slice(&i.mac.0);
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), u, b.len()) };
        }
        // The first IPv4 address's (Linux: the one labelled with the
        // name); none is EADDRNOTAVAIL.
        SIOCGIFADDR => {
            let a = first4.ok_or(libc::EADDRNOTAVAIL)?;
            unsafe { put_sin(u, a.addr) };
        }
        SIOCGIFNETMASK => {
            let a = first4.ok_or(libc::EADDRNOTAVAIL)?;
            let m = match interfaces::mask(false, a.plen) {
                IpAddr::V4(m) => m,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            unsafe { put_sin(u, m) };
        }
        SIOCGIFBRDADDR => {
            let a = first4.ok_or(libc::EADDRNOTAVAIL)?;
            unsafe { put_sin(u, a.broadcast.unwrap_or(Ipv4Addr::UNSPECIFIED)) };
        }
        _ => return Err(libc::ENOTTY),
    }
    Ok(0)
}
