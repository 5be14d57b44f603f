//! The udp driver: point to point between two instances on loopback (IPv4
//! and IPv6), and a multicast segment on loopback shared by two instances.

mod common;

use std::time::Duration;

use common::*;
use iopkt_modhost::ModuleKind;

const WAIT: Duration = Duration::from_secs(10);

fn p2p(ip: &str) {
    let sink = Recorder::new();
    let host = host(&sink);
    let (pa, pb) = (free_port(), free_port());
    let fmt = |l: u16, r: u16| {
        if ip.contains(':') {
            format!("local=[{ip}]:{l},remote=[{ip}]:{r}")
        } else {
            format!("local={ip}:{l},remote={ip}:{r}")
        }
    };
    let a = host.load(ModuleKind::Driver, "udp", &fmt(pa, pb)).unwrap();
    let b = host.load(ModuleKind::Driver, "udp", &fmt(pb, pa)).unwrap();
    let (ia, ib) = (a.ifindexes[0], b.ifindexes[0]);
    assert_eq!(
        (sink.info(ia).name.as_str(), sink.info(ib).name.as_str()),
        ("en0", "en1")
    );

    let sent: Vec<Vec<u8>> = (0..500)
        .map(|i| frame(i, 60 + (i as usize * 13) % 1450))
        .collect();
    let got = send_paced(&host, &sink, ia, ib, &sent, 64);
    assert_same_frames(&got, &sent, "en0 to en1");
    let back: Vec<Vec<u8>> = (0..5).map(|i| frame(100 + i, 200)).collect();
    host.transmit(ib, bufs(&back));
    assert_eq!(sink.wait_for(ia, 5, WAIT), back);
    host.shutdown();
}

#[test]
fn point_to_point_ipv4() {
    p2p("127.0.0.1");
}

#[test]
fn point_to_point_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    p2p("::1");
}

#[test]
fn multicast_segment_on_loopback() {
    let sink = Recorder::new();
    let host = host(&sink);
    let port = free_port();
    // An administratively scoped group (RFC 2365), joined on loopback only.
    let group = format!("239.255.{}.{}", std::process::id() % 250, port % 250);
    let opts = format!("mcast={group}:{port}");
    let a = host.load(ModuleKind::Driver, "udp", &opts).unwrap();
    let b = host.load(ModuleKind::Driver, "udp", &opts).unwrap();
    let c = host
        .load(
            ModuleKind::Driver,
            "udp",
            &format!("{opts},local=127.0.0.1"),
        )
        .unwrap();
    let (ia, ib, ic) = (a.ifindexes[0], b.ifindexes[0], c.ifindexes[0]);

    let sent: Vec<Vec<u8>> = (0..100).map(|i| frame(i, 90)).collect();
    let got = send_paced(&host, &sink, ia, ib, &sent, 20);
    assert_same_frames(&got, &sent, "b hears a");
    assert_same_frames(&sink.wait_for(ic, sent.len(), WAIT), &sent, "c hears a");
    // The sender hears its own frames back (multicast loop); the stack
    // drops them by source MAC.
    assert_same_frames(
        &sink.wait_for(ia, sent.len(), WAIT),
        &sent,
        "a hears itself",
    );
    host.shutdown();
}
