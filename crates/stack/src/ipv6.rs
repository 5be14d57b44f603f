//! IPv6 (RFC 8200): input with extension headers, local delivery,
//! forwarding, output with source selection (RFC 6724), fragmentation and
//! reassembly.
//!
//! STUB: to be completed.

use std::net::Ipv6Addr;

use iopkt_pkt::PktBuf;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::Error;
use crate::ethernet::L2Info;
use crate::iface::IfIndex;
use crate::stack::Stack;
use crate::time::Instant;

/// IPv6 state of the stack beyond interfaces and routes.
pub struct Ipv6State {}

impl Ipv6State {
    pub fn new(config: &Config) -> Ipv6State {
        let _ = config;
        Ipv6State {}
    }
}

impl Stack {
    pub(crate) fn ipv6_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        pkt: PktBuf,
        l2: L2Info,
    ) {
        let _ = (ctx, ifindex, pkt, l2);
    }

    /// Sends `payload` (the upper-layer header and data, in a buffer with
    /// headroom) to `dst` with next header `next`. The source is `src` or, if
    /// `None`, chosen by RFC 6724. The upper-layer checksum must already be
    /// filled in (see [`Stack::ipv6_select_source`]).
    #[allow(clippy::too_many_arguments)]
    pub fn ipv6_send(
        &mut self,
        ctx: &mut impl Ctx,
        src: Option<Ipv6Addr>,
        dst: Ipv6Addr,
        next: u8,
        payload: PktBuf,
        hop_limit: Option<u8>,
    ) -> Result<(), Error> {
        let _ = (ctx, src, dst, next, payload, hop_limit);
        Err(Error::NetUnreachable)
    }

    /// The source address the stack would use to reach `dst` (RFC 6724).
    pub fn ipv6_select_source(&self, dst: &Ipv6Addr) -> Option<Ipv6Addr> {
        let _ = dst;
        None
    }

    pub(crate) fn ipv6_if_up(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let _ = (ctx, ifindex);
    }

    pub(crate) fn ipv6_if_down(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let _ = (ctx, ifindex);
    }

    /// An address was configured: start duplicate address detection.
    pub(crate) fn ipv6_addr_added(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv6Addr) {
        let _ = (ctx, ifindex, addr);
    }

    /// Timers: ND, DAD, router solicitation, address lifetimes, reassembly.
    pub(crate) fn ipv6_poll(&mut self, ctx: &mut impl Ctx) {
        let _ = ctx;
    }

    pub(crate) fn ipv6_next_deadline(&self) -> Option<Instant> {
        None
    }
}
