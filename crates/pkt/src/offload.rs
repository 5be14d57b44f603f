//! Checksum and segmentation offload: what a packet says about its
//! transport checksum and size, and what an interface says it does about
//! them.
//!
//! The model is Linux's `CHECKSUM_UNNECESSARY` / `CHECKSUM_PARTIAL` and
//! GSO, and FreeBSD's `CSUM_DATA_VALID` / `CSUM_TCP` / `CSUM_TSO`, and the
//! bits are the ones of the module ABI (`IOPKT_PKT_F_*`, `IOPKT_IFCAP_*`;
//! `iopkt-module-abi` checks at compile time that they agree).
//!
//! A packet whose transport checksum is *partial* carries in its checksum
//! field only the folded (not complemented) sum of the pseudo-header; the
//! sum over the bytes from `csum_start` to the end of the packet is still
//! to be added. Whoever takes the packet out of the domain where checksums
//! are skipped completes it ([`crate::PktBuf::finish_checksum`]): the
//! device, the driver, or the stack itself in front of an interface that
//! cannot.

/// `flags`: the transport checksum of a received packet was verified by
/// the device, or the packet never left this host (RFC 1122 section
/// 4.1.3.4 leaves how the checksum is checked to the implementation). The
/// stack does not verify it again.
pub const F_CSUM_VALID: u32 = 1 << 0;
/// `flags`: the transport checksum is partial: the field at
/// `csum_start + csum_offset` holds the folded pseudo-header sum and the
/// sum of `[csum_start, len)` is still to be added. On transmit, the
/// driver (or its device) completes it; on receive, the packet comes from
/// a producer on this host (the kernel behind a TAP device, or our own
/// `lo0`) and is not verified.
pub const F_CSUM_PARTIAL: u32 = 1 << 1;
/// `flags`: one TCP-over-IPv4 segment larger than the MTU, to be cut into
/// segments of `gso_size` payload bytes (TSO on transmit; a coalesced
/// segment on receive).
pub const F_GSO_TCPV4: u32 = 1 << 2;
/// `flags`: as [`F_GSO_TCPV4`], over IPv6.
pub const F_GSO_TCPV6: u32 = 1 << 3;
/// The flags that describe offload state.
pub const F_OFFLOAD_MASK: u32 = F_CSUM_VALID | F_CSUM_PARTIAL | F_GSO_TCPV4 | F_GSO_TCPV6;
/// Either GSO flag.
pub const F_GSO: u32 = F_GSO_TCPV4 | F_GSO_TCPV6;

/// Interface capability: `tx` completes partial transport checksums
/// ([`F_CSUM_PARTIAL`] frames).
pub const CAP_TXCSUM: u32 = 1 << 0;
/// Interface capability: received frames may carry [`F_CSUM_VALID`] or
/// [`F_CSUM_PARTIAL`]; without it the stack ignores those flags.
pub const CAP_RXCSUM: u32 = 1 << 1;
/// Interface capability: `tx` takes [`F_GSO_TCPV4`] frames of up to 64 KiB
/// and cuts them (needs [`CAP_TXCSUM`]).
pub const CAP_TSO4: u32 = 1 << 2;
/// Interface capability: as [`CAP_TSO4`] for [`F_GSO_TCPV6`].
pub const CAP_TSO6: u32 = 1 << 3;
/// Interface capability: received frames may be coalesced TCP segments
/// larger than the MTU, flagged [`F_GSO_TCPV4`] / [`F_GSO_TCPV6`] (large
/// receive offload); without it such frames are dropped.
pub const CAP_LRO: u32 = 1 << 4;
/// Every capability bit known.
pub const CAP_ALL: u32 = CAP_TXCSUM | CAP_RXCSUM | CAP_TSO4 | CAP_TSO6 | CAP_LRO;

/// The names `ifconfig` shows for capability bits (as BSD's
/// `options=<TXCSUM,RXCSUM,TSO4>`), in bit order.
pub const CAP_NAMES: [(u32, &str); 5] = [
    (CAP_TXCSUM, "TXCSUM"),
    (CAP_RXCSUM, "RXCSUM"),
    (CAP_TSO4, "TSO4"),
    (CAP_TSO6, "TSO6"),
    (CAP_LRO, "LRO"),
];

/// `caps` as a comma-separated list of names ("" for none).
pub fn cap_names(caps: u32) -> String {
    CAP_NAMES
        .iter()
        .filter(|(b, _)| caps & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// Largest frame a GSO packet may be: an IP datagram of 65535 bytes plus
/// the Ethernet header and one VLAN tag.
pub const MAX_GSO_FRAME: usize = 65_535 + 18;
