//! `libiopkt_socket.so`: the BSD socket API of an iopkt stack for programs
//! that do not know about it, loaded with `LD_PRELOAD` (or `iopkt run`).
//!
//! `socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM)` opens a socket
//! of the stack named by `$SOCK`; every other socket, and every call on a
//! descriptor that is not one of ours, goes to the C library unchanged.
//! Each of our sockets is a real descriptor (docs/protocol.md,
//! "Application sockets"): TCP bytes flow on it as they are, so reading,
//! writing, poll, select and epoll need nothing from this library; UDP
//! datagrams carry a header this library adds and removes; control calls
//! (bind, connect, options, names) are requests on the process's control
//! connection, which a forked child opens anew.
//!
//! Every entry point catches panics and answers -1 with errno as the
//! kernel would.

// The exported functions are the C library's, with the contracts POSIX
// gives them; msghdr field widths differ between C libraries, so the casts
// that are no-ops on glibc stay.
#![allow(clippy::missing_safety_doc, clippy::unnecessary_cast)]

mod dgram;
mod entry;
mod fdtable;
mod inet_addr;
mod inherited;
mod interfaces;
mod ioctl;
mod options;
mod real;
mod ring_io;
mod rings;
mod sendfile;
mod tcp_end;
mod tcp_info;
mod unsupported;

use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use client::raw::{self, Request, Response};
use libc::{
    c_int, c_uint, c_ulong, c_void, iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t,
};

use entry::{check, errno_of, guard};
use fdtable::Kind;
use real::real;

/// Borrows a descriptor the caller holds open for the call's duration.
fn borrow<'a>(fd: c_int) -> BorrowedFd<'a> {
    // SAFETY: only used with descriptors the table says are open sockets
    // of ours, for the duration of the caller's call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn nonblocking(fd: c_int) -> bool {
    let fcntl = real!(fcntl: fn(c_int, c_int, c_ulong) -> c_int);
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { fcntl(fd, libc::F_GETFL, 0) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// Applies SOCK_NONBLOCK and SOCK_CLOEXEC to a descriptor we made.
fn apply_flags(fd: c_int, flags: c_int) -> Result<(), c_int> {
    let fcntl = real!(fcntl: fn(c_int, c_int, c_ulong) -> c_int);
    // SAFETY: plain fcntl calls on an open descriptor.
    unsafe {
        if flags & libc::SOCK_NONBLOCK != 0 {
            let fl = check(fcntl(fd, libc::F_GETFL, 0))?;
            check(fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as c_ulong))?;
        }
        let cloexec = if flags & libc::SOCK_CLOEXEC != 0 {
            libc::FD_CLOEXEC
        } else {
            0
        };
        check(fcntl(fd, libc::F_SETFD, cloexec as c_ulong))?;
    }
    Ok(())
}

/// Takes a descriptor the stack passed us into the table.
fn adopt(fd: OwnedFd, kind: Kind, flags: c_int) -> Result<c_int, c_int> {
    let raw = fd.into_raw_fd();
    if !fdtable::set(raw, kind) {
        let close = real!(close: fn(c_int) -> c_int);
        // SAFETY: our own descriptor, not yet given to anyone.
        unsafe { close(raw) };
        return Err(libc::EMFILE);
    }
    if let Err(e) = apply_flags(raw, flags) {
        fdtable::clear(raw);
        // SAFETY: as above.
        let _ = unsafe { OwnedFd::from_raw_fd(raw) };
        return Err(e);
    }
    Ok(raw)
}

extern "C" fn fork_prepare() {
    raw::before_fork();
}

extern "C" fn fork_done() {
    raw::after_fork();
}

extern "C" fn fork_child() {
    // The shared rings' locks name their holder by process id.
    iopkt_shm::lock::forked();
    raw::after_fork();
}

/// Makes `fork` safe for the control connection: registered once, when
/// the first socket of the stack is opened.
fn watch_fork() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handlers are plain functions that live as long as
        // the process (this library is never unloaded while in use).
        unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_done), Some(fork_child)) };
    });
}

