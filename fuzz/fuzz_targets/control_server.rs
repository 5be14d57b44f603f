//! A client's requests carried out on an in-memory stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::control_server(data);
});
