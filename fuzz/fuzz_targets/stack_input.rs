//! Frames from the wire into a configured stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_sim::fuzz::stack_input(data);
});
