//! Fragment sequences into the reassembler shared by IPv4 and IPv6
//! (`iopkt_stack::reasm`), checking what it promises: memory stays within
//! `max_bytes`, and a completed datagram is exactly the bytes its fragments
//! carried, in place.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use iopkt_stack::Instant;
use iopkt_stack::reasm::{MAX_FLOWS, Outcome, Reassembler};

/// Reassembly timeout used here (RFC 8200 section 4.5 gives 60 s; the value
/// only has to be reachable by the time steps below).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of one fragment record in the input.
const RECORD: usize = 6;

/// The byte a datagram of flow `key` carries at payload position `pos`. All
/// fragments of a flow agree on it, so any byte put in the wrong place by
/// reassembly shows.
pub fn payload_byte(key: u8, pos: usize) -> u8 {
    (pos.wrapping_mul(7) ^ (pos >> 8) ^ usize::from(key).wrapping_mul(13)) as u8
}

/// The header data given with a flow's offset-0 fragment.
pub fn first_of(key: u8) -> Vec<u8> {
    vec![0x45, key]
}

/// One fragment as the input describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub key: u8,
    pub more: bool,
    /// Time to let pass before this fragment, in units of 500 ms.
    pub wait: u8,
    pub offset: u16,
    pub len: usize,
    /// Run the timeout sweep after this fragment.
    pub expire: bool,
}

impl Fragment {
    /// The six bytes that describe this fragment.
    pub fn encode(&self) -> [u8; RECORD] {
        let off = self.offset.to_le_bytes();
        [
            self.key,
            u8::from(self.more) | (self.wait.min(127) << 1),
            off[0],
            off[1],
            (self.len / 8).min(255) as u8,
            (self.len % 8) as u8 | (u8::from(self.expire) << 3),
        ]
    }

    fn decode(r: &[u8; RECORD]) -> Fragment {
        let [key, flags, o0, o1, units, extra] = *r;
        Fragment {
            key,
            more: flags & 1 != 0,
            wait: flags >> 1,
            offset: u16::from_le_bytes([o0, o1]),
            len: usize::from(units) * 8 + usize::from(extra & 7),
            expire: extra & 8 != 0,
        }
    }
}

/// Builds an input: the memory limit, then the fragments.
pub fn encode_input(max_bytes_quarter: u16, frags: &[Fragment]) -> Vec<u8> {
    let mut out = max_bytes_quarter.to_le_bytes().to_vec();
    for f in frags {
        out.extend_from_slice(&f.encode());
    }
    out
}

/// Fuzz input: two bytes giving `max_bytes / 4` (little endian), then
/// six-byte fragment records (see [`Fragment::encode`]).
pub fn reassembly(data: &[u8]) {
    let Some((limit, records)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_bytes = usize::from(u16::from_le_bytes(*limit)) * 4;
    let mut r: Reassembler<u8> = Reassembler::new(max_bytes, TIMEOUT);
    let mut now = Instant::ZERO;
    // Ends of the last fragments (more = 0) sent for each flow: a completed
    // datagram is as long as one of them says.
    let mut last_ends: HashMap<u8, HashSet<usize>> = HashMap::new();
    let mut completed = 0u64;
    let mut data_buf = Vec::new();

    let (records, _) = records.as_chunks::<RECORD>();
    for rec in records {
        let f = Fragment::decode(rec);
        now = now + Duration::from_millis(u64::from(f.wait) * 500);
        data_buf.clear();
        let start = usize::from(f.offset);
        data_buf.extend((start..start + f.len).map(|p| payload_byte(f.key, p)));
        if !f.more {
            last_ends.entry(f.key).or_default().insert(start + f.len);
        }
        let outcome = r.insert(now, f.key, start, f.more, &data_buf, &first_of(f.key));
        if let Outcome::Complete { first, payload } = outcome {
            completed += 1;
            assert_eq!(first, first_of(f.key), "wrong first fragment data");
            assert!(
                last_ends
                    .get(&f.key)
                    .is_some_and(|e| e.contains(&payload.len())),
                "completed payload of {} bytes: no last fragment ended there",
                payload.len()
            );
            for (pos, b) in payload.iter().enumerate() {
                assert_eq!(
                    *b,
                    payload_byte(f.key, pos),
                    "byte {pos} of a reassembled datagram is misplaced"
                );
            }
        }
        if f.expire {
            check_expired(r.expire(now));
        }
        check_bounds(&r);
    }
    assert_eq!(r.stats.reassembled, completed, "reassembled count drifted");
    // Everything times out in the end, and every byte held is given back.
    check_expired(r.expire(now + TIMEOUT));
    assert_eq!(r.pending(), 0, "flows survive their timeout");
    assert_eq!(r.bytes(), 0, "bytes held with no flow");
    assert_eq!(r.next_deadline(), None, "a deadline with no flow");
}

fn check_bounds(r: &Reassembler<u8>) {
    assert!(
        r.bytes() <= r.max_bytes,
        "{} bytes held, limit {}",
        r.bytes(),
        r.max_bytes
    );
    assert!(r.pending() <= MAX_FLOWS, "{} flows", r.pending());
    assert_eq!(
        r.pending() == 0,
        r.next_deadline().is_none(),
        "deadline and flows disagree"
    );
    if r.pending() == 0 {
        assert_eq!(r.bytes(), 0, "bytes held with no flow");
    }
}

/// A timed-out datagram is reported with its first fragment's header data
/// and payload, which must be what was sent at offset 0.
fn check_expired(dead: Vec<(Vec<u8>, Vec<u8>)>) {
    for (first, d0) in dead {
        let [0x45, key] = first[..] else {
            panic!("timed-out datagram with header data {first:?}");
        };
        for (pos, b) in d0.iter().enumerate() {
            assert_eq!(*b, payload_byte(key, pos), "timed-out data misplaced");
        }
    }
}
