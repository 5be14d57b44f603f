//! The Internet checksum (RFC 1071) and the pseudo-headers of RFC 791 / RFC 8200
//! section 8.1.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (not yet folded).
///
/// The bulk of the bytes is summed as native-endian 64-bit words into
/// 128-bit accumulators: each add is an add and an add-with-carry, no
/// carry is folded inside the loop, and four accumulators keep the adds
/// independent of each other. RFC 1071 section 2 (B) and (C): the
/// one's-complement sum does not depend on byte order except for a final
/// swap, and can be folded from any wider accumulator; so the native-endian
/// sum, folded to 16 bits and read as big-endian, is what joins `acc`.
pub fn sum(acc: u64, data: &[u8]) -> u64 {
    let mut lanes = [0u128; 4];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            *lane += u128::from(u64::from_ne_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
    }
    let mut words = blocks.remainder().chunks_exact(4);
    let mut native: u128 = lanes.iter().sum();
    for w in &mut words {
        native += u128::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    // A packet has far fewer than 2^64 words, so no accumulator overflowed;
    // fold the 128 bits to 64 with the end-around carry.
    let (low, carry) = (native as u64).overflowing_add((native >> 64) as u64);
    // After an overflow `low` is at most 2^64 - 2, so this cannot wrap.
    let native = low + u64::from(carry);
    let rest = words.remainder();
    let mut acc = acc + u64::from(u16::from_be(fold16(native)));
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

/// Folds a sum to 16 bits with end-around carries (RFC 1071 section
/// 4.1); a non-zero sum never folds to zero.
fn fold16(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Folds a running sum into 16 bits and complements it.
pub fn finish(acc: u64) -> u16 {
    !fold16(acc)
}

/// The checksum of `data` alone (IPv4 header, ICMPv4).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Running sum of the IPv4 pseudo-header.
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc + proto as u64 + len as u64
}

/// Running sum of the IPv6 pseudo-header.
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, len: u32) -> u64 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc + next as u64 + len as u64
}

/// RFC 1624 incremental update: the new checksum after a 16-bit field changed
/// from `old` to `new` (forwarding's TTL decrement, NAT rewrites).
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = (!check as u64) + (!old as u64 & 0xffff) + new as u64;
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: big-endian 16-bit words, one at a time.
    fn reference(acc: u64, data: &[u8]) -> u64 {
        let mut acc = acc;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            acc += hi + pair.get(1).map_or(0, |&b| u64::from(b));
        }
        acc
    }

    proptest::proptest! {
        #[test]
        fn matches_the_plain_definition(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2100),
            acc in 0u64..(1 << 40),
        ) {
            proptest::prop_assert_eq!(finish(sum(acc, &data)), finish(reference(acc, &data)));
        }
    }

    #[test]
    fn all_ones_and_all_zeros_fold_as_the_definition_says() {
        for len in [0usize, 1, 2, 3, 31, 32, 33, 64, 1500, 9000, 65_535] {
            let ones = vec![0xffu8; len];
            let zeros = vec![0u8; len];
            assert_eq!(
                finish(sum(0, &ones)),
                finish(reference(0, &ones)),
                "ones {len}"
            );
            assert_eq!(finish(sum(0, &zeros)), 0xffff, "zeros {len}");
            assert_eq!(
                finish(sum(7, &zeros)),
                finish(reference(7, &zeros)),
                "zeros {len}"
            );
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_lengths_and_verification() {
        let mut data = vec![
            0x45u8, 0, 0, 0x1d, 1, 2, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 7,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn incremental_matches_full() {
        let mut h = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let inc = update16(c, old, new);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&h));
    }
}
