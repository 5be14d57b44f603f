//! Send and receive buffers, both bounded.
//!
//! The send buffer holds bytes from the oldest unacknowledged one on; the
//! receive buffer holds in-order bytes the application has not read, plus
//! out-of-order segments waiting for the hole before them to fill
//! (RFC 9293 section 3.10.7.4, "seventh"). Receive positions are stream
//! offsets (u64), so reassembly never deals with sequence wrap.

use std::collections::{BTreeMap, VecDeque};

use super::ring::ByteRing;

/// Bytes a client may queue for sending when a connection starts
/// (net.inet.tcp.sendspace).
pub const DEFAULT_SEND_BUF: usize = 256 * 1024;
/// Bytes of receive buffer a connection starts with
/// (net.inet.tcp.recvspace).
pub const DEFAULT_RECV_BUF: usize = 128 * 1024;
/// How far auto-tuning grows a receive buffer by default: 6 MiB, Linux's
/// tcp_rmem[2] (net.inet.tcp.recvbuf_max).
pub const DEFAULT_RECV_BUF_MAX: usize = 6 * 1024 * 1024;
/// How far auto-tuning grows a send buffer by default: 4 MiB, Linux's
/// tcp_wmem[2] (net.inet.tcp.sendbuf_max).
pub const DEFAULT_SEND_BUF_MAX: usize = 4 * 1024 * 1024;
/// Bytes all TCP buffers of a stack may hold together, by default
/// (net.inet.tcp.mem_max).
pub const DEFAULT_MEM_MAX: u64 = 512 * 1024 * 1024;
/// Limits on SO_SNDBUF / SO_RCVBUF and the buffer sysctls.
pub const MIN_BUF: usize = 2048;
pub const MAX_BUF: usize = 16 * 1024 * 1024;
/// Out-of-order pieces held at most, whatever their size: a peer sending
/// tiny scattered segments must not make every ACK walk a huge map.
pub const MAX_OOO_PIECES: usize = 512;

#[derive(Debug)]
pub struct SendBuf {
    data: ByteRing,
    pub cap: usize,
}

impl SendBuf {
    pub fn new(cap: usize) -> SendBuf {
        SendBuf {
            data: ByteRing::default(),
            cap,
        }
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn space(&self) -> usize {
        self.cap.saturating_sub(self.data.len())
    }
    /// Queues as much of `b` as fits; returns how much.
    pub fn push(&mut self, b: &[u8]) -> usize {
        let n = b.len().min(self.space());
        self.data.extend_from_slice(&b[..n]);
        n
    }
    /// Appends up to `max` bytes that `fill` writes in place: it gets the
    /// new room as two slices (the ring's tail may wrap; the second may be
    /// empty) and returns how many bytes it wrote from the start of the
    /// first; the rest of the room stays free. A caller reading from a
    /// descriptor reads straight into the buffer this way, with no copy
    /// through a buffer of its own.
    pub fn fill_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> usize,
    ) -> usize {
        let n = max.min(self.space());
        self.data.fill_with(n, fill)
    }
    /// Drops `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.data.consume(n);
    }
    /// Copies `len` bytes from `off` into `out` (zeros past the end of
    /// the data). A ring buffer's contents are two slices; copying them
    /// whole lets the copy run at memcpy speed, which matters: building
    /// segments is where a bulk sender spends its time.
    pub fn copy_out(&self, off: usize, len: usize, out: &mut [u8]) {
        let len = len.min(out.len());
        let out = &mut out[..len];
        let (a, b) = self.data.as_slices();
        let mut done = 0;
        if off < a.len() {
            let n = (a.len() - off).min(len);
            out[..n].copy_from_slice(&a[off..off + n]);
            done = n;
        }
        let b_off = (off + done).saturating_sub(a.len());
        if b_off < b.len() {
            let n = (b.len() - b_off).min(len - done);
            out[done..done + n].copy_from_slice(&b[b_off..b_off + n]);
            done += n;
        }
        out[done..].fill(0);
    }
}

#[derive(Debug)]
pub struct RecvBuf {
    data: VecDeque<u8>,
    pub cap: usize,
    /// Stream offset of the next in-order byte.
    next: u64,
    /// Out-of-order segments by stream offset; total bytes bounded by `cap`.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Stream offset of the latest out-of-order arrival: its block is
    /// reported first (RFC 2018 section 4).
    ooo_latest: u64,
}

