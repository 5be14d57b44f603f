//! Sockets of the stack a program already holds when it starts: passed
//! across `exec` by a parent that had them (a server starting a worker, a
//! shell's redirections, socket activation). The table of ours is empty
//! in a new program, so at load time each open descriptor that looks like
//! one of ours — an unnamed Unix stream or seqpacket socket — is shown to
//! the stack, and kept if the stack knows it.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use client::raw::{self, Request, Response, SockOptNameWire, SockOptWire};
use libc::c_int;

use crate::fdtable::{self, Kind};
use crate::real::real;

/// Runs when the library is loaded, before the program's `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static AT_LOAD: extern "C" fn() = at_load;

extern "C" fn at_load() {
    // Nothing here may unwind into the loader.
    let _ = std::panic::catch_unwind(adopt_all);
}

fn adopt_all() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<c_int> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if looks_like_ours(fd) {
            adopt(fd);
        }
    }
}

/// An unnamed AF_UNIX stream or seqpacket socket: what our descriptors
/// are to the kernel. Anything else is certainly not ours, and is not
/// shown to the stack.
fn looks_like_ours(fd: c_int) -> bool {
    let getsockopt = real!(getsockopt: fn(c_int, c_int, c_int, *mut libc::c_void, *mut libc::socklen_t) -> c_int);
    let getsockname =
        real!(getsockname: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int);
    let int_opt = |name: c_int| {
        let mut v: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: an int-sized buffer and its length.
        let r = unsafe { getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut v).cast(), &mut len) };
        (r == 0).then_some(v)
    };
    if int_opt(libc::SO_DOMAIN) != Some(libc::AF_UNIX) {
        return false;
    }
    if !matches!(
        int_opt(libc::SO_TYPE),
        Some(libc::SOCK_STREAM | libc::SOCK_SEQPACKET)
    ) {
        return false;
    }
    // SAFETY: zeroed storage of the right size.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: the storage and its length.
    let r = unsafe { getsockname(fd, (&raw mut a).cast(), &mut len) };
    r == 0 && len as usize <= std::mem::size_of::<libc::sa_family_t>()
}

/// Asks the stack about `fd`; errors mean it is not ours (or there is no
/// stack) and are not reported: this is only a guess being checked.
fn adopt(fd: c_int) {
    // SAFETY: fd is open for the duration (we are before main).
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let dgram = match raw::getopt(b, SockOptNameWire::Type) {
        Ok(SockOptWire::Type(t)) => t == 2,
        _ => return,
    };
    let local = match raw::call(&Request::GetName, Some(b)) {
        Ok((Response::Addr(a), _)) => a,
        _ => None,
    };
    let v6 = local.is_some_and(|a| a.is_ipv6());
    if !fdtable::set(b.as_raw_fd(), Kind::new(v6, dgram)) {
        return;
    }
    // A connection shares its listener's local address; only a socket
    // without a peer can be the listener.
    let connected = matches!(
        raw::call(&Request::GetPeer, Some(b)),
        Ok((Response::Addr(Some(_)), _))
    );
    if !dgram && !connected && local.is_some_and(is_listening) {
        fdtable::mark_listening(fd);
    }
    if !dgram {
        // Its bytes may go through shared rings (their arena is mapped
        // here anew).
        crate::rings::adopt_inherited(fd);
    }
}

/// Whether the stack has a listener at `local` (the protocol has no
/// per-socket "listening" option; the socket list says it).
fn is_listening(local: SocketAddr) -> bool {
    match raw::call(&Request::SocketList, None) {
        Ok((Response::Sockets(v), _)) => v
            .iter()
            .any(|s| s.local == Some(local) && s.state == "LISTEN"),
        _ => false,
    }
}
