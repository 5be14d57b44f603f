//! Compile-time proof that `iopkt_pkt` (what modules see) and
//! `iopkt_pkt::RawPkt` (what the host's buffers are) have one layout, so a
//! pointer to either may be used as the other.

use core::mem::{align_of, offset_of, size_of};

use ::iopkt_pkt::RawPkt;

use crate::abi::iopkt_pkt;

const _: () = {
    assert!(size_of::<iopkt_pkt>() == size_of::<RawPkt>());
    assert!(align_of::<iopkt_pkt>() == align_of::<RawPkt>());
    assert!(offset_of!(iopkt_pkt, buf) == offset_of!(RawPkt, buf));
    assert!(offset_of!(iopkt_pkt, cap) == offset_of!(RawPkt, cap));
    assert!(offset_of!(iopkt_pkt, off) == offset_of!(RawPkt, off));
    assert!(offset_of!(iopkt_pkt, len) == offset_of!(RawPkt, len));
    assert!(offset_of!(iopkt_pkt, flags) == offset_of!(RawPkt, flags));
    assert!(offset_of!(iopkt_pkt, user) == offset_of!(RawPkt, user));
    assert!(offset_of!(iopkt_pkt, pool) == offset_of!(RawPkt, pool));
    assert!(offset_of!(iopkt_pkt, csum_start) == offset_of!(RawPkt, csum_start));
    assert!(offset_of!(iopkt_pkt, csum_offset) == offset_of!(RawPkt, csum_offset));
    assert!(offset_of!(iopkt_pkt, gso_size) == offset_of!(RawPkt, gso_size));
    assert!(offset_of!(iopkt_pkt, reserved) == offset_of!(RawPkt, reserved));
    // The C header promises this layout on every 64-bit Linux target.
    #[cfg(target_pointer_width = "64")]
    assert!(size_of::<iopkt_pkt>() == 48);
};

/// The ABI's offload bits are the packet crate's, so the host passes flags
/// and capabilities through without translating them.
const _: () = {
    use crate::abi::*;
    use ::iopkt_pkt::offload as o;
    assert!(IOPKT_PKT_F_CSUM_VALID == o::F_CSUM_VALID);
    assert!(IOPKT_PKT_F_CSUM_PARTIAL == o::F_CSUM_PARTIAL);
    assert!(IOPKT_PKT_F_GSO_TCPV4 == o::F_GSO_TCPV4);
    assert!(IOPKT_PKT_F_GSO_TCPV6 == o::F_GSO_TCPV6);
    assert!(IOPKT_IFCAP_TXCSUM == o::CAP_TXCSUM);
    assert!(IOPKT_IFCAP_RXCSUM == o::CAP_RXCSUM);
    assert!(IOPKT_IFCAP_TSO4 == o::CAP_TSO4);
    assert!(IOPKT_IFCAP_TSO6 == o::CAP_TSO6);
    assert!(IOPKT_IFCAP_LRO == o::CAP_LRO);
    assert!(IOPKT_MAX_GSO_FRAME as usize == o::MAX_GSO_FRAME);
    assert!(crate::virtio_net::MAX_GSO_FRAME == o::MAX_GSO_FRAME);
};
