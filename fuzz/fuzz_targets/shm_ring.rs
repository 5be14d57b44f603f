//! io-pkt's side of a shared ring under whatever the application writes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::shm_ring(data);
});
