//! Sequence-number arithmetic (RFC 9293 section 3.4): sequence numbers
//! live modulo 2^32, so comparisons look at the signed distance.

/// `a < b` in sequence space.
pub fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
pub fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// `a > b` in sequence space.
pub fn gt(a: u32, b: u32) -> bool {
    lt(b, a)
}

/// `a >= b` in sequence space.
pub fn ge(a: u32, b: u32) -> bool {
    le(b, a)
}

/// `lo <= x < hi` in sequence space.
pub fn in_range(x: u32, lo: u32, hi: u32) -> bool {
    le(lo, x) && lt(x, hi)
}

/// The later of two sequence numbers.
pub fn max(a: u32, b: u32) -> u32 {
    if gt(a, b) { a } else { b }
}

pub fn min(a: u32, b: u32) -> u32 {
    if lt(a, b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(lt(u32::MAX, 0));
        assert!(gt(5, u32::MAX - 5));
        assert!(le(7, 7) && ge(7, 7));
        assert!(in_range(1, u32::MAX - 1, 3));
        assert!(!in_range(3, u32::MAX - 1, 3));
        assert_eq!(max(1, u32::MAX), 1);
    }
}
