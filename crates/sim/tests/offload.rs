//! Checksum and segmentation offload: lo0 traffic with no checksums
//! computed or verified, interfaces whose drivers vouch for received
//! checksums or coalesce TCP segments (large receive offload), and TCP
//! segmentation offload on send.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{A4, B4, B6, Net, forge_v4, net_with, pattern, pump, recv_all, sa};
use iopkt_pkt::offload::{
    CAP_LRO, CAP_RXCSUM, CAP_TSO4, CAP_TSO6, CAP_TXCSUM, F_CSUM_PARTIAL, F_CSUM_VALID, F_GSO_TCPV4,
};
use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::PktBuf;
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::SockType;
use iopkt_wire::checksum;
use iopkt_wire::ipproto;
use iopkt_wire::tcp as wire;

/// Two hosts on a cable with 1 ms of latency, addresses in both families.
fn net(seed: u64) -> Net {
    net_with(seed, Duration::from_millis(1))
}

fn open(sim: &mut Sim, n: NodeId, v6: bool, ty: SockType) -> SocketId {
    sim.with(n, |s, c| s.socket_open(c, v6, ty))
        .expect("socket")
}

/// A TCP connection from `cn` to `sn` at `at`, established: (client,
/// server).
fn established(sim: &mut Sim, cn: NodeId, sn: NodeId, at: SocketAddr) -> (SocketId, SocketId) {
    let l = open(sim, sn, at.is_ipv6(), SockType::Stream);
    sim.with(sn, |s, c| s.socket_bind(c, l, at)).expect("bind");
    sim.with(sn, |s, c| s.socket_listen(c, l, 4))
        .expect("listen");
    let c = open(sim, cn, at.is_ipv6(), SockType::Stream);
    let r = sim.with(cn, |s, cx| s.socket_connect(cx, c, at));
    assert_eq!(r, Err(Error::InProgress));
    let mut server = None;
    let ok = sim.run_until(Duration::from_secs(5), |s| {
        if server.is_none() {
            server = s
                .with(sn, |st, cx| st.socket_accept(cx, l))
                .ok()
                .map(|x| x.0);
        }
        server.is_some() && s.stack(cn).tcp.state(c) == Some(State::Established)
    });
    assert!(ok, "handshake did not complete");
    (c, server.unwrap())
}

#[test]
fn a_megabyte_over_lo0_arrives_intact_in_both_families() {
    let mut sim = Sim::new(3);
    let n = sim.add_node("n");
    for (at, salt) in [(sa("127.0.0.1", 80), 1u8), (sa("::1", 81), 2)] {
        let (c, s) = established(&mut sim, n, n, at);
        let data = pattern(1 << 20, salt);
        let got = pump(&mut sim, (n, c), (n, s), &data, Duration::from_secs(30));
        assert!(
            got == data,
            "{at}: {} of {} bytes arrived",
            got.len(),
            data.len()
        );
        let back = pattern(100_000, salt ^ 0xff);
        let got = pump(&mut sim, (n, s), (n, c), &back, Duration::from_secs(30));
        assert!(got == back, "{at}: the reverse direction");
    }
    let st = &sim.stack(n).tcp.stats;
    assert_eq!(st.bad_checksum, 0);
    assert!(st.segs_in > 100, "the transfers went over lo0 as segments");
}

#[test]
fn udp_over_lo0_works_in_both_families() {
    let mut sim = Sim::new(4);
    let n = sim.add_node("n");
    for (at, v6) in [(sa("127.0.0.1", 5000), false), (sa("::1", 5001), true)] {
        let rx = open(&mut sim, n, v6, SockType::Datagram);
        sim.with(n, |s, c| s.socket_bind(c, rx, at)).unwrap();
        let tx = open(&mut sim, n, v6, SockType::Datagram);
        for len in [0usize, 1, 7, 1472, 20_000] {
            let data = pattern(len, len as u8);
            sim.with(n, |s, c| s.socket_send(c, tx, &data, Some(at)))
                .unwrap();
            sim.run_for(Duration::from_millis(1));
            let mut buf = vec![0u8; 65_536];
            let got = sim
                .with(n, |s, c| s.socket_recv(c, rx, &mut buf, false))
                .unwrap_or_else(|e| panic!("{at} len {len}: {e}"));
            assert_eq!(&buf[..got.len], &data[..], "{at} len {len}");
        }
    }
    assert_eq!(sim.stack(n).udp.stats.bad_checksum, 0);
}

