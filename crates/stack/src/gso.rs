//! Software segmentation of a GSO frame: one TCP segment larger than the
//! MTU (flagged `F_GSO_TCPV4` / `F_GSO_TCPV6`) cut into segments of
//! `gso_size` payload bytes, for an interface that cannot do it itself.
//!
//! Such frames come from our TCP when the route's interface said it
//! segments (TSO) but the frame ends up elsewhere (a route changed while
//! it waited for ARP), or from a driver with large receive offload when
//! the frame is forwarded. The cut is what a device does (RFC 9293
//! section 3.1 for the fields): every segment gets the headers, its own
//! sequence number, IPv4 identification and lengths; FIN and PSH only on
//! the last, CWR only on the first (RFC 3168 section 6.1.2); each checksum
//! is partial, to be completed as any other.

use iopkt_pkt::offload::{F_GSO, F_GSO_TCPV4, F_GSO_TCPV6};
use iopkt_pkt::{PktBuf, Pool};
use iopkt_wire::checksum;
use iopkt_wire::ethernet::{self, ethertype};
use iopkt_wire::ipproto;

/// Most segments one GSO frame is cut into (64 KiB at the smallest MSS
/// worth a cut).
const MAX_SEGMENTS: usize = 1024;

/// TCP flags that belong to the last segment only, and to the first only.
const LAST_ONLY: u8 = 0x01 | 0x08; // FIN, PSH
const FIRST_ONLY: u8 = 0x80; // CWR

