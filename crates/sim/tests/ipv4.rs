//! Whole IPv4 stacks on the simulated network: ARP, ICMP echo through ping
//! sockets, forwarding, fragments, errors and hostile input.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use iopkt_impair::Impairment;
use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::route::{Route, RouteFlags};
use iopkt_stack::socket::{PingReply, SocketId, SocketKind};
use iopkt_stack::{Config, Ctx, IfIndex, IfKind, Instant, Mac, PktBuf, Pool, Stack};
use iopkt_wire::arp::ArpPkt;
use iopkt_wire::checksum::checksum;
use iopkt_wire::ethernet::{EthHdr, ethertype};
use iopkt_wire::ipv4::{FLAG_DF, FLAG_MF, Ipv4Hdr};
use iopkt_wire::{FromBytes, IntoBytes};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

/// An echo request with sequence `seq` and `payload` bytes of pattern.
fn echo_request(seq: u16, payload: usize) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 0];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..payload).map(|i| (i * 7 + seq as usize) as u8));
    m
}

fn with_icmp_checksum(mut m: Vec<u8>) -> Vec<u8> {
    m[2] = 0;
    m[3] = 0;
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn seq_of(r: &PingReply) -> u16 {
    u16::from_be_bytes([r.icmp[6], r.icmp[7]])
}

fn addr(sim: &mut Sim, n: NodeId, ifindex: IfIndex, a: &str, plen: u8) {
    sim.with(n, |s, ctx| s.add_addr4(ctx, ifindex, ip(a), plen, true))
        .expect("address");
}

fn default_route(sim: &mut Sim, n: NodeId, ifindex: IfIndex, gw: &str) {
    sim.with(n, |s, _| {
        s.routes4.add(Route {
            dest: Ipv4Addr::UNSPECIFIED,
            plen: 0,
            gateway: Some(ip(gw)),
            ifindex,
            flags: RouteFlags::STATIC,
            expires: None,
        })
    })
    .expect("route");
}

fn open_ping(sim: &mut Sim, n: NodeId) -> SocketId {
    sim.with(n, |s, ctx| s.ping_open(ctx, false))
        .expect("ping socket")
}

fn ident_of(sim: &Sim, n: NodeId, sock: SocketId) -> u16 {
    match sim.stack(n).sockets.get(sock) {
        Some(SocketKind::Ping(p)) => p.ident,
        _ => panic!("no such ping socket"),
    }
}

fn ping(sim: &mut Sim, n: NodeId, sock: SocketId, dst: &str, seq: u16, size: usize) {
    let m = echo_request(seq, size);
    sim.with(n, |s, ctx| s.ping_send(ctx, sock, IpAddr::V4(ip(dst)), &m))
        .expect("ping_send");
}

/// Runs until `count` messages reached `sock` (or `limit` passes) and
/// returns every message that did.
fn collect(
    sim: &mut Sim,
    n: NodeId,
    sock: SocketId,
    count: usize,
    limit: Duration,
) -> Vec<PingReply> {
    let mut got = Vec::new();
    sim.run_until(limit, |s| {
        while let Some(r) = s.node(n).stack.ping_recv(sock) {
            got.push(r);
        }
        got.len() >= count
    });
    got
}

fn mac_of(sim: &Sim, n: NodeId, ifindex: IfIndex) -> Mac {
    sim.stack(n).iface(ifindex).expect("interface").mac
}

/// Two hosts on one link: a is 10.0.0.1, b is 10.0.0.2.
struct Lan {
    sim: Sim,
    a: NodeId,
    b: NodeId,
    ia: IfIndex,
    ib: IfIndex,
}

fn lan(seed: u64, ca: Config, cb: Config, link: LinkCfg) -> Lan {
    let mut sim = Sim::new(seed);
    let a = sim.add_node_with("a", ca);
    let b = sim.add_node_with("b", cb);
    let (ia, ib) = sim.connect(a, b, link);
    addr(&mut sim, a, ia, "10.0.0.1", 24);
    addr(&mut sim, b, ib, "10.0.0.2", 24);
    sim.run_for(Duration::from_millis(10));
    Lan { sim, a, b, ia, ib }
}

fn plain_lan(seed: u64) -> Lan {
    lan(
        seed,
        Config::default(),
        Config::default(),
        LinkCfg::default(),
    )
}

/// a (10.0.1.2) — r (10.0.1.1 | 10.0.2.1) — b (10.0.2.2), default routes
/// through r on both hosts.
struct Routed {
    sim: Sim,
    a: NodeId,
    r: NodeId,
    b: NodeId,
    ra: IfIndex,
    rb: IfIndex,
}

fn routed(seed: u64, rcfg: Config, acfg: Config, rb_link: LinkCfg) -> Routed {
    let mut sim = Sim::new(seed);
    let a = sim.add_node_with("a", acfg);
    let r = sim.add_node_with("r", rcfg);
    let b = sim.add_node("b");
    let (ia, ra) = sim.connect(a, r, LinkCfg::default());
    let (rb, ib) = sim.connect(r, b, rb_link);
    addr(&mut sim, a, ia, "10.0.1.2", 24);
    addr(&mut sim, r, ra, "10.0.1.1", 24);
    addr(&mut sim, r, rb, "10.0.2.1", 24);
    addr(&mut sim, b, ib, "10.0.2.2", 24);
    default_route(&mut sim, a, ia, "10.0.1.1");
    default_route(&mut sim, b, ib, "10.0.2.1");
    sim.run_for(Duration::from_millis(10));
    Routed {
        sim,
        a,
        r,
        b,
        ra,
        rb,
    }
}

fn forwarding() -> Config {
    Config {
        forwarding4: true,
        ..Config::default()
    }
}

fn ethertype_of(f: &[u8]) -> u16 {
    EthHdr::parse(f).map_or(0, |h| h.ethertype())
}

fn arp_of(c: &Captured) -> Option<(Mac, ArpPkt)> {
    if ethertype_of(&c.frame) != ethertype::ARP {
        return None;
    }
    let h = EthHdr::parse(&c.frame)?;
    Some((h.dst(), *ArpPkt::parse(&c.frame[14..])?))
}

fn ipv4_of(c: &Captured) -> Option<&Ipv4Hdr> {
    if ethertype_of(&c.frame) != ethertype::IPV4 {
        return None;
    }
    Ipv4Hdr::parse_checked(&c.frame[14..])
}

/// An Ethernet frame carrying an IPv4 datagram (checksum filled in).
#[allow(clippy::too_many_arguments)]
fn ipv4_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ident: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let h = Ipv4Hdr::new(src, dst, proto, 64, ident, frag, payload.len(), 0);
    let mut f = vec![0u8; 14];
    EthHdr::write(&mut f, dst_mac, src_mac, ethertype::IPV4);
    f.extend_from_slice(h.as_bytes());
    f.extend_from_slice(payload);
    f
}

