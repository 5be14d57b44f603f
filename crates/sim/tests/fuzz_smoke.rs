//! Runs the stack-input fuzz entry point over generated inputs, so the fuzz
//! harness itself is known to work in every test run.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        iopkt_sim::fuzz::stack_input(&data);
    }

    /// Frames that start as valid Ethernet + IPv4/IPv6 headers addressed to
    /// the target, so the fuzz reaches past the first checks.
    #[test]
    fn plausible_frames_never_panic(
        v6 in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut f = vec![0x02, 0, 0, 0, 0, 0, 0x02, 0, 0, 1, 0, 1];
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(body.len() as u16).to_be_bytes());
            f.extend_from_slice(&[body.first().copied().unwrap_or(58), 64]);
            f.extend_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
            f.extend_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&(20 + body.len() as u16).to_be_bytes());
            f.extend_from_slice(&[0, 1, 0, 0, 64, body.first().copied().unwrap_or(1), 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        }
        f.extend_from_slice(&body);
        let mut data = vec![(f.len().div_ceil(8)).min(255) as u8];
        data.extend_from_slice(&f);
        iopkt_sim::fuzz::stack_input(&data);
    }
}
