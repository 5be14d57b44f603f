//! Fragment reassembly, shared by IPv4 (RFC 791 section 3.2) and IPv6
//! (RFC 8200 section 4.5).
//!
//! Memory is bounded: all datagrams under reassembly together hold at most
//! `max_bytes`, and when a new fragment would pass that, the datagrams closest
//! to timing out are dropped first. Overlapping fragments discard the whole
//! datagram (RFC 5722 for IPv6; the same rule for IPv4 closes the
//! overlap-rewrite attacks of RFC 1858); an exact repeat of a fragment already
//! held is ignored, as a duplicate on the wire.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use crate::time::Instant;

/// Largest reassembled payload (the 16-bit length fields of both IP versions).
pub const MAX_DATAGRAM: usize = 65_535;
/// Most datagrams under reassembly at once.
pub const MAX_FLOWS: usize = 1024;

/// What happened to a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Held; the datagram is not whole yet.
    Pending,
    /// The datagram is whole. `first` is what the caller gave with the
    /// offset-0 fragment (its header), `payload` the reassembled data.
    Complete { first: Vec<u8>, payload: Vec<u8> },
    /// The fragment (and perhaps the datagram) was dropped; the reason is
    /// counted in [`ReasmStats`].
    Dropped,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasmStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub overlaps: u64,
    pub malformed: u64,
    pub evicted: u64,
}

struct Flow {
    deadline: Instant,
    frags: BTreeMap<usize, Vec<u8>>,
    total_len: Option<usize>,
    first: Option<Vec<u8>>,
    bytes: usize,
}

pub struct Reassembler<K> {
    flows: HashMap<K, Flow>,
    bytes: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
    pub stats: ReasmStats,
}

impl<K: Hash + Eq + Clone> Reassembler<K> {
    pub fn new(max_bytes: usize, timeout: Duration) -> Self {
        Reassembler {
            flows: HashMap::new(),
            bytes: 0,
            max_bytes,
            timeout,
            stats: ReasmStats::default(),
        }
    }

    /// Adds one fragment: `data` covers `offset .. offset + data.len()` of the
    /// datagram's payload and `more` is the more-fragments flag. `first` is
    /// kept when `offset == 0` and handed back on completion or timeout.
    pub fn insert(
        &mut self,
        now: Instant,
        key: K,
        offset: usize,
        more: bool,
        data: &[u8],
        first: &[u8],
    ) -> Outcome {
        self.stats.fragments += 1;
        let end = offset + data.len();
        // Every fragment but the last carries a multiple of 8 bytes
        // (RFC 8200 section 4.5; implied by RFC 791's 8-byte offsets).
        if end > MAX_DATAGRAM
            || (more && !data.len().is_multiple_of(8))
            || (more && data.is_empty())
        {
            self.stats.malformed += 1;
            self.drop_flow(&key);
            return Outcome::Dropped;
        }
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= MAX_FLOWS {
                self.evict_oldest();
            }
            self.flows.insert(
                key.clone(),
                Flow {
                    deadline: now + self.timeout,
                    frags: BTreeMap::new(),
                    total_len: None,
                    first: None,
                    bytes: 0,
                },
            );
        }
        while self.bytes + data.len() > self.max_bytes {
            if !self.evict_oldest_except(&key) {
                self.stats.evicted += 1;
                self.drop_flow(&key);
                return Outcome::Dropped;
            }
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return Outcome::Dropped;
        };
        // The last fragment fixes the length; it must agree with what we hold.
        let bad_len = match (more, flow.total_len) {
            (false, Some(t)) => t != end,
            (false, None) => flow
                .frags
                .iter()
                .next_back()
                .is_some_and(|(o, d)| o + d.len() > end),
            (true, Some(t)) => end > t,
            (true, None) => false,
        };
        if bad_len {
            self.stats.malformed += 1;
            self.drop_flow(&key);
            return Outcome::Dropped;
        }
        // Exact repeat: ignore. Any other overlap: drop the datagram.
        if flow
            .frags
            .get(&offset)
            .is_some_and(|d| d.len() == data.len())
        {
            return Outcome::Pending;
        }
        let before = flow.frags.range(..offset).next_back();
        let after = flow.frags.range(offset..).next();
        let overlaps = before.is_some_and(|(o, d)| o + d.len() > offset)
            || after.is_some_and(|(o, _)| *o < end);
        if overlaps {
            self.stats.overlaps += 1;
            self.drop_flow(&key);
            return Outcome::Dropped;
        }
        if !more {
            flow.total_len = Some(end);
        }
        if offset == 0 {
            flow.first = Some(first.to_vec());
        }
        flow.frags.insert(offset, data.to_vec());
        flow.bytes += data.len();
        self.bytes += data.len();

