//! The pair driver through the module host: frames cross the virtual cable,
//! names and addresses follow the common options, impairments apply on
//! egress.

mod common;

use std::time::{Duration, Instant};

use common::*;
use iopkt_modhost::ModuleKind;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn frames_cross_the_cable_both_ways_in_order() {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", "").unwrap();
    assert_eq!(l.module, "devnp-pair.so");
    assert_eq!(l.ifindexes.len(), 2);
    let (a, b) = (l.ifindexes[0], l.ifindexes[1]);
    assert_eq!(sink.info(a).name, "pair0");
    assert_eq!(sink.info(b).name, "pair1");
    assert_eq!(sink.info(a).driver, "pair");
    assert_eq!(sink.info(a).mtu, 1500);
    assert!(sink.info(a).mac.is_unicast());
    assert_ne!(sink.info(a).mac, sink.info(b).mac);

    let sent: Vec<Vec<u8>> = (0..600)
        .map(|i| frame(i, 60 + (i as usize % 1400)))
        .collect();
    host.transmit(a, bufs(&sent));
    let got = sink.wait_for(b, sent.len(), WAIT);
    assert_same_frames(&got, &sent, "pair0 to pair1");
    assert!(
        sink.frames(a).is_empty(),
        "nothing echoes back to the sender"
    );

    let back: Vec<Vec<u8>> = (0..10).map(|i| frame(1000 + i, 100)).collect();
    host.transmit(b, bufs(&back));
    assert_eq!(sink.wait_for(a, back.len(), WAIT), back);
    host.shutdown();
    let mut d = sink.detached.lock().unwrap().clone();
    d.sort();
    assert_eq!(d, [a, b]);
}

#[test]
fn transmit_never_delivers_synchronously() {
    // The stack may hold its own lock while transmitting, so delivery on the
    // far end must come from a worker, never from inside transmit.
    let sink = Recorder::new();
    let host = host_with(&sink, 1, vec![drivers_dir()]);
    let l = host.load(ModuleKind::Driver, "pair", "").unwrap();
    let (a, b) = (l.ifindexes[0], l.ifindexes[1]);
    for i in 0..20 {
        host.transmit(a, bufs(&[frame(i, 64)]));
    }
    assert_eq!(sink.wait_for(b, 20, WAIT).len(), 20);
    let me = std::thread::current().id();
    let threads = sink.input_threads.lock().unwrap().clone();
    assert!(!threads.is_empty());
    assert!(
        threads.iter().all(|t| *t != me),
        "input ran on the transmitting thread"
    );
    host.shutdown();
}

#[test]
fn common_options_name_unit_mtu_mac() {
    let sink = Recorder::new();
    sink.reserved.lock().unwrap().push("vn0".into());
    let host = host(&sink);
    let l = host
        .load(
            ModuleKind::Driver,
            "devnp-pair.so",
            "name=vn,mtu=9000,mac=02:aa:bb:cc:dd:10",
        )
        .unwrap();
    let names: Vec<String> = l.ifindexes.iter().map(|i| sink.info(*i).name).collect();
    assert_eq!(names, ["vn1", "vn2"], "first unused units");
    assert_eq!(sink.info(l.ifindexes[0]).mtu, 9000);
    assert_eq!(
        sink.info(l.ifindexes[0]).mac.to_string(),
        "02:aa:bb:cc:dd:10"
    );
    assert_eq!(
        sink.info(l.ifindexes[1]).mac.to_string(),
        "02:aa:bb:cc:dd:11"
    );

    let l2 = host
        .load(ModuleKind::Driver, "libdevnp_pair.so", "name=vn,unit=7")
        .unwrap();
    let names: Vec<String> = l2.ifindexes.iter().map(|i| sink.info(*i).name).collect();
    assert_eq!(names, ["vn7", "vn8"]);

    let e = host
        .load(ModuleKind::Driver, "pair", "name=vn,unit=7")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "devnp-pair.so: interface vn7 already exists (choose another unit= or name=)"
    );
    assert!(!e.is_usage());
    host.shutdown();
}

/// Sends `n` frames one way through a pair loaded with `opts`; returns what
/// arrived once the link went quiet.
fn through(opts: &str, n: u32) -> Vec<Vec<u8>> {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", opts).unwrap();
    let sent: Vec<Vec<u8>> = (0..n).map(|i| frame(i, 80)).collect();
    host.transmit(l.ifindexes[0], bufs(&sent));
    let got = sink.wait_quiet(l.ifindexes[1], Duration::from_millis(300), WAIT);
    host.shutdown();
    got
}

#[test]
fn loss_drops_about_half() {
    let got = through("loss=50", 1000);
    assert!(
        (380..=620).contains(&got.len()),
        "{} of 1000 frames passed loss=50",
        got.len()
    );
    // What passes is unharmed and in order.
    let seqs: Vec<u32> = got.iter().map(|f| seq_of(f)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(got.iter().all(|f| *f == frame(seq_of(f), 80)));
}

#[test]
fn dup_sends_copies() {
    let got = through("dup=100", 200);
    assert_eq!(got.len(), 400, "every frame twice");
    let got = through("dup=30", 1000);
    assert!(
        (1200..=1400).contains(&got.len()),
        "{} frames from 1000 with dup=30",
        got.len()
    );
}

#[test]
fn corrupt_damages_payload_only() {
    let got = through("corrupt=100", 100);
    assert_eq!(got.len(), 100);
    for f in &got {
        assert_eq!(f[..14], frame(0, 80)[..14], "Ethernet header intact");
        assert_eq!(f.len(), 80);
    }
    let damaged = got.iter().filter(|f| {
        // Either the sequence or the pattern differs from every original.
        !(0..100).any(|i| **f == frame(i, 80))
    });
    assert_eq!(damaged.count(), 100);
}

#[test]
fn delay_holds_frames_back() {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", "delay=80").unwrap();
    let t0 = Instant::now();
    let sent: Vec<Vec<u8>> = (0..50).map(|i| frame(i, 64)).collect();
    host.transmit(l.ifindexes[0], bufs(&sent));
    let got = sink.wait_for(l.ifindexes[1], 50, WAIT);
    assert_eq!(got, sent, "delayed frames keep their order");
    let timed = sink.frames_timed(l.ifindexes[1]);
    let first = timed.iter().map(|(t, _)| *t).min().unwrap();
    assert!(
        first.duration_since(t0) >= Duration::from_millis(80),
        "first frame after {:?}",
        first.duration_since(t0)
    );
    host.shutdown();
}

#[test]
fn reorder_lets_later_frames_pass() {
    let got = through("reorder=50", 400);
    assert_eq!(got.len(), 400);
    let seqs: Vec<u32> = got.iter().map(|f| seq_of(f)).collect();
    assert!(
        seqs.windows(2).any(|w| w[0] > w[1]),
        "some frames overtaken"
    );
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, (0..400).collect::<Vec<_>>());
}
