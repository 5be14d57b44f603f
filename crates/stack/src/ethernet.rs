//! Ethernet: demultiplexing received frames by EtherType, and framing output.

use iopkt_pkt::PktBuf;
use iopkt_wire::Mac;
use iopkt_wire::ethernet::{self, EthHdr, ethertype};

use crate::ctx::Ctx;
use crate::iface::{IfIndex, IfKind};
use crate::stack::Stack;

/// What layer 2 learned about a received frame, for the layers above.
#[derive(Debug, Clone, Copy)]
pub struct L2Info {
    pub src: Mac,
    pub dst: Mac,
    /// Sent to a broadcast or multicast MAC: some replies are not allowed
    /// (RFC 1122 section 3.2.2: no ICMP errors for link-layer broadcasts).
    pub multicast: bool,
}

impl Stack {
    pub(crate) fn eth_input(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, mut frame: PktBuf) {
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        iface.stats.rx_packets += 1;
        iface.stats.rx_bytes += frame.len() as u64;
        if !iface.is_running() {
            iface.stats.rx_drops += 1;
            return;
        }
        let Some(h) = EthHdr::parse(frame.data()) else {
            iface.stats.rx_errors += 1;
            return;
        };
        let (dst, src, ty) = (h.dst(), h.src(), h.ethertype());
        let loopback = iface.kind == IfKind::Loopback;
        if !loopback {
            // Our own frames come back on shared segments (multicast UDP);
            // frames for other stations reach us on hubs and bridges.
            if src == iface.mac || (dst != iface.mac && !dst.is_multicast()) {
                iface.stats.rx_drops += 1;
                return;
            }
        }
        if dst.is_multicast() {
            iface.stats.rx_multicast += 1;
        }
        frame.advance(ethernet::HEADER_LEN);
        let l2 = L2Info {
            src,
            dst,
            multicast: dst.is_multicast(),
        };
        match ty {
            ethertype::ARP => self.arp_input(ctx, ifindex, frame),
            ethertype::IPV4 => self.ipv4_input(ctx, ifindex, frame, l2),
            ethertype::IPV6 => self.ipv6_input(ctx, ifindex, frame, l2),
            _ => {
                if let Some(i) = self.iface_mut(ifindex) {
                    i.stats.rx_drops += 1;
                }
            }
        }
    }

    /// Frames `pkt` (the payload of EtherType `ty`) for `dst` and sends it out
    /// of `ifindex`. The header goes into the buffer's headroom; short frames
    /// are padded to the Ethernet minimum.
    pub(crate) fn eth_output(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        dst: Mac,
        ty: u16,
        mut pkt: PktBuf,
    ) {
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        if !iface.is_running() {
            iface.stats.tx_drops += 1;
            return;
        }
        let src = iface.mac;
        let loopback = iface.kind == IfKind::Loopback;
        let Some(hdr) = pkt.prepend(ethernet::HEADER_LEN) else {
            iface.stats.tx_errors += 1;
            return;
        };
        EthHdr::write(hdr, dst, src, ty);
        if pkt.len() < ethernet::MIN_FRAME && !loopback {
            let pad = ethernet::MIN_FRAME - pkt.len();
            match pkt.try_append(pad) {
                Some(p) => p.fill(0),
                None => {
                    iface.stats.tx_errors += 1;
                    return;
                }
            }
        }
        if loopback {
            self.loopback_enqueue(pkt);
            return;
        }
        iface.stats.tx_packets += 1;
        iface.stats.tx_bytes += pkt.len() as u64;
        if dst.is_multicast() {
            // counted as sent; multicast reception is counted on input
        }
        ctx.transmit(ifindex, pkt);
    }
}
