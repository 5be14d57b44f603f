//! Initial sequence numbers (RFC 6528): ISN = M + F(4-tuple, secret), with
//! M a clock ticking every 4 microseconds and F SipHash-2-4 keyed by a
//! secret drawn when the stack starts, so an off-path attacker cannot guess
//! the ISN of another connection.

use std::net::SocketAddr;

use crate::time::Instant;

/// SipHash-2-4 (Aumasson and Bernstein) of `data` under key (k0, k1).
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let compress = |m: u64, v: &mut [u64; 4]| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        compress(u64::from_le_bytes(w), &mut v);
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    compress(u64::from_le_bytes(last), &mut v);
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The secret key of the ISN function.
#[derive(Debug, Clone, Copy)]
pub struct IsnKey(pub u64, pub u64);

impl IsnKey {
    /// The ISN for a connection from `local` to `remote` at `now`.
    pub fn isn(&self, local: SocketAddr, remote: SocketAddr, now: Instant) -> u32 {
        let mut b = Vec::with_capacity(36);
        for a in [local, remote] {
            match a.ip() {
                std::net::IpAddr::V4(x) => b.extend_from_slice(&x.octets()),
                std::net::IpAddr::V6(x) => b.extend_from_slice(&x.octets()),
            }
            b.extend_from_slice(&a.port().to_be_bytes());
        }
        let f = siphash24(self.0, self.1, &b) as u32;
        // RFC 6528 section 3: M is a 4-microsecond timer.
        let m = (now.as_nanos() / 4000) as u32;
        m.wrapping_add(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_reference_vectors() {
        // From the SipHash paper, appendix A: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &m), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn isns_differ_by_tuple_and_advance_with_time() {
        let k = IsnKey(1, 2);
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let c: SocketAddr = "10.0.0.2:81".parse().unwrap();
        let t = Instant::from_millis(5);
        assert_ne!(k.isn(a, b, t), k.isn(a, c, t));
        let later = k.isn(a, b, Instant::from_millis(6));
        assert_eq!(later.wrapping_sub(k.isn(a, b, t)), 250);
    }
}
