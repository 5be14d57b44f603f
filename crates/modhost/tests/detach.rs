//! Detaching one interface while the host runs (`ifconfig IF destroy`), with
//! the pair driver: the driver lets go of it, nothing for it reaches the
//! stack afterwards, its peer loses carrier, and the module stays loaded.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use iopkt_modhost::ModuleKind;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_detached_pair_end_is_gone_and_its_peer_loses_the_cable() {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", "").unwrap();
    let (a, b) = (l.ifindexes[0], l.ifindexes[1]);
    host.transmit(a, bufs(&[frame(1, 100)]));
    assert_eq!(sink.wait_for(b, 1, WAIT).len(), 1, "the cable works first");

    host.detach(a).unwrap();
    assert_eq!(*sink.detached.lock().unwrap(), [a], "the sink is told");
    assert_eq!(host.ifname(a), None, "the host forgot it");
    assert_eq!(host.ifname(b).as_deref(), Some("pair1"), "the peer stays");
    assert!(
        sink.links.lock().unwrap().contains(&(b, false)),
        "the peer reports no carrier: {:?}",
        sink.links.lock().unwrap()
    );

    // Frames for the detached interface are dropped and counted.
    let dropped = host.tx_dropped();
    host.transmit(a, bufs(&[frame(2, 100), frame(3, 100)]));
    assert_eq!(host.tx_dropped(), dropped + 2);
    // Frames sent on the peer have nowhere to go.
    let before_a = sink.frames(a).len();
    host.transmit(b, bufs(&[frame(4, 100)]));
    let b_got = sink.frames(b).len();
    assert_eq!(
        sink.wait_quiet(a, Duration::from_millis(100), WAIT).len(),
        before_a
    );
    assert_eq!(sink.frames(b).len(), b_got, "nothing echoes");

    let e = host.detach(a).unwrap_err();
    assert!(e.contains("no driver"), "{e}");
    assert!(host.detach(999).is_err());

    // With both ends gone the module stays loaded; another instance starts.
    host.detach(b).unwrap();
    let l2 = host.load(ModuleKind::Driver, "pair", "").unwrap();
    let (c, d) = (l2.ifindexes[0], l2.ifindexes[1]);
    host.transmit(c, bufs(&[frame(5, 200)]));
    assert_eq!(sink.wait_for(d, 1, WAIT), [frame(5, 200)]);

    host.shutdown();
    let mut gone = sink.detached.lock().unwrap().clone();
    gone.sort();
    assert_eq!(gone, [a, b, c, d], "each interface is detached once");
}

#[test]
fn nothing_reaches_the_sink_for_an_interface_once_detach_returns() {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", "").unwrap();
    let (a, b) = (l.ifindexes[0], l.ifindexes[1]);
    // b keeps sending to a while a is detached.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (host, stop) = (host.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                host.transmit(b, bufs(&[frame(seq, 64), frame(seq + 1, 64)]));
                seq += 2;
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    sink.wait_for(a, 50, WAIT);
    host.detach(a).unwrap();
    let at_detach = sink.frames(a).len();
    assert!(at_detach >= 50);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert_eq!(
        sink.frames(a).len(),
        at_detach,
        "frames reached the sink after detach returned"
    );
    host.shutdown();
}

#[test]
fn pair_with_mtu_9000_carries_a_9000_byte_frame_intact() {
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host.load(ModuleKind::Driver, "pair", "mtu=9000").unwrap();
    let (a, b) = (l.ifindexes[0], l.ifindexes[1]);
    assert_eq!(sink.info(a).mtu, 9000);
    assert_eq!(sink.info(a).max_mtu, 65535);
    assert_eq!(host.max_mtu(a), Some(65535));
    let big = frame(7, 9000 + 14);
    host.transmit(a, bufs(std::slice::from_ref(&big)));
    assert_same_frames(&sink.wait_for(b, 1, WAIT), &[big], "9000-byte frame");
    host.set_mtu(a, 65535).unwrap();
    assert!(host.set_mtu(a, 65536).is_err());
    host.shutdown();
}

#[test]
fn udp_receive_buffers_follow_the_mtu() {
    let sink = Recorder::new();
    let host = host(&sink);
    let (pa, pb) = (free_port(), free_port());
    let a = host
        .load(
            ModuleKind::Driver,
            "udp",
            &format!("local=127.0.0.1:{pa},remote=127.0.0.1:{pb},mtu=9000"),
        )
        .unwrap()
        .ifindexes[0];
    let b = host
        .load(
            ModuleKind::Driver,
            "udp",
            &format!("local=127.0.0.1:{pb},remote=127.0.0.1:{pa},mtu=9000"),
        )
        .unwrap()
        .ifindexes[0];
    assert_eq!(host.max_mtu(a), Some(65_507 - 18));
    // A full 9000-byte MTU frame with a VLAN tag: far above a pool buffer.
    let big = frame(1, 9000 + 18);
    host.transmit(a, bufs(std::slice::from_ref(&big)));
    assert_same_frames(
        &sink.wait_for(b, 1, WAIT),
        std::slice::from_ref(&big),
        "jumbo",
    );

    // At MTU 1500 the same frame does not fit a receive buffer: dropped.
    host.set_mtu(b, 1500).unwrap();
    host.transmit(a, bufs(&[big.clone(), frame(2, 1500 + 14)]));
    let got = sink.wait_for(b, 2, Duration::from_secs(2));
    assert_eq!(got.len(), 2, "only the frame that fits arrives");
    assert_eq!(seq_of(&got[1]), 2);

    // Raised again at run time, big frames come through.
    host.set_mtu(b, 9000).unwrap();
    host.transmit(a, bufs(std::slice::from_ref(&big)));
    assert_eq!(sink.wait_for(b, 3, WAIT).len(), 3);
    assert_eq!(sink.frames(b)[2], big);

    // Detach closes the socket: its port can be bound again.
    host.detach(b).unwrap();
    std::net::UdpSocket::bind(("127.0.0.1", pb)).expect("the port is free after detach");
    host.shutdown();
}