        // Whole when the pieces run from 0 to the known end without a gap.
        let Some(total) = flow.total_len else {
            return Outcome::Pending;
        };
        let mut next = 0;
        for (o, d) in &flow.frags {
            if *o != next {
                return Outcome::Pending;
            }
            next = o + d.len();
        }
        if next != total {
            return Outcome::Pending;
        }
        let Some(flow) = self.flows.remove(&key) else {
            return Outcome::Dropped;
        };
        self.bytes -= flow.bytes;
        let mut payload = Vec::with_capacity(total);
        for d in flow.frags.into_values() {
            payload.extend_from_slice(&d);
        }
        self.stats.reassembled += 1;
        Outcome::Complete {
            first: flow.first.unwrap_or_default(),
            payload,
        }
    }

    /// Drops datagrams whose time ran out; returns the `first` data of those
    /// that had their offset-0 fragment (only those may be answered with an
    /// ICMP time-exceeded, RFC 792 / RFC 8200 section 4.5), with the
    /// first fragment's payload bytes.
    pub fn expire(&mut self, now: Instant) -> Vec<(Vec<u8>, Vec<u8>)> {
        let dead: Vec<K> = self
            .flows
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in dead {
            if let Some(f) = self.flows.remove(&k) {
                self.bytes -= f.bytes;
                self.stats.timeouts += 1;
                if let (Some(first), Some(d0)) = (f.first, f.frags.get(&0)) {
                    out.push((first, d0.clone()));
                }
            }
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.flows.values().map(|f| f.deadline).min()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn pending(&self) -> usize {
        self.flows.len()
    }

    fn drop_flow(&mut self, key: &K) {
        if let Some(f) = self.flows.remove(key) {
            self.bytes -= f.bytes;
        }
    }

    fn evict_oldest(&mut self) -> bool {
        self.evict_oldest_but(None)
    }

    fn evict_oldest_except(&mut self, keep: &K) -> bool {
        self.evict_oldest_but(Some(keep))
    }

    /// Drops the datagram closest to its deadline, other than `keep`.
    fn evict_oldest_but(&mut self, keep: Option<&K>) -> bool {
        let oldest = self
            .flows
            .iter()
            .filter(|(k, _)| Some(*k) != keep)
            .min_by_key(|(_, f)| f.deadline)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.stats.evicted += 1;
                self.drop_flow(&k);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Reassembler<u32> {
        Reassembler::new(100_000, Duration::from_secs(30))
    }

    #[test]
    fn in_and_out_of_order() {
        let mut r = r();
        let t = Instant::ZERO;
        assert_eq!(r.insert(t, 1, 16, false, b"ccc", b""), Outcome::Pending);
        assert_eq!(r.insert(t, 1, 0, true, b"aaaaaaaa", b"H"), Outcome::Pending);
        match r.insert(t, 1, 8, true, b"bbbbbbbb", b"") {
            Outcome::Complete { first, payload } => {
                assert_eq!(first, b"H");
                assert_eq!(payload, b"aaaaaaaabbbbbbbbccc");
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn overlap_drops_and_duplicate_is_ignored() {
        let mut r = r();
        let t = Instant::ZERO;
        r.insert(t, 1, 0, true, b"aaaaaaaa", b"H");
        assert_eq!(r.insert(t, 1, 0, true, b"aaaaaaaa", b"H"), Outcome::Pending);
        assert_eq!(
            r.insert(t, 1, 0, true, b"aaaaaaaaaaaaaaaa", b"H"),
            Outcome::Dropped
        );
        assert_eq!(r.pending(), 0);
        assert_eq!(r.stats.overlaps, 1);
    }

    #[test]
    fn timeout_reports_only_datagrams_with_a_first_fragment() {
        let mut r = r();
        r.insert(Instant::ZERO, 1, 0, true, b"aaaaaaaa", b"H1");
        r.insert(Instant::ZERO, 2, 8, true, b"bbbbbbbb", b"");
        assert!(r.expire(Instant::from_millis(29_999)).is_empty());
        let out = r.expire(Instant::from_millis(30_000));
        assert_eq!(out, vec![(b"H1".to_vec(), b"aaaaaaaa".to_vec())]);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Reassembler::new(64, Duration::from_secs(30));
        for k in 0..100u32 {
            r.insert(Instant::from_nanos(k as u64), k, 0, true, &[0; 32], b"");
            assert!(r.bytes() <= 64);
        }
        assert!(r.pending() <= 2);
    }

    #[test]
    fn malformed_lengths_are_refused() {
        let mut r = r();
        assert_eq!(
            r.insert(Instant::ZERO, 1, 0, true, b"abc", b""),
            Outcome::Dropped
        );
        assert_eq!(
            r.insert(Instant::ZERO, 2, 65_530, false, b"0123456789", b""),
            Outcome::Dropped
        );
        r.insert(Instant::ZERO, 3, 0, false, b"abcdefgh", b"");
        r.insert(Instant::ZERO, 4, 8, false, b"abcdefgh", b"");
        assert_eq!(
            r.insert(Instant::ZERO, 4, 16, true, b"abcdefgh", b""),
            Outcome::Dropped
        );
    }

    proptest::proptest! {
        #[test]
        fn any_order_reassembles(data in proptest::collection::vec(proptest::num::u8::ANY, 1..600), chunk in 1usize..10, seed in proptest::num::u64::ANY) {
            let chunk = chunk * 8;
            let mut pieces: Vec<(usize, bool, Vec<u8>)> = data.chunks(chunk).enumerate()
                .map(|(i, c)| (i * chunk, (i + 1) * chunk < data.len(), c.to_vec())).collect();
            // Deterministic shuffle.
            let mut s = seed;
            for i in (1..pieces.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                pieces.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut r = r();
            let mut done = None;
            for (o, m, d) in pieces {
                if let Outcome::Complete { payload, .. } = r.insert(Instant::ZERO, 9, o, m, &d, b"h") {
                    done = Some(payload);
                }
            }
            proptest::prop_assert_eq!(done, Some(data));
        }
    }
}
