//! The stack's sockets, as the resource manager sees them.
//!
//! STUB: ICMP echo ("ping") sockets for IPv4 and IPv6, as Linux's
//! SOCK_DGRAM/IPPROTO_ICMP sockets: the stack owns the echo identifier, the
//! client sends echo requests and receives the matching replies.

use std::net::IpAddr;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::stack::Stack;

/// A socket's handle; never reused while the stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// An echo reply (or ICMP error concerning one of our requests) waiting to
/// be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReply {
    pub from: IpAddr,
    /// The whole ICMP message, header included.
    pub icmp: Vec<u8>,
    /// TTL or hop limit of the reply.
    pub ttl: u8,
}

#[derive(Debug, Default)]
pub struct SocketTable {}

impl Stack {
    /// Opens an ICMP echo socket (`v6` for ICMPv6).
    pub fn ping_open(&mut self, ctx: &mut impl Ctx, v6: bool) -> Result<SocketId, Error> {
        let _ = (ctx, v6);
        Err(Error::NoBuffers)
    }

    /// Sends an echo request: `icmp` is the whole message (type 8 or 128);
    /// the stack sets the identifier to the socket's and fills the checksum.
    pub fn ping_send(
        &mut self,
        ctx: &mut impl Ctx,
        sock: SocketId,
        dst: IpAddr,
        icmp: &[u8],
    ) -> Result<(), Error> {
        let _ = (ctx, sock, dst, icmp);
        Err(Error::BadSocket)
    }

    /// The next reply waiting on `sock`.
    pub fn ping_recv(&mut self, sock: SocketId) -> Option<PingReply> {
        let _ = sock;
        None
    }

    /// Closes any socket.
    pub fn socket_close(&mut self, sock: SocketId) {
        let _ = sock;
    }

    /// An echo reply for identifier `ident` arrived: hand it to its socket.
    /// Called by ICMPv4 and ICMPv6 input. Returns whether a socket took it.
    pub(crate) fn deliver_echo_reply(
        &mut self,
        ctx: &mut impl Ctx,
        from: IpAddr,
        ident: u16,
        icmp: &[u8],
        ttl: u8,
    ) -> bool {
        let _ = (ctx, from, ident, icmp, ttl);
        false
    }
}