/// An Ethernet + IPv4 + UDP frame from 10.0.0.99:1234 to b at `dport`,
/// its checksum right unless `damage`; `partial` leaves only the
/// pseudo-header sum in the checksum field instead.
fn udp_frame(net: &Net, dport: u16, payload: &[u8], damage: bool, partial: bool) -> PktBuf {
    let (s, d) = (Ipv4Addr::new(10, 0, 0, 99), Ipv4Addr::new(10, 0, 0, 2));
    let mut seg = Vec::new();
    seg.extend_from_slice(&1234u16.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(&[0, 0]);
    seg.extend_from_slice(payload);
    let pseudo = checksum::pseudo_v4(s, d, ipproto::UDP, seg.len() as u16);
    let c = if partial {
        !checksum::finish(pseudo)
    } else {
        checksum::finish(checksum::sum(pseudo, &seg))
    };
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    if damage {
        seg[8] ^= 0x40;
    }
    let mut f = Vec::new();
    f.extend_from_slice(&net.sim.stack(net.b).iface(net.ib).unwrap().mac.0);
    f.extend_from_slice(&[2, 0, 0, 0, 0x99, 1]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = ipproto::UDP;
    ip[12..16].copy_from_slice(&s.octets());
    ip[16..20].copy_from_slice(&d.octets());
    let hc = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&hc.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&seg);
    PktBuf::from_slice(&f)
}

#[test]
fn a_wrong_checksum_is_dropped_unless_the_driver_vouches_for_the_frame() {
    let mut net = net(5);
    let b = net.b;
    let ib = net.ib;
    let rx = open(&mut net.sim, b, false, SockType::Datagram);
    net.sim
        .with(b, |s, c| s.socket_bind(c, rx, sa("0.0.0.0", 4444)))
        .unwrap();
    let recv = |sim: &mut Sim| {
        let mut buf = [0u8; 64];
        sim.with(b, |s, c| s.socket_recv(c, rx, &mut buf, false))
            .map(|i| buf[..i.len].to_vec())
    };
    let inject = |sim: &mut Sim, f: PktBuf| sim.with(b, |s, c| s.input(c, ib, [f]));

    // A driver that declared nothing cannot vouch: the flag is ignored and
    // the damaged datagram is dropped and counted.
    let mut bad = udp_frame(&net, 4444, b"bad!", true, false);
    bad.set_flags(F_CSUM_VALID);
    inject(&mut net.sim, bad);
    assert_eq!(recv(&mut net.sim), Err(Error::WouldBlock));
    assert_eq!(net.sim.stack(b).udp.stats.bad_checksum, 1);
    // Nor a partial checksum.
    let mut part = udp_frame(&net, 4444, b"part", false, true);
    part.set_csum_partial(34, 6);
    inject(&mut net.sim, part);
    assert_eq!(recv(&mut net.sim), Err(Error::WouldBlock));
    assert_eq!(net.sim.stack(b).udp.stats.bad_checksum, 2);

    // A driver with RXCSUM vouches: a verified frame is not verified again
    // (a damaged one then passes: the device's word is taken), and a
    // partial checksum (made on this host) is accepted.
    net.sim
        .with(b, |s, _| s.set_offloads(ib, CAP_RXCSUM))
        .unwrap();
    let mut valid = udp_frame(&net, 4444, b"trust", true, false);
    valid.set_flags(F_CSUM_VALID);
    inject(&mut net.sim, valid);
    assert_eq!(recv(&mut net.sim).unwrap()[1..], b"trust"[1..]);
    let mut part = udp_frame(&net, 4444, b"part", false, true);
    part.set_csum_partial(34, 6);
    assert_eq!(part.flags() & F_CSUM_PARTIAL, F_CSUM_PARTIAL);
    inject(&mut net.sim, part);
    assert_eq!(recv(&mut net.sim).unwrap(), b"part");
    // Unflagged frames are still verified.
    let bad = udp_frame(&net, 4444, b"bad?", true, false);
    inject(&mut net.sim, bad);
    assert_eq!(recv(&mut net.sim), Err(Error::WouldBlock));
    assert_eq!(net.sim.stack(b).udp.stats.bad_checksum, 3);
    let good = udp_frame(&net, 4444, b"good", false, false);
    inject(&mut net.sim, good);
    assert_eq!(recv(&mut net.sim).unwrap(), b"good");
}

/// The last captured TCP frame from `from`.
fn last_tcp_frame(caps: &[Captured], from: NodeId) -> Vec<u8> {
    caps.iter()
        .rev()
        .find(|c| {
            c.from == from
                && c.frame.get(12..14) == Some(&[0x08, 0x00])
                && c.frame.get(23) == Some(&ipproto::TCP)
        })
        .map(|c| c.frame.clone())
        .expect("a TCP frame")
}

#[test]
fn a_coalesced_segment_above_the_mtu_is_taken_whole_only_from_an_lro_driver() {
    let mut net = net(6);
    let (a, b, ib) = (net.a, net.b, net.ib);
    net.sim.capture();
    let (_c, s) = established(&mut net.sim, a, b, sa(B4, 80));
    let caps = net.sim.take_captured();
    // The handshake's last ACK from a: the next data starts at its seq.
    let last = last_tcp_frame(&caps, a);
    let seq = u32::from_be_bytes(last[38..42].try_into().unwrap());
    let data = pattern(8000, 9);
    let inject = |sim: &mut Sim, f: PktBuf| sim.with(b, |st, c| st.input(c, ib, [f]));
    let rx_errors = |sim: &Sim| sim.stack(b).iface(ib).unwrap().stats.rx_errors;

    // Above the MTU without the flag, or with it from a driver that does
    // not coalesce: a giant, dropped and counted.
    inject(
        &mut net.sim,
        forge_v4(&last, wire::ACK | wire::PSH, seq, &data),
    );
    let mut flagged = forge_v4(&last, wire::ACK | wire::PSH, seq, &data);
    flagged.set_gso(F_GSO_TCPV4, 1448);
    inject(&mut net.sim, flagged);
    assert_eq!(rx_errors(&net.sim), 2);
    let mut got = Vec::new();
    recv_all(&mut net.sim, b, s, &mut got).expect("recv");
    assert!(got.is_empty());

    // From a driver with LRO: one segment, all of it delivered.
    net.sim
        .with(b, |st, _| st.set_offloads(ib, CAP_LRO | CAP_RXCSUM))
        .unwrap();
    let segs_before = net.sim.stack(b).tcp.stats.segs_in;
    let mut flagged = forge_v4(&last, wire::ACK | wire::PSH, seq, &data);
    flagged.set_gso(F_GSO_TCPV4, 1448);
    net.sim.capture();
    inject(&mut net.sim, flagged);
    assert_eq!(net.sim.stack(b).tcp.stats.segs_in, segs_before + 1);
    // It stands for five full-sized segments: acknowledged at once, not
    // after the delayed-ACK timer (RFC 5681 section 4.2).
    let acked = net.sim.take_captured().iter().any(|c| {
        c.from == b
            && c.frame.get(23) == Some(&ipproto::TCP)
            && c.frame.get(42..46) == Some(&seq.wrapping_add(8000).to_be_bytes()[..])
    });
    assert!(acked, "no immediate ACK of the coalesced segment");
    recv_all(&mut net.sim, b, s, &mut got).expect("recv");
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    // A giant without the flag is still refused from it.
    inject(
        &mut net.sim,
        forge_v4(&last, wire::ACK | wire::PSH, seq + 8000, &data),
    );
    assert_eq!(rx_errors(&net.sim), 3);
    assert_eq!(net.sim.stack(b).tcp.stats.bad_checksum, 0);
}

#[test]
fn frames_leave_with_full_checksums_on_interfaces_without_offload() {
    let mut net = net(8);
    let (a, b) = (net.a, net.b);
    net.sim.capture();
    let (c, s) = established(&mut net.sim, a, b, sa(B4, 80));
    let data = pattern(50_000, 3);
    let got = pump(&mut net.sim, (a, c), (b, s), &data, Duration::from_secs(10));
    assert!(got == data);
    let caps = net.sim.take_captured();
    let mut checked = 0;
    for f in caps.iter().map(|c| &c.frame) {
        if f.get(12..14) != Some(&[0x08, 0x00]) || f.get(23) != Some(&ipproto::TCP) {
            continue;
        }
        let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
        let seg = &f[l4..14 + total];
        let src: [u8; 4] = f[26..30].try_into().unwrap();
        let dst: [u8; 4] = f[30..34].try_into().unwrap();
        let p = checksum::pseudo_v4(src.into(), dst.into(), 6, seg.len() as u16);
        assert_eq!(checksum::finish(checksum::sum(p, seg)), 0, "TCP checksum");
        checked += 1;
    }
    assert!(checked > 30);
}

/// a segments TCP on its interface (TSO) and b takes coalesced segments
/// (LRO): the simulated cable carries what a veth pair would.
fn offloading(net: &mut Net) {
    let (a, b, ia, ib) = (net.a, net.b, net.ia, net.ib);
    net.sim
        .with(a, |s, _| {
            s.set_offloads(ia, CAP_TXCSUM | CAP_TSO4 | CAP_TSO6)
        })
        .unwrap();
    net.sim
        .with(b, |s, _| s.set_offloads(ib, CAP_RXCSUM | CAP_LRO))
        .unwrap();
}

/// The lengths of the frames `from` sent that are longer than an
/// MTU-sized frame.
fn large_frames(caps: &[Captured], from: NodeId) -> Vec<usize> {
    caps.iter()
        .filter(|c| c.from == from && c.frame.len() > 1514)
        .map(|c| c.frame.len())
        .collect()
}

#[test]
fn tso_sends_large_segments_of_whole_mss_that_arrive_intact() {
    for (v6, at) in [(false, sa(B4, 80)), (true, sa(B6, 80))] {
        let mut net = net(10);
        offloading(&mut net);
        let (a, b) = (net.a, net.b);
        let (c, s) = established(&mut net.sim, a, b, at);
        net.sim.capture();
        let data = pattern(2 << 20, 5);
        let got = pump(&mut net.sim, (a, c), (b, s), &data, Duration::from_secs(30));
        assert!(
            got == data,
            "v6 {v6}: {} of {} bytes",
            got.len(),
            data.len()
        );
        let caps = net.sim.take_captured();
        let large = large_frames(&caps, a);
        assert!(!large.is_empty(), "v6 {v6}: no segment above the MTU");
        assert!(
            large.iter().all(|&l| l <= 65_535 + 14),
            "v6 {v6}: a frame beyond a 64 KiB datagram"
        );
        let hdrs = if v6 { 14 + 40 + 32 } else { 14 + 20 + 32 };
        let mss = if v6 { 1428 } else { 1448 };
        let whole = large.iter().filter(|&&l| (l - hdrs) % mss == 0).count();
        assert!(
            whole * 2 > large.len(),
            "v6 {v6}: most large segments are whole MSS ({whole} of {})",
            large.len()
        );
        // Every frame a sent is accounted for by sequence: nothing was
        // retransmitted on a clean cable.
        assert_eq!(net.sim.stack(a).tcp.stats.retrans_segs, 0, "v6 {v6}");
        assert_eq!(net.sim.stack(b).tcp.stats.bad_checksum, 0);
    }
}

#[test]
fn tso_over_a_lossy_cable_recovers_by_sequence_ranges() {
    let mut sim = Sim::new(11);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let (ia, ib) = sim.connect(
        a,
        b,
        LinkCfg {
            latency: Duration::from_millis(2),
            impair: iopkt_impair::Impairment {
                loss: 1.0,
                reorder: 1.0,
                ..Default::default()
            },
            ..LinkCfg::default()
        },
    );
    for (n, i, v4) in [(a, ia, A4), (b, ib, B4)] {
        sim.with(n, |s, c| {
            s.add_addr4(c, i, v4.parse().unwrap(), 24, false).unwrap();
        });
    }
    let mut net = Net { sim, a, b, ia, ib };
    offloading(&mut net);
    let (c, s) = established(&mut net.sim, a, b, sa(B4, 80));
    net.sim.capture();
    let data = pattern(4 << 20, 6);
    let got = pump(
        &mut net.sim,
        (a, c),
        (b, s),
        &data,
        Duration::from_secs(120),
    );
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    assert!(!large_frames(&net.sim.take_captured(), a).is_empty());
    assert!(
        net.sim.stack(a).tcp.stats.retrans_segs > 0,
        "the loss was felt"
    );
}