fn inject(sim: &mut Sim, n: NodeId, ifindex: IfIndex, frame: &[u8]) {
    sim.with(n, |s, ctx| {
        s.input(ctx, ifindex, [PktBuf::from_slice(frame)])
    });
}

// ---------------------------------------------------------------- ARP

#[test]
fn arp_resolves_once_and_both_caches_learn() {
    let mut l = plain_lan(11);
    l.sim.capture();
    let sock = open_ping(&mut l.sim, l.a);
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 1, 56);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(5)).len(),
        1
    );

    let frames = l.sim.take_captured();
    let arps: Vec<(usize, Mac, ArpPkt)> = frames
        .iter()
        .filter_map(|c| arp_of(c).map(|(d, p)| (c.from, d, p)))
        .collect();
    assert_eq!(arps.len(), 2, "one request, one reply: {arps:?}");
    let (from, dst, req) = &arps[0];
    assert_eq!((*from, *dst, req.op()), (l.a, Mac::BROADCAST, 1));
    assert_eq!((req.spa(), req.tpa()), (ip("10.0.0.1"), ip("10.0.0.2")));
    let (from, dst, rep) = &arps[1];
    assert_eq!((*from, *dst, rep.op()), (l.b, mac_of(&l.sim, l.a, l.ia), 2));
    assert_eq!(rep.sha(), mac_of(&l.sim, l.b, l.ib));

    let now = l.sim.now();
    let ea = l.sim.stack(l.a).arp_entries_at(now);
    assert_eq!(ea.len(), 1);
    assert_eq!(ea[0].ip, IpAddr::V4(ip("10.0.0.2")));
    assert_eq!(ea[0].mac, Some(mac_of(&l.sim, l.b, l.ib)));
    assert_eq!(ea[0].state, "reachable");
    assert_eq!(ea[0].ifindex, l.ia);
    assert!(
        ea[0]
            .expires
            .is_some_and(|e| e <= Duration::from_secs(1200) && e > Duration::from_secs(1190))
    );
    // b learned a from the request aimed at it (RFC 826).
    let eb = l.sim.stack(l.b).arp_entries();
    assert_eq!(eb.len(), 1);
    assert_eq!(eb[0].mac, Some(mac_of(&l.sim, l.a, l.ia)));

    // A second ping needs no ARP at all.
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 2, 56);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(5)).len(),
        1
    );
    assert!(l.sim.take_captured().iter().all(|c| arp_of(c).is_none()));
}

#[test]
fn arp_entry_goes_stale_is_probed_unicast_and_expires_unused() {
    let cfg = Config {
        arp_keep_secs: 5,
        ..Config::default()
    };
    let mut l = lan(12, cfg, Config::default(), LinkCfg::default());
    let sock = open_ping(&mut l.sim, l.a);
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 1, 8);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    l.sim.run_for(Duration::from_secs(6));
    let now = l.sim.now();
    assert_eq!(l.sim.stack(l.a).arp_entries_at(now)[0].state, "stale");

    // Using the stale entry sends at once and checks it with a unicast request.
    l.sim.capture();
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 2, 8);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    let b_mac = mac_of(&l.sim, l.b, l.ib);
    let probes: Vec<_> = l
        .sim
        .take_captured()
        .iter()
        .filter(|c| c.from == l.a)
        .filter_map(arp_of)
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].0, b_mac, "probe goes unicast to the known MAC");
    let now = l.sim.now();
    assert_eq!(l.sim.stack(l.a).arp_entries_at(now)[0].state, "reachable");

    // Unused, it turns stale after 5 s and disappears 5 s after that.
    l.sim.run_for(Duration::from_secs(11));
    assert!(l.sim.stack(l.a).arp_entries().is_empty());
}

#[test]
fn arp_gives_up_after_three_requests_and_reports_host_unreachable() {
    let mut l = plain_lan(13);
    l.sim.capture();
    let sock = open_ping(&mut l.sim, l.a);
    ping(&mut l.sim, l.a, sock, "10.0.0.99", 1, 8);
    ping(&mut l.sim, l.a, sock, "10.0.0.99", 2, 8);
    assert_eq!(
        l.sim
            .stack(l.a)
            .iface(l.ia)
            .unwrap()
            .arp
            .held(ip("10.0.0.99")),
        2
    );
    let got = collect(&mut l.sim, l.a, sock, 2, Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!((r.icmp[0], r.icmp[1]), (3, 1), "host unreachable");
        assert_eq!(r.from, IpAddr::V4(ip("10.0.0.1")));
    }
    let reqs: Vec<Instant> = l
        .sim
        .take_captured()
        .iter()
        .filter(|c| arp_of(c).is_some_and(|(_, p)| p.tpa() == ip("10.0.0.99")))
        .map(|c| c.time)
        .collect();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1] - reqs[0], Duration::from_secs(1));
    assert_eq!(reqs[2] - reqs[1], Duration::from_secs(1));
    let st = l.sim.stack(l.a).v4.arp;
    assert_eq!(st.resolve_failed, 1);
    assert_eq!(st.dropped_unresolved, 2);
    assert!(l.sim.stack(l.a).arp_entries().is_empty());
}

#[test]
fn hold_queue_keeps_only_the_newest_packets() {
    let cfg = Config {
        neigh_hold: 4,
        ..Config::default()
    };
    let link = LinkCfg {
        latency: Duration::from_millis(100),
        ..LinkCfg::default()
    };
    let mut l = lan(14, cfg, Config::default(), link);
    let sock = open_ping(&mut l.sim, l.a);
    for seq in 1..=10 {
        ping(&mut l.sim, l.a, sock, "10.0.0.2", seq, 8);
    }
    assert_eq!(
        l.sim
            .stack(l.a)
            .iface(l.ia)
            .unwrap()
            .arp
            .held(ip("10.0.0.2")),
        4
    );
    let got = collect(&mut l.sim, l.a, sock, 10, Duration::from_secs(3));
    let mut seqs: Vec<u16> = got.iter().map(seq_of).collect();
    seqs.sort();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    assert_eq!(l.sim.stack(l.a).v4.arp.hold_overflow, 6);
}

