//! ARP (RFC 826): resolving IPv4 next hops to Ethernet addresses.
//!
//! STUB: to be completed (bounded cache per interface, entry timeouts, a
//! bounded queue of packets per unresolved neighbour, request retries).

use std::net::Ipv4Addr;

use iopkt_pkt::PktBuf;

use crate::ctx::Ctx;
use crate::iface::IfIndex;
use crate::neighbor::NeighborInfo;
use crate::stack::Stack;

/// The ARP cache of one interface.
#[derive(Debug, Default)]
pub struct ArpCache {}

impl Stack {
    /// An ARP packet arrived on `ifindex` (Ethernet header removed).
    pub(crate) fn arp_input(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, pkt: PktBuf) {
        let _ = (ctx, ifindex, pkt);
    }

    /// Every ARP entry of every interface (`arp -an`).
    pub fn arp_entries(&self) -> Vec<NeighborInfo> {
        Vec::new()
    }

    /// `arp -d ADDR`: forgets the entry for `addr`; false if there was none.
    pub fn arp_delete(&mut self, addr: Ipv4Addr) -> bool {
        let _ = addr;
        false
    }
}
