//! UDP on the descriptor: every SEQPACKET message is the 48-byte header
//! of docs/protocol.md ("UDP datagrams") followed by the payload. Sending
//! puts the header in front of the caller's bytes; receiving takes it off
//! and turns it into the sender's address, MSG_TRUNC, an asynchronous
//! error or IP_PKTINFO.

use std::net::{IpAddr, SocketAddr};

use client::raw::{DGRAM_HEADER_LEN, DGRAM_TRUNCATED, DgramHeader, MAX_DGRAM_PAYLOAD};
use libc::{c_int, iovec, msghdr, ssize_t};

use crate::entry::check;
use crate::real::real;

/// Longest iovec array accepted, as the kernel's UIO_MAXIOV.
const MAX_IOV: usize = 1024;

/// # Safety
/// `iov` must point to `n` valid iovecs (or be null with `n` 0).
unsafe fn iovs<'a>(iov: *const iovec, n: usize) -> Result<&'a [iovec], c_int> {
    if n > MAX_IOV {
        return Err(libc::EINVAL);
    }
    if n == 0 || iov.is_null() {
        return Ok(&[]);
    }
    // SAFETY: as the caller promised.
    Ok(unsafe { std::slice::from_raw_parts(iov, n) })
}

/// Sends one datagram made of `iov` to `dst` (None: the connected peer).
///
/// # Safety
/// `iov` must point to `n` iovecs describing readable memory.
pub unsafe fn send(
    fd: c_int,
    iov: *const iovec,
    n: usize,
    dst: Option<SocketAddr>,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    // SAFETY: as the caller promised.
    unsafe { send_from(fd, iov, n, dst, None, flags) }
}

/// Whether a datagram without an address has somewhere to go: the socket
/// is connected. As the kernel, EDESTADDRREQ when it is not.
fn has_destination(fd: c_int) -> Result<(), c_int> {
    if crate::fdtable::get(fd).is_some_and(|k| k.has_peer()) {
        return Ok(());
    }
    // SAFETY: fd is open for the duration of the call (the caller's).
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    match client::raw::call(&client::raw::Request::GetPeer, Some(b)) {
        Ok((client::raw::Response::Addr(Some(_)), _)) => {
            crate::fdtable::set_peer(fd, true);
            Ok(())
        }
        Ok(_) => Err(libc::EDESTADDRREQ),
        Err(e) => match crate::entry::errno_of(&e) {
            libc::ENOTCONN => Err(libc::EDESTADDRREQ),
            other => Err(other),
        },
    }
}

/// [`send`] with the source address and interface chosen by IP_PKTINFO or
/// IPV6_PKTINFO (`src`), carried in the header's pktinfo fields.
///
/// # Safety
/// `iov` must point to `n` iovecs describing readable memory.
pub unsafe fn send_from(
    fd: c_int,
    iov: *const iovec,
    n: usize,
    dst: Option<SocketAddr>,
    src: Option<(IpAddr, u32)>,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    // SAFETY: as the caller promised.
    let user = unsafe { iovs(iov, n) }?;
    let total: usize = user.iter().map(|v| v.iov_len).sum();
    if total > MAX_DGRAM_PAYLOAD {
        return Err(libc::EMSGSIZE);
    }
    if dst.is_none() {
        has_destination(fd)?;
    }
    let mut h = DgramHeader {
        addr: dst,
        pktinfo: src,
        ..DgramHeader::default()
    }
    .encode();
    let mut all = Vec::with_capacity(user.len() + 1);
    all.push(iovec {
        iov_base: h.as_mut_ptr().cast(),
        iov_len: h.len(),
    });
    all.extend_from_slice(user);
    // SAFETY: zeroed msghdr is valid (no name, no control).
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = all.as_mut_ptr();
    m.msg_iovlen = all.len() as _;
    // A UDP send never raises SIGPIPE; only the blocking choice is the
    // caller's.
    let f = (flags & libc::MSG_DONTWAIT) | libc::MSG_NOSIGNAL;
    let sendmsg = real!(sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t);
    // SAFETY: m describes valid buffers for the call's duration.
    check(unsafe { sendmsg(fd, &m, f) })?;
    Ok(total as ssize_t)
}

/// One received datagram.
pub struct Received {
    /// The payload length returned to the caller (the whole datagram's
    /// with MSG_TRUNC in the flags, as the kernel).
    pub len: usize,
    pub from: Option<SocketAddr>,
    /// MSG_TRUNC when the payload did not fit.
    pub msg_flags: c_int,
    pub pktinfo: Option<(IpAddr, u32)>,
}

