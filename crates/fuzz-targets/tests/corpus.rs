//! Runs every fuzz entry function over the committed corpora and over
//! mutated and generated inputs, so `cargo test` checks the fuzz harness
//! (and keeps the crashes fixed once found) without cargo-fuzz.

use std::path::PathBuf;

use iopkt_fuzz_targets::reassembly::{Fragment, encode_input, reassembly};
use iopkt_fuzz_targets::tcp_segments::{self as tcp, Dest, MAX_CONNECTIONS, Segment};
use iopkt_fuzz_targets::{TARGETS, Target, seeds};
use proptest::prelude::*;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn target(name: &str) -> Target {
    match TARGETS.iter().find(|t| t.name == name) {
        Some(t) => *t,
        None => panic!("no target {name}"),
    }
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for t in TARGETS {
        let src = root.join("fuzz_targets").join(format!("{}.rs", t.name));
        assert!(src.is_file(), "{} is missing", src.display());
        let n = std::fs::read_dir(corpus_dir(t.name))
            .unwrap_or_else(|e| panic!("corpus of {}: {e}", t.name))
            .count();
        assert!(n > 0, "corpus of {} is empty", t.name);
    }
}

#[test]
fn committed_corpora_run_clean() {
    for t in TARGETS {
        for entry in std::fs::read_dir(corpus_dir(t.name)).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| (t.run)(&data));
            assert!(r.is_ok(), "{} panics on {}", t.name, path.display());
        }
    }
}

#[test]
fn committed_seeds_are_the_generated_ones() {
    for s in seeds::all() {
        let path = corpus_dir(s.target).join(s.name);
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == s.bytes,
            "{} differs from its seed: run `cargo run -p iopkt-fuzz-targets --example write_corpus`",
            path.display()
        );
    }
}

#[test]
fn request_seeds_are_valid_requests() {
    use iopkt_rsrcmgr::proto::{Framer, decode_request, decode_request_body};
    for s in seeds::all() {
        match s.target {
            "control_request" if !matches!(s.name, "response" | "event" | "two_in_a_stream") => {
                assert!(
                    decode_request(&s.bytes).is_ok(),
                    "seed {} does not decode",
                    s.name
                );
            }
            "control_server" => {
                let mut f = Framer::new();
                f.push(&s.bytes);
                let mut n = 0;
                while let Some(frame) = f.next_frame().unwrap() {
                    assert!(decode_request_body(&frame.body).is_ok(), "seed {}", s.name);
                    n += 1;
                }
                assert!(n > 1, "seed {} holds {n} requests", s.name);
                assert_eq!(f.buffered(), 0, "seed {} has trailing bytes", s.name);
            }
            _ => {}
        }
    }
}

#[test]
fn driver_options_accepts_the_documented_words() {
    use iopkt_modhost::fuzz::parse_options;
    let known = ["dev".to_string()];
    assert_eq!(
        parse_options("dev=t0,name=en,unit=2,loss=5,delay=3ms", &known),
        Ok(vec![("dev".to_string(), Some("t0".to_string()))])
    );
    assert!(parse_options("mtu=67", &known).is_err());
    assert!(parse_options("delay=NaN", &known).is_err());
    assert!(parse_options("loss=inf", &known).is_err());
}

/// A few bytes of a seed changed: what a fuzzer tries first.
fn mutated(seed: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(at, b) in edits {
        if v.is_empty() {
            v.push(b);
        } else {
            let i = at % (v.len() + 1);
            match b % 3 {
                0 => v.insert(i, b),
                1 if i < v.len() => v[i] ^= b | 1,
                _ if i < v.len() => {
                    v.remove(i);
                }
                _ => v.push(b),
            }
        }
    }
    v
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    match seeds::all()
        .into_iter()
        .find(|s| s.target == target && s.name == name)
    {
        Some(s) => s.bytes,
        None => panic!("no seed {target}/{name}"),
    }
}

