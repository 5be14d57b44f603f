//! Wire formats.
//!
//! Each header is a `#[repr(C)]` struct of network-endian, unaligned fields,
//! so a view of it is just a reference into the packet buffer: parsing costs
//! a length check, and editing a field (TTL, a NAT address) writes the buffer
//! in place. Parsers return `None` on anything short or malformed; nothing
//! here panics on outside data.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod mac;
pub mod udp;
pub mod tcp;

pub use mac::Mac;

pub use zerocopy::network_endian::{U16, U32};
pub use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// IP protocol numbers (IANA) the stack knows by name.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
}