impl RecvBuf {
    pub fn new(cap: usize) -> RecvBuf {
        RecvBuf {
            data: VecDeque::new(),
            cap,
            next: 0,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            ooo_latest: 0,
        }
    }
    /// In-order bytes waiting to be read.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Room left for in-order data: what the window may offer.
    pub fn space(&self) -> usize {
        self.cap.saturating_sub(self.data.len())
    }
    pub fn has_gaps(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Bytes held: readable ones and out-of-order ones.
    pub fn held(&self) -> usize {
        self.data.len() + self.ooo_bytes
    }

    /// Data at `delta` bytes past the next expected byte (0: in order).
    /// Returns how many bytes became readable in order. Data beyond the
    /// buffer's room is cut (the window said not to send it).
    pub fn insert(&mut self, delta: u64, bytes: &[u8]) -> usize {
        self.insert_within(delta, bytes, self.space())
    }

    /// As [`RecvBuf::insert`], with data past `room` bytes beyond the next
    /// expected byte cut: the room the window promised may differ from
    /// the buffer's own (a window offered before the buffer was made
    /// smaller, or a window held back under memory pressure).
    pub fn insert_within(&mut self, delta: u64, mut bytes: &[u8], room: usize) -> usize {
        let room = room as u64;
        if delta >= room {
            return 0;
        }
        bytes = &bytes[..bytes.len().min((room - delta) as usize)];
        if bytes.is_empty() {
            return 0;
        }
        let off = self.next + delta;
        if delta > 0 {
            self.ooo_latest = off;
            self.insert_ooo(off, bytes);
            return 0;
        }
        let before = self.data.len();
        self.data.extend(bytes);
        self.next += bytes.len() as u64;
        // Pull in whatever the new bytes made contiguous.
        while let Some((&o, _)) = self.ooo.first_key_value() {
            if o > self.next {
                break;
            }
            let Some((o, seg)) = self.ooo.pop_first() else {
                break;
            };
            self.ooo_bytes -= seg.len();
            let end = o + seg.len() as u64;
            if end > self.next {
                let skip = (self.next - o) as usize;
                self.data.extend(&seg[skip..]);
                self.next = end;
            }
        }
        self.data.len() - before
    }

    fn insert_ooo(&mut self, off: u64, bytes: &[u8]) {
        if self.ooo.len() >= MAX_OOO_PIECES {
            return;
        }
        // Keep only what no stored segment covers: trim against the
        // neighbour before, then split around those after.
        let mut start = off;
        let end = off + bytes.len() as u64;
        if let Some((&o, s)) = self.ooo.range(..=start).next_back() {
            start = start.max(o + s.len() as u64);
        }
        while start < end {
            let next = self
                .ooo
                .range(start..)
                .next()
                .map(|(&o, s)| (o, o + s.len() as u64));
            let stop = next.map_or(end, |(o, _)| o.min(end));
            if stop > start && self.ooo.len() < MAX_OOO_PIECES {
                let piece = &bytes[(start - off) as usize..(stop - off) as usize];
                self.ooo_bytes += piece.len();
                self.ooo.insert(start, piece.to_vec());
            }
            match next {
                Some((_, e)) if e > start => start = e.max(stop),
                _ => break,
            }
        }
    }

    /// `n` in-order bytes went past the buffer (to a receive sink) while
    /// it held nothing: the next expected byte moves on.
    pub fn passed(&mut self, n: usize) {
        debug_assert!(self.data.is_empty() && self.ooo.is_empty());
        self.next += n as u64;
    }

    /// Copies up to `out.len()` readable bytes; `take` removes them.
    pub fn read(&mut self, out: &mut [u8], take: bool) -> usize {
        let n = out.len().min(self.data.len());
        // The ring's two slices, copied whole (see SendBuf::copy_out).
        let (a, b) = self.data.as_slices();
        let na = n.min(a.len());
        out[..na].copy_from_slice(&a[..na]);
        out[na..n].copy_from_slice(&b[..n - na]);
        if take {
            self.data.drain(..n);
        }
        n
    }

    /// Offers up to `max` readable bytes to `drain` as two slices (the
    /// ring's two halves, in order; the second may be empty); the bytes it
    /// says it took (a count from the start) are removed. A caller writing
    /// to a descriptor writes straight from the buffer this way.
    pub fn drain_with(&mut self, max: usize, drain: impl FnOnce(&[u8], &[u8]) -> usize) -> usize {
        let n = max.min(self.data.len());
        let (a, b) = self.data.as_slices();
        let na = n.min(a.len());
        let took = drain(&a[..na], &b[..n - na]).min(n);
        self.data.drain(..took);
        took
    }

    /// Up to `max` out-of-order ranges as (offset from the next in-order
    /// byte, length): the one holding the latest arrival first, then the
    /// others in order (RFC 2018 section 4).
    pub fn ooo_ranges(&self, max: usize) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        for (&o, s) in &self.ooo {
            let rel = o - self.next;
            match v.last_mut() {
                Some(last) if last.0 + last.1 == rel => last.1 += s.len() as u64,
                _ => v.push((rel, s.len() as u64)),
            }
        }
        let latest = self.ooo_latest.saturating_sub(self.next);
        if let Some(i) = v.iter().position(|(o, l)| (*o..o + l).contains(&latest)) {
            let r = v.remove(i);
            v.insert(0, r);
        }
        v.truncate(max);
        v
    }