#[test]
fn tcp_segment_seeds_reach_tcp() {
    // Only the set-up connection without input.
    let idle = tcp::run(&[]);
    assert_eq!(idle.passive_opens, 1);
    assert_eq!(idle.most_connections, 0);
    // A forged handshake completes: the checksums and numbers are right.
    let hs = tcp::run(&seed("tcp_segments", "handshake_data_close"));
    assert_eq!(hs.passive_opens, 2, "{hs:?}");
    assert_eq!(hs.most_connections, 3, "{hs:?}");
    // In-window data on the established connection reaches the application.
    let data = tcp::run(&seed("tcp_segments", "connection_data_then_reset"));
    assert_eq!(data.read_on_connection, "data on the connection".len());
    // Four forged SYNs wait in the SYN queue at once.
    let flood = tcp::run(&seed("tcp_segments", "syn_flood"));
    assert_eq!(flood.most_connections, 2 + 4, "{flood:?}");
}

#[test]
fn tcp_segment_records_round_trip() {
    let segs = vec![
        Segment {
            dest: Dest::Listener(2),
            seq_absolute: true,
            ack_absolute: false,
            wait: 5,
            flags: 0x12,
            seq: 7,
            ack: u32::MAX,
            window: 3,
            options: vec![1, 1, 0],
            payload: b"xyz".to_vec(),
        },
        Segment {
            dest: Dest::Closed,
            seq_absolute: false,
            ack_absolute: true,
            wait: 0,
            flags: 0,
            seq: 0,
            ack: 1,
            window: 0,
            options: Vec::new(),
            payload: Vec::new(),
        },
    ];
    let back = tcp::decode_input(&tcp::encode_input(&segs));
    assert_eq!(format!("{back:?}"), format!("{segs:?}"));
}

fn tcp_segment() -> impl Strategy<Value = Segment> {
    (
        prop_oneof![
            Just(Dest::Connection),
            (0u8..4).prop_map(Dest::Listener),
            Just(Dest::Closed)
        ],
        any::<(bool, bool)>(),
        0u8..6,
        any::<u8>(),
        prop_oneof![-3000i32..3000, any::<i32>()],
        prop_oneof![-3000i32..3000, any::<i32>()],
        any::<u16>(),
        prop::collection::vec(
            prop_oneof![
                Just(1u8),
                Just(2),
                Just(3),
                Just(4),
                Just(5),
                Just(8),
                any::<u8>()
            ],
            0..40,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(dest, (sa, aa), wait, flags, seq, ack, window, options, payload)| Segment {
                dest,
                seq_absolute: sa,
                ack_absolute: aa,
                wait,
                flags,
                seq: seq as u32,
                ack: ack as u32,
                window,
                options,
                payload,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_tcp_segments_keep_the_invariants(
        segs in prop::collection::vec(tcp_segment(), 0..24),
    ) {
        let out = tcp::run(&tcp::encode_input(&segs));
        prop_assert!(out.most_connections <= MAX_CONNECTIONS);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seeds_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let all: Vec<_> = seeds::all().into_iter().filter(|s| s.target != "stack_input").collect();
        let s = which.get(&all);
        (target(s.target).run)(&mutated(&s.bytes, &edits));
    }

    #[test]
    fn random_bytes_never_panic(
        which in any::<prop::sample::Index>(),
        data in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let all: Vec<_> = TARGETS.iter().filter(|t| t.name != "stack_input").collect();
        (which.get(&all).run)(&data);
    }

    #[test]
    fn fragment_sequences_keep_the_invariants(
        limit in any::<u16>(),
        frags in prop::collection::vec(
            (0u8..4, any::<bool>(), 0u8..8, (0u16..64).prop_map(|o| o * 8), 0usize..300, any::<bool>()),
            0..40,
        ),
    ) {
        let frags: Vec<Fragment> = frags
            .into_iter()
            .map(|(key, more, wait, offset, len, expire)| Fragment { key, more, wait, offset, len, expire })
            .collect();
        reassembly(&encode_input(limit, &frags));
    }
}
