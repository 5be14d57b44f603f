//! The IPv6 header (RFC 8200) and its fragment header.

use std::net::Ipv6Addr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const HEADER_LEN: usize = 40;
/// IPv6 requires every link to carry 1280-byte packets (RFC 8200 section 5).
pub const MIN_MTU: usize = 1280;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct Ipv6Hdr {
    pub ver_tc_flow: U32,
    pub payload_len: U16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl Ipv6Hdr {
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow.get() >> 28) as u8
    }
    pub fn payload_len(&self) -> usize {
        self.payload_len.get() as usize
    }
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src)
    }
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst)
    }

    /// The header at the front of `pkt` if it is version 6 and its payload
    /// length fits the packet.
    pub fn parse_checked(pkt: &[u8]) -> Option<&Ipv6Hdr> {
        let (h, rest) = Ipv6Hdr::ref_from_prefix(pkt).ok()?;
        (h.version() == 6 && h.payload_len() <= rest.len()).then_some(h)
    }

    pub fn new(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next_header: u8,
        hop_limit: u8,
        payload_len: usize,
    ) -> Ipv6Hdr {
        Ipv6Hdr {
            ver_tc_flow: U32::new(6 << 28),
            payload_len: U16::new(payload_len as u16),
            next_header,
            hop_limit,
            src: src.octets(),
            dst: dst.octets(),
        }
    }
}

pub const FRAG_HEADER_LEN: usize = 8;

/// The fragment extension header (RFC 8200 section 4.5).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct FragHdr {
    pub next_header: u8,
    pub reserved: u8,
    /// Offset in 8-byte units in the top 13 bits; M flag in bit 0.
    pub offset_flags: U16,
    pub ident: U32,
}

impl FragHdr {
    pub fn offset(&self) -> usize {
        ((self.offset_flags.get() >> 3) as usize) * 8
    }
    pub fn more(&self) -> bool {
        self.offset_flags.get() & 1 != 0
    }
    pub fn new(next_header: u8, offset: usize, more: bool, ident: u32) -> FragHdr {
        FragHdr {
            next_header,
            reserved: 0,
            offset_flags: U16::new((((offset / 8) as u16) << 3) | more as u16),
            ident: U32::new(ident),
        }
    }
}

/// The generic shape of hop-by-hop, routing and destination options headers:
/// next header and length in 8-octet units not counting the first 8.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct ExtHdr {
    pub next_header: u8,
    pub len: u8,
}

impl ExtHdr {
    pub fn total_len(&self) -> usize {
        (self.len as usize + 1) * 8
    }
}
