//! The common ICMP header shape (RFC 792, RFC 4443): type, code, checksum and
//! four bytes whose meaning depends on the type.

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const HEADER_LEN: usize = 8;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct IcmpHdr {
    pub ty: u8,
    pub code: u8,
    pub checksum: U16,
    /// Identifier and sequence for echo; unused, pointer or MTU otherwise.
    pub rest: [u8; 4],
}

impl IcmpHdr {
    pub fn parse(b: &[u8]) -> Option<&IcmpHdr> {
        IcmpHdr::ref_from_prefix(b).ok().map(|(h, _)| h)
    }
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.rest[0], self.rest[1]])
    }
    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.rest[2], self.rest[3]])
    }
}

/// ICMPv4 types and codes (RFC 792, RFC 1191).
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    pub const UNREACH_NET: u8 = 0;
    pub const UNREACH_HOST: u8 = 1;
    pub const UNREACH_PROTO: u8 = 2;
    pub const UNREACH_PORT: u8 = 3;
    pub const UNREACH_NEEDFRAG: u8 = 4;
    pub const EXC_TTL: u8 = 0;
    pub const EXC_REASSEMBLY: u8 = 1;
}

/// ICMPv6 types and codes (RFC 4443, RFC 4861).
pub mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
    pub const MLDV2_REPORT: u8 = 143;
    pub const UNREACH_NOROUTE: u8 = 0;
    pub const UNREACH_ADDR: u8 = 3;
    pub const UNREACH_PORT: u8 = 4;
    pub const EXC_HOPLIMIT: u8 = 0;
    pub const EXC_REASSEMBLY: u8 = 1;
    pub const PARAM_HEADER: u8 = 0;
    pub const PARAM_NEXTHDR: u8 = 1;
}