#[test]
fn arp_cache_is_bounded_and_evicts_the_oldest() {
    let cfg = Config {
        arp_max_entries: 4,
        ..Config::default()
    };
    let mut l = lan(15, cfg, Config::default(), LinkCfg::default());
    let sock = open_ping(&mut l.sim, l.a);
    for host in 10..20 {
        ping(&mut l.sim, l.a, sock, &format!("10.0.0.{host}"), host, 8);
        l.sim.run_for(Duration::from_millis(10));
        assert!(l.sim.stack(l.a).iface(l.ia).unwrap().arp.len() <= 4);
    }
    let left: Vec<IpAddr> = l
        .sim
        .stack(l.a)
        .arp_entries()
        .iter()
        .map(|e| e.ip)
        .collect();
    let want: Vec<IpAddr> = (16..20)
        .map(|h| IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)))
        .collect();
    assert_eq!(left, want);
    let st = l.sim.stack(l.a).v4.arp;
    assert_eq!(st.evicted, 6);
    assert_eq!(st.dropped_flushed, 6);
}

#[test]
fn gratuitous_arp_announces_new_addresses_and_updates_neighbours() {
    let mut sim = Sim::new(16);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let c = sim.add_node("c");
    let v = sim.segment(&[a, b, c], LinkCfg::default());
    let (ia, ib, ic) = (v[0], v[1], v[2]);
    addr(&mut sim, b, ib, "10.0.0.2", 24);
    addr(&mut sim, c, ic, "10.0.0.3", 24);
    sim.capture();
    addr(&mut sim, a, ia, "10.0.0.1", 24);
    let g: Vec<_> = sim.take_captured().iter().filter_map(arp_of).collect();
    assert_eq!(g.len(), 1);
    let (dst, p) = g[0];
    assert_eq!(dst, Mac::BROADCAST);
    assert_eq!(
        (p.op(), p.spa(), p.tpa()),
        (1, ip("10.0.0.1"), ip("10.0.0.1"))
    );
    assert_eq!(p.sha(), mac_of(&sim, a, ia));

    let sock = open_ping(&mut sim, b);
    ping(&mut sim, b, sock, "10.0.0.1", 1, 8);
    assert_eq!(
        collect(&mut sim, b, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    assert_eq!(
        sim.stack(b).iface(ib).unwrap().arp.lookup(ip("10.0.0.1")),
        Some(mac_of(&sim, a, ia))
    );

    // The address moves to c; its announcement updates b's entry (RFC 826
    // merge) without b asking.
    sim.with(a, |s, _| s.del_addr4(ia, ip("10.0.0.1"))).unwrap();
    addr(&mut sim, c, ic, "10.0.0.1", 24);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.stack(b).iface(ib).unwrap().arp.lookup(ip("10.0.0.1")),
        Some(mac_of(&sim, c, ic))
    );
    ping(&mut sim, b, sock, "10.0.0.1", 2, 8);
    assert_eq!(
        collect(&mut sim, b, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    assert_eq!(sim.stack(c).v4.icmp.in_echo_requests, 1);
    // A station announcing an address we hold is a conflict (RFC 5227).
    addr(&mut sim, a, ia, "10.0.0.3", 24);
    sim.run_for(Duration::from_millis(10));
    assert!(sim.stack(c).v4.arp.conflicts >= 1);
}

#[test]
fn arp_delete_and_interface_down_flush_entries() {
    let mut l = plain_lan(17);
    let sock = open_ping(&mut l.sim, l.a);
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 1, 8);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    assert!(l.sim.with(l.a, |s, _| s.arp_delete(ip("10.0.0.2"))));
    assert!(!l.sim.with(l.a, |s, _| s.arp_delete(ip("10.0.0.2"))));
    assert!(l.sim.stack(l.a).arp_entries().is_empty());

    ping(&mut l.sim, l.a, sock, "10.0.0.2", 2, 8);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    assert_eq!(l.sim.stack(l.a).arp_entries().len(), 1);
    let ia = l.ia;
    l.sim.with(l.a, |s, ctx| s.set_up(ctx, ia, false)).unwrap();
    assert!(l.sim.stack(l.a).arp_entries().is_empty());
}

// ---------------------------------------------------------------- echo

#[test]
fn ping_between_two_hosts_with_the_socket_api() {
    let mut l = plain_lan(21);
    let s1 = open_ping(&mut l.sim, l.a);
    let s2 = open_ping(&mut l.sim, l.a);
    let (id1, id2) = (ident_of(&l.sim, l.a, s1), ident_of(&l.sim, l.a, s2));
    assert_ne!(id1, id2, "each socket has its own identifier");
    ping(&mut l.sim, l.a, s1, "10.0.0.2", 7, 56);
    let got = collect(&mut l.sim, l.a, s1, 1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.from, IpAddr::V4(ip("10.0.0.2")));
    assert_eq!(r.ttl, 64);
    assert_eq!(r.icmp.len(), 64);
    assert_eq!((r.icmp[0], r.icmp[1]), (0, 0));
    assert_eq!(u16::from_be_bytes([r.icmp[4], r.icmp[5]]), id1);
    assert_eq!(seq_of(r), 7);
    assert_eq!(&r.icmp[8..], &echo_request(7, 56)[8..]);
    assert_eq!(checksum(&r.icmp), 0);
    assert!(l.sim.node(l.a).ctx.ready.contains(&s1));
    // The other socket saw nothing.
    assert!(l.sim.with(l.a, |s, _| s.ping_recv(s2)).is_none());
    let st = l.sim.stack(l.b).v4.icmp;
    assert_eq!((st.in_echo_requests, st.out_echo_replies), (1, 1));

    // Closed sockets refuse sends; their identifier is free again.
    l.sim.with(l.a, |s, c| s.socket_close(c, s1));
    let m = echo_request(8, 8);
    let e = l.sim.with(l.a, |s, ctx| {
        s.ping_send(ctx, s1, IpAddr::V4(ip("10.0.0.2")), &m)
    });
    assert_eq!(e, Err(Error::BadSocket));
    // Wrong family and non-echo messages are refused.
    let e = l.sim.with(l.a, |s, ctx| {
        s.ping_send(ctx, s2, "::1".parse().unwrap(), &m)
    });
    assert!(matches!(e, Err(Error::Invalid(_))));
    let mut not_echo = m.clone();
    not_echo[0] = 13;
    let e = l.sim.with(l.a, |s, ctx| {
        s.ping_send(ctx, s2, IpAddr::V4(ip("10.0.0.2")), &not_echo)
    });
    assert!(matches!(e, Err(Error::Invalid(_))));
    let e = l.sim.with(l.a, |s, ctx| {
        s.ping_send(ctx, s2, IpAddr::V4(ip("10.0.0.2")), &m[..5])
    });
    assert!(matches!(e, Err(Error::Invalid(_))));
}

#[test]
fn ping_socket_queue_is_bounded() {
    let mut l = plain_lan(22);
    let sock = open_ping(&mut l.sim, l.a);
    for seq in 0..80 {
        ping(&mut l.sim, l.a, sock, "10.0.0.2", seq, 8);
        l.sim.run_for(Duration::from_millis(5));
    }
    l.sim.run_for(Duration::from_secs(1));
    match l.sim.stack(l.a).sockets.get(sock) {
        Some(SocketKind::Ping(p)) => {
            assert_eq!(p.queued(), iopkt_stack::socket::PING_RX_QUEUE);
            assert_eq!(p.rx_dropped, 80 - iopkt_stack::socket::PING_RX_QUEUE as u64);
        }
        _ => panic!("socket gone"),
    }
}

#[test]
fn ping_own_address_and_localhost_stay_off_the_wire() {
    let mut l = plain_lan(23);
    l.sim.capture();
    let sock = open_ping(&mut l.sim, l.a);
    let lo_before = l.sim.stack(l.a).iface(1).unwrap().stats.tx_packets;
    ping(&mut l.sim, l.a, sock, "10.0.0.1", 1, 100);
    ping(&mut l.sim, l.a, sock, "127.0.0.1", 2, 3000);
    ping(&mut l.sim, l.a, sock, "127.0.0.5", 3, 8);
    let got = collect(&mut l.sim, l.a, sock, 3, Duration::from_secs(1));
    let mut from: Vec<(u16, IpAddr)> = got.iter().map(|r| (seq_of(r), r.from)).collect();
    from.sort();
    assert_eq!(
        from,
        vec![
            (1, IpAddr::V4(ip("10.0.0.1"))),
            (2, IpAddr::V4(ip("127.0.0.1"))),
            (3, IpAddr::V4(ip("127.0.0.5"))),
        ]
    );
    let big = got.iter().find(|r| seq_of(r) == 2).unwrap();
    assert_eq!(&big.icmp[8..], &echo_request(2, 3000)[8..]);
    assert!(
        l.sim.take_captured().is_empty(),
        "loopback traffic reached the wire"
    );
    let lo = l.sim.stack(l.a).iface(1).unwrap();
    assert_eq!(lo.kind, IfKind::Loopback);
    assert_eq!(lo.stats.tx_packets - lo_before, 6);
}

#[test]
fn broadcast_echo_is_answered_only_when_enabled() {
    let mut sim = Sim::new(24);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let c = sim.add_node_with(
        "c",
        Config {
            icmp_bmcast_echo: true,
            ..Config::default()
        },
    );
    let v = sim.segment(&[a, b, c], LinkCfg::default());
    addr(&mut sim, a, v[0], "10.0.0.1", 24);
    addr(&mut sim, b, v[1], "10.0.0.2", 24);
    addr(&mut sim, c, v[2], "10.0.0.3", 24);
    let sock = open_ping(&mut sim, a);
    ping(&mut sim, a, sock, "10.0.0.255", 1, 8);
    sim.run_for(Duration::from_secs(1));
    let got = collect(&mut sim, a, sock, 5, Duration::from_millis(1));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, IpAddr::V4(ip("10.0.0.3")));
    assert_eq!(sim.stack(b).v4.icmp.bmcast_echo_ignored, 1);
    assert_eq!(sim.stack(b).v4.icmp.out_echo_replies, 0);
}

// ---------------------------------------------------------------- routing

#[test]
fn ping_across_a_router() {
    let mut t = routed(31, forwarding(), Config::default(), LinkCfg::default());
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.0.2.2", 1, 56);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].icmp[0], 0);
    assert_eq!(got[0].from, IpAddr::V4(ip("10.0.2.2")));
    assert_eq!(got[0].ttl, 63, "one hop took one from the TTL");
    assert_eq!(t.sim.stack(t.r).v4.stats.forwarded, 2);
    // The router's own addresses answer too, on either side.
    ping(&mut t.sim, t.a, sock, "10.0.2.1", 2, 8);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got[0].ttl, 64);
    assert_eq!(t.sim.stack(t.r).v4.stats.forwarded, 2);
}

