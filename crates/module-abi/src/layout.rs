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
    // The C header promises this layout on every 64-bit Linux target.
    #[cfg(target_pointer_width = "64")]
    assert!(size_of::<iopkt_pkt>() == 40);
};
