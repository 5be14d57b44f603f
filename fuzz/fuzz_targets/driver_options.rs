//! The option word after -d driver, and the impairment options.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    iopkt_fuzz_targets::driver_options(data);
});
