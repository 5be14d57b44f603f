//! Helpers the resource manager's socket tests share.

#![allow(dead_code)]

use std::os::fd::OwnedFd;

use iopkt_rsrcmgr::Client;
use iopkt_rsrcmgr::proto::{Request, Response};

/// A new application socket: its descriptor (one end of the pair).
fn open(c: &mut Client, v6: bool, stream: bool) -> OwnedFd {
    match c
        .call_with_fd(&Request::SocketOpen { v6, stream }, None)
        .expect("SocketOpen")
    {
        (Response::SocketFd { peer: None }, Some(fd)) => fd,
        r => panic!("{r:?}"),
    }
}

/// A new IPv4 TCP socket.
pub fn open_tcp(c: &mut Client) -> OwnedFd {
    open(c, false, true)
}

/// A new UDP socket, IPv6 if `v6`.
pub fn open_udp(c: &mut Client, v6: bool) -> OwnedFd {
    open(c, v6, false)
}
