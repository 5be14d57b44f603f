//! getifaddrs and the if_nameindex family: a program on the stack sees the
//! stack's interfaces (lo0, the drivers' ones), not the kernel's. When the
//! stack cannot be reached, the C library answers as usual.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use client::raw::{Request, Response};
use iopkt_rsrcmgr::proto::{IfInfo, ifflags};
use libc::{c_char, c_int, c_uint, c_void, ifaddrs, sockaddr, sockaddr_in6, socklen_t};

use crate::entry::errno_of;
use crate::inet_addr;

/// Interface names are at most 15 characters (docs/protocol.md).
const NAME_ROOM: usize = 16;

/// The stack's interfaces; None if it cannot be reached.
pub(crate) fn list() -> Option<Vec<IfInfo>> {
    match client::raw::call(&Request::ListInterfaces, None) {
        Ok((Response::Interfaces(v), _)) => Some(v),
        Ok(_) => None,
        Err(e) => {
            // Says once that the stack is not there; the kernel's list is
            // then the answer.
            errno_of(&e);
            None
        }
    }
}

/// Linux's IFF_* bits for an interface of the stack (whose flags are
/// BSD's: MULTICAST differs).
pub(crate) fn linux_flags(i: &IfInfo) -> c_uint {
    let mut f = 0;
    if i.up {
        f |= libc::IFF_UP;
    }
    if i.link_up {
        f |= libc::IFF_RUNNING | libc::IFF_LOWER_UP;
    }
    if i.flags & ifflags::BROADCAST != 0 {
        f |= libc::IFF_BROADCAST;
    }
    if i.flags & ifflags::LOOPBACK != 0 {
        f |= libc::IFF_LOOPBACK;
    }
    if i.flags & ifflags::MULTICAST != 0 {
        f |= libc::IFF_MULTICAST;
    }
    f as c_uint
}

pub(crate) fn mask(v6: bool, plen: u8) -> IpAddr {
    if v6 {
        let bits = u128::MAX
            .checked_shl(128 - u32::from(plen.min(128)))
            .unwrap_or(0);
        IpAddr::V6(Ipv6Addr::from(bits))
    } else {
        let bits = u32::MAX
            .checked_shl(32 - u32::from(plen.min(32)))
            .unwrap_or(0);
        IpAddr::V4(Ipv4Addr::from(bits))
    }
}

/// One `ifaddrs` entry with the storage it points into, so the whole list
/// is a single allocation: glibc's freeifaddrs (a single `free`) and ours
/// both release it.
#[repr(C)]
struct Node {
    ifa: ifaddrs,
    addr: sockaddr_in6,
    mask: sockaddr_in6,
    broad: sockaddr_in6,
    name: [u8; NAME_ROOM],
}

/// One address of one interface.
struct Entry<'a> {
    name: &'a str,
    flags: c_uint,
    addr: SocketAddr,
    mask: SocketAddr,
    broad: Option<SocketAddr>,
}

fn entries(ifs: &[IfInfo]) -> Vec<Entry<'_>> {
    let mut v = Vec::new();
    for i in ifs {
        let flags = linux_flags(i);
        for a in &i.addrs4 {
            v.push(Entry {
                name: &i.name,
                flags,
                addr: SocketAddr::from((a.addr, 0)),
                mask: SocketAddr::from((mask(false, a.plen), 0)),
                broad: a.broadcast.map(|b| SocketAddr::from((b, 0))),
            });
        }
        for a in &i.addrs6 {
            // A link-local address names its interface (RFC 4007 §6).
            let scope = if a.addr.is_unicast_link_local() {
                i.index
            } else {
                0
            };
            v.push(Entry {
                name: &i.name,
                flags,
                addr: SocketAddr::V6(SocketAddrV6::new(a.addr, 0, 0, scope)),
                mask: SocketAddr::from((mask(true, a.plen), 0)),
                broad: None,
            });
        }
    }
    v
}

/// # Safety
/// `out` must point to a `sockaddr_in6`.
unsafe fn put(a: SocketAddr, out: *mut sockaddr_in6) -> *mut sockaddr {
    let mut len = std::mem::size_of::<sockaddr_in6>() as socklen_t;
    // SAFETY: out has room for the largest address.
    unsafe { inet_addr::write(a, out.cast(), &mut len) };
    out.cast()
}

