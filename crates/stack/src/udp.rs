//! UDP (RFC 768) sockets.
//!
//! STUB: to be completed; every call reports `NotSupported` until then.

use std::net::SocketAddr;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::socket::SocketId;
use crate::stack::Stack;
use crate::transport::{Readiness, RecvInfo, SockOpt, SockOptName, SocketInfo};

/// A UDP socket's state.
#[derive(Debug, Default)]
pub struct UdpSocket {}

fn todo() -> Error {
    Error::NotSupported("UDP".into())
}

impl Stack {
    pub(crate) fn udp_open(&mut self, ctx: &mut impl Ctx, v6: bool) -> Result<SocketId, Error> {
        let _ = (ctx, v6);
        Err(todo())
    }
    pub(crate) fn udp_bind(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        local: SocketAddr,
    ) -> Result<(), Error> {
        let _ = (ctx, id, local);
        Err(todo())
    }
    pub(crate) fn udp_connect(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        remote: SocketAddr,
    ) -> Result<(), Error> {
        let _ = (ctx, id, remote);
        Err(todo())
    }
    pub(crate) fn udp_send(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        data: &[u8],
        dst: Option<SocketAddr>,
    ) -> Result<usize, Error> {
        let _ = (ctx, id, data, dst);
        Err(todo())
    }
    pub(crate) fn udp_recv(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<RecvInfo, Error> {
        let _ = (ctx, id, buf, peek);
        Err(todo())
    }
    pub(crate) fn udp_shutdown(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        read: bool,
        write: bool,
    ) -> Result<(), Error> {
        let _ = (ctx, id, read, write);
        Err(todo())
    }
    pub(crate) fn udp_setopt(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        opt: SockOpt,
    ) -> Result<(), Error> {
        let _ = (ctx, id, opt);
        Err(todo())
    }
    pub(crate) fn udp_getopt(&self, id: SocketId, name: SockOptName) -> Result<SockOpt, Error> {
        let _ = (id, name);
        Err(todo())
    }
    pub(crate) fn udp_readiness(&self, id: SocketId) -> Readiness {
        let _ = id;
        Readiness::default()
    }
    pub(crate) fn udp_take_error(&mut self, id: SocketId) -> Option<Error> {
        let _ = id;
        None
    }
    pub(crate) fn udp_local(&self, id: SocketId) -> Option<SocketAddr> {
        let _ = id;
        None
    }
    pub(crate) fn udp_peer(&self, id: SocketId) -> Option<SocketAddr> {
        let _ = id;
        None
    }
    pub(crate) fn udp_info(&self, id: SocketId) -> Option<SocketInfo> {
        let _ = id;
        None
    }
    /// A segment for us arrived (`pkt` starts with the IP header).
    pub(crate) fn udp_input(
        &mut self,
        ctx: &mut impl Ctx,
        pkt: iopkt_pkt::PktBuf,
        rx: crate::transport::L4Rx,
    ) {
        let _ = (ctx, pkt, rx);
    }

    /// Closes a UDP socket (called by `socket_close`).
    pub(crate) fn udp_close(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let _ = (ctx, id);
    }
}
