//! The io-pkt command line and module option words.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = io_pkt::options::Options::parse(s.split(' ').map(String::from));
    let _ = io_pkt::options::split_options(&s);
});