#[test]
fn ttl_expiry_at_the_router_gives_time_exceeded() {
    let acfg = Config {
        ttl: 1,
        ..Config::default()
    };
    let mut t = routed(32, forwarding(), acfg, LinkCfg::default());
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.0.2.2", 5, 24);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!((e.icmp[0], e.icmp[1]), (11, 0));
    assert_eq!(e.from, IpAddr::V4(ip("10.0.1.1")));
    // The quote holds our request: IP header, then the echo with our seq.
    let q = Ipv4Hdr::ref_from_prefix(&e.icmp[8..]).unwrap().0;
    assert_eq!(q.dst(), ip("10.0.2.2"));
    assert_eq!(&e.icmp[28..36][6..8], &5u16.to_be_bytes());
    assert_eq!(t.sim.stack(t.r).v4.stats.ttl_exceeded, 1);
    assert_eq!(t.sim.stack(t.b).v4.icmp.in_echo_requests, 0);
}

#[test]
fn no_route_is_an_error_locally_and_an_unreachable_from_a_router() {
    let mut l = plain_lan(33);
    let sock = open_ping(&mut l.sim, l.a);
    let m = echo_request(1, 8);
    let e = l.sim.with(l.a, |s, ctx| {
        s.ping_send(ctx, sock, IpAddr::V4(ip("192.0.2.1")), &m)
    });
    assert_eq!(e, Err(Error::NetUnreachable));
    assert_eq!(l.sim.stack(l.a).v4.stats.no_route, 1);

    let mut t = routed(34, forwarding(), Config::default(), LinkCfg::default());
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.9.9.9", 1, 8);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].icmp[0], got[0].icmp[1]), (3, 0), "net unreachable");
    assert_eq!(got[0].from, IpAddr::V4(ip("10.0.1.1")));
    assert_eq!(t.sim.stack(t.r).v4.stats.no_route, 1);
}

#[test]
fn forwarding_off_drops_transit_packets() {
    let mut t = routed(35, Config::default(), Config::default(), LinkCfg::default());
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.0.2.2", 1, 8);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(5));
    assert!(got.is_empty());
    assert_eq!(t.sim.stack(t.r).v4.stats.not_forwarded, 1);
    assert_eq!(t.sim.stack(t.r).v4.stats.forwarded, 0);
    assert_eq!(t.sim.stack(t.b).v4.stats.received, 0);
}