/// The stack's addresses as a getifaddrs list; Err(errno) if memory ran
/// out, Ok(None) if the stack cannot be reached.
pub fn getifaddrs() -> Result<Option<*mut ifaddrs>, c_int> {
    let Some(ifs) = list() else { return Ok(None) };
    let es = entries(&ifs);
    if es.is_empty() {
        return Ok(Some(std::ptr::null_mut()));
    }
    let size = es.len() * std::mem::size_of::<Node>();
    // SAFETY: a plain allocation, zeroed, released by freeifaddrs.
    let block = unsafe { libc::calloc(1, size) }.cast::<Node>();
    if block.is_null() {
        return Err(libc::ENOMEM);
    }
    for (k, e) in es.iter().enumerate() {
        // SAFETY: k < es.len(): inside the block, which is zeroed (a valid
        // Node: null pointers and zero addresses).
        unsafe {
            let n = block.add(k);
            let name = e.name.as_bytes();
            let len = name.len().min(NAME_ROOM - 1);
            std::ptr::copy_nonoverlapping(name.as_ptr(), (*n).name.as_mut_ptr(), len);
            (*n).ifa.ifa_name = (*n).name.as_mut_ptr().cast::<c_char>();
            (*n).ifa.ifa_flags = e.flags;
            (*n).ifa.ifa_addr = put(e.addr, &raw mut (*n).addr);
            (*n).ifa.ifa_netmask = put(e.mask, &raw mut (*n).mask);
            if let Some(b) = e.broad {
                (*n).ifa.ifa_ifu = put(b, &raw mut (*n).broad);
            }
            (*n).ifa.ifa_next = if k + 1 < es.len() {
                (&raw mut (*block.add(k + 1)).ifa)
            } else {
                std::ptr::null_mut()
            };
        }
    }
    Ok(Some(block.cast::<ifaddrs>()))
}

/// The index of interface `name`: Some(0) if the stack has none by that
/// name, None if the stack cannot be reached.
///
/// # Safety
/// `name` must be a C string.
pub unsafe fn nametoindex(name: *const c_char) -> Option<c_uint> {
    if name.is_null() {
        return Some(0);
    }
    // SAFETY: as the caller promised.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    let ifs = list()?;
    Some(
        ifs.iter()
            .find(|i| i.name.as_bytes() == name)
            .map_or(0, |i| i.index),
    )
}

/// The name of interface `index` written to `buf` (IF_NAMESIZE bytes):
/// Some(false) if the stack has no such interface, None if unreachable.
///
/// # Safety
/// `buf` must have room for IF_NAMESIZE bytes.
pub unsafe fn indextoname(index: c_uint, buf: *mut c_char) -> Option<bool> {
    let ifs = list()?;
    let Some(i) = ifs.iter().find(|i| i.index == index) else {
        return Some(false);
    };
    let name = i.name.as_bytes();
    let len = name.len().min(libc::IF_NAMESIZE - 1);
    // SAFETY: buf holds IF_NAMESIZE bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), len);
        *buf.add(len) = 0;
    }
    Some(true)
}

/// The if_nameindex array, allocated as glibc's (each name and the array
/// with malloc) so that either if_freenameindex releases it.
pub fn nameindex() -> Result<Option<*mut libc::if_nameindex>, c_int> {
    let Some(ifs) = list() else { return Ok(None) };
    let n = ifs.len() + 1;
    // SAFETY: plain allocations; zeroed so the terminator is {0, NULL}.
    let arr = unsafe { libc::calloc(n, std::mem::size_of::<libc::if_nameindex>()) }
        .cast::<libc::if_nameindex>();
    if arr.is_null() {
        return Err(libc::ENOMEM);
    }
    for (k, i) in ifs.iter().enumerate() {
        let bytes = i.name.as_bytes();
        // SAFETY: room for the name and its NUL.
        let s = unsafe { libc::calloc(1, bytes.len() + 1) }.cast::<c_char>();
        if s.is_null() {
            // SAFETY: the entries so far are complete.
            unsafe { freenameindex(arr) };
            return Err(libc::ENOMEM);
        }
        // SAFETY: k < ifs.len() < n; s has bytes.len() + 1 bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), s.cast::<u8>(), bytes.len());
            (*arr.add(k)).if_index = i.index;
            (*arr.add(k)).if_name = s;
        }
    }
    Ok(Some(arr))
}

/// # Safety
/// `arr` must come from if_nameindex.
pub unsafe fn freenameindex(arr: *mut libc::if_nameindex) {
    if arr.is_null() {
        return;
    }
    let mut p = arr;
    // SAFETY: the array ends with {0, NULL}.
    unsafe {
        while !(*p).if_name.is_null() || (*p).if_index != 0 {
            libc::free((*p).if_name.cast::<c_void>());
            p = p.add(1);
        }
        libc::free(arr.cast::<c_void>());
    }
}

/// The index of the stack's interface that has the IPv4 address `a`
/// (`ip_mreq` and `IP_MULTICAST_IF` name an interface by one of its
/// addresses); None if no interface has it or the stack cannot be reached.
pub fn index_of_addr4(a: Ipv4Addr) -> Option<c_uint> {
    list()?
        .iter()
        .find(|i| i.addrs4.iter().any(|x| x.addr == a))
        .map(|i| i.index)
}
