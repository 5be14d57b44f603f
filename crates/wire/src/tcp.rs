//! The TCP header (RFC 9293 section 3.1) and its options: MSS (RFC 9293
//! 3.2), window scale and timestamps (RFC 7323), SACK-permitted and SACK
//! blocks (RFC 2018).
//!
//! Option parsing walks the option bytes with bounds checks only: a
//! malformed option list ends the walk (what was parsed so far stands), as
//! RFC 9293 section 3.1 asks ("be prepared to handle an illegal option
//! length ... without crashing").

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const MIN_HEADER_LEN: usize = 20;
/// Longest header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// Option kinds (IANA).
pub mod opt {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// Largest window shift (RFC 7323 section 2.3).
pub const MAX_WSCALE: u8 = 14;
/// SACK blocks that fit one header at most.
pub const MAX_SACK_BLOCKS: usize = 4;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct TcpHdr {
    pub src_port: U16,
    pub dst_port: U16,
    pub seq: U32,
    pub ack: U32,
    /// Data offset (high 4 bits) and reserved bits.
    pub off_rsvd: u8,
    pub flags: u8,
    pub window: U16,
    pub checksum: U16,
    pub urgent: U16,
}

impl TcpHdr {
    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.off_rsvd >> 4) * 4
    }

    /// The header at the front of `seg` and its option bytes, if the data
    /// offset is sane and fits the segment.
    pub fn parse(seg: &[u8]) -> Option<(&TcpHdr, &[u8])> {
        let (h, _) = TcpHdr::ref_from_prefix(seg).ok()?;
        let hl = h.header_len();
        if hl < MIN_HEADER_LEN || hl > seg.len() {
            return None;
        }
        Some((h, seg.get(MIN_HEADER_LEN..hl)?))
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The options of one segment that the stack understands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks as (left edge, right edge).
    pub sack: [(u32, u32); MAX_SACK_BLOCKS],
    pub sack_len: usize,
}

impl TcpOptions {
    /// Parses option bytes. Unknown options are skipped by their length;
    /// options of the wrong length are ignored; a length that runs past
    /// the end (or below 2) stops the walk.
    pub fn parse(mut b: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::default();
        while let Some((&kind, rest)) = b.split_first() {
            match kind {
                opt::END => break,
                opt::NOP => {
                    b = rest;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = rest.first() else { break };
            let len = usize::from(len);
            if len < 2 || len > b.len() {
                break;
            }
            let body = &b[2..len];
            match (kind, body.len()) {
                (opt::MSS, 2) => o.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                // RFC 7323 section 2.3: a shift above 14 is used as 14.
                (opt::WSCALE, 1) => o.wscale = Some(body[0].min(MAX_WSCALE)),
                (opt::SACK_PERMITTED, 0) => o.sack_permitted = true,
                (opt::TIMESTAMP, 8) => {
                    let v = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    let e = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                    o.timestamp = Some((v, e));
                }
                (opt::SACK, n) if n % 8 == 0 => {
                    // A header may (wrongly) carry several SACK options:
                    // keep the first blocks that fit.
                    for blk in body.chunks_exact(8) {
                        let Some(slot) = o.sack.get_mut(o.sack_len) else {
                            break;
                        };
                        let l = u32::from_be_bytes([blk[0], blk[1], blk[2], blk[3]]);
                        let r = u32::from_be_bytes([blk[4], blk[5], blk[6], blk[7]]);
                        *slot = (l, r);
                        o.sack_len += 1;
                    }
                }
                _ => {}
            }
            b = &b[len..];
        }
        o
    }

    /// The SACK blocks received.
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        &self.sack[..self.sack_len.min(MAX_SACK_BLOCKS)]
    }

    /// Encodes the options, NOP-padded to a multiple of 4 bytes, keeping
    /// to the 40 bytes a header has room for (SACK blocks are cut first).
    /// The result lives on the stack: every segment sent encodes its
    /// options, and a heap allocation each time would be a good part of
    /// the cost of building one.
    pub fn encode(&self) -> EncodedOptions {
        let mut v = EncodedOptions {
            buf: [0; MAX_OPTIONS_LEN],
            len: 0,
        };
        if let Some(m) = self.mss {
            v.put(&[opt::MSS, 4]);
            v.put(&m.to_be_bytes());
        }
        if let Some(s) = self.wscale {
            v.put(&[opt::NOP, opt::WSCALE, 3, s.min(MAX_WSCALE)]);
        }
        if self.sack_permitted {
            v.put(&[opt::NOP, opt::NOP, opt::SACK_PERMITTED, 2]);
        }
        if let Some((val, ecr)) = self.timestamp {
            v.put(&[opt::NOP, opt::NOP, opt::TIMESTAMP, 10]);
            v.put(&val.to_be_bytes());
            v.put(&ecr.to_be_bytes());
        }
        let room = (MAX_OPTIONS_LEN - v.len).saturating_sub(4) / 8;
        let n = self.sack_blocks().len().min(room);
        if n > 0 {
            v.put(&[opt::NOP, opt::NOP, opt::SACK, 2 + 8 * n as u8]);
            for (l, r) in &self.sack_blocks()[..n] {
                v.put(&l.to_be_bytes());
                v.put(&r.to_be_bytes());
            }
        }
        while !v.len.is_multiple_of(4) {
            v.put(&[opt::NOP]);
        }
        v
    }
}

/// Room for options in a TCP header (60 bytes at most, 20 fixed).
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - MIN_HEADER_LEN;

/// Encoded TCP options ([`TcpOptions::encode`]); reads as a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct EncodedOptions {
    buf: [u8; MAX_OPTIONS_LEN],
    len: usize,
}

