//! Forged TCP segments against a listener and an established connection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::tcp_segments(data);
});
