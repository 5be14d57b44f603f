//! ARP for IPv4 over Ethernet (RFC 826).

use std::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::Mac;

pub const LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct ArpPkt {
    pub htype: U16,
    pub ptype: U16,
    pub hlen: u8,
    pub plen: u8,
    pub op: U16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

impl ArpPkt {
    /// An Ethernet/IPv4 ARP packet at the front of `b`; other hardware or
    /// protocol types give `None`.
    pub fn parse(b: &[u8]) -> Option<&ArpPkt> {
        let (p, _) = ArpPkt::ref_from_prefix(b).ok()?;
        (p.htype.get() == 1 && p.ptype.get() == 0x0800 && p.hlen == 6 && p.plen == 4).then_some(p)
    }

    pub fn new(op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> ArpPkt {
        ArpPkt {
            htype: U16::new(1),
            ptype: U16::new(0x0800),
            hlen: 6,
            plen: 4,
            op: U16::new(op),
            sha: sha.0,
            spa: spa.octets(),
            tha: tha.0,
            tpa: tpa.octets(),
        }
    }

    pub fn op(&self) -> u16 {
        self.op.get()
    }
    pub fn sha(&self) -> Mac {
        Mac(self.sha)
    }
    pub fn spa(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.spa)
    }
    pub fn tha(&self) -> Mac {
        Mac(self.tha)
    }
    pub fn tpa(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.tpa)
    }
}
