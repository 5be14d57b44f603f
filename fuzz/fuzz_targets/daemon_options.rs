//! The io-pkt command line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::daemon_options(data);
});