// ---------------------------------------------------------------- fragments

#[test]
fn a_3000_byte_echo_is_fragmented_and_reassembled_both_ways() {
    let mut l = plain_lan(41);
    let sock = open_ping(&mut l.sim, l.a);
    // Resolve first so that only the echo is on the wire afterwards.
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 0, 8);
    assert_eq!(
        collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    l.sim.capture();
    ping(&mut l.sim, l.a, sock, "10.0.0.2", 1, 3000);
    let got = collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].icmp.len(), 3008);
    assert_eq!(&got[0].icmp[8..], &echo_request(1, 3000)[8..]);
    let frames = l.sim.take_captured();
    assert!(
        frames.iter().all(|c| c.frame.len() <= 1514),
        "a frame above the MTU"
    );
    for n in [l.a, l.b] {
        let frags: Vec<&Ipv4Hdr> = frames
            .iter()
            .filter(|c| c.from == n)
            .filter_map(ipv4_of)
            .filter(|h| h.is_fragment())
            .collect();
        assert_eq!(frags.len(), 3, "3008 bytes of ICMP make three fragments");
        assert!(frags.iter().all(|h| h.frag_offset() % 8 == 0));
        assert_eq!(frags.iter().filter(|h| !h.more_fragments()).count(), 1);
        let s = l.sim.stack(n);
        assert_eq!(s.v4.stats.fragments_created, 3);
        assert_eq!(s.v4.reasm.stats.reassembled, 1);
    }
}

#[test]
fn a_router_fragments_for_a_smaller_link_and_refuses_with_df() {
    let small = LinkCfg {
        mtu: Some(1000),
        ..LinkCfg::default()
    };
    let mut t = routed(42, forwarding(), Config::default(), small);
    t.sim.capture();
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.0.2.2", 1, 1400);
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].icmp[8..], &echo_request(1, 1400)[8..]);
    let frames = t.sim.take_captured();
    let on_small = |c: &&Captured| (c.from == t.r && c.ifindex == t.rb) || c.from == t.b;
    assert!(
        frames
            .iter()
            .filter(on_small)
            .all(|c| c.frame.len() <= 1014)
    );
    assert_eq!(t.sim.stack(t.r).v4.stats.fragments_created, 2);
    assert_eq!(t.sim.stack(t.r).v4.stats.fragmented, 1);

    // With DF set the router says how much the next hop takes (RFC 1191).
    let ident = ident_of(&t.sim, t.a, sock);
    let mut m = echo_request(2, 1400);
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    let m = with_icmp_checksum(m);
    let sent = t.sim.with(t.a, |s, ctx| {
        s.ipv4_send(
            ctx,
            None,
            ip("10.0.2.2"),
            1,
            PktBuf::from_slice(&m),
            None,
            true,
        )
    });
    assert_eq!(sent, Ok(()));
    let got = collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!((e.icmp[0], e.icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([e.icmp[6], e.icmp[7]]), 1000);
    assert_eq!(e.from, IpAddr::V4(ip("10.0.1.1")));
    let q = Ipv4Hdr::ref_from_prefix(&e.icmp[8..]).unwrap().0;
    assert!(q.dont_fragment());
    assert_eq!(t.sim.stack(t.r).v4.stats.cant_fragment, 1);
    assert!(e.icmp.len() + 20 <= 576, "an error fits 576 bytes");

    // A host refuses to send a DF datagram larger than its own link.
    let big = with_icmp_checksum(echo_request(3, 2000));
    let sent = t.sim.with(t.a, |s, ctx| {
        s.ipv4_send(
            ctx,
            None,
            ip("10.0.2.2"),
            1,
            PktBuf::from_slice(&big),
            None,
            true,
        )
    });
    assert_eq!(sent, Err(Error::MessageTooLarge));
}

#[test]
fn reassembly_timeout_sends_time_exceeded_only_with_the_first_fragment() {
    let mut l = plain_lan(43);
    let sock = open_ping(&mut l.sim, l.a);
    let ident = ident_of(&l.sim, l.a, sock);
    let (ma, mb) = (mac_of(&l.sim, l.a, l.ia), mac_of(&l.sim, l.b, l.ib));
    let mut m = echo_request(9, 40);
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    let m = with_icmp_checksum(m);
    let (a4, b4) = (ip("10.0.0.1"), ip("10.0.0.2"));
    // Datagram 77: only its first 24 bytes arrive. Datagram 78: only a
    // later piece.
    let first = ipv4_frame(mb, ma, a4, b4, 1, 77, FLAG_MF, &m[..24]);
    let later = ipv4_frame(mb, ma, a4, b4, 1, 78, 3, &m[24..]);
    let ib = l.ib;
    inject(&mut l.sim, l.b, ib, &first);
    inject(&mut l.sim, l.b, ib, &later);
    assert_eq!(l.sim.stack(l.b).v4.reasm.pending(), 2);
    l.sim.capture();
    l.sim.run_for(Duration::from_secs(29));
    assert_eq!(l.sim.stack(l.b).v4.reasm.pending(), 2);
    let got = collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].icmp[0], got[0].icmp[1]), (11, 1));
    let q = Ipv4Hdr::ref_from_prefix(&got[0].icmp[8..]).unwrap().0;
    assert_eq!(q.ident.get(), 77);
    let b = l.sim.stack(l.b);
    assert_eq!(b.v4.reasm.stats.timeouts, 2);
    assert_eq!(b.v4.reasm.pending(), 0);
    assert_eq!(b.v4.icmp.out_time_exceeded, 1);
    let sent_b: usize = l
        .sim
        .take_captured()
        .iter()
        .filter(|c| c.from == l.b)
        .filter_map(ipv4_of)
        .count();
    assert_eq!(sent_b, 1);
}

#[test]
fn reordering_and_duplication_do_not_break_reassembly() {
    let link = LinkCfg {
        impair: Impairment {
            reorder: 30.0,
            dup: 30.0,
            ..Impairment::default()
        },
        ..LinkCfg::default()
    };
    let mut l = lan(44, Config::default(), Config::default(), link);
    let sock = open_ping(&mut l.sim, l.a);
    let mut seqs = Vec::new();
    for seq in 1..=10 {
        ping(&mut l.sim, l.a, sock, "10.0.0.2", seq, 3000);
        for r in collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2)) {
            assert_eq!(r.icmp[0], 0);
            assert_eq!(&r.icmp[8..], &echo_request(seq_of(&r), 3000)[8..]);
            seqs.push(seq_of(&r));
        }
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs, (1..=10).collect::<Vec<u16>>());
    assert!(l.sim.stack(l.b).v4.reasm.stats.reassembled >= 10);
}

