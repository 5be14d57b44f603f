//! Fragment sequences into the IPv4/IPv6 reassembler.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::reassembly(data);
});