/// Cuts `frame` (an Ethernet frame flagged GSO, without VLAN tag) into
/// frames of at most `gso_size` TCP payload bytes each. `None` when the
/// frame is not a TCP segment the flags say it is, or the size is absurd:
/// the caller drops it and counts an error.
pub(crate) fn segment(pool: &Pool, frame: &PktBuf) -> Option<Vec<PktBuf>> {
    let mss = usize::from(frame.gso_size()?);
    let d = frame.data();
    let ty = u16::from_be_bytes([*d.get(12)?, *d.get(13)?]);
    let ip = ethernet::HEADER_LEN;
    let v4 = match (ty, frame.flags() & F_GSO) {
        (ethertype::IPV4, F_GSO_TCPV4) => true,
        (ethertype::IPV6, F_GSO_TCPV6) => false,
        _ => return None,
    };
    let (ip_hl, proto) = if v4 {
        (usize::from(d.get(ip)? & 0x0f) * 4, *d.get(ip + 9)?)
    } else {
        (40, *d.get(ip + 6)?)
    };
    if proto != ipproto::TCP || ip_hl < 20 {
        return None;
    }
    let tcp = ip + ip_hl;
    let tcp_hl = usize::from(d.get(tcp + 12)? >> 4) * 4;
    let hdrs = tcp + tcp_hl;
    if tcp_hl < 20 || hdrs > d.len() || mss == 0 {
        return None;
    }
    let payload = &d[hdrs..];
    if payload.len().div_ceil(mss) > MAX_SEGMENTS {
        return None;
    }
    let seq0 = u32::from_be_bytes(d[tcp + 4..tcp + 8].try_into().ok()?);
    let flags0 = d[tcp + 13];
    let id0 = u16::from_be_bytes([d[ip + 4], d[ip + 5]]);
    let mut out = Vec::with_capacity(payload.len().div_ceil(mss));
    let chunks = payload.chunks(mss);
    let n = chunks.len();
    for (i, chunk) in chunks.enumerate() {
        let len = hdrs + chunk.len();
        let mut p = pool.alloc_for(len);
        let b = p.try_append(len)?;
        b[..hdrs].copy_from_slice(&d[..hdrs]);
        b[hdrs..].copy_from_slice(chunk);
        let l4_len = tcp_hl + chunk.len();
        if v4 {
            let total = (ip_hl + l4_len) as u16;
            b[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
            b[ip + 4..ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            crate::ipv4::fill_header_checksum(&mut b[ip..], ip_hl);
        } else {
            b[ip + 4..ip + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        let seq = seq0.wrapping_add((i * mss) as u32);
        b[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < n {
            flags &= !LAST_ONLY;
        }
        if i > 0 {
            flags &= !FIRST_ONLY;
        }
        b[tcp + 13] = flags;
        let pseudo = if v4 {
            let a = |o: usize| [b[o], b[o + 1], b[o + 2], b[o + 3]];
            checksum::pseudo_v4(
                a(ip + 12).into(),
                a(ip + 16).into(),
                ipproto::TCP,
                l4_len as u16,
            )
        } else {
            let a = |o: usize| -> [u8; 16] { b[o..o + 16].try_into().unwrap_or([0; 16]) };
            checksum::pseudo_v6(
                a(ip + 8).into(),
                a(ip + 24).into(),
                ipproto::TCP,
                l4_len as u32,
            )
        };
        b[tcp + 16..tcp + 18].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
        p.set_csum_partial(tcp as u16, 16);
        out.push(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame with `payload` bytes, flagged GSO.
    fn gso_frame(payload: usize, mss: u16) -> PktBuf {
        let mut p = PktBuf::with_capacity(64, 14 + 20 + 20 + payload);
        let b = p.append(14 + 20 + 20 + payload);
        b[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let ip = &mut b[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&7u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = ipproto::TCP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let t = &mut b[34..54];
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0x10 | 0x08 | 0x80 | 0x01;
        for (i, x) in b[54..].iter_mut().enumerate() {
            *x = i as u8;
        }
        p.set_gso(F_GSO_TCPV4, mss);
        p
    }

    #[test]
    fn cuts_into_mss_segments_with_their_own_fields() {
        let pool = Pool::standard();
        let f = gso_frame(3000, 1400);
        let segs = segment(&pool, &f).expect("segments");
        assert_eq!(segs.len(), 3);
        let mut next_byte = 0u8;
        for (i, mut s) in segs.into_iter().enumerate() {
            assert!(s.finish_checksum());
            let d = s.data();
            let len = if i < 2 { 1400 } else { 200 };
            assert_eq!(d.len(), 54 + len);
            assert_eq!(u16::from_be_bytes([d[16], d[17]]) as usize, 40 + len);
            assert_eq!(u16::from_be_bytes([d[18], d[19]]), 7 + i as u16);
            assert_eq!(checksum::checksum(&d[14..34]), 0, "IP header checksum");
            let seq = u32::from_be_bytes(d[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + (i * 1400) as u32);
            let flags = d[47];
            assert_eq!(flags & 0x01 != 0, i == 2, "FIN on the last only");
            assert_eq!(flags & 0x08 != 0, i == 2, "PSH on the last only");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            let pseudo = checksum::pseudo_v4(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                ipproto::TCP,
                (20 + len) as u16,
            );
            assert_eq!(checksum::finish(checksum::sum(pseudo, &d[34..])), 0);
            assert_eq!(d[54], next_byte);
            next_byte = next_byte.wrapping_add((len % 256) as u8);
        }
    }

    #[test]
    fn refuses_what_the_flags_do_not_describe() {
        let pool = Pool::standard();
        let mut f = gso_frame(3000, 1400);
        f.set_gso(F_GSO_TCPV6, 1400);
        assert!(segment(&pool, &f).is_none());
        let mut f = gso_frame(3000, 0);
        f.set_gso(F_GSO_TCPV4, 0);
        assert!(segment(&pool, &f).is_none());
        let mut f = gso_frame(3000, 1);
        f.set_gso(F_GSO_TCPV4, 1);
        assert!(segment(&pool, &f).is_none(), "too many segments");
        let f = PktBuf::from_slice(&[0u8; 20]);
        assert!(segment(&pool, &f).is_none());
    }
}
