//! IPv4 (RFC 791, RFC 1122, RFC 1812): input validation, local delivery,
//! forwarding, output with route lookup, fragmentation and reassembly.
//!
//! STUB: to be completed.

use std::net::Ipv4Addr;

use iopkt_pkt::PktBuf;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::Error;
use crate::ethernet::L2Info;
use crate::iface::IfIndex;
use crate::stack::Stack;
use crate::time::Instant;

/// IPv4 state of the stack beyond interfaces and routes.
pub struct Ipv4State {}

impl Ipv4State {
    pub fn new(config: &Config) -> Ipv4State {
        let _ = config;
        Ipv4State {}
    }
}

impl Stack {
    pub(crate) fn ipv4_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        pkt: PktBuf,
        l2: L2Info,
    ) {
        let _ = (ctx, ifindex, pkt, l2);
    }

    /// Sends `payload` (the transport header and data, in a buffer with
    /// headroom for the IP and Ethernet headers) to `dst`. The source is
    /// `src` or, if `None`, chosen from the outgoing interface. Fragments if
    /// needed and allowed (`df == false`).
    #[allow(clippy::too_many_arguments)]
    pub fn ipv4_send(
        &mut self,
        ctx: &mut impl Ctx,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        proto: u8,
        payload: PktBuf,
        ttl: Option<u8>,
        df: bool,
    ) -> Result<(), Error> {
        let _ = (ctx, src, dst, proto, payload, ttl, df);
        Err(Error::NetUnreachable)
    }

    /// The interface came up (admin up and carrier).
    pub(crate) fn ipv4_if_up(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let _ = (ctx, ifindex);
    }

    /// The interface went down.
    pub(crate) fn ipv4_if_down(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let _ = (ctx, ifindex);
    }

    /// An address was configured (announce it: gratuitous ARP).
    pub(crate) fn ipv4_addr_added(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv4Addr) {
        let _ = (ctx, ifindex, addr);
    }

    /// Timers: ARP, reassembly.
    pub(crate) fn ipv4_poll(&mut self, ctx: &mut impl Ctx) {
        let _ = ctx;
    }

    pub(crate) fn ipv4_next_deadline(&self) -> Option<Instant> {
        None
    }
}