    pub fn ooo_bytes(&self) -> usize {
        self.ooo_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_out_of_order_and_overlapping() {
        let mut r = RecvBuf::new(100);
        assert_eq!(r.insert(5, b"fghij"), 0);
        assert_eq!(r.insert(3, b"defgh"), 0);
        assert_eq!(r.insert(12, b"mn"), 0);
        // The latest arrival's block comes first.
        assert_eq!(r.ooo_ranges(4), vec![(12, 2), (3, 7)]);
        assert_eq!(r.ooo_ranges(1), vec![(12, 2)]);
        assert_eq!(r.insert(0, b"abc"), 10);
        let mut out = [0u8; 20];
        assert_eq!(r.read(&mut out, true), 10);
        assert_eq!(&out[..10], b"abcdefghij");
        assert_eq!(r.insert(0, b"kl"), 4);
        assert_eq!(r.read(&mut out, false), 4);
        assert_eq!(&out[..4], b"klmn");
        assert_eq!(r.ooo_bytes(), 0);
    }

    #[test]
    fn fill_in_place_across_the_ring_wrap_keeps_order() {
        let mut sb = SendBuf::new(16);
        assert_eq!(sb.push(b"0123456789"), 10);
        sb.consume(8);
        // 2 bytes held near the end of the ring; new room wraps.
        let wrote = sb.fill_with(100, |a, b| {
            let room = a.len() + b.len();
            assert_eq!(room, 14, "room is what the capacity leaves");
            let src = b"abcdefghij";
            let na = a.len().min(src.len());
            a[..na].copy_from_slice(&src[..na]);
            b[..src.len() - na].copy_from_slice(&src[na..]);
            src.len()
        });
        assert_eq!(wrote, 10);
        assert_eq!(sb.len(), 12);
        let mut out = [0u8; 12];
        sb.copy_out(0, 12, &mut out);
        assert_eq!(&out, b"89abcdefghij");
        // A fill that writes less gives the rest of the room back; a fill
        // claiming more than it was offered counts only the room.
        assert_eq!(sb.fill_with(3, |_, _| 1), 1);
        assert_eq!(sb.len(), 13);
        assert_eq!(sb.fill_with(2, |_, _| 99), 2);
        assert_eq!(sb.len(), 15);
        assert_eq!(sb.fill_with(8, |a, b| a.len() + b.len()), 1);
        assert_eq!(sb.fill_with(8, |_, _| panic!("no room, no call")), 0);
    }

    #[test]
    fn drain_in_place_takes_only_what_was_taken() {
        let mut r = RecvBuf::new(64);
        assert_eq!(r.insert(0, b"hello world"), 11);
        let took = r.drain_with(5, |a, b| {
            assert_eq!(a.len() + b.len(), 5);
            assert_eq!(a, b"hello");
            3
        });
        assert_eq!(took, 3);
        let mut out = [0u8; 16];
        assert_eq!(r.read(&mut out, false), 8);
        assert_eq!(&out[..8], b"lo world");
        assert_eq!(r.drain_with(100, |_, _| 1000), 8);
        assert!(r.is_empty());
    }

    #[test]
    fn out_of_order_pieces_are_bounded() {
        let mut r = RecvBuf::new(1 << 20);
        for i in 0..2000u64 {
            r.insert(1 + 2 * i, b"x");
        }
        assert_eq!(r.ooo_bytes(), MAX_OOO_PIECES);
        assert_eq!(r.insert(0, b"y"), 2);
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut r = RecvBuf::new(10);
        assert_eq!(r.insert(0, &[1; 8]), 8);
        assert_eq!(r.insert(0, &[2; 8]), 2);
        assert_eq!(r.insert(0, &[3; 8]), 0);
        assert_eq!(r.len(), 10);
        let mut s = SendBuf::new(4);
        assert_eq!(s.push(b"abcdef"), 4);
        s.consume(1);
        let mut o = [0u8; 3];
        s.copy_out(0, 3, &mut o);
        assert_eq!(&o, b"bcd");
    }

    #[test]
    fn copies_across_the_ring_wrap_match_a_plain_model() {
        // Push and consume in uneven steps so the ring's contents wrap
        // and come back as two slices; every read must equal the model.
        let mut s = SendBuf::new(1000);
        let mut r = RecvBuf::new(1000);
        let mut model: Vec<u8> = Vec::new();
        let mut rmodel: Vec<u8> = Vec::new();
        let mut next = 0u8;
        for round in 0..200usize {
            let chunk: Vec<u8> = (0..(round * 37) % 700)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            let n = s.push(&chunk);
            model.extend_from_slice(&chunk[..n]);
            let n = r.insert(0, &chunk);
            rmodel.extend_from_slice(&chunk[..n]);
            for off in [0, 1, model.len() / 3, model.len().saturating_sub(5)] {
                let len = (model.len() - off.min(model.len())).min(300) + 4;
                let mut out = vec![0xAA; len];
                s.copy_out(off, len, &mut out);
                let mut want: Vec<u8> = model.iter().skip(off).take(len).copied().collect();
                want.resize(len, 0);
                assert_eq!(out, want, "copy_out round {round} off {off}");
            }
            let take = (round * 53) % 600;
            s.consume(take);
            model.drain(..take.min(model.len()));
            let mut out = vec![0u8; (round * 41) % 650];
            let got = r.read(&mut out, true);
            assert_eq!(&out[..got], &rmodel[..got], "read round {round}");
            rmodel.drain(..got);
        }
    }
}