/// Receives one datagram into `iov`.
///
/// # Safety
/// `iov` must point to `n` iovecs describing writable memory.
pub unsafe fn recv(
    fd: c_int,
    iov: *const iovec,
    n: usize,
    flags: c_int,
) -> Result<Received, c_int> {
    // SAFETY: as the caller promised.
    let user = unsafe { iovs(iov, n) }?;
    let recvmsg = real!(recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t);
    let f = flags & (libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC);
    loop {
        let mut h = [0u8; DGRAM_HEADER_LEN];
        let mut all = Vec::with_capacity(user.len() + 1);
        all.push(iovec {
            iov_base: h.as_mut_ptr().cast(),
            iov_len: h.len(),
        });
        all.extend_from_slice(user);
        // SAFETY: zeroed msghdr is valid.
        let mut m: msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = all.as_mut_ptr();
        m.msg_iovlen = all.len() as _;
        // SAFETY: m describes valid buffers for the call's duration.
        let got = check(unsafe { recvmsg(fd, &mut m, f) })? as usize;
        if got == 0 {
            // io-pkt closed its end: the socket no longer exists.
            return Err(libc::EBADF);
        }
        let hdr = if got < DGRAM_HEADER_LEN {
            None
        } else {
            DgramHeader::decode(&h).ok()
        };
        let Some(hdr) = hdr else {
            // Malformed: drop it (a peek left it queued) and wait for the next.
            if f & libc::MSG_PEEK != 0 {
                let mut b = [0u8; 1];
                // SAFETY: a one-byte buffer.
                let recv = real!(recv: fn(c_int, *mut libc::c_void, usize, c_int) -> ssize_t);
                check(unsafe { recv(fd, b.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT) })?;
            }
            continue;
        };
        if hdr.errno != 0 {
            // An asynchronous error (ICMP unreachable, no route) reported on
            // the next call, as the kernel does for connected UDP sockets.
            if f & libc::MSG_PEEK != 0 {
                let mut b = [0u8; DGRAM_HEADER_LEN];
                let recv = real!(recv: fn(c_int, *mut libc::c_void, usize, c_int) -> ssize_t);
                // SAFETY: a buffer of its length.
                check(unsafe { recv(fd, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) })?;
            }
            return Err(hdr.errno);
        }
        let mut msg_flags = 0;
        if m.msg_flags & libc::MSG_TRUNC != 0 || hdr.flags & DGRAM_TRUNCATED != 0 {
            msg_flags |= libc::MSG_TRUNC;
        }
        return Ok(Received {
            len: got - DGRAM_HEADER_LEN,
            from: hdr.addr,
            msg_flags,
            pktinfo: hdr.pktinfo,
        });
    }
}

/// Writes IP_PKTINFO (`in_pktinfo`) or IPV6_PKTINFO (`in6_pktinfo`) into
/// the caller's control buffer; MSG_CTRUNC if it does not fit.
///
/// # Safety
/// `m` must be the caller's valid msghdr.
pub unsafe fn put_pktinfo(m: *mut msghdr, info: Option<(IpAddr, u32)>) -> c_int {
    // SAFETY: m is valid (caller).
    let m = unsafe { &mut *m };
    let Some((ip, index)) = info else {
        m.msg_controllen = 0;
        return 0;
    };
    let (level, ty, data): (c_int, c_int, Vec<u8>) = match ip {
        IpAddr::V4(a) => {
            // in_pktinfo: ifindex, spec_dst, addr.
            let mut d = Vec::with_capacity(12);
            d.extend_from_slice(&(index as i32).to_ne_bytes());
            d.extend_from_slice(&a.octets());
            d.extend_from_slice(&a.octets());
            (libc::IPPROTO_IP, libc::IP_PKTINFO, d)
        }
        IpAddr::V6(a) => {
            let mut d = Vec::with_capacity(20);
            d.extend_from_slice(&a.octets());
            d.extend_from_slice(&index.to_ne_bytes());
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, d)
        }
    };
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(data.len() as u32) } as usize;
    if m.msg_control.is_null() || (m.msg_controllen as usize) < space {
        m.msg_controllen = 0;
        return libc::MSG_CTRUNC;
    }
    // SAFETY: the buffer holds `space` bytes (checked), so the first
    // header and its data fit.
    unsafe {
        std::ptr::write_bytes(m.msg_control.cast::<u8>(), 0, space);
        let c = libc::CMSG_FIRSTHDR(m);
        if c.is_null() {
            m.msg_controllen = 0;
            return libc::MSG_CTRUNC;
        }
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = libc::CMSG_LEN(data.len() as u32) as _;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(c), data.len());
    }
    m.msg_controllen = space as _;
    0
}

/// The source a sendmsg caller chose with IP_PKTINFO (`in_pktinfo`: the
/// interface index and `ipi_spec_dst`, as Linux uses them) or IPV6_PKTINFO
/// (`in6_pktinfo`: address and interface, RFC 3542 section 6.1); other
/// ancillary data is ignored. EINVAL for a pktinfo message too short.
///
/// # Safety
/// `m` must be the caller's valid msghdr.
pub unsafe fn pktinfo_of(m: &msghdr) -> Result<Option<(IpAddr, u32)>, c_int> {
    if m.msg_control.is_null() || (m.msg_controllen as usize) < std::mem::size_of::<libc::cmsghdr>()
    {
        return Ok(None);
    }
    let mut found = None;
    // SAFETY: the caller's control buffer, walked with the C macros,
    // which stay within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            let (level, ty, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
            let data = libc::CMSG_DATA(c);
            let have = len.saturating_sub(libc::CMSG_LEN(0) as usize);
            let end = m.msg_control.cast::<u8>().add(m.msg_controllen as usize);
            if data.add(have) > end {
                return Err(libc::EINVAL);
            }
            if level == libc::IPPROTO_IP && ty == libc::IP_PKTINFO {
                if have < 12 {
                    return Err(libc::EINVAL);
                }
                let mut b = [0u8; 12];
                std::ptr::copy_nonoverlapping(data, b.as_mut_ptr(), 12);
                let index = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let spec = std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]);
                found = Some((
                    IpAddr::V4(spec),
                    u32::try_from(index).map_err(|_| libc::EINVAL)?,
                ));
            } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                if have < 20 {
                    return Err(libc::EINVAL);
                }
                let mut b = [0u8; 20];
                std::ptr::copy_nonoverlapping(data, b.as_mut_ptr(), 20);
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[..16]);
                let index = u32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
                found = Some((IpAddr::V6(std::net::Ipv6Addr::from(a)), index));
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    Ok(found)
}
