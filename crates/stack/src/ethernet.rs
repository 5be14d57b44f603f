//! Ethernet: demultiplexing received frames by EtherType, and framing output.

use iopkt_pkt::PktBuf;
use iopkt_pkt::offload::{
    CAP_LRO, CAP_RXCSUM, CAP_TSO4, CAP_TSO6, CAP_TXCSUM, F_CSUM_PARTIAL, F_CSUM_VALID, F_GSO,
    F_GSO_TCPV4, F_GSO_TCPV6, MAX_GSO_FRAME,
};
use iopkt_wire::Mac;
use iopkt_wire::ethernet::{self, EthHdr, ethertype};

use crate::ctx::Ctx;
use crate::iface::{IfIndex, IfKind};
use crate::stack::Stack;

/// Bytes of link header a frame may carry beyond the MTU: the Ethernet
/// header and one 802.1Q tag.
pub const LINK_OVERHEAD: usize = 18;

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
        // What a frame says about its checksum and size counts only from a
        // driver that declared it may say so; anything else a buffer
        // carries is left over from an earlier owner.
        let caps = iface.offloads;
        let mut flags = frame.flags();
        if caps & CAP_RXCSUM == 0 {
            flags &= !(F_CSUM_VALID | F_CSUM_PARTIAL);
        }
        if caps & CAP_LRO == 0 {
            flags &= !F_GSO;
        }
        if flags != frame.flags() {
            frame.set_flags(flags);
        }
        // A frame above the MTU is a giant (counted as an error) unless it
        // is a coalesced TCP segment of the right family from a driver that
        // coalesces; the stack takes that as one large segment.
        if !loopback && frame.len() > iface.mtu as usize + LINK_OVERHEAD {
            let gso_ok = frame.len() <= MAX_GSO_FRAME
                && match flags & F_GSO {
                    F_GSO_TCPV4 => ty == ethertype::IPV4,
                    F_GSO_TCPV6 => ty == ethertype::IPV6,
                    _ => false,
                };
            if !gso_ok {
                iface.stats.rx_errors += 1;
                return;
            }
        }
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
        let caps = iface.offloads;
        if let Some(tso) = pkt.gso_size().map(|_| pkt.flags() & F_GSO) {
            let can = match tso {
                F_GSO_TCPV4 => caps & CAP_TSO4 != 0,
                F_GSO_TCPV6 => caps & CAP_TSO6 != 0,
                _ => false,
            };
            if !can {
                // The frame leaves the segmentation domain here: cut it
                // as the device would have.
                let Some(segs) = crate::gso::segment(&self.pool, &pkt) else {
                    if let Some(i) = self.iface_mut(ifindex) {
                        i.stats.tx_errors += 1;
                    }
                    return;
                };
                for s in segs {
                    self.eth_transmit(ctx, ifindex, caps, s);
                }
                return;
            }
        }
        self.eth_transmit(ctx, ifindex, caps, pkt);
    }

    /// Hands a complete frame to the driver of `ifindex`, whose offload
    /// capabilities are `caps`: a partial checksum is completed here when
    /// the driver cannot (the frame leaves the domain where checksums are
    /// skipped), and the driver sees offload flags only if it declared
    /// them.
    fn eth_transmit(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, caps: u32, mut pkt: PktBuf) {
        if caps & CAP_TXCSUM == 0 {
            pkt.finish_checksum();
            pkt.clear_offload();
        } else if pkt.flags() & F_CSUM_VALID != 0 {
            // A receive-side flag (a forwarded frame) means nothing on the
            // way out.
            pkt.set_flags(pkt.flags() & !F_CSUM_VALID);
        }
        if let Some(iface) = self.iface_mut(ifindex) {
            iface.stats.tx_packets += 1;
            iface.stats.tx_bytes += pkt.len() as u64;
        }
        ctx.transmit(ifindex, pkt);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use iopkt_pkt::{PktBuf, Pool};
    use iopkt_wire::checksum;

    use super::*;
    use crate::config::Config;
    use crate::time::Instant;
    use crate::transport::SockType;

    struct Quiet;

    impl Ctx for Quiet {
        fn now(&self) -> Instant {
            Instant::ZERO
        }
        fn random_u64(&mut self) -> u64 {
            7
        }
        fn transmit(&mut self, _: IfIndex, _: PktBuf) {}
    }

    #[test]
    fn frames_on_lo0_carry_only_the_pseudo_header_sum_and_still_arrive() {
        let mut ctx = Quiet;
        let mut s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let at = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);
        let rx = s.socket_open(&mut ctx, false, SockType::Datagram).unwrap();
        s.socket_bind(&mut ctx, rx, at).unwrap();
        let tx = s.socket_open(&mut ctx, false, SockType::Datagram).unwrap();
        let payload = [0x5au8; 1000];
        s.socket_send(&mut ctx, tx, &payload, Some(at)).unwrap();
        let f = s.loopback.front().expect("a frame waits on lo0");
        let (start, offset) = f.csum_partial().expect("left partial on lo0");
        assert_eq!((start, offset), (14 + 20, 6));
        let d = f.data();
        let udp = &d[34..];
        let field = u16::from_be_bytes([udp[6], udp[7]]);
        let pseudo = checksum::pseudo_v4(
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            iopkt_wire::ipproto::UDP,
            udp.len() as u16,
        );
        assert_eq!(field, !checksum::finish(pseudo), "only the pseudo-header");
        // The IP header checksum is still right: 20 bytes cost nothing and
        // keep the header valid for anything that reads it.
        assert_eq!(checksum::checksum(&d[14..34]), 0);
        s.run_loopback(&mut ctx);
        let mut buf = [0u8; 2000];
        let got = s.socket_recv(&mut ctx, rx, &mut buf, false).unwrap();
        assert_eq!(&buf[..got.len], &payload[..]);
        assert_eq!(s.udp.stats.bad_checksum, 0);
    }

    /// Keeps what the stack transmits.
    #[derive(Default)]
    struct Grab(Vec<(IfIndex, PktBuf)>);

    impl Ctx for Grab {
        fn now(&self) -> Instant {
            Instant::ZERO
        }
        fn random_u64(&mut self) -> u64 {
            7
        }
        fn transmit(&mut self, i: IfIndex, f: PktBuf) {
            self.0.push((i, f));
        }
    }

    /// An IPv4 + TCP segment of `payload` bytes from 10.0.0.1 to 10.0.0.2,
    /// its checksum partial, marked for segmentation at `mss`.
    fn gso_segment(payload: usize, mss: u16) -> PktBuf {
        let mut p = PktBuf::with_capacity(64, 40 + payload);
        let b = p.append(40 + payload);
        b[0] = 0x45;
        b[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        b[8] = 64;
        b[9] = iopkt_wire::ipproto::TCP;
        b[12..16].copy_from_slice(&[10, 0, 0, 1]);
        b[16..20].copy_from_slice(&[10, 0, 0, 2]);
        crate::ipv4::fill_header_checksum(b, 20);
        b[32] = 5 << 4;
        b[33] = 0x18;
        for (i, x) in b[40..].iter_mut().enumerate() {
            *x = (i * 7) as u8;
        }
        let pseudo = checksum::pseudo_v4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            iopkt_wire::ipproto::TCP,
            (20 + payload) as u16,
        );
        b[36..38].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
        p.set_csum_partial(20, 16);
        p.set_gso(F_GSO_TCPV4, mss);
        p
    }

    #[test]
    fn a_gso_frame_leaves_whole_only_where_the_interface_segments() {
        let mut ctx = Grab::default();
        let mut s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let en = s
            .add_interface("en0", IfKind::Ethernet, Mac([2, 0, 0, 0, 0, 1]), 1500)
            .unwrap();
        s.set_up(&mut ctx, en, true).unwrap();
        s.set_link(&mut ctx, en, true).unwrap();
        ctx.0.clear();
        let peer = Mac([2, 0, 0, 0, 0, 2]);

        // Without TSO: cut into 1460-byte segments with full checksums.
        s.eth_output(
            &mut ctx,
            en,
            peer,
            ethertype::IPV4,
            gso_segment(10_000, 1460),
        );
        let frames: Vec<PktBuf> = ctx.0.drain(..).map(|(_, f)| f).collect();
        assert_eq!(frames.len(), 7);
        let mut total = 0;
        for f in &frames {
            assert!(f.len() <= 1514);
            assert_eq!(f.flags(), 0, "the driver sees no offload state");
            let d = f.data();
            let seg = &d[34..];
            let pseudo = checksum::pseudo_v4(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                iopkt_wire::ipproto::TCP,
                seg.len() as u16,
            );
            assert_eq!(checksum::finish(checksum::sum(pseudo, seg)), 0);
            total += seg.len() - 20;
        }
        assert_eq!(total, 10_000);

        // With TSO (and TXCSUM): one frame, flagged, checksum partial.
        s.set_offloads(en, CAP_TXCSUM | CAP_TSO4).unwrap();
        s.eth_output(
            &mut ctx,
            en,
            peer,
            ethertype::IPV4,
            gso_segment(10_000, 1460),
        );
        let frames: Vec<PktBuf> = ctx.0.drain(..).map(|(_, f)| f).collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].gso_size(), Some(1460));
        assert_eq!(frames[0].csum_partial(), Some((34, 16)));
        // TSO for the other family only: cut here again.
        s.set_offloads(en, CAP_TXCSUM | CAP_TSO6).unwrap();
        s.eth_output(&mut ctx, en, peer, ethertype::IPV4, gso_segment(3000, 1460));
        assert_eq!(ctx.0.len(), 3);
        assert!(ctx.0.iter().all(|(_, f)| f.gso_size().is_none()));
    }
}