#[test]
fn ping_survives_a_lossy_link_through_arp_retries() {
    let link = LinkCfg {
        impair: Impairment {
            loss: 30.0,
            ..Impairment::default()
        },
        ..LinkCfg::default()
    };
    let mut l = lan(45, Config::default(), Config::default(), link);
    let sock = open_ping(&mut l.sim, l.a);
    let mut replies = 0;
    for seq in 1..=30 {
        ping(&mut l.sim, l.a, sock, "10.0.0.2", seq, 8);
        replies += collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(1))
            .iter()
            .filter(|r| r.icmp[0] == 0)
            .count();
    }
    // Each echo and its reply cross independently: about half come back.
    assert!((6..30).contains(&replies), "{replies} replies of 30");
    assert!(l.sim.stack(l.a).v4.arp.requests_sent >= 1);
    assert_eq!(
        l.sim
            .stack(l.a)
            .iface(l.ia)
            .unwrap()
            .arp
            .lookup(ip("10.0.0.2")),
        Some(mac_of(&l.sim, l.b, l.ib))
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn icmp_errors_are_rate_limited() {
    let rcfg = Config {
        forwarding4: true,
        icmp_err_rate: 5,
        ..Config::default()
    };
    let mut t = routed(51, rcfg, Config::default(), LinkCfg::default());
    let sock = open_ping(&mut t.sim, t.a);
    ping(&mut t.sim, t.a, sock, "10.0.1.1", 0, 8);
    assert_eq!(
        collect(&mut t.sim, t.a, sock, 1, Duration::from_secs(2)).len(),
        1
    );
    for seq in 1..=50 {
        ping(&mut t.sim, t.a, sock, "10.9.9.9", seq, 8);
    }
    let got = collect(&mut t.sim, t.a, sock, 50, Duration::from_millis(500));
    assert_eq!(got.len(), 5);
    let st = t.sim.stack(t.r).v4.icmp;
    assert_eq!((st.out_dest_unreach, st.errors_rate_limited), (5, 45));
    // A second later the bucket is full again, and no fuller.
    t.sim.run_for(Duration::from_secs(2));
    for seq in 51..=60 {
        ping(&mut t.sim, t.a, sock, "10.9.9.9", seq, 8);
    }
    let got = collect(&mut t.sim, t.a, sock, 50, Duration::from_millis(500));
    assert_eq!(got.len(), 5);
}

#[test]
fn malformed_datagrams_are_counted_and_dropped() {
    let mut l = plain_lan(52);
    let (ma, mb) = (mac_of(&l.sim, l.a, l.ia), mac_of(&l.sim, l.b, l.ib));
    let (a4, b4) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let echo = with_icmp_checksum(echo_request(1, 16));
    let good = ipv4_frame(mb, ma, a4, b4, 1, 1, 0, &echo);
    let ib = l.ib;

    let mut bad_sum = good.clone();
    bad_sum[14 + 8] = 3; // TTL changed, checksum not
    let mut truncated = good.clone();
    truncated[14 + 2..14 + 4].copy_from_slice(&200u16.to_be_bytes());
    let h = Ipv4Hdr::mut_from_prefix(&mut truncated[14..]).unwrap().0;
    h.fill_checksum();
    let short = good[..14 + 12].to_vec();
    let mut v6 = good.clone();
    v6[14] = 0x65;
    let h = Ipv4Hdr::mut_from_prefix(&mut v6[14..]).unwrap().0;
    h.fill_checksum();
    let mut small_ihl = good.clone();
    small_ihl[14] = 0x44;
    let mut bad_icmp = good.clone();
    let n = bad_icmp.len();
    bad_icmp[n - 1] ^= 0xff;
    let martian = ipv4_frame(mb, ma, ip("224.0.0.9"), b4, 1, 1, 0, &echo);
    let loop_src = ipv4_frame(mb, ma, ip("127.0.0.1"), b4, 1, 1, 0, &echo);

    l.sim.capture();
    for f in [
        &bad_sum, &truncated, &short, &v6, &small_ihl, &bad_icmp, &martian, &loop_src,
    ] {
        inject(&mut l.sim, l.b, ib, f);
    }
    l.sim.run_for(Duration::from_secs(1));
    let st = l.sim.stack(l.b).v4.stats;
    assert_eq!(st.received, 8);
    assert_eq!(st.bad_checksum, 1);
    assert_eq!(st.too_short, 2);
    assert_eq!(st.bad_header, 2);
    assert_eq!(st.martians, 2);
    assert_eq!(l.sim.stack(l.b).v4.icmp.in_errors, 1);
    assert_eq!(l.sim.stack(l.b).v4.icmp.in_echo_requests, 0);
    // IPv6 start-up traffic (MLD, router solicitations) may be on the wire;
    // no IPv4 answer may be.
    assert!(
        l.sim
            .take_captured()
            .iter()
            .all(|c| c.from != l.b || c.frame[12..14] != [0x08, 0x00]),
        "b answered garbage"
    );

    // The same echo, intact and padded by Ethernet, is answered.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xee; 20]);
    inject(&mut l.sim, l.b, ib, &padded);
    l.sim.run_for(Duration::from_secs(1));
    assert_eq!(l.sim.stack(l.b).v4.icmp.out_echo_replies, 1);
    let reply = l
        .sim
        .take_captured()
        .into_iter()
        .find(|c| c.from == l.b && ipv4_of(c).is_some())
        .expect("an echo reply");
    let h = ipv4_of(&reply).unwrap();
    assert_eq!(h.total_len(), 20 + echo.len(), "padding was not echoed");
}

#[test]
fn unknown_protocols_get_protocol_unreachable_except_for_broadcasts() {
    let mut l = plain_lan(53);
    let (ma, mb) = (mac_of(&l.sim, l.a, l.ia), mac_of(&l.sim, l.b, l.ib));
    let (a4, b4) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let ib = l.ib;
    inject(
        &mut l.sim,
        l.b,
        ib,
        &ipv4_frame(mb, ma, a4, b4, 99, 5, 0, &[1; 30]),
    );
    inject(
        &mut l.sim,
        l.b,
        ib,
        &ipv4_frame(Mac::BROADCAST, ma, a4, ip("10.0.0.255"), 99, 6, 0, &[1; 30]),
    );
    l.sim.run_for(Duration::from_secs(1));
    let b = l.sim.stack(l.b);
    assert_eq!(b.v4.stats.unknown_proto, 2);
    assert_eq!(b.v4.icmp.out_dest_unreach, 1);
    assert_eq!(b.v4.icmp.errors_suppressed, 1);
    assert_eq!(l.sim.stack(l.a).v4.icmp.in_dest_unreach, 1);
}

#[test]
fn no_error_about_an_error_or_a_later_fragment() {
    let mut t = routed(54, forwarding(), Config::default(), LinkCfg::default());
    let ra = t.ra;
    let (mr, ma) = (mac_of(&t.sim, t.r, ra), Mac([0x02, 0, 0, 0, 0xaa, 0xaa]));
    let a4 = ip("10.0.1.2");
    // An ICMP error and a later fragment, both for a net with no route.
    let err = with_icmp_checksum(vec![3, 1, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28]);
    inject(
        &mut t.sim,
        t.r,
        ra,
        &ipv4_frame(mr, ma, a4, ip("10.9.9.9"), 1, 1, 0, &err),
    );
    inject(
        &mut t.sim,
        t.r,
        ra,
        &ipv4_frame(mr, ma, a4, ip("10.9.9.9"), 17, 2, 10, &[0; 16]),
    );
    inject(
        &mut t.sim,
        t.r,
        ra,
        &ipv4_frame(mr, ma, a4, ip("10.9.9.9"), 17, 3, 0, &[0; 16]),
    );
    t.sim.run_for(Duration::from_secs(2));
    let r = t.sim.stack(t.r);
    assert_eq!(r.v4.stats.no_route, 3);
    assert_eq!(r.v4.icmp.errors_suppressed, 2);
    assert_eq!(r.v4.icmp.out_dest_unreach, 1);
}

// ---------------------------------------------------------------- hostile input

/// A bare context for driving one stack with arbitrary input.
struct FuzzCtx {
    now: Instant,
    rng: u64,
    sent: usize,
}

impl Ctx for FuzzCtx {
    fn now(&self) -> Instant {
        self.now
    }
    fn random_u64(&mut self) -> u64 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.rng >> 11
    }
    fn transmit(&mut self, _ifindex: IfIndex, _frame: PktBuf) {
        self.sent += 1;
    }
}

