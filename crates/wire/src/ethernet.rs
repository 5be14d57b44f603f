//! Ethernet II framing (IEEE 802.3, DIX).

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::Mac;

pub const HEADER_LEN: usize = 14;
/// Smallest frame on the wire without the FCS; shorter frames are padded.
pub const MIN_FRAME: usize = 60;

pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const QNET: u16 = 0x8204;
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: U16,
}

impl EthHdr {
    pub fn dst(&self) -> Mac {
        Mac(self.dst)
    }
    pub fn src(&self) -> Mac {
        Mac(self.src)
    }
    pub fn ethertype(&self) -> u16 {
        self.ethertype.get()
    }

    /// The header at the front of `frame`, if the frame is long enough.
    pub fn parse(frame: &[u8]) -> Option<&EthHdr> {
        EthHdr::ref_from_prefix(frame).ok().map(|(h, _)| h)
    }

    /// Writes a header into the first 14 bytes of `out`.
    pub fn write(out: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
        let h = EthHdr {
            dst: dst.0,
            src: src.0,
            ethertype: U16::new(ethertype),
        };
        out[..HEADER_LEN].copy_from_slice(h.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut b = [0u8; 20];
        EthHdr::write(
            &mut b,
            Mac::BROADCAST,
            Mac([2, 0, 0, 0, 0, 1]),
            ethertype::ARP,
        );
        let h = EthHdr::parse(&b).unwrap();
        assert_eq!(h.dst(), Mac::BROADCAST);
        assert_eq!(h.ethertype(), 0x0806);
        assert!(EthHdr::parse(&b[..13]).is_none());
    }
}