fn is_stack_socket(domain: c_int, ty: c_int, proto: c_int) -> Option<(bool, bool)> {
    let v6 = match domain {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        _ => return None,
    };
    match ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) {
        libc::SOCK_STREAM if proto == 0 || proto == libc::IPPROTO_TCP => Some((v6, true)),
        libc::SOCK_DGRAM if proto == 0 || proto == libc::IPPROTO_UDP => Some((v6, false)),
        _ => None,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    guard(-1, || {
        let Some((v6, stream)) = is_stack_socket(domain, ty, proto) else {
            let f = real!(socket: fn(c_int, c_int, c_int) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            let fd = check(unsafe { f(domain, ty, proto) })?;
            fdtable::clear(fd);
            return Ok(fd);
        };
        watch_fork();
        if stream && rings::wanted() {
            return open_ring(v6, ty);
        }
        let fd = raw::open(v6, stream).map_err(|e| errno_of(&e))?;
        adopt(fd, Kind::new(v6, !stream), ty)
    })
}

/// A TCP socket with shared rings (a plain one if io-pkt has none to give).
fn open_ring(v6: bool, ty: c_int) -> Result<c_int, c_int> {
    match raw::call(&Request::SocketOpenRing { v6 }, None) {
        Ok((Response::SocketRing { ring, .. }, Some(fd))) => {
            let fd = adopt(fd, Kind::new(v6, false), ty)?;
            match attach_ring(fd, ring) {
                Ok(fd) => Ok(fd),
                // The arena cannot be mapped here: a plain socket instead.
                Err(_) if !rings::wanted() => {
                    let fd = raw::open(v6, true).map_err(|e| errno_of(&e))?;
                    adopt(fd, Kind::new(v6, false), ty)
                }
                Err(e) => Err(e),
            }
        }
        Ok((Response::SocketFd { .. }, Some(fd))) => adopt(fd, Kind::new(v6, false), ty),
        Ok(_) => Err(libc::EPROTO),
        Err(e) => Err(errno_of(&e)),
    }
}

/// Records a new socket's ring; if its arena cannot be mapped, the socket
/// cannot be used and is closed.
fn attach_ring(fd: c_int, ring: client::raw::RingRef) -> Result<c_int, c_int> {
    if let Err(e) = rings::attach(fd, ring) {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    sv: *mut c_int,
) -> c_int {
    guard(-1, || {
        let f = real!(socketpair: fn(c_int, c_int, c_int, *mut c_int) -> c_int);
        // SAFETY: the caller's arguments, unchanged.
        let r = check(unsafe { f(domain, ty, proto, sv) })?;
        // SAFETY: on success the kernel wrote two descriptors.
        unsafe {
            fdtable::clear(*sv);
            fdtable::clear(*sv.add(1));
        }
        Ok(r)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard(-1, || {
        if fdtable::get(fd).is_none() {
            let f = real!(bind: fn(c_int, *const sockaddr, socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            return check(unsafe { f(fd, addr, len) });
        }
        // SAFETY: the caller's buffer.
        let a = unsafe { inet_addr::read(addr, len) }?;
        raw::call_ok(&Request::Bind { addr: a }, borrow(fd)).map_err(|e| errno_of(&e))?;
        Ok(0)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    guard(-1, || {
        if fdtable::get(fd).is_none() {
            let f = real!(listen: fn(c_int, c_int) -> c_int);
            // SAFETY: plain arguments.
            return check(unsafe { f(fd, backlog) });
        }
        // As the kernel: a negative or huge backlog is clamped, not refused.
        let backlog = backlog.clamp(1, 4096) as u32;
        raw::call_ok(&Request::Listen { backlog }, borrow(fd)).map_err(|e| errno_of(&e))?;
        fdtable::mark_listening(fd);
        Ok(0)
    })
}

/// accept on a listener of ours: one notification byte per waiting
/// connection, then `Accept` (docs/protocol.md, "Listening").
unsafe fn accept_ours(
    fd: c_int,
    kind: Kind,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> Result<c_int, c_int> {
    if kind.dgram() {
        return Err(libc::EOPNOTSUPP);
    }
    if !kind.listening() {
        return Err(libc::EINVAL);
    }
    let read = real!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
    loop {
        let mut b = [0u8; 1];
        // SAFETY: a one-byte buffer.
        let n = check(unsafe { read(fd, b.as_mut_ptr().cast(), 1) })?;
        if n == 0 {
            // io-pkt hung up: the listener is gone.
            return Err(libc::EINVAL);
        }
        let req = if rings::wanted() {
            Request::AcceptRing
        } else {
            Request::Accept
        };
        let (peer, conn, ring) = match raw::call(&req, Some(borrow(fd))) {
            Ok((Response::SocketFd { peer }, Some(conn))) => (peer, conn, None),
            Ok((Response::SocketRing { peer, ring }, Some(conn))) => (peer, conn, Some(ring)),
            Ok(_) => return Err(libc::EPROTO),
            // Another holder of the listener took the connection.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if nonblocking(fd) {
                    return Err(libc::EAGAIN);
                }
                continue;
            }
            Err(e) => return Err(errno_of(&e)),
        };
        let new = adopt(conn, Kind::new(kind.v6(), false), flags)?;
        let new = match ring {
            Some(r) => attach_ring(new, r)?,
            None => new,
        };
        if let Some(p) = peer {
            // SAFETY: the caller's buffer.
            unsafe { inet_addr::write(inet_addr::for_family(p, kind.v6()), addr, len) };
        }
        return Ok(new);
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => unsafe { accept_ours(fd, kind, addr, len, flags) },
        None => {
            let f = real!(accept4: fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            let new = check(unsafe { f(fd, addr, len, flags) })?;
            fdtable::clear(new);
            Ok(new)
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => unsafe { accept_ours(fd, kind, addr, len, 0) },
        None => {
            let f = real!(accept: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            let new = check(unsafe { f(fd, addr, len) })?;
            fdtable::clear(new);
            Ok(new)
        }
    })
}

/// Waits for a TCP connection attempt's outcome.
fn connect_wait(fd: c_int, timeout: std::time::Duration) -> Result<c_int, c_int> {
    raw::call_alone(&Request::ConnectWait, borrow(fd), Some(timeout))
        .map(|_| 0)
        .map_err(|e| errno_of(&e))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard(-1, || {
        let Some(kind) = fdtable::get(fd) else {
            let f = real!(connect: fn(c_int, *const sockaddr, socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            return check(unsafe { f(fd, addr, len) });
        };
        if kind.connecting() {
            // Asked again while a non-blocking attempt is under way: as the
            // kernel, EALREADY until it ends, then its outcome once.
            let r = if nonblocking(fd) {
                connect_wait(fd, std::time::Duration::from_millis(1))
            } else {
                connect_wait(fd, options::CONNECT_WAIT)
            };
            return match r {
                Err(libc::ETIMEDOUT) if nonblocking(fd) => Err(libc::EALREADY),
                other => {
                    fdtable::set_connecting(fd, false);
                    other
                }
            };
        }
        // SAFETY: the caller's buffer.
        if kind.dgram() && unsafe { inet_addr::is_unspec(addr, len) } {
            // POSIX: AF_UNSPEC resets a datagram socket's peer.
            fdtable::set_peer(fd, false);
            return raw::call(&Request::Disconnect, Some(borrow(fd)))
                .map(|_| 0)
                .map_err(|e| errno_of(&e));
        }
        // SAFETY: the caller's buffer.
        let a = unsafe { inet_addr::read(addr, len) }?;
        match raw::call(&Request::Connect { addr: a }, Some(borrow(fd))) {
            Ok(_) if kind.dgram() => {
                fdtable::set_peer(fd, true);
                Ok(0)
            }
            Ok(_) => Ok(0),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                if nonblocking(fd) {
                    fdtable::set_connecting(fd, true);
                    Err(libc::EINPROGRESS)
                } else {
                    // A blocking connect is the attempt plus its outcome.
                    connect_wait(fd, options::CONNECT_WAIT)
                }
            }
            Err(e) => Err(errno_of(&e)),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    guard(-1, || {
        let f = real!(shutdown: fn(c_int, c_int) -> c_int);
        let Some(kind) = fdtable::get(fd) else {
            // SAFETY: plain arguments.
            return check(unsafe { f(fd, how) });
        };
        let call = |h: u8| {
            raw::call_ok(&Request::Shutdown { how: h }, borrow(fd)).map_err(|e| errno_of(&e))
        };
        if kind.dgram() {
            let h = u8::try_from(how).map_err(|_| libc::EINVAL)?;
            if h > 2 {
                return Err(libc::EINVAL);
            }
            call(h)?;
            return Ok(0);
        }
        // The sending side is shut on the descriptor itself, so the stack
        // sees it after the bytes written before (docs/protocol.md).
        match how {
            libc::SHUT_RD => call(0)?,
            libc::SHUT_WR => {
                shut_ring(fd);
                // SAFETY: plain arguments.
                check(unsafe { f(fd, libc::SHUT_WR) })?;
            }
            libc::SHUT_RDWR => {
                shut_ring(fd);
                // SAFETY: plain arguments.
                check(unsafe { f(fd, libc::SHUT_WR) })?;
                call(0)?;
            }
            _ => return Err(libc::EINVAL),
        }
        Ok(0)
    })
}

/// shutdown(SHUT_WR) on a socket with rings: later writes fail.
fn shut_ring(fd: c_int) {
    if let Some(end) = rings::get(fd)
        && let Ok(tx) = end.tx()
    {
        tx.shut();
    }
}

unsafe fn name_call(
    fd: c_int,
    peer: bool,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> Result<c_int, c_int> {
    let kind = fdtable::get(fd).ok_or(libc::EBADF)?;
    if addr.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    let req = if peer {
        Request::GetPeer
    } else {
        Request::GetName
    };
    let a = match raw::call(&req, Some(borrow(fd))).map_err(|e| errno_of(&e))? {
        (Response::Addr(Some(a)), _) => a,
        (Response::Addr(None), _) if peer => return Err(libc::ENOTCONN),
        // An unbound socket's name is the unspecified address, port 0.
        (Response::Addr(None), _) => {
            if kind.v6() {
                std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
            } else {
                std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
            }
        }
        _ => return Err(libc::EPROTO),
    };
    // SAFETY: the caller's buffer.
    unsafe { inet_addr::write(inet_addr::for_family(a, kind.v6()), addr, len) };
    Ok(0)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(-1, || {
        if fdtable::get(fd).is_none() {
            let f = real!(getsockname: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            return check(unsafe { f(fd, addr, len) });
        }
        unsafe { name_call(fd, false, addr, len) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(-1, || {
        if fdtable::get(fd).is_none() {
            let f = real!(getpeername: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            return check(unsafe { f(fd, addr, len) });
        }
        unsafe { name_call(fd, true, addr, len) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    guard(-1, || {
        if fdtable::get(fd).is_none() {
            let f = real!(setsockopt: fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            return check(unsafe { f(fd, level, name, val, len) });
        }
        unsafe { options::set(borrow(fd), level, name, val, len) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    guard(-1, || match fdtable::get(fd) {
        None => {
            let f =
                real!(getsockopt: fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, level, name, val, len) })
        }
        Some(kind) => unsafe { options::get(borrow(fd), kind, level, name, val, len) },
    })
}

// ---- data: only UDP descriptors need translating ----

fn one_iov(buf: *const c_void, len: size_t) -> iovec {
    iovec {
        iov_base: buf.cast_mut(),
        iov_len: len,
    }
}

unsafe fn dgram_dst(
    addr: *const sockaddr,
    len: socklen_t,
) -> Result<Option<std::net::SocketAddr>, c_int> {
    if addr.is_null() || len == 0 {
        Ok(None)
    } else {
        // SAFETY: the caller's buffer.
        unsafe { inet_addr::read(addr, len) }.map(Some)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let v = one_iov(buf, len);
            unsafe { dgram::send(fd, &v, 1, None, flags) }
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let v = one_iov(buf, len);
            unsafe { ring_io::send(fd, end, &v, 1, flags) }
        }
        _ => {
            let f = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len, flags) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let dst = unsafe { dgram_dst(addr, alen) }?;
            let v = one_iov(buf, len);
            unsafe { dgram::send(fd, &v, 1, dst, flags) }
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let v = one_iov(buf, len);
            unsafe { ring_io::send(fd, end, &v, 1, flags) }
        }
        Some(_) => {
            // A TCP socket ignores the address, as the kernel's does; the
            // pair would refuse one.
            let f = real!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
            // SAFETY: the caller's buffer.
            check(unsafe { f(fd, buf, len, flags) })
        }
        None => {
            let f = real!(sendto: fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len, flags, addr, alen) })
        }
    })
}

unsafe fn sendmsg_ours(
    fd: c_int,
    kind: Kind,
    m: *const msghdr,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    if m.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's msghdr.
    let m = unsafe { &*m };
    if kind.dgram() {
        let dst = unsafe { dgram_dst(m.msg_name as *const sockaddr, m.msg_namelen) }?;
        // SAFETY: the caller's msghdr.
        let src = unsafe { dgram::pktinfo_of(m) }?;
        unsafe { dgram::send_from(fd, m.msg_iov, m.msg_iovlen as usize, dst, src, flags) }
    } else if let Some(end) = rings::get(fd) {
        unsafe { ring_io::send(fd, end, m.msg_iov, m.msg_iovlen as usize, flags) }
    } else {
        // TCP: the bytes alone; no address, no ancillary data on the pair.
        let mut plain = *m;
        plain.msg_name = std::ptr::null_mut();
        plain.msg_namelen = 0;
        plain.msg_control = std::ptr::null_mut();
        plain.msg_controllen = 0;
        let f = real!(sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t);
        // SAFETY: a copy of the caller's msghdr.
        check(unsafe { f(fd, &plain, flags) })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, m: *const msghdr, flags: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => unsafe { sendmsg_ours(fd, kind, m, flags) },
        None => {
            let f = real!(sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, m, flags) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let v = one_iov(buf, len);
            unsafe { dgram::recv(fd, &v, 1, flags) }.map(|r| r.len as ssize_t)
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let v = one_iov(buf, len);
            unsafe { ring_io::recv(fd, end, &v, 1, flags) }
        }
        Some(_) => {
            let f = real!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            tcp_end::after_read(fd, len, check(unsafe { f(fd, buf, len, flags) }))
        }
        None => {
            let f = real!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len, flags) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let v = one_iov(buf, len);
            let r = unsafe { dgram::recv(fd, &v, 1, flags) }?;
            match r.from {
                // SAFETY: the caller's buffer.
                Some(a) => unsafe {
                    inet_addr::write(inet_addr::for_family(a, k.v6()), addr, alen)
                },
                None if !alen.is_null() => unsafe { *alen = 0 },
                None => {}
            }
            Ok(r.len as ssize_t)
        }
        Some(_) => {
            let n = match rings::get(fd) {
                Some(end) => {
                    let v = one_iov(buf, len);
                    unsafe { ring_io::recv(fd, end, &v, 1, flags) }?
                }
                None => {
                    let f = real!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
                    // SAFETY: the caller's buffer.
                    tcp_end::after_read(fd, len, check(unsafe { f(fd, buf, len, flags) }))?
                }
            };
            // TCP reports no source address (the kernel writes length 0).
            if !addr.is_null() && !alen.is_null() {
                // SAFETY: the caller's length.
                unsafe { *alen = 0 };
            }
            Ok(n)
        }
        None => {
            let f = real!(recvfrom: fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len, flags, addr, alen) })
        }
    })
}

unsafe fn recvmsg_ours(
    fd: c_int,
    kind: Kind,
    m: *mut msghdr,
    flags: c_int,
) -> Result<ssize_t, c_int> {
    if m.is_null() {
        return Err(libc::EFAULT);
    }
    if kind.dgram() {
        // SAFETY: the caller's msghdr.
        let (iov, n) = unsafe { ((*m).msg_iov, (*m).msg_iovlen as usize) };
        let r = unsafe { dgram::recv(fd, iov, n, flags) }?;
        // SAFETY: the caller's msghdr and the buffers it names.
        unsafe {
            let name = (*m).msg_name.cast::<sockaddr>();
            match r.from {
                Some(a) if !name.is_null() => inet_addr::write(
                    inet_addr::for_family(a, kind.v6()),
                    name,
                    &mut (*m).msg_namelen,
                ),
                _ => (*m).msg_namelen = 0,
            }
            let ctrunc = dgram::put_pktinfo(m, r.pktinfo);
            (*m).msg_flags = r.msg_flags | ctrunc;
        }
        Ok(r.len as ssize_t)
    } else if let Some(end) = rings::get(fd) {
        // SAFETY: the caller's msghdr.
        let (iov, n) = unsafe { ((*m).msg_iov, (*m).msg_iovlen as usize) };
        let got = unsafe { ring_io::recv(fd, end, iov, n, flags) }?;
        // SAFETY: the caller's msghdr.
        unsafe {
            (*m).msg_namelen = 0;
            (*m).msg_controllen = 0;
            (*m).msg_flags = 0;
        }
        Ok(got)
    } else {
        // SAFETY: the caller's msghdr.
        let mut plain = unsafe { *m };
        plain.msg_name = std::ptr::null_mut();
        plain.msg_namelen = 0;
        plain.msg_control = std::ptr::null_mut();
        plain.msg_controllen = 0;
        let f = real!(recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t);
        // SAFETY: a copy of the caller's msghdr.
        let r = check(unsafe { f(fd, &mut plain, flags) });
        let n = match r {
            // SAFETY: the caller's iovecs.
            Ok(0) => tcp_end::after_read(
                fd,
                unsafe { tcp_end::iov_len(plain.msg_iov, plain.msg_iovlen as usize) },
                r,
            ),
            r => tcp_end::after_read(fd, 0, r),
        }?;
        // SAFETY: the caller's msghdr.
        unsafe {
            (*m).msg_namelen = 0;
            (*m).msg_controllen = 0;
            (*m).msg_flags = plain.msg_flags;
        }
        Ok(n)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, m: *mut msghdr, flags: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => unsafe { recvmsg_ours(fd, kind, m, flags) },
        None => {
            let f = real!(recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, m, flags) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(fd: c_int, v: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => {
            let mut done: c_int = 0;
            for i in 0..n.min(1024) as usize {
                // SAFETY: the caller's array of n entries.
                let e = unsafe { &mut *v.add(i) };
                match unsafe { sendmsg_ours(fd, kind, &e.msg_hdr, flags) } {
                    Ok(sent) => e.msg_len = sent as c_uint,
                    // As the kernel: an error after the first message ends
                    // the batch with what was sent.
                    Err(err) if done == 0 => return Err(err),
                    Err(_) => break,
                }
                done += 1;
            }
            Ok(done)
        }
        None => {
            let f = real!(sendmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, v, n, flags) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    v: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    guard(-1, || match fdtable::get(fd) {
        Some(kind) => {
            // The first message waits (unless MSG_DONTWAIT); the rest are
            // taken only if already there, as with MSG_WAITFORONE.
            let mut done: c_int = 0;
            let base = flags & !libc::MSG_WAITFORONE;
            for i in 0..n.min(1024) as usize {
                let f = if done == 0 {
                    base
                } else {
                    base | libc::MSG_DONTWAIT
                };
                // SAFETY: the caller's array of n entries.
                let e = unsafe { &mut *v.add(i) };
                match unsafe { recvmsg_ours(fd, kind, &mut e.msg_hdr, f) } {
                    Ok(got) => e.msg_len = got as c_uint,
                    Err(err) if done == 0 => return Err(err),
                    Err(_) => break,
                }
                done += 1;
            }
            Ok(done)
        }
        None => {
            let f = real!(recvmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int, *mut libc::timespec) -> c_int);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, v, n, flags, timeout) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let v = one_iov(buf, len);
            unsafe { dgram::recv(fd, &v, 1, 0) }.map(|r| r.len as ssize_t)
        }
        // A read of no bytes returns at once (a recv of none waits).
        Some(_) if len == 0 && rings::get(fd).is_some() => Ok(0),
        Some(_) if let Some(end) = rings::get(fd) => {
            let v = one_iov(buf, len);
            unsafe { ring_io::recv(fd, end, &v, 1, 0) }
        }
        Some(_) => {
            let f = real!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            tcp_end::after_read(fd, len, check(unsafe { f(fd, buf, len) }))
        }
        None => {
            let f = real!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let v = one_iov(buf, len);
            unsafe { dgram::send(fd, &v, 1, None, 0) }
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let v = one_iov(buf, len);
            unsafe { ring_io::send(fd, end, &v, 1, 0) }
        }
        _ => {
            let f = real!(write: fn(c_int, *const c_void, size_t) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, buf, len) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
            unsafe { dgram::recv(fd, iov, n, 0) }.map(|r| r.len as ssize_t)
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
            // As read: no bytes asked, none waited for.
            if unsafe { ring_io::total(iov, n) } == 0 {
                return Ok(0);
            }
            unsafe { ring_io::recv(fd, end, iov, n, 0) }
        }
        Some(_) => {
            let f = real!(readv: fn(c_int, *const iovec, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            let r = check(unsafe { f(fd, iov, n) });
            let len = match r {
                // SAFETY: the caller's iovecs (the call accepted them).
                Ok(0) => unsafe { tcp_end::iov_len(iov, usize::try_from(n).unwrap_or(0)) },
                _ => 0,
            };
            tcp_end::after_read(fd, len, r)
        }
        None => {
            let f = real!(readv: fn(c_int, *const iovec, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, iov, n) })
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    guard(-1, || match fdtable::get(fd) {
        Some(k) if k.dgram() => {
            let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
            unsafe { dgram::send(fd, iov, n, None, 0) }
        }
        Some(_) if let Some(end) = rings::get(fd) => {
            let n = usize::try_from(n).map_err(|_| libc::EINVAL)?;
            unsafe { ring_io::send(fd, end, iov, n, 0) }
        }
        _ => {
            let f = real!(writev: fn(c_int, *const iovec, c_int) -> ssize_t);
            // SAFETY: the caller's arguments, unchanged.
            check(unsafe { f(fd, iov, n) })
        }
    })
}

// Programs built with _FORTIFY_SOURCE call these checked variants; the
// C library's own would go around the translation above.

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
) -> ssize_t {
    if len <= buflen && fdtable::get(fd).is_some() {
        return unsafe { read(fd, buf, len) };
    }
    let f = real!(__read_chk: fn(c_int, *mut c_void, size_t, size_t) -> ssize_t);
    // SAFETY: the caller's arguments, unchanged (it checks the length).
    unsafe { f(fd, buf, len, buflen) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if len <= buflen && fdtable::get(fd).is_some() {
        return unsafe { recv(fd, buf, len, flags) };
    }
    let f = real!(__recv_chk: fn(c_int, *mut c_void, size_t, size_t, c_int) -> ssize_t);
    // SAFETY: the caller's arguments, unchanged.
    unsafe { f(fd, buf, len, buflen, flags) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if len <= buflen && fdtable::get(fd).is_some() {
        return unsafe { recvfrom(fd, buf, len, flags, addr, alen) };
    }
    let f = real!(__recvfrom_chk: fn(c_int, *mut c_void, size_t, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t);
    // SAFETY: the caller's arguments, unchanged.
    unsafe { f(fd, buf, len, buflen, flags, addr, alen) }
}

// ---- descriptors: keep the table in step ----

#[unsafe(no_mangle)]
pub extern "C" fn close(fd: c_int) -> c_int {
    // Forget first: once closed, the number may be reused at once.
    fdtable::clear(fd);
    let f = real!(close: fn(c_int) -> c_int);
    // SAFETY: plain argument.
    unsafe { f(fd) }
}

/// close_range (unless it only marks close-on-exec) forgets the range.
#[unsafe(no_mangle)]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let end = last.min(fdtable::MAX_FDS as c_uint - 1);
        for fd in first..=end {
            fdtable::clear(fd as c_int);
        }
    }
    let f = real!(close_range: fn(c_uint, c_uint, c_int) -> c_int);
    // SAFETY: plain arguments.
    unsafe { f(first, last, flags) }
}

#[unsafe(no_mangle)]
pub extern "C" fn dup(fd: c_int) -> c_int {
    let f = real!(dup: fn(c_int) -> c_int);
    let kind = fdtable::get(fd);
    // SAFETY: plain argument.
    let new = unsafe { f(fd) };
    if new >= 0 {
        fdtable::copy(kind, new);
        rings::copy(fd, new);
    }
    new
}

#[unsafe(no_mangle)]
pub extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    let f = real!(dup2: fn(c_int, c_int) -> c_int);
    let kind = fdtable::get(fd);
    // SAFETY: plain arguments.
    let new = unsafe { f(fd, to) };
    if new >= 0 && new != fd {
        fdtable::copy(kind, new);
        rings::copy(fd, new);
    }
    new
}

#[unsafe(no_mangle)]
pub extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    let f = real!(dup3: fn(c_int, c_int, c_int) -> c_int);
    let kind = fdtable::get(fd);
    // SAFETY: plain arguments.
    let new = unsafe { f(fd, to, flags) };
    if new >= 0 {
        fdtable::copy(kind, new);
        rings::copy(fd, new);
    }
    new
}

/// fcntl is variadic in C; its one optional argument is an int or a
/// pointer, which the calling convention passes in the same register as
/// an unsigned long, so it is taken and passed on as one.
#[unsafe(no_mangle)]
pub extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let f = real!(fcntl: fn(c_int, c_int, c_ulong) -> c_int);
    let kind = fdtable::get(fd);
    // SAFETY: the caller's arguments, unchanged.
    let r = unsafe { f(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        fdtable::copy(kind, r);
        rings::copy(fd, r);
    }
    r
}

#[unsafe(no_mangle)]
pub extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl(fd, cmd, arg)
}

/// ioctl, variadic like fcntl: on our sockets as ioctl.rs says, on
/// anything else the C library's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    guard(-1, || {
        if let Some(kind) = fdtable::get(fd)
            // SAFETY: the caller's argument for its request.
            && let Some(r) = unsafe { ioctl::ours(fd, kind, req, arg) }
        {
            return r;
        }
        let f = real!(ioctl: fn(c_int, c_ulong, *mut c_void) -> c_int);
        // SAFETY: the caller's arguments, unchanged.
        check(unsafe { f(fd, req, arg) })
    })
}

// ---- the stack's interfaces ----

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getifaddrs(out: *mut *mut libc::ifaddrs) -> c_int {
    guard(-1, || {
        if out.is_null() {
            return Err(libc::EFAULT);
        }
        match interfaces::getifaddrs()? {
            Some(list) => {
                // SAFETY: the caller's pointer.
                unsafe { *out = list };
                Ok(0)
            }
            None => {
                let f = real!(getifaddrs: fn(*mut *mut libc::ifaddrs) -> c_int);
                // SAFETY: the caller's argument, unchanged.
                check(unsafe { f(out) })
            }
        }
    })
}

/// Both lists, the stack's and the C library's, are one allocation
/// starting at the first entry.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn freeifaddrs(list: *mut libc::ifaddrs) {
    // SAFETY: a list from getifaddrs, or null.
    unsafe { libc::free(list.cast()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn if_nametoindex(name: *const libc::c_char) -> c_uint {
    guard(0, || {
        // SAFETY: the caller's C string.
        match unsafe { interfaces::nametoindex(name) } {
            Some(0) => Err(libc::ENODEV),
            Some(i) => Ok(i),
            None => {
                let f = real!(if_nametoindex: fn(*const libc::c_char) -> c_uint);
                // SAFETY: the caller's argument, unchanged.
                Ok(unsafe { f(name) })
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn if_indextoname(
    index: c_uint,
    buf: *mut libc::c_char,
) -> *mut libc::c_char {
    guard(std::ptr::null_mut(), || {
        if buf.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller's buffer of IF_NAMESIZE bytes.
        match unsafe { interfaces::indextoname(index, buf) } {
            Some(true) => Ok(buf),
            Some(false) => Err(libc::ENXIO),
            None => {
                let f = real!(if_indextoname: fn(c_uint, *mut libc::c_char) -> *mut libc::c_char);
                // SAFETY: the caller's arguments, unchanged.
                let r = unsafe { f(index, buf) };
                if r.is_null() {
                    Err(entry::errno())
                } else {
                    Ok(r)
                }
            }
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn if_nameindex() -> *mut libc::if_nameindex {
    guard(std::ptr::null_mut(), || match interfaces::nameindex()? {
        Some(a) => Ok(a),
        None => {
            let f = real!(if_nameindex: fn() -> *mut libc::if_nameindex);
            // SAFETY: no arguments.
            let r = unsafe { f() };
            if r.is_null() {
                Err(entry::errno())
            } else {
                Ok(r)
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn if_freenameindex(arr: *mut libc::if_nameindex) {
    // SAFETY: an array from if_nameindex (either one: same allocation).
    unsafe { interfaces::freenameindex(arr) }
}