fn fuzz_stack(ctx: &mut FuzzCtx) -> (Stack, Mac) {
    let cfg = Config {
        forwarding4: true,
        icmp_bmcast_echo: true,
        reass_timeout_secs: 2,
        arp_max_entries: 8,
        neigh_hold: 2,
        ..Config::default()
    };
    let mut s = Stack::new(ctx, Pool::standard(), cfg);
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    let e0 = s.add_interface("en0", IfKind::Ethernet, mac, 1500).unwrap();
    let e1 = s
        .add_interface("en1", IfKind::Ethernet, Mac([2, 0, 0, 0, 0, 2]), 576)
        .unwrap();
    s.set_up(ctx, e0, true).unwrap();
    s.set_up(ctx, e1, true).unwrap();
    s.add_addr4(ctx, e0, ip("10.0.0.1"), 24, false).unwrap();
    s.add_addr4(ctx, e1, ip("10.0.1.1"), 24, false).unwrap();
    s.routes4
        .add(Route {
            dest: Ipv4Addr::UNSPECIFIED,
            plen: 0,
            gateway: Some(ip("10.0.1.2")),
            ifindex: e1,
            flags: RouteFlags::STATIC,
            expires: None,
        })
        .unwrap();
    (s, mac)
}

const ADDRS: [[u8; 4]; 10] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 0, 255],
    [10, 0, 1, 7],
    [10, 9, 9, 9],
    [127, 0, 0, 1],
    [255, 255, 255, 255],
    [224, 0, 0, 1],
    [0, 0, 0, 0],
    [10, 0, 1, 1],
];

#[derive(Debug, Clone)]
struct FuzzFrame {
    bcast: bool,
    arp: bool,
    ver_ihl: u8,
    len_delta: i16,
    ident: u16,
    frag: u16,
    ttl: u8,
    proto: u8,
    src: usize,
    dst: usize,
    fix_checksum: bool,
    fix_icmp: bool,
    cut: Option<usize>,
    payload: Vec<u8>,
}

