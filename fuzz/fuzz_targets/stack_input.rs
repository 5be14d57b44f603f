//! Frames from the wire into a configured stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::stack_input(data);
});
