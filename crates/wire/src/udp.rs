//! The UDP header (RFC 768): source port, destination port, length (header
//! included) and checksum over a pseudo-header, the header and the data.

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const HEADER_LEN: usize = 8;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct UdpHdr {
    pub src_port: U16,
    pub dst_port: U16,
    /// Header and data, in bytes (at least 8).
    pub len: U16,
    /// Zero over IPv4 means "not computed" (RFC 768); a computed zero is
    /// sent as 0xffff.
    pub checksum: U16,
}

impl UdpHdr {
    /// A view of the header at the front of `b`, if `b` is long enough.
    pub fn parse(b: &[u8]) -> Option<&UdpHdr> {
        UdpHdr::ref_from_prefix(b).ok().map(|(h, _)| h)
    }

    pub fn new(src_port: u16, dst_port: u16, len: u16) -> UdpHdr {
        UdpHdr {
            src_port: U16::new(src_port),
            dst_port: U16::new(dst_port),
            len: U16::new(len),
            checksum: U16::new(0),
        }
    }

    pub fn src_port(&self) -> u16 {
        self.src_port.get()
    }
    pub fn dst_port(&self) -> u16 {
        self.dst_port.get()
    }
    pub fn length(&self) -> usize {
        self.len.get() as usize
    }
    pub fn checksum(&self) -> u16 {
        self.checksum.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_network_order_and_short_input_is_refused() {
        let h = UdpHdr::new(0x1234, 53, 12);
        assert_eq!(h.as_bytes(), &[0x12, 0x34, 0, 53, 0, 12, 0, 0]);
        let p = UdpHdr::parse(&[0, 7, 0, 9, 0, 8, 0xab, 0xcd, 1]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.length()), (7, 9, 8));
        assert_eq!(p.checksum(), 0xabcd);
        assert!(UdpHdr::parse(&[0; 7]).is_none());
    }
}
