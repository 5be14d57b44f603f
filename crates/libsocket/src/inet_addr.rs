//! C `struct sockaddr` to and from `std::net::SocketAddr`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{c_int, sockaddr, sockaddr_in, sockaddr_in6, socklen_t};

/// Reads the address at `p` (`len` bytes). EFAULT for a null pointer,
/// EINVAL for a length too short for its family, EAFNOSUPPORT for another
/// family, as the kernel's inet sockets answer.
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
pub unsafe fn read(p: *const sockaddr, len: socklen_t) -> Result<SocketAddr, c_int> {
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    let len = len as usize;
    if len < std::mem::size_of::<libc::sa_family_t>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: at least the family is readable (checked above).
    let family = c_int::from(unsafe { std::ptr::read_unaligned(&raw const (*p).sa_family) });
    match family {
        libc::AF_INET => {
            if len < std::mem::size_of::<sockaddr_in>() {
                return Err(libc::EINVAL);
            }
            // SAFETY: the caller's buffer holds a whole sockaddr_in.
            let a = unsafe { std::ptr::read_unaligned(p.cast::<sockaddr_in>()) };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // The scope id is optional in C (24-byte RFC 2133 layout).
            if len < 24 {
                return Err(libc::EINVAL);
            }
            let mut a: sockaddr_in6 = unsafe { std::mem::zeroed() };
            let n = len.min(std::mem::size_of::<sockaddr_in6>());
            // SAFETY: n bytes are readable at p and fit in a.
            unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut a).cast::<u8>(), n) };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// The address as the socket's family shows it: an IPv6 socket sees an
/// IPv4 peer as `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), as the kernel's
/// dual-stack sockets do.
pub fn for_family(a: SocketAddr, v6: bool) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) if v6 => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        other => other,
    }
}

/// Writes `a` to the caller's buffer as getsockname does: at most `*len`
/// bytes, and `*len` set to the address's full size. Null `out` or `len`
/// writes nothing (accept with a null address).
///
/// # Safety
/// `out` must be null or point to `*len` writable bytes; `len` null or
/// valid.
pub unsafe fn write(a: SocketAddr, out: *mut sockaddr, len: *mut socklen_t) {
    if out.is_null() || len.is_null() {
        return;
    }
    let mut buf = [0u8; std::mem::size_of::<sockaddr_in6>()];
    let full = match a {
        SocketAddr::V4(v4) => {
            let mut s: sockaddr_in = unsafe { std::mem::zeroed() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = v4.port().to_be();
            s.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            let n = std::mem::size_of::<sockaddr_in>();
            // SAFETY: s is n bytes; buf is larger.
            unsafe {
                std::ptr::copy_nonoverlapping((&raw const s).cast::<u8>(), buf.as_mut_ptr(), n)
            };
            n
        }
        SocketAddr::V6(v6) => {
            let mut s: sockaddr_in6 = unsafe { std::mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = v6.port().to_be();
            s.sin6_flowinfo = v6.flowinfo().to_be();
            s.sin6_addr.s6_addr = v6.ip().octets();
            s.sin6_scope_id = v6.scope_id();
            let n = std::mem::size_of::<sockaddr_in6>();
            // SAFETY: s is n bytes, as is buf.
            unsafe {
                std::ptr::copy_nonoverlapping((&raw const s).cast::<u8>(), buf.as_mut_ptr(), n)
            };
            n
        }
    };
    // SAFETY: len is valid (checked non-null); out has *len bytes.
    unsafe {
        let room = (*len as usize).min(full);
        std::ptr::copy_nonoverlapping(buf.as_ptr(), out.cast::<u8>(), room);
        *len = full as socklen_t;
    }
}

/// Whether the address at `p` is AF_UNSPEC (connect's "dissolve the
/// association"): only the family needs to be there.
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
pub unsafe fn is_unspec(p: *const sockaddr, len: socklen_t) -> bool {
    if p.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: the family is readable (checked above).
    let family = c_int::from(unsafe { std::ptr::read_unaligned(&raw const (*p).sa_family) });
    family == libc::AF_UNSPEC
}