impl EncodedOptions {
    /// Appends `b`; what would not fit the 40 bytes is left out (the
    /// encoder never asks for more: fixed options take 20 bytes at most
    /// and SACK blocks are counted against the room left).
    fn put(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(MAX_OPTIONS_LEN);
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }
}

impl std::ops::Deref for EncodedOptions {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let mut o = TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamp: Some((1, 2)),
            ..TcpOptions::default()
        };
        let e = o.encode();
        assert_eq!(e.len() % 4, 0);
        assert_eq!(TcpOptions::parse(&e), o);
        o = TcpOptions {
            timestamp: Some((5, 6)),
            ..TcpOptions::default()
        };
        o.sack[0] = (10, 20);
        o.sack[1] = (30, 40);
        o.sack[2] = (50, 60);
        o.sack_len = 3;
        let e = o.encode();
        assert!(e.len() <= 40);
        assert_eq!(TcpOptions::parse(&e), o);
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        // MSS, then a zero length, then garbage.
        let b = [2, 4, 5, 0xb4, 8, 0, 1, 1];
        let o = TcpOptions::parse(&b);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.timestamp, None);
        // A length past the end.
        assert_eq!(TcpOptions::parse(&[2, 40, 1]), TcpOptions::default());
        // Wrong-length MSS is ignored; a shift of 20 is taken as 14.
        let o = TcpOptions::parse(&[2, 3, 9, 3, 3, 20]);
        assert_eq!(o.mss, None);
        assert_eq!(o.wscale, Some(14));
        for n in 0..=255u8 {
            let _ = TcpOptions::parse(&[5, n, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        // Two SACK options of three blocks each: four blocks kept.
        let mut two = Vec::new();
        for _ in 0..2 {
            two.extend_from_slice(&[5, 26]);
            two.extend((0..24).map(|i| i as u8));
        }
        let o = TcpOptions::parse(&two);
        assert_eq!(o.sack_blocks().len(), MAX_SACK_BLOCKS);
    }

    #[test]
    fn header_checks_the_data_offset() {
        let mut h = [0u8; 24];
        h[12] = 6 << 4;
        let (hdr, opts) = TcpHdr::parse(&h).unwrap();
        assert_eq!(hdr.header_len(), 24);
        assert_eq!(opts.len(), 4);
        h[12] = 7 << 4;
        assert!(TcpHdr::parse(&h).is_none());
        h[12] = 4 << 4;
        assert!(TcpHdr::parse(&h).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let o = TcpOptions::parse(&b);
            proptest::prop_assert!(o.sack_blocks().len() <= MAX_SACK_BLOCKS);
            proptest::prop_assert!(o.encode().len() <= 40);
            let _ = TcpHdr::parse(&b);
        }
    }
}
