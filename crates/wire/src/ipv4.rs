//! The IPv4 header (RFC 791).

use std::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const MIN_HEADER_LEN: usize = 20;
/// Flag bits in the `frag` field.
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const OFFSET_MASK: u16 = 0x1fff;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct Ipv4Hdr {
    pub ver_ihl: u8,
    pub tos: u8,
    pub total_len: U16,
    pub ident: U16,
    pub frag: U16,
    pub ttl: u8,
    pub proto: u8,
    pub checksum: U16,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Hdr {
    pub fn version(&self) -> u8 {
        self.ver_ihl >> 4
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        ((self.ver_ihl & 0x0f) as usize) * 4
    }
    pub fn total_len(&self) -> usize {
        self.total_len.get() as usize
    }
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src)
    }
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst)
    }
    pub fn dont_fragment(&self) -> bool {
        self.frag.get() & FLAG_DF != 0
    }
    pub fn more_fragments(&self) -> bool {
        self.frag.get() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        ((self.frag.get() & OFFSET_MASK) as usize) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }

    /// The header at the front of `pkt` if it passes the checks of RFC 1122
    /// section 3.2.1.1 and RFC 1812 section 5.2.2: version 4, a header length
    /// of at least 20 bytes, a total length that covers the header and fits
    /// the packet, and a correct checksum. Returns the header and the header
    /// length.
    pub fn parse_checked(pkt: &[u8]) -> Option<&Ipv4Hdr> {
        let (h, _) = Ipv4Hdr::ref_from_prefix(pkt).ok()?;
        let hl = h.header_len();
        if h.version() != 4 || hl < MIN_HEADER_LEN || hl > pkt.len() {
            return None;
        }
        let tl = h.total_len();
        if tl < hl || tl > pkt.len() {
            return None;
        }
        if crate::checksum::checksum(&pkt[..hl]) != 0 {
            return None;
        }
        Some(h)
    }

    /// A 20-byte header with no options; the checksum is filled in.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ttl: u8,
        ident: u16,
        frag: u16,
        payload_len: usize,
        tos: u8,
    ) -> Ipv4Hdr {
        let mut h = Ipv4Hdr {
            ver_ihl: 0x45,
            tos,
            total_len: U16::new((MIN_HEADER_LEN + payload_len) as u16),
            ident: U16::new(ident),
            frag: U16::new(frag),
            ttl,
            proto,
            checksum: U16::new(0),
            src: src.octets(),
            dst: dst.octets(),
        };
        h.fill_checksum();
        h
    }

    pub fn fill_checksum(&mut self) {
        self.checksum = U16::new(0);
        let c = crate::checksum::checksum(self.as_bytes());
        self.checksum = U16::new(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_check() {
        let h = Ipv4Hdr::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            1,
            64,
            7,
            FLAG_DF,
            8,
            0,
        );
        let mut pkt = h.as_bytes().to_vec();
        pkt.extend_from_slice(&[0; 8]);
        let p = Ipv4Hdr::parse_checked(&pkt).unwrap();
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.dont_fragment());
        pkt[9] = 6;
        assert!(
            Ipv4Hdr::parse_checked(&pkt).is_none(),
            "bad checksum accepted"
        );
        pkt[9] = 1;
        assert!(
            Ipv4Hdr::parse_checked(&pkt[..27]).is_none(),
            "short packet accepted"
        );
    }
}
