//! The virtio-net header of TAP frames, and the frame into a stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::virtio_net_hdr(data);
});
