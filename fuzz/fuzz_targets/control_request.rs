//! A client's bytes as the resource manager frames and decodes them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::control_request(data);
});
