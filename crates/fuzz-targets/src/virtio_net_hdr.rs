//! The virtio-net header a TAP device puts in front of every frame it
//! hands over (`iopkt_module_abi::virtio_net`): outside data that decides
//! whether the stack verifies a checksum and how large a frame it takes.
//! Whatever the header says, nothing may panic, the offload state given
//! to the packet must lie inside the frame, and the stack must take the
//! frame (or drop it) cleanly.

use std::time::Duration;

use iopkt_module_abi::virtio_net::{self, HDR_LEN, VnetHdr};
use iopkt_module_abi::{IOPKT_PKT_F_CSUM_PARTIAL, IOPKT_PKT_F_GSO_TCPV4, IOPKT_PKT_F_GSO_TCPV6};
use iopkt_pkt::PktBuf;
use iopkt_pkt::offload::{CAP_ALL, F_CSUM_VALID, F_GSO};
use iopkt_sim::fuzz::fuzz_network;

/// Fuzz input: the 10-byte header, one byte whose low bit says whether
/// the driver asked for coalesced segments, then the frame.
pub fn virtio_net_hdr(data: &[u8]) {
    let Some((hdr, rest)) = data.split_first_chunk::<HDR_LEN>() else {
        return;
    };
    let Some((&mode, frame)) = rest.split_first() else {
        return;
    };
    let accept_gso = mode & 1 != 0;
    let h = VnetHdr::parse(hdr);
    assert_eq!(VnetHdr::parse(&h.to_bytes()), h, "header round trip");
    let o = virtio_net::rx_offload(&h, frame.len(), accept_gso);
    if o.flags & IOPKT_PKT_F_CSUM_PARTIAL != 0 {
        let field = usize::from(o.csum_start) + usize::from(o.csum_offset) + 2;
        assert!(field <= frame.len(), "checksum field past the frame: {o:?}");
        assert!(o.csum_start >= 14, "checksum inside the MAC header: {o:?}");
    }
    let gso = o.flags & (IOPKT_PKT_F_GSO_TCPV4 | IOPKT_PKT_F_GSO_TCPV6);
    if gso != 0 {
        assert!(accept_gso && o.gso_size > 0, "GSO not asked for: {o:?}");
        assert!(frame.len() <= virtio_net::MAX_GSO_FRAME);
    }

    // The packet as the driver hands it over.
    let mut p = PktBuf::from_slice(frame);
    p.set_flags(o.flags & F_CSUM_VALID);
    if o.flags & IOPKT_PKT_F_CSUM_PARTIAL != 0 {
        p.set_csum_partial(o.csum_start, o.csum_offset);
    }
    if gso != 0 {
        p.set_gso(gso & F_GSO, o.gso_size);
    }
    // Completing its checksum in software, as the stack does for an
    // interface that cannot, stays inside the frame.
    let mut copy = p.duplicate();
    copy.finish_checksum();
    assert_eq!(copy.len(), frame.len());
    // And writing a header for it back, as on transmit.
    let back = virtio_net::tx_header(p.flags(), p.csum_partial(), o.gso_size, p.data());
    assert!(usize::from(back.hdr_len) <= frame.len() || back.gso_type == 0);

    // Into a stack whose interface takes every offload.
    let (mut sim, a, ia) = fuzz_network();
    sim.with(a, |s, _| {
        let _ = s.set_offloads(ia, CAP_ALL);
    });
    sim.with(a, |s, c| s.input(c, ia, [p]));
    sim.run_for(Duration::from_secs(1));
}
