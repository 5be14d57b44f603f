//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.2 section
//! 5.1.6) that a Linux TAP device opened with `IFF_VNET_HDR` puts in front
//! of every frame, both ways: what the checksum of the frame is and
//! whether it is a TCP segment to cut (GSO).
//!
//! On receive the header comes from outside the process (the kernel), so
//! [`rx_offload`] checks it against the frame and turns it into the
//! packet's offload state (`IOPKT_PKT_F_*` and the fields of `iopkt_pkt`)
//! only when it makes sense; anything else leaves the frame unflagged, for
//! the stack to verify and, above the MTU, drop. [`tx_header`] writes the
//! header for a frame the stack sends.
//!
//! The fields are little-endian: the TAP device uses the host's order
//! (virtio 1.0 "legacy" rules) unless told otherwise with TUNSETVNETBE,
//! and every Linux target this runs on is little-endian.

use crate::abi::{
    IOPKT_PKT_F_CSUM_PARTIAL, IOPKT_PKT_F_CSUM_VALID, IOPKT_PKT_F_GSO_TCPV4, IOPKT_PKT_F_GSO_TCPV6,
};

/// Bytes of `struct virtio_net_hdr` (without `num_buffers`).
pub const HDR_LEN: usize = 10;

/// `flags`: the checksum is partial, from `csum_start` at `csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;

/// `gso_type` values.
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
/// `gso_type` bit: the segments carry ECN's CWR on the first only.
pub const GSO_ECN: u8 = 0x80;

/// Largest frame a GSO header may describe: a 65535-byte IP datagram with
/// the Ethernet header and a VLAN tag.
pub const MAX_GSO_FRAME: usize = 65_535 + 18;

/// Smallest Ethernet + IP + TCP headers: a checksum cannot start before
/// the Ethernet header ends, nor a GSO segment be cut from less.
const ETH_LEN: usize = 14;

/// The header's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8; HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    pub fn to_bytes(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// The offload state a received frame gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxOffload {
    /// `IOPKT_PKT_F_*` bits.
    pub flags: u32,
    pub csum_start: u16,
    pub csum_offset: u16,
    pub gso_size: u16,
}

/// What the header `hdr` says about the `frame_len`-byte frame after it,
/// as far as it holds: a partial checksum whose field lies inside the
/// frame, past the Ethernet header; a verified checksum; a TCP GSO frame
/// with a segment size, no larger than [`MAX_GSO_FRAME`] (and only with
/// `accept_gso`: the device was told it may send them). UDP fragmentation
/// offload and unknown types are never asked for and never flagged.
pub fn rx_offload(hdr: &VnetHdr, frame_len: usize, accept_gso: bool) -> RxOffload {
    let mut out = RxOffload::default();
    if hdr.flags & F_NEEDS_CSUM != 0 {
        let start = usize::from(hdr.csum_start);
        let field = start + usize::from(hdr.csum_offset);
        if start >= ETH_LEN && field + 2 <= frame_len {
            out.flags |= IOPKT_PKT_F_CSUM_PARTIAL;
            out.csum_start = hdr.csum_start;
            out.csum_offset = hdr.csum_offset;
        }
    } else if hdr.flags & F_DATA_VALID != 0 {
        out.flags |= IOPKT_PKT_F_CSUM_VALID;
    }
    let gso = match hdr.gso_type & !GSO_ECN {
        GSO_TCPV4 => IOPKT_PKT_F_GSO_TCPV4,
        GSO_TCPV6 => IOPKT_PKT_F_GSO_TCPV6,
        _ => 0,
    };
    if gso != 0 && accept_gso && hdr.gso_size > 0 && frame_len <= MAX_GSO_FRAME {
        out.flags |= gso;
        out.gso_size = hdr.gso_size;
    }
    out
}