fn build(f: &FuzzFrame, mac: Mac) -> Vec<u8> {
    let mut out = vec![0u8; 14];
    let dst = if f.bcast { Mac::BROADCAST } else { mac };
    let ty = if f.arp {
        ethertype::ARP
    } else {
        ethertype::IPV4
    };
    EthHdr::write(&mut out, dst, Mac([2, 9, 9, 9, 9, 9]), ty);
    if f.arp {
        let op = 1 + (f.ident % 3);
        let p = ArpPkt::new(
            op,
            Mac([2, 9, 9, 9, 9, (f.ttl % 4) + 1]),
            Ipv4Addr::from(ADDRS[f.src % ADDRS.len()]),
            Mac::ZERO,
            Ipv4Addr::from(ADDRS[f.dst % ADDRS.len()]),
        );
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(&f.payload[..f.payload.len().min(20)]);
    } else {
        let mut payload = f.payload.clone();
        if f.proto == 1 && f.fix_icmp && payload.len() >= 8 {
            payload = with_icmp_checksum(payload);
        }
        let ihl = (f.ver_ihl & 0x0f) as usize * 4;
        let mut h = vec![0u8; ihl.max(20)];
        h[0] = f.ver_ihl;
        let total = (h.len() + payload.len()) as i64 + f.len_delta as i64;
        h[2..4].copy_from_slice(&(total.clamp(0, 65535) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&f.ident.to_be_bytes());
        h[6..8].copy_from_slice(&f.frag.to_be_bytes());
        h[8] = f.ttl;
        h[9] = f.proto;
        h[12..16].copy_from_slice(&ADDRS[f.src % ADDRS.len()]);
        h[16..20].copy_from_slice(&ADDRS[f.dst % ADDRS.len()]);
        for (i, b) in h.iter_mut().enumerate().skip(20) {
            *b = f.payload.get(i).copied().unwrap_or(1);
        }
        if f.fix_checksum {
            let hl = ihl.clamp(20, h.len());
            let c = checksum(&h[..hl]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(&h);
        out.extend_from_slice(&payload);
    }
    if let Some(c) = f.cut {
        out.truncate(c % (out.len() + 1));
    }
    out
}

fn fuzz_frame() -> impl proptest::strategy::Strategy<Value = FuzzFrame> {
    use proptest::prelude::*;
    (
        (
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop_oneof![4 => Just(0x45u8), 1 => Just(0x46u8), 1 => any::<u8>()],
        ),
        (
            prop_oneof![4 => Just(0i16), 1 => -40i16..40],
            0u16..4,
            prop_oneof![2 => Just(0u16), 1 => Just(FLAG_MF), 1 => Just(FLAG_DF), 2 => any::<u16>()],
        ),
        (
            prop_oneof![Just(1u8), Just(64u8), any::<u8>()],
            prop_oneof![3 => Just(1u8), 1 => Just(17u8), 1 => any::<u8>()],
        ),
        (
            0..ADDRS.len(),
            0..ADDRS.len(),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.7),
        ),
        (
            prop::option::weighted(0.1, any::<usize>()),
            prop::collection::vec(any::<u8>(), 0..1700),
        ),
    )
        .prop_map(
            |(
                (bcast, arp, ver_ihl),
                (len_delta, ident, frag),
                (ttl, proto),
                (src, dst, fix_checksum, fix_icmp),
                (cut, mut payload),
            )| {
                // Echo requests often enough to reach the reply path.
                if proto == 1 && payload.len() >= 8 && ident % 2 == 0 {
                    payload[0] = 8;
                    payload[1] = 0;
                }
                FuzzFrame {
                    bcast,
                    arp,
                    ver_ihl,
                    len_delta,
                    ident,
                    frag,
                    ttl,
                    proto,
                    src,
                    dst,
                    fix_checksum,
                    fix_icmp,
                    cut,
                    payload,
                }
            },
        )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    #[test]
    fn random_frames_never_panic_the_stack(
        frames in proptest::collection::vec((fuzz_frame(), 0u64..3_000, proptest::bool::ANY), 1..24),
    ) {
        let mut ctx = FuzzCtx { now: Instant::from_millis(1), rng: 7, sent: 0 };
        let (mut s, mac) = fuzz_stack(&mut ctx);
        for (f, wait_ms, on_en1) in &frames {
            let bytes = build(f, mac);
            s.input(&mut ctx, if *on_en1 { 3 } else { 2 }, [PktBuf::from_slice(&bytes)]);
            ctx.now = ctx.now + Duration::from_millis(*wait_ms);
            s.poll(&mut ctx);
        }
        // Let every timer run out; the stack must settle with nothing held.
        for _ in 0..100 {
            match s.next_deadline() {
                Some(d) => {
                    ctx.now = d.max(ctx.now);
                    s.poll(&mut ctx);
                }
                None => break,
            }
        }
        proptest::prop_assert_eq!(s.v4.reasm.pending(), 0);
        proptest::prop_assert!(s.arp_entries().iter().all(|e| e.state != "incomplete"));
    }
}

#[test]
fn the_source_is_the_outgoing_address_in_the_destination_subnet() {
    let mut l = plain_lan(55);
    let (a, b, ia, ib) = (l.a, l.b, l.ia, l.ib);
    addr(&mut l.sim, a, ia, "192.168.5.1", 24);
    addr(&mut l.sim, b, ib, "192.168.5.2", 24);
    let sock = open_ping(&mut l.sim, a);
    ping(&mut l.sim, a, sock, "192.168.5.2", 1, 8);
    let got = collect(&mut l.sim, a, sock, 1, Duration::from_secs(2));
    assert_eq!(got[0].from, IpAddr::V4(ip("192.168.5.2")));
    let learned: Vec<IpAddr> = l.sim.stack(b).arp_entries().iter().map(|e| e.ip).collect();
    assert_eq!(learned, vec![IpAddr::V4(ip("192.168.5.1"))]);
    assert_eq!(
        l.sim.stack(a).ipv4_select_source(ip("10.0.0.9")),
        Some(ip("10.0.0.1"))
    );
    assert_eq!(
        l.sim.stack(a).ipv4_select_source(ip("10.0.0.1")),
        Some(ip("10.0.0.1"))
    );
    assert_eq!(l.sim.stack(a).ipv4_select_source(ip("198.51.100.9")), None);
    // A source that is not ours is refused.
    let m = with_icmp_checksum(echo_request(2, 8));
    let e = l.sim.with(a, |s, ctx| {
        s.ipv4_send(
            ctx,
            Some(ip("10.0.0.77")),
            ip("10.0.0.2"),
            1,
            PktBuf::from_slice(&m),
            None,
            false,
        )
    });
    assert_eq!(e, Err(Error::AddrNotAvailable));
}

#[test]
fn fragments_with_different_header_lengths_reassemble_under_the_first_header() {
    let mut l = plain_lan(56);
    let sock = open_ping(&mut l.sim, l.a);
    let ident = ident_of(&l.sim, l.a, sock);
    let (ma, mb) = (mac_of(&l.sim, l.a, l.ia), mac_of(&l.sim, l.b, l.ib));
    let (a4, b4) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let mut m = echo_request(4, 40);
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    let m = with_icmp_checksum(m);
    // First fragment with four NOP options (not copied into later ones).
    let mut first = ipv4_frame(mb, ma, a4, b4, 1, 900, FLAG_MF, &m[..16]);
    first.splice(34..34, [1u8, 1, 1, 1]);
    first[14] = 0x46;
    first[16..18].copy_from_slice(&(24u16 + 16).to_be_bytes());
    let h = Ipv4Hdr::mut_from_prefix(&mut first[14..]).unwrap().0;
    h.checksum = iopkt_wire::U16::new(0);
    let c = checksum(&first[14..38]);
    first[24..26].copy_from_slice(&c.to_be_bytes());
    let last = ipv4_frame(mb, ma, a4, b4, 1, 900, 2, &m[16..]);
    let ib = l.ib;
    // The last piece completes the datagram, so its shorter header must
    // not be taken for the whole datagram's.
    inject(&mut l.sim, l.b, ib, &first);
    inject(&mut l.sim, l.b, ib, &last);
    let got = collect(&mut l.sim, l.a, sock, 1, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].icmp, {
        let mut r = m.clone();
        r[0] = 0;
        with_icmp_checksum(r)
    });
}

#[test]
fn unicast_datagrams_in_link_broadcasts_are_discarded() {
    let mut l = plain_lan(57);
    let ma = mac_of(&l.sim, l.a, l.ia);
    let echo = with_icmp_checksum(echo_request(1, 8));
    let f = ipv4_frame(
        Mac::BROADCAST,
        ma,
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        1,
        1,
        0,
        &echo,
    );
    let ib = l.ib;
    inject(&mut l.sim, l.b, ib, &f);
    l.sim.run_for(Duration::from_secs(1));
    let b = l.sim.stack(l.b);
    assert_eq!(b.v4.stats.l2_bcast_unicast, 1);
    assert_eq!(b.v4.icmp.in_echo_requests, 0);
}
