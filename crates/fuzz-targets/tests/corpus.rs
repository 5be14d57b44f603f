//! Runs every fuzz entry function over the committed corpora and over
//! mutated and generated inputs, so `cargo test` checks the fuzz harness
//! (and keeps the crashes fixed once found) without cargo-fuzz.

use std::path::PathBuf;

use iopkt_fuzz_targets::reassembly::{Fragment, encode_input, reassembly};
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