/// The header for a frame the stack sends with offload state `flags`
/// (`IOPKT_PKT_F_*`), `csum` (`(csum_start, csum_offset)` of a partial
/// checksum) and `gso_size`. `hdr_len` (the bytes of headers in front of
/// the payload, a hint the kernel checks against the frame) is the end of
/// the TCP header for a GSO frame, read from the frame's TCP data offset.
pub fn tx_header(flags: u32, csum: Option<(u16, u16)>, gso_size: u16, frame: &[u8]) -> VnetHdr {
    let mut h = VnetHdr::default();
    if let Some((start, offset)) = csum {
        h.flags = F_NEEDS_CSUM;
        h.csum_start = start;
        h.csum_offset = offset;
    }
    let gso = if flags & IOPKT_PKT_F_GSO_TCPV4 != 0 {
        GSO_TCPV4
    } else if flags & IOPKT_PKT_F_GSO_TCPV6 != 0 {
        GSO_TCPV6
    } else {
        GSO_NONE
    };
    // GSO needs the partial checksum: each cut segment gets its own.
    if gso != GSO_NONE
        && gso_size > 0
        && let Some((start, _)) = csum
    {
        let tcp = usize::from(start);
        let data_off = frame.get(tcp + 12).map_or(20, |b| usize::from(b >> 4) * 4);
        let end = (tcp + data_off).min(frame.len());
        h.gso_type = gso;
        h.gso_size = gso_size;
        h.hdr_len = u16::try_from(end).unwrap_or(u16::MAX);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_little_endian() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(&b[4..6], &1448u16.to_le_bytes());
        assert_eq!(VnetHdr::parse(&b), h);
    }

    #[test]
    fn partial_checksums_must_lie_inside_the_frame() {
        let mut h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        let r = rx_offload(&h, 54, false);
        assert_eq!(r.flags, IOPKT_PKT_F_CSUM_PARTIAL);
        assert_eq!((r.csum_start, r.csum_offset), (34, 16));
        assert_eq!(rx_offload(&h, 51, false).flags, 0, "field past the end");
        h.csum_start = 4;
        h.csum_offset = 2;
        assert_eq!(rx_offload(&h, 60, false).flags, 0, "inside the MAC header");
        h.csum_start = u16::MAX;
        h.csum_offset = u16::MAX;
        assert_eq!(rx_offload(&h, 60, false).flags, 0);
        let v = VnetHdr {
            flags: F_DATA_VALID,
            ..Default::default()
        };
        assert_eq!(rx_offload(&v, 60, false).flags, IOPKT_PKT_F_CSUM_VALID);
    }

    #[test]
    fn gso_needs_a_size_a_tcp_type_and_consent() {
        let mut h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            gso_size: 1440,
            csum_start: 54,
            csum_offset: 16,
            hdr_len: 74,
        };
        let r = rx_offload(&h, 30_000, true);
        assert_eq!(
            r.flags,
            IOPKT_PKT_F_CSUM_PARTIAL | IOPKT_PKT_F_GSO_TCPV6,
            "{r:?}"
        );
        assert_eq!(r.gso_size, 1440);
        assert_eq!(
            rx_offload(&h, 30_000, false).flags & IOPKT_PKT_F_GSO_TCPV6,
            0
        );
        assert_eq!(rx_offload(&h, MAX_GSO_FRAME + 1, true).gso_size, 0);
        h.gso_size = 0;
        assert_eq!(rx_offload(&h, 30_000, true).gso_size, 0);
        h.gso_size = 1000;
        h.gso_type = GSO_UDP;
        assert_eq!(rx_offload(&h, 30_000, true).gso_size, 0);
    }

    #[test]
    fn tx_header_describes_the_frame() {
        let mut frame = vec![0u8; 14 + 20 + 32 + 5000];
        frame[14 + 20 + 12] = 8 << 4;
        let h = tx_header(
            IOPKT_PKT_F_CSUM_PARTIAL | IOPKT_PKT_F_GSO_TCPV4,
            Some((34, 16)),
            1448,
            &frame,
        );
        assert_eq!(h.flags, F_NEEDS_CSUM);
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len), (GSO_TCPV4, 1448, 66));
        assert_eq!((h.csum_start, h.csum_offset), (34, 16));
        let plain = tx_header(0, None, 0, &frame);
        assert_eq!(plain, VnetHdr::default());
    }
}
