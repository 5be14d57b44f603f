//! IPv6, ICMPv6 and neighbour discovery between whole stacks on the
//! simulated network.

use std::net::Ipv6Addr;
use std::time::Duration;

use iopkt_pkt::PktBuf;
use iopkt_sim::{Captured, LinkCfg, NodeId, Rng, Sim};
use iopkt_stack::icmp6::icmp6_checksum;
use iopkt_stack::iface::Addr6State;
use iopkt_stack::ipv6::{link_local_from_mac, solicited_node};
use iopkt_stack::route::{Route, RouteFlags};
use iopkt_stack::{Config, IfIndex, Mac, Stack};
use iopkt_wire::icmp::v6 as t;
use iopkt_wire::ipproto;

const EN0: IfIndex = 2;
const EN1: IfIndex = 3;

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn lat(m: u64) -> LinkCfg {
    LinkCfg {
        latency: ms(m),
        ..Default::default()
    }
}

/// Joins two hosts and plugs the cable in: the simulator brings its
/// interfaces administratively up but leaves carrier to the test.
fn connect(sim: &mut Sim, a: NodeId, b: NodeId, cfg: LinkCfg) -> (IfIndex, IfIndex) {
    let v = segment(sim, &[a, b], cfg);
    (v[0], v[1])
}

/// A shared segment with carrier on every port.
fn segment(sim: &mut Sim, nodes: &[NodeId], cfg: LinkCfg) -> Vec<IfIndex> {
    let v = sim.segment(nodes, cfg);
    for (&n, &ifx) in nodes.iter().zip(&v) {
        sim.with(n, |s, ctx| s.set_link(ctx, ifx, true)).unwrap();
    }
    v
}

fn addr_state(sim: &Sim, n: NodeId, ifx: IfIndex, a: Ipv6Addr) -> Option<Addr6State> {
    sim.stack(n).iface(ifx)?.addr6(&a).map(|x| x.state)
}

fn link_local(sim: &Sim, n: NodeId, ifx: IfIndex) -> Ipv6Addr {
    link_local_from_mac(sim.stack(n).iface(ifx).unwrap().mac)
}

fn mac_of(sim: &Sim, n: NodeId, ifx: IfIndex) -> Mac {
    sim.stack(n).iface(ifx).unwrap().mac
}

fn icmp_in(sim: &Sim, n: NodeId, ty: u8) -> u64 {
    sim.stack(n).v6.icmp_stats.in_by_type[ty as usize]
}

fn neighbor_state(sim: &Sim, n: NodeId, a: Ipv6Addr) -> Option<&'static str> {
    sim.stack(n)
        .nd_entries()
        .into_iter()
        .find(|e| e.ip == std::net::IpAddr::V6(a))
        .map(|e| e.state)
}

/// Two hosts on one link, each with a global address that passed DAD.
fn pair(seed: u64, cfg: LinkCfg) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    connect(&mut sim, a, b, cfg);
    sim.with(a, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8::a"), 64))
        .unwrap();
    sim.with(b, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8::b"), 64))
        .unwrap();
    sim.run_for(secs(3));
    assert_eq!(
        addr_state(&sim, a, EN0, a6("2001:db8::a")),
        Some(Addr6State::Preferred)
    );
    assert_eq!(
        addr_state(&sim, b, EN0, a6("2001:db8::b")),
        Some(Addr6State::Preferred)
    );
    (sim, a, b)
}

fn echo(sim: &mut Sim, from: NodeId, dst: Ipv6Addr, seq: u16, body: &[u8]) {
    let r = sim.with(from, |s, ctx| {
        let [s0, s1] = seq.to_be_bytes();
        s.icmp6_send(ctx, dst, t::ECHO_REQUEST, 0, [0x12, 0x34, s0, s1], body)
    });
    r.unwrap();
}

/// An IPv6 packet seen on the wire.
#[derive(Debug, Clone)]
struct Seen {
    from: NodeId,
    eth_dst: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop: u8,
    payload: Vec<u8>,
    wire_len: usize,
}

fn parse(c: &Captured) -> Option<Seen> {
    let f = &c.frame;
    if f.len() < 54 || f[12..14] != [0x86, 0xdd] {
        return None;
    }
    let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
    let ip = &f[14..];
    Some(Seen {
        from: c.from,
        eth_dst: Mac(f[0..6].try_into().unwrap()),
        src: Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()),
        dst: Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()),
        next: ip[6],
        hop: ip[7],
        payload: ip.get(40..40 + plen)?.to_vec(),
        wire_len: f.len(),
    })
}

/// ICMPv6 messages (directly after the IPv6 header) seen on the wire.
fn icmps(cap: &[Captured]) -> Vec<Seen> {
    cap.iter()
        .filter_map(parse)
        .filter(|s| s.next == ipproto::ICMPV6 && !s.payload.is_empty())
        .collect()
}

fn of_type(cap: &[Captured], ty: u8) -> Vec<Seen> {
    icmps(cap)
        .into_iter()
        .filter(|s| s.payload[0] == ty)
        .collect()
}

/// An ICMPv6 message with its checksum.
fn icmp(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = icmp6_checksum(src, dst, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An Ethernet frame carrying an IPv6 packet.
fn frame6(
    eth_dst: Mac,
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst.0);
    f.extend_from_slice(&eth_src.0);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next);
    f.push(hop);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(payload);
    f
}

fn inject(sim: &mut Sim, n: NodeId, ifx: IfIndex, frame: &[u8]) {
    sim.with(n, |s, ctx| s.input(ctx, ifx, [PktBuf::from_slice(frame)]));
}

const PEER_MAC: Mac = Mac([0x02, 0xaa, 0, 0, 0, 1]);

#[test]
fn link_local_address_appears_and_passes_dad() {
    let mut sim = Sim::new(11);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    sim.capture();
    connect(&mut sim, a, b, lat(1));
    let ll = link_local(&sim, a, EN0);
    // Modified EUI-64 of 02:00:00:00:00:00: the U/L bit flips to 0.
    assert_eq!(ll, a6("fe80::ff:fe00:0"));
    assert_eq!(addr_state(&sim, a, EN0, ll), Some(Addr6State::Tentative));
    assert_eq!(sim.stack(a).iface(EN0).unwrap().link_local6(), None);
    sim.run_for(secs(3));
    assert_eq!(addr_state(&sim, a, EN0, ll), Some(Addr6State::Preferred));
    assert_eq!(sim.stack(a).iface(EN0).unwrap().link_local6(), Some(ll));

    let cap = sim.take_captured();
    let dad: Vec<Seen> = of_type(&cap, t::NEIGHBOR_SOLICIT)
        .into_iter()
        .filter(|s| s.from == a)
        .collect();
    assert_eq!(dad.len(), 1, "dad_count = 1 probe");
    let ns = &dad[0];
    assert!(ns.src.is_unspecified());
    assert_eq!(ns.dst, solicited_node(&ll));
    assert_eq!(ns.eth_dst, Mac::ipv6_multicast(solicited_node(&ll)));
    assert_eq!(ns.hop, 255);
    assert_eq!(&ns.payload[8..24], &ll.octets());
    assert_eq!(
        ns.payload.len(),
        24,
        "no SLLAO from the unspecified address"
    );
    // The solicited-node group was reported with MLDv2 (behind a
    // hop-by-hop header with router alert).
    let mld = cap
        .iter()
        .filter_map(parse)
        .filter(|s| s.from == a && s.next == ipproto::HOPOPTS)
        .find(|s| s.payload.get(8) == Some(&t::MLDV2_REPORT));
    let mld = mld.expect("an MLDv2 report");
    assert_eq!(mld.dst, a6("ff02::16"));
    assert_eq!(mld.hop, 1);
    assert_eq!(&mld.payload[2..4], &[5, 2], "router alert option");
    // Router solicitations follow, at most three, 4 s apart.
    sim.run_for(secs(20));
    let rs: Vec<Seen> = of_type(&cap, t::ROUTER_SOLICIT)
        .into_iter()
        .chain(of_type(&sim.take_captured(), t::ROUTER_SOLICIT))
        .filter(|s| s.from == a)
        .collect();
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].dst, a6("ff02::2"));
}

#[test]
fn dad_detects_a_duplicate() {
    let mut sim = Sim::new(12);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let c = sim.add_node("c");
    segment(&mut sim, &[a, b, c], lat(1));
    sim.run_for(secs(3));
    let x = a6("2001:db8::77");
    sim.with(a, |s, ctx| s.add_addr6(ctx, EN0, x, 64)).unwrap();
    sim.run_for(secs(2));
    assert_eq!(addr_state(&sim, a, EN0, x), Some(Addr6State::Preferred));
    // b configures the same address: a defends it with an NA.
    sim.with(b, |s, ctx| s.add_addr6(ctx, EN0, x, 64)).unwrap();
    sim.run_for(secs(2));
    assert_eq!(addr_state(&sim, b, EN0, x), Some(Addr6State::Duplicated));
    assert_eq!(addr_state(&sim, a, EN0, x), Some(Addr6State::Preferred));
    assert_eq!(sim.stack(b).v6.stats.dad_duplicates, 1);
    assert_eq!(sim.stack(a).v6.stats.dad_duplicates, 0);
    // A duplicated address is never a source.
    assert_ne!(sim.stack(b).ipv6_select_source(&a6("2001:db8::1")), Some(x));

    // Two nodes probing the same address at once both give it up
    // (RFC 4862 section 5.4.3).
    let y = a6("2001:db8::88");
    sim.with(b, |s, ctx| s.add_addr6(ctx, EN0, y, 64)).unwrap();
    sim.with(c, |s, ctx| s.add_addr6(ctx, EN0, y, 64)).unwrap();
    sim.run_for(secs(2));
    assert_eq!(addr_state(&sim, b, EN0, y), Some(Addr6State::Duplicated));
    assert_eq!(addr_state(&sim, c, EN0, y), Some(Addr6State::Duplicated));
}

#[test]
fn neighbor_state_machine_reachable_stale_delay_probe_and_expiry() {
    let (mut sim, a, b) = pair(13, lat(10));
    let bg = a6("2001:db8::b");
    sim.capture();
    echo(&mut sim, a, bg, 1, b"hello");
    assert_eq!(neighbor_state(&sim, a, bg), Some("incomplete"));
    sim.run_for(ms(100));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);
    assert_eq!(neighbor_state(&sim, a, bg), Some("reachable"));
    let e = sim
        .stack(a)
        .nd_entries()
        .into_iter()
        .find(|e| e.ip == std::net::IpAddr::V6(bg))
        .unwrap();
    assert_eq!(e.mac, Some(mac_of(&sim, b, EN0)));
    // ReachableTime is at most 1.5 x 30 s.
    assert!(e.expires.unwrap() <= secs(45), "{:?}", e.expires);
    sim.run_for(secs(46));
    assert_eq!(neighbor_state(&sim, a, bg), Some("stale"));

    // Using a stale entry sends at once and enters DELAY...
    sim.take_captured();
    echo(&mut sim, a, bg, 2, b"again");
    assert_eq!(neighbor_state(&sim, a, bg), Some("delay"));
    sim.run_for(ms(100));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 2);
    // ... then PROBE after DELAY_FIRST_PROBE_TIME with a unicast NS ...
    sim.run_for(ms(4_905));
    assert_eq!(neighbor_state(&sim, a, bg), Some("probe"));
    let probes: Vec<Seen> = of_type(&sim.take_captured(), t::NEIGHBOR_SOLICIT)
        .into_iter()
        .filter(|s| s.from == a && s.dst == bg)
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].eth_dst, mac_of(&sim, b, EN0), "unicast probe");
    // ... and the solicited answer makes it REACHABLE again.
    sim.run_for(ms(100));
    assert_eq!(neighbor_state(&sim, a, bg), Some("reachable"));

    // Unanswered probes end the entry: MAX_UNICAST_SOLICIT, 1 s apart.
    sim.run_for(secs(46));
    assert_eq!(neighbor_state(&sim, a, bg), Some("stale"));
    sim.set_connected(a, EN0, false);
    echo(&mut sim, a, bg, 3, b"lost");
    sim.run_for(ms(5_001));
    assert_eq!(neighbor_state(&sim, a, bg), Some("probe"));
    sim.run_for(ms(1_990));
    assert_eq!(neighbor_state(&sim, a, bg), Some("probe"));
    sim.run_for(secs(2));
    assert_eq!(neighbor_state(&sim, a, bg), None);
    let probes = of_type(&sim.take_captured(), t::NEIGHBOR_SOLICIT)
        .into_iter()
        .filter(|s| s.from == a && s.dst == bg)
        .count();
    assert_eq!(probes, 3);
    assert_eq!(sim.stack(a).v6.stats.nd_resolve_failures, 1);
}

#[test]
fn unresolved_neighbor_fails_after_three_multicast_solicitations() {
    let (mut sim, a, _b) = pair(14, lat(1));
    let ghost = a6("2001:db8::99");
    sim.capture();
    echo(&mut sim, a, ghost, 1, b"x");
    sim.run_for(ms(2_900));
    assert_eq!(neighbor_state(&sim, a, ghost), Some("incomplete"));
    sim.run_for(secs(1));
    assert_eq!(neighbor_state(&sim, a, ghost), None);
    let ns = of_type(&sim.take_captured(), t::NEIGHBOR_SOLICIT)
        .into_iter()
        .filter(|s| s.from == a && s.dst == solicited_node(&ghost))
        .count();
    assert_eq!(ns, 3, "MAX_MULTICAST_SOLICIT");
    assert_eq!(sim.stack(a).v6.stats.nd_resolve_failures, 1);
}

#[test]
fn hold_queue_is_bounded() {
    let (mut sim, a, b) = pair(15, lat(10));
    let bg = a6("2001:db8::b");
    let hold = sim.stack(a).config.neigh_hold as usize;
    for seq in 0..50 {
        echo(&mut sim, a, bg, seq, b"queued");
    }
    assert_eq!(sim.stack(a).nd_held(EN0, &bg), hold);
    assert_eq!(sim.stack(a).v6.stats.nd_hold_drops, 50 - hold as u64);
    sim.run_for(ms(200));
    assert_eq!(sim.stack(a).nd_held(EN0, &bg), 0);
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), hold as u64);
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), hold as u64);
}

#[test]
fn neighbor_cache_is_bounded_and_evicts_stale_first() {
    let cfg = Config {
        nd_max_entries: 4,
        ..Default::default()
    };
    let mut sim = Sim::new(16);
    let a = sim.add_node_with("a", cfg);
    let b = sim.add_node("b");
    connect(&mut sim, a, b, lat(1));
    sim.with(a, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8::a"), 64))
        .unwrap();
    sim.run_for(secs(3));
    // Ten neighbours solicit us: each creates a stale entry.
    for k in 1..=10u16 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100 + k);
        let mut body = a6("2001:db8::a").octets().to_vec();
        body.extend_from_slice(&[1, 1, 2, 0xbb, 0, 0, 0, k as u8]);
        let dst = solicited_node(&a6("2001:db8::a"));
        let m = icmp(src, dst, t::NEIGHBOR_SOLICIT, 0, [0; 4], &body);
        let f = frame6(
            Mac::ipv6_multicast(dst),
            Mac([2, 0xbb, 0, 0, 0, k as u8]),
            src,
            dst,
            ipproto::ICMPV6,
            255,
            &m,
        );
        inject(&mut sim, a, EN0, &f);
    }
    let n = sim
        .stack(a)
        .nd_entries()
        .into_iter()
        .filter(|e| e.ifindex == EN0)
        .count();
    assert!(n <= 4, "{n} entries");
    assert!(sim.stack(a).v6.stats.nd_evictions >= 6);
    // The newest neighbour is there, the oldest went first.
    assert_eq!(neighbor_state(&sim, a, a6("2001:db8::10a")), Some("stale"));
    assert_eq!(neighbor_state(&sim, a, a6("2001:db8::101")), None);
}

#[test]
fn echo_between_global_and_link_local_addresses() {
    let (mut sim, a, b) = pair(17, lat(1));
    sim.capture();
    echo(&mut sim, a, a6("2001:db8::b"), 1, b"global");
    sim.run_for(ms(50));
    let replies = of_type(&sim.take_captured(), t::ECHO_REPLY);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].from, b);
    assert_eq!(replies[0].src, a6("2001:db8::b"));
    assert_eq!(replies[0].dst, a6("2001:db8::a"));
    assert_eq!(&replies[0].payload[4..], b"\x12\x34\x00\x01global");
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);

    let bll = link_local(&sim, b, EN0);
    let all = link_local(&sim, a, EN0);
    assert_eq!(sim.stack(a).ipv6_select_source(&bll), Some(all));
    echo(&mut sim, a, bll, 2, b"link");
    sim.run_for(ms(50));
    let cap = sim.take_captured();
    let req = of_type(&cap, t::ECHO_REQUEST);
    assert_eq!(req[0].src, all, "link-local source for a link-local peer");
    let rep = of_type(&cap, t::ECHO_REPLY);
    assert_eq!(rep.len(), 1);
    assert_eq!((rep[0].src, rep[0].dst), (bll, all));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 2);

    // A request to all-nodes is answered from a unicast address.
    echo(&mut sim, a, a6("ff02::1"), 3, b"all");
    sim.run_for(ms(50));
    let rep = of_type(&sim.take_captured(), t::ECHO_REPLY);
    assert_eq!(rep.len(), 1);
    assert_eq!(rep[0].src, bll);
    assert_eq!(rep[0].dst, all);
}

#[test]
fn echo_to_loopback_through_lo0() {
    let mut sim = Sim::new(18);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    connect(&mut sim, a, b, lat(1));
    sim.run_for(secs(3));
    sim.capture();
    let lo_tx = sim.stack(a).iface(1).unwrap().stats.tx_packets;
    echo(&mut sim, a, Ipv6Addr::LOCALHOST, 1, b"self");
    sim.run_for(ms(10));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REQUEST), 1);
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);
    assert_eq!(sim.stack(a).iface(1).unwrap().stats.tx_packets, lo_tx + 2);
    assert!(of_type(&sim.take_captured(), t::ECHO_REQUEST).is_empty());
    // Our own link-local address loops back too.
    let all = link_local(&sim, a, EN0);
    echo(&mut sim, a, all, 2, b"self");
    sim.run_for(ms(10));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 2);
    assert!(of_type(&sim.take_captured(), t::ECHO_REQUEST).is_empty());
}

/// A router advertisement from fe80::1 (PEER_MAC) for `prefix`/64.
fn ra(
    router_lifetime: u16,
    mtu: Option<u32>,
    prefix: Ipv6Addr,
    valid: u32,
    preferred: u32,
) -> Vec<u8> {
    let src = a6("fe80::1");
    let dst = a6("ff02::1");
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_be_bytes()); // reachable time
    body.extend_from_slice(&0u32.to_be_bytes()); // retrans timer
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&PEER_MAC.0);
    if let Some(m) = mtu {
        body.extend_from_slice(&[5, 1, 0, 0]);
        body.extend_from_slice(&m.to_be_bytes());
    }
    body.extend_from_slice(&[3, 4, 64, 0xc0]);
    body.extend_from_slice(&valid.to_be_bytes());
    body.extend_from_slice(&preferred.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&prefix.octets());
    let [l0, l1] = router_lifetime.to_be_bytes();
    let m = icmp(src, dst, t::ROUTER_ADVERT, 0, [64, 0, l0, l1], &body);
    frame6(
        Mac::ipv6_multicast(dst),
        PEER_MAC,
        src,
        dst,
        ipproto::ICMPV6,
        255,
        &m,
    )
}

#[test]
fn slaac_from_a_router_advertisement_and_lifetimes() {
    let mut sim = Sim::new(19);
    let h = sim.add_node("h");
    let o = sim.add_node("o");
    connect(&mut sim, h, o, lat(1));
    sim.run_for(secs(3));
    let prefix = a6("2001:db8:1::");
    inject(&mut sim, h, EN0, &ra(1800, Some(1400), prefix, 60, 30));
    let iid = link_local(&sim, h, EN0).octets();
    let mut g = prefix.octets();
    g[8..].copy_from_slice(&iid[8..]);
    let global = Ipv6Addr::from(g);
    assert_eq!(
        addr_state(&sim, h, EN0, global),
        Some(Addr6State::Tentative)
    );
    let st = sim.stack(h);
    let def = st
        .routes6
        .iter()
        .find(|r| r.plen == 0)
        .expect("default route");
    assert_eq!(def.gateway, Some(a6("fe80::1")));
    assert!(def.flags.contains(RouteFlags::DYNAMIC));
    assert!(def.expires.is_some());
    assert!(st.routes6.iter().any(|r| r.dest == prefix && r.plen == 64));
    assert_eq!(st.ipv6_path_mtu(EN0, &a6("2001:db8:9::1")), 1400);
    let e = st
        .nd_entries()
        .into_iter()
        .find(|e| e.ip == std::net::IpAddr::V6(a6("fe80::1")))
        .unwrap();
    assert!(e.is_router);
    assert_eq!(e.mac, Some(PEER_MAC));
    assert_eq!(e.state, "stale");

    sim.run_for(secs(2));
    assert_eq!(
        addr_state(&sim, h, EN0, global),
        Some(Addr6State::Preferred)
    );
    assert_eq!(
        sim.stack(h).ipv6_select_source(&a6("2001:db8:9::1")),
        Some(global)
    );
    // Preferred lifetime over: deprecated, still there.
    sim.run_for(secs(30));
    assert_eq!(
        addr_state(&sim, h, EN0, global),
        Some(Addr6State::Deprecated)
    );
    // Valid lifetime over: gone with its prefix route.
    sim.run_for(secs(30));
    assert_eq!(addr_state(&sim, h, EN0, global), None);
    assert!(!sim.stack(h).routes6.iter().any(|r| r.dest == prefix));
    // The default route lives out its router lifetime.
    assert!(sim.stack(h).routes6.iter().any(|r| r.plen == 0));
    sim.run_for(secs(1800));
    assert!(!sim.stack(h).routes6.iter().any(|r| r.plen == 0));
    assert!(sim.stack(h).iface(EN0).unwrap().nd.routers.is_empty());
}

#[test]
fn slaac_two_hour_rule_and_router_lifetime_zero() {
    let mut sim = Sim::new(20);
    let h = sim.add_node("h");
    let o = sim.add_node("o");
    connect(&mut sim, h, o, lat(1));
    sim.run_for(secs(3));
    let prefix = a6("2001:db8:2::");
    inject(&mut sim, h, EN0, &ra(600, None, prefix, 10_000, 5_000));
    sim.run_for(secs(2));
    let global = sim
        .stack(h)
        .iface(EN0)
        .unwrap()
        .addrs6
        .iter()
        .find(|a| a.autoconf && a.addr.segments()[2] == 2)
        .map(|a| a.addr)
        .unwrap();
    let valid_left = |sim: &Sim| {
        let a = sim
            .stack(h)
            .iface(EN0)
            .unwrap()
            .addr6(&global)
            .cloned()
            .unwrap();
        a.valid_until.unwrap().saturating_since(sim.now())
    };
    // A short lifetime cannot cut a long one below two hours.
    inject(&mut sim, h, EN0, &ra(600, None, prefix, 60, 30));
    assert_eq!(valid_left(&sim), secs(7200));
    // But a longer one is taken as is.
    inject(&mut sim, h, EN0, &ra(600, None, prefix, 20_000, 30));
    assert_eq!(valid_left(&sim), secs(20_000));
    // Router lifetime 0: no longer a default router.
    assert!(sim.stack(h).routes6.iter().any(|r| r.plen == 0));
    inject(&mut sim, h, EN0, &ra(0, None, prefix, 20_000, 30));
    assert!(!sim.stack(h).routes6.iter().any(|r| r.plen == 0));
}

#[test]
fn router_advertisements_are_ignored_when_forwarding() {
    let cfg = Config {
        forwarding6: true,
        ..Default::default()
    };
    let mut sim = Sim::new(21);
    let r = sim.add_node_with("r", cfg);
    let o = sim.add_node("o");
    sim.capture();
    connect(&mut sim, r, o, lat(1));
    sim.run_for(secs(15));
    inject(
        &mut sim,
        r,
        EN0,
        &ra(1800, None, a6("2001:db8:3::"), 600, 600),
    );
    sim.run_for(secs(2));
    assert!(!sim.stack(r).routes6.iter().any(|x| x.plen == 0));
    assert!(
        !sim.stack(r)
            .iface(EN0)
            .unwrap()
            .addrs6
            .iter()
            .any(|a| !a.addr.is_unicast_link_local())
    );
    // A router sends no solicitations.
    let rs = of_type(&sim.take_captured(), t::ROUTER_SOLICIT)
        .into_iter()
        .filter(|s| s.from == r)
        .count();
    assert_eq!(rs, 0);
}

#[test]
fn fragmentation_and_reassembly_of_a_3000_byte_echo() {
    let (mut sim, a, b) = pair(22, lat(1));
    sim.capture();
    let body: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    echo(&mut sim, a, a6("2001:db8::b"), 1, &body);
    sim.run_for(ms(100));
    let cap = sim.take_captured();
    let frags: Vec<Seen> = cap
        .iter()
        .filter_map(parse)
        .filter(|s| s.next == ipproto::FRAGMENT)
        .collect();
    let from_a: Vec<&Seen> = frags.iter().filter(|s| s.from == a).collect();
    let from_b: Vec<&Seen> = frags.iter().filter(|s| s.from == b).collect();
    assert_eq!(from_a.len(), 3, "3008 bytes over 1448-byte fragments");
    assert_eq!(from_b.len(), 3);
    for f in &frags {
        assert!(f.wire_len <= 1514, "fragment of {} bytes", f.wire_len);
    }
    // Same identification in all fragments of one datagram.
    let ident = |s: &Seen| s.payload[4..8].to_vec();
    assert!(from_a.iter().all(|s| ident(s) == ident(from_a[0])));
    assert_eq!(sim.stack(b).v6.stats.reasm_oks, 1);
    assert_eq!(sim.stack(a).v6.stats.reasm_oks, 1);
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 1);
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);
    // Put b's reply back together and compare the data.
    let mut pieces: Vec<(usize, Vec<u8>)> = from_b
        .iter()
        .map(|s| {
            let off = (u16::from_be_bytes([s.payload[2], s.payload[3]]) & !7) as usize;
            (off, s.payload[8..].to_vec())
        })
        .collect();
    pieces.sort();
    let whole: Vec<u8> = pieces.into_iter().flat_map(|(_, d)| d).collect();
    assert_eq!(whole[0], t::ECHO_REPLY);
    assert_eq!(&whole[8..], &body[..]);
}

/// Fragments of an echo request from `src` to `dst`: (offset, more, data)
/// each as a full Ethernet frame for `eth_dst`.
fn echo_fragments(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    eth_dst: Mac,
    ident: u32,
    len: usize,
    pieces: &[(usize, usize)],
) -> Vec<Vec<u8>> {
    let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let m = icmp(src, dst, t::ECHO_REQUEST, 0, [0, 9, 0, 1], &body);
    pieces
        .iter()
        .map(|&(off, n)| {
            let end = (off + n).min(m.len());
            let more = end < m.len();
            let mut p = vec![ipproto::ICMPV6, 0];
            p.extend_from_slice(&(((off / 8) as u16) << 3 | more as u16).to_be_bytes());
            p.extend_from_slice(&ident.to_be_bytes());
            p.extend_from_slice(&m[off..end]);
            frame6(eth_dst, PEER_MAC, src, dst, ipproto::FRAGMENT, 64, &p)
        })
        .collect()
}

#[test]
fn reassembly_with_reordering_and_duplicates() {
    let (mut sim, a, b) = pair(23, lat(1));
    let bm = mac_of(&sim, b, EN0);
    let f = echo_fragments(
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        bm,
        77,
        2000,
        &[(0, 800), (800, 800), (1600, 800)],
    );
    for k in [2, 0, 2, 0, 1] {
        inject(&mut sim, b, EN0, &f[k]);
    }
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 1);
    assert_eq!(sim.stack(b).v6.stats.reasm_oks, 1);
    assert_eq!(sim.stack(b).v6.reasm.pending(), 0);
    sim.run_for(ms(50));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);

    // Impaired link: reordered and duplicated frames still reassemble.
    sim.set_impairment(
        a,
        EN0,
        iopkt_impair::Impairment {
            reorder: 40.0,
            dup: 30.0,
            ..Default::default()
        },
    );
    let body = vec![0x5a; 4000];
    for seq in 0..10 {
        echo(&mut sim, a, a6("2001:db8::b"), seq, &body);
    }
    sim.run_for(ms(500));
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 11);
    assert!(icmp_in(&sim, a, t::ECHO_REPLY) >= 11);
}

#[test]
fn overlapping_fragments_are_dropped() {
    let (mut sim, _a, b) = pair(24, lat(1));
    let bm = mac_of(&sim, b, EN0);
    let f = echo_fragments(
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        bm,
        5,
        100,
        &[(0, 64), (56, 200)],
    );
    inject(&mut sim, b, EN0, &f[0]);
    inject(&mut sim, b, EN0, &f[1]);
    assert_eq!(sim.stack(b).v6.reasm.stats.overlaps, 1);
    assert_eq!(sim.stack(b).v6.reasm.pending(), 0);
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 0);
    // The whole datagram is gone: the missing piece alone completes nothing.
    let g = echo_fragments(
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        bm,
        5,
        100,
        &[(64, 200)],
    );
    inject(&mut sim, b, EN0, &g[0]);
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 0);
}

#[test]
fn reassembly_timeout_sends_time_exceeded_only_with_the_first_fragment() {
    let (mut sim, a, b) = pair(25, lat(1));
    let bm = mac_of(&sim, b, EN0);
    let first = echo_fragments(
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        bm,
        1,
        500,
        &[(0, 256)],
    );
    let later = echo_fragments(
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        bm,
        2,
        500,
        &[(256, 256)],
    );
    inject(&mut sim, b, EN0, &first[0]);
    inject(&mut sim, b, EN0, &later[0]);
    sim.capture();
    sim.run_for(secs(31));
    let te = of_type(&sim.take_captured(), t::TIME_EXCEEDED);
    assert_eq!(te.len(), 1);
    assert_eq!(te[0].payload[1], 1, "code 1: reassembly time exceeded");
    assert_eq!(te[0].dst, a6("2001:db8::a"));
    // The quote is the first fragment as it was received.
    assert_eq!(&te[0].payload[8..], &first[0][14..]);
    assert_eq!(icmp_in(&sim, a, t::TIME_EXCEEDED), 1);
    assert_eq!(sim.stack(b).v6.reasm.stats.timeouts, 2);
}

/// a - r - b with global addresses and default routes through r; the r-b
/// link has `mtu_rb`.
fn routed(seed: u64, mtu_rb: u32) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let rc = Config {
        forwarding6: true,
        ..Default::default()
    };
    let a = sim.add_node("a");
    let r = sim.add_node_with("r", rc);
    let b = sim.add_node("b");
    connect(&mut sim, a, r, lat(1));
    connect(
        &mut sim,
        r,
        b,
        LinkCfg {
            latency: ms(1),
            mtu: Some(mtu_rb),
            ..Default::default()
        },
    );
    sim.with(a, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8:a::1"), 64))
        .unwrap();
    sim.with(r, |s, ctx| {
        s.add_addr6(ctx, EN0, a6("2001:db8:a::ff"), 64)?;
        s.add_addr6(ctx, EN1, a6("2001:db8:b::ff"), 64)
    })
    .unwrap();
    sim.with(b, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8:b::1"), 64))
        .unwrap();
    let default_via = |s: &mut Stack, gw: &str| {
        s.routes6
            .add(Route {
                dest: Ipv6Addr::UNSPECIFIED,
                plen: 0,
                gateway: Some(a6(gw)),
                ifindex: EN0,
                flags: RouteFlags::STATIC,
                expires: None,
            })
            .unwrap()
    };
    sim.with(a, |s, _| default_via(s, "2001:db8:a::ff"));
    sim.with(b, |s, _| default_via(s, "2001:db8:b::ff"));
    sim.run_for(secs(3));
    (sim, a, r, b)
}

#[test]
fn forwarding_and_hop_limit_expiry() {
    let (mut sim, a, r, b) = routed(26, 1500);
    sim.capture();
    echo(&mut sim, a, a6("2001:db8:b::1"), 1, b"through");
    sim.run_for(ms(100));
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);
    assert_eq!(sim.stack(r).v6.stats.forwarded, 2);
    let cap = sim.take_captured();
    let at_b: Vec<Seen> = of_type(&cap, t::ECHO_REQUEST)
        .into_iter()
        .filter(|s| s.from == r)
        .collect();
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].hop, 63, "hop limit decremented once");

    // Hop limit 1 expires at r: time exceeded, code 0, from r to a.
    let src = a6("2001:db8:a::1");
    let dst = a6("2001:db8:b::1");
    let m = icmp(src, dst, t::ECHO_REQUEST, 0, [0, 1, 0, 2], b"ttl");
    sim.with(a, |s, ctx| {
        let mut p = s.pool.alloc();
        p.append(m.len()).copy_from_slice(&m);
        s.ipv6_send(ctx, Some(src), dst, ipproto::ICMPV6, p, Some(1))
    })
    .unwrap();
    sim.run_for(ms(100));
    let te = of_type(&sim.take_captured(), t::TIME_EXCEEDED);
    assert_eq!(te.len(), 1);
    assert_eq!(te[0].from, r);
    assert_eq!(te[0].src, a6("2001:db8:a::ff"));
    assert_eq!(te[0].dst, src);
    assert_eq!(te[0].payload[1], 0);
    assert_eq!(icmp_in(&sim, a, t::TIME_EXCEEDED), 1);
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 1);
    assert_eq!(sim.stack(r).v6.stats.hop_limit_exceeded, 1);

    // No route at r: destination unreachable, code 0.
    echo(&mut sim, a, a6("2001:db8:c::1"), 3, b"nowhere");
    sim.run_for(ms(100));
    let du = of_type(&sim.take_captured(), t::DEST_UNREACH);
    assert_eq!(du.len(), 1);
    assert_eq!((du[0].from, du[0].payload[1]), (r, 0));
}

#[test]
fn packet_too_big_lowers_the_path_mtu() {
    let (mut sim, a, r, b) = routed(27, 1280);
    let bg = a6("2001:db8:b::1");
    sim.capture();
    let body = vec![7u8; 1400];
    echo(&mut sim, a, bg, 1, &body);
    sim.run_for(ms(100));
    let cap = sim.take_captured();
    let ptb = of_type(&cap, t::PACKET_TOO_BIG);
    assert_eq!(ptb.len(), 1);
    assert_eq!(ptb[0].from, r);
    assert_eq!(&ptb[0].payload[4..8], &1280u32.to_be_bytes());
    assert!(
        ptb[0].wire_len <= 14 + 1280,
        "the error fits the minimum MTU"
    );
    assert_eq!(sim.stack(r).v6.stats.too_big, 1);
    assert_eq!(sim.stack(a).v6.pmtu(&bg), Some(1280));
    assert_eq!(sim.stack(a).ipv6_path_mtu(EN0, &bg), 1280);
    assert_eq!(
        icmp_in(&sim, b, t::ECHO_REQUEST),
        0,
        "routers never fragment"
    );

    // The retry is fragmented at the source and gets through.
    echo(&mut sim, a, bg, 2, &body);
    sim.run_for(ms(100));
    let cap = sim.take_captured();
    assert!(
        cap.iter()
            .filter_map(parse)
            .filter(|s| s.from == a)
            .all(|s| s.wire_len <= 14 + 1280)
    );
    assert_eq!(icmp_in(&sim, b, t::ECHO_REQUEST), 1);
    assert_eq!(icmp_in(&sim, a, t::ECHO_REPLY), 1);

    // A PTB below the IPv6 minimum changes nothing (RFC 8201 section 4).
    let rm = mac_of(&sim, r, EN0);
    let am = mac_of(&sim, a, EN0);
    let quoted = {
        let mut q = frame6(
            rm,
            am,
            a6("2001:db8:a::1"),
            a6("2001:db8:b::2"),
            ipproto::ICMPV6,
            64,
            &[0; 64],
        );
        q.drain(..14);
        q
    };
    let m = icmp(
        a6("2001:db8:a::ff"),
        a6("2001:db8:a::1"),
        t::PACKET_TOO_BIG,
        0,
        600u32.to_be_bytes(),
        &quoted,
    );
    let f = frame6(
        am,
        rm,
        a6("2001:db8:a::ff"),
        a6("2001:db8:a::1"),
        ipproto::ICMPV6,
        64,
        &m,
    );
    inject(&mut sim, a, EN0, &f);
    assert_eq!(sim.stack(a).v6.pmtu(&a6("2001:db8:b::2")), Some(1280));
    // And the path MTU expires back to the link MTU in time.
    sim.run_for(secs(601));
    assert_eq!(sim.stack(a).v6.pmtu(&bg), None);
    assert_eq!(sim.stack(a).ipv6_path_mtu(EN0, &bg), 1500);
}

#[test]
fn unknown_next_header_gets_a_parameter_problem() {
    let (mut sim, a, b) = pair(28, lat(1));
    sim.capture();
    let (src, dst) = (a6("2001:db8::a"), a6("2001:db8::b"));
    sim.with(a, |s, ctx| {
        let mut p = s.pool.alloc();
        p.append(16).fill(0xee);
        s.ipv6_send(ctx, Some(src), dst, 253, p, None)
    })
    .unwrap();
    sim.run_for(ms(50));
    let pp = of_type(&sim.take_captured(), t::PARAM_PROBLEM);
    assert_eq!(pp.len(), 1);
    assert_eq!(pp[0].from, b);
    assert_eq!(pp[0].payload[1], 1, "code 1: unrecognized next header");
    assert_eq!(
        &pp[0].payload[4..8],
        &6u32.to_be_bytes(),
        "points at byte 6"
    );
    assert_eq!(sim.stack(b).v6.stats.in_unknown_protos, 1);

    // Behind a destination options header the pointer moves to it.
    sim.with(a, |s, ctx| {
        let mut p = s.pool.alloc();
        let b = p.append(16);
        b.fill(0);
        b[0] = 253;
        b[2] = 1; // PadN filling the rest of the header
        b[3] = 4;
        s.ipv6_send(ctx, Some(src), dst, ipproto::DSTOPTS, p, None)
    })
    .unwrap();
    sim.run_for(ms(50));
    let pp = of_type(&sim.take_captured(), t::PARAM_PROBLEM);
    assert_eq!(pp.len(), 1);
    assert_eq!(&pp[0].payload[4..8], &40u32.to_be_bytes());

    // A routing header with segments left is a problem at its type field.
    sim.with(a, |s, ctx| {
        let mut p = s.pool.alloc();
        let b = p.append(8);
        b.copy_from_slice(&[ipproto::NONE, 0, 0, 1, 0, 0, 0, 0]);
        s.ipv6_send(ctx, Some(src), dst, ipproto::ROUTING, p, None)
    })
    .unwrap();
    sim.run_for(ms(50));
    let pp = of_type(&sim.take_captured(), t::PARAM_PROBLEM);
    assert_eq!(pp.len(), 1);
    assert_eq!(pp[0].payload[1], 0);
    assert_eq!(&pp[0].payload[4..8], &42u32.to_be_bytes());

    // Errors are never answered with errors.
    let m = icmp(src, dst, t::DEST_UNREACH, 0, [0; 4], &[0x60; 48]);
    let f = frame6(
        mac_of(&sim, b, EN0),
        mac_of(&sim, a, EN0),
        src,
        dst,
        ipproto::DSTOPTS,
        64,
        &[&[ipproto::ICMPV6, 0, 0x80, 4, 0, 0, 0, 0][..], &m].concat(),
    );
    inject(&mut sim, b, EN0, &f);
    sim.run_for(ms(50));
    assert!(of_type(&sim.take_captured(), t::PARAM_PROBLEM).is_empty());
    assert!(sim.stack(b).v6.icmp_stats.err_suppressed >= 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut sim = Sim::new(29);
    let a = sim.add_node("a");
    let cfg = Config {
        icmp6_err_rate: 5,
        ..Default::default()
    };
    let b = sim.add_node_with("b", cfg);
    connect(&mut sim, a, b, lat(1));
    sim.with(a, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8::a"), 64))
        .unwrap();
    sim.with(b, |s, ctx| s.add_addr6(ctx, EN0, a6("2001:db8::b"), 64))
        .unwrap();
    sim.run_for(secs(3));
    let send_burst = |sim: &mut Sim| {
        for _ in 0..20 {
            sim.with(a, |s, ctx| {
                let mut p = s.pool.alloc();
                p.append(8).fill(0);
                s.ipv6_send(ctx, None, a6("2001:db8::b"), 253, p, None)
            })
            .unwrap();
        }
    };
    // Resolve b first so that no packet waits in the hold queue.
    echo(&mut sim, a, a6("2001:db8::b"), 1, b"resolve");
    sim.run_for(ms(20));
    sim.capture();
    send_burst(&mut sim);
    sim.run_for(ms(20));
    assert_eq!(icmp_in(&sim, a, t::PARAM_PROBLEM), 5);
    assert_eq!(of_type(&sim.take_captured(), t::PARAM_PROBLEM).len(), 5);
    assert_eq!(sim.stack(b).v6.icmp_stats.rate_limited, 15);
    // The bucket refills at 5 per second.
    sim.run_for(secs(1));
    send_burst(&mut sim);
    sim.run_for(ms(20));
    assert_eq!(of_type(&sim.take_captured(), t::PARAM_PROBLEM).len(), 5);
}

#[test]
fn malformed_nd_messages_never_panic_and_change_nothing() {
    let (mut sim, a, b) = pair(30, lat(1));
    let am = mac_of(&sim, a, EN0);
    let target = a6("2001:db8::a");
    let src = a6("2001:db8::50");
    let sn = solicited_node(&target);
    let send = |sim: &mut Sim,
                ty: u8,
                hop: u8,
                rest: [u8; 4],
                body: &[u8],
                src: Ipv6Addr,
                dst: Ipv6Addr| {
        let m = icmp(src, dst, ty, 0, rest, body);
        let f = frame6(
            if dst.is_multicast() {
                Mac::ipv6_multicast(dst)
            } else {
                am
            },
            PEER_MAC,
            src,
            dst,
            ipproto::ICMPV6,
            hop,
            &m,
        );
        sim.with(a, |s, ctx| s.input(ctx, EN0, [PktBuf::from_slice(&f)]));
    };
    let t_ = target.octets();
    let with = |opts: &[u8]| [&t_[..], opts].concat();
    let bad_opts: Vec<Vec<u8>> = vec![
        vec![1, 0, 2, 0xaa, 0, 0, 0, 1],     // zero length
        vec![1, 1, 2, 0xaa],                 // truncated
        vec![1, 2, 2, 0xaa, 0, 0, 0, 1],     // runs past the end
        vec![1],                             // a lone type byte
        vec![3, 4, 64, 0xc0, 0, 0, 0, 1],    // prefix option cut short
        vec![1, 255, 0, 0, 0, 0, 0, 0],      // huge length
        vec![14, 1, 0, 0, 0, 0, 0, 0, 1, 0], // good unknown option, then bad
    ];
    let before = sim.stack(a).v6.icmp_stats.nd_invalid;
    let mut sent = 0;
    for o in &bad_opts {
        for ty in [t::NEIGHBOR_SOLICIT, t::NEIGHBOR_ADVERT] {
            send(&mut sim, ty, 255, [0x20, 0, 0, 0], &with(o), src, sn);
            sent += 1;
        }
        let ra_body = [&[0u8; 8][..], o].concat();
        send(
            &mut sim,
            t::ROUTER_ADVERT,
            255,
            [64, 0, 7, 8],
            &ra_body,
            a6("fe80::1"),
            a6("ff02::1"),
        );
        send(
            &mut sim,
            t::ROUTER_SOLICIT,
            255,
            [0; 4],
            o,
            src,
            a6("ff02::1"),
        );
        let redirect = [&t_[..], &t_[..], o].concat();
        send(
            &mut sim,
            t::REDIRECT,
            255,
            [0; 4],
            &redirect,
            a6("fe80::1"),
            target,
        );
        sent += 3;
    }
    // Hop limit other than 255, a multicast target, DAD with an SLLAO,
    // messages too short to hold their fixed part.
    let good_sllao = [1, 1, 2, 0xaa, 0, 0, 0, 1];
    send(
        &mut sim,
        t::NEIGHBOR_SOLICIT,
        254,
        [0; 4],
        &with(&good_sllao),
        src,
        sn,
    );
    send(
        &mut sim,
        t::NEIGHBOR_SOLICIT,
        255,
        [0; 4],
        &[&a6("ff02::1").octets()[..], &good_sllao].concat(),
        src,
        sn,
    );
    send(
        &mut sim,
        t::NEIGHBOR_SOLICIT,
        255,
        [0; 4],
        &with(&good_sllao),
        Ipv6Addr::UNSPECIFIED,
        sn,
    );
    send(
        &mut sim,
        t::NEIGHBOR_SOLICIT,
        255,
        [0; 4],
        &t_[..8],
        src,
        sn,
    );
    send(
        &mut sim,
        t::NEIGHBOR_ADVERT,
        255,
        [0x40, 0, 0, 0],
        &with(&[]),
        src,
        a6("ff02::1"),
    );
    send(
        &mut sim,
        t::ROUTER_ADVERT,
        255,
        [64, 0, 7, 8],
        &[0; 4],
        a6("fe80::1"),
        a6("ff02::1"),
    );
    send(
        &mut sim,
        t::ROUTER_ADVERT,
        255,
        [64, 0, 7, 8],
        &[0; 8],
        src,
        a6("ff02::1"),
    );
    sent += 7;
    assert_eq!(sim.stack(a).v6.icmp_stats.nd_invalid - before, sent);
    assert!(
        sim.stack(a).nd_entries().is_empty(),
        "{:?}",
        sim.stack(a).nd_entries()
    );
    assert!(!sim.stack(a).routes6.iter().any(|r| r.plen == 0));

    // The same solicitation, well formed, is answered and teaches a's cache.
    sim.capture();
    send(
        &mut sim,
        t::NEIGHBOR_SOLICIT,
        255,
        [0; 4],
        &with(&good_sllao),
        src,
        sn,
    );
    assert_eq!(neighbor_state(&sim, a, src), Some("stale"));
    let na = of_type(&sim.take_captured(), t::NEIGHBOR_ADVERT);
    assert_eq!(na.len(), 1);
    assert_eq!(na[0].dst, src);
    assert_eq!(na[0].eth_dst, Mac([2, 0xaa, 0, 0, 0, 1]));
    assert_eq!(na[0].payload[4] & 0x60, 0x60, "solicited and override");
    // And the stack still serves.
    echo(&mut sim, b, target, 1, b"alive");
    sim.run_for(ms(50));
    assert_eq!(icmp_in(&sim, b, t::ECHO_REPLY), 1);
}

#[test]
fn random_frames_never_panic() {
    let (mut sim, a, b) = pair(31, lat(1));
    let am = mac_of(&sim, a, EN0);
    let mut rng = Rng::new(0x5eed);
    let addrs = [
        a6("2001:db8::a"),
        a6("2001:db8::b"),
        a6("ff02::1"),
        solicited_node(&a6("2001:db8::a")),
        link_local(&sim, a, EN0),
        a6("fe80::1"),
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::LOCALHOST,
        a6("2001:db8:77::1"),
    ];
    let nexts = [0u8, 43, 44, 60, 58, 59, 6, 17, 253];
    let ndtypes = [1u8, 2, 3, 4, 128, 129, 133, 134, 135, 136, 137, 143];
    for round in 0..20_000u32 {
        let mut r = || rng.next_u64();
        let src = addrs[(r() % addrs.len() as u64) as usize];
        let dst = addrs[(r() % addrs.len() as u64) as usize];
        let next = if r() % 4 == 0 {
            r() as u8
        } else {
            nexts[(r() % nexts.len() as u64) as usize]
        };
        let len = (r() % 200) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| r() as u8).collect();
        if next == 58 && len >= 8 {
            // Mostly well-formed ICMPv6 so the checksum passes and the
            // type handlers see the random rest.
            let ty = ndtypes[(r() % ndtypes.len() as u64) as usize];
            payload = icmp(
                src,
                dst,
                ty,
                (r() % 2) as u8,
                [r() as u8, 0, 0, 0],
                &payload[8..],
            );
        }
        let hop = if r() % 2 == 0 { 255 } else { r() as u8 };
        let mut f = frame6(
            if dst.is_multicast() {
                Mac::ipv6_multicast(dst)
            } else {
                am
            },
            PEER_MAC,
            src,
            dst,
            next,
            hop,
            &payload,
        );
        if round % 7 == 0 {
            // A payload length that lies.
            f[18] = r() as u8;
            f[19] = r() as u8;
        }
        if round % 11 == 0 {
            f.truncate(14 + (r() % 60) as usize);
        }
        inject(&mut sim, a, EN0, &f);
        if round % 1000 == 0 {
            sim.run_for(ms(10));
        }
    }
    sim.run_for(secs(60));
    // Still alive and answering.
    let before = icmp_in(&sim, b, t::ECHO_REPLY);
    echo(&mut sim, b, a6("2001:db8::a"), 9, b"still here");
    sim.run_for(secs(5));
    assert_eq!(icmp_in(&sim, b, t::ECHO_REPLY), before + 1);
}

#[test]
fn source_selection_follows_rfc6724() {
    let (mut sim, a, _b) = pair(32, lat(1));
    sim.with(a, |s, ctx| {
        s.add_addr6(ctx, EN0, a6("2001:db8::1:a"), 64)?;
        s.add_addr6(ctx, EN0, a6("fd00::a"), 64)
    })
    .unwrap();
    // Tentative addresses are never chosen.
    let st = sim.stack(a);
    assert_ne!(st.ipv6_select_source(&a6("fd00::1")), Some(a6("fd00::a")));
    sim.run_for(secs(2));
    let st = sim.stack(a);
    let all = st.iface(EN0).unwrap().link_local6().unwrap();
    assert_eq!(st.ipv6_select_source(&a6("fd00::1")), Some(a6("fd00::a")));
    assert_eq!(
        st.ipv6_select_source(&a6("2001:db8::1:5")),
        Some(a6("2001:db8::1:a"))
    );
    assert_eq!(
        st.ipv6_select_source(&a6("2001:db8::5")),
        Some(a6("2001:db8::a"))
    );
    assert_eq!(st.ipv6_select_source(&a6("fe80::9")), Some(all));
    assert_eq!(
        st.ipv6_select_source(&Ipv6Addr::LOCALHOST),
        Some(Ipv6Addr::LOCALHOST)
    );
    assert_eq!(
        st.ipv6_select_source(&a6("2001:db8::b")),
        Some(a6("2001:db8::a"))
    );
    // Deprecated addresses lose to preferred ones.
    sim.with(a, |s, _| {
        let i = s.iface_mut(EN0).unwrap();
        i.addrs6
            .iter_mut()
            .find(|x| x.addr == a6("2001:db8::1:a"))
            .unwrap()
            .state = Addr6State::Deprecated;
    });
    assert_eq!(
        sim.stack(a).ipv6_select_source(&a6("2001:db8::1:5")),
        Some(a6("2001:db8::a"))
    );
}

#[test]
fn interface_down_forgets_neighbors_and_autoconf_addresses() {
    let (mut sim, a, _b) = pair(33, lat(1));
    echo(&mut sim, a, a6("2001:db8::b"), 1, b"x");
    sim.run_for(ms(50));
    assert!(!sim.stack(a).nd_entries().is_empty());
    let ll = link_local(&sim, a, EN0);
    sim.with(a, |s, ctx| s.set_up(ctx, EN0, false)).unwrap();
    assert!(sim.stack(a).nd_entries().is_empty());
    assert_eq!(addr_state(&sim, a, EN0, ll), None);
    assert_eq!(
        addr_state(&sim, a, EN0, a6("2001:db8::a")),
        Some(Addr6State::Tentative)
    );
    sim.with(a, |s, ctx| s.set_up(ctx, EN0, true)).unwrap();
    sim.run_for(secs(3));
    assert_eq!(addr_state(&sim, a, EN0, ll), Some(Addr6State::Preferred));
    assert_eq!(
        addr_state(&sim, a, EN0, a6("2001:db8::a")),
        Some(Addr6State::Preferred)
    );
}

#[test]
fn nd_delete_forgets_an_entry() {
    let (mut sim, a, _b) = pair(34, lat(1));
    let bg = a6("2001:db8::b");
    echo(&mut sim, a, bg, 1, b"x");
    sim.run_for(ms(50));
    assert_eq!(neighbor_state(&sim, a, bg), Some("reachable"));
    assert!(sim.with(a, |s, _| s.nd_delete(bg)));
    assert_eq!(neighbor_state(&sim, a, bg), None);
    assert!(!sim.with(a, |s, _| s.nd_delete(bg)));
}

#[test]
fn a_flood_of_advertised_prefixes_is_bounded() {
    let mut sim = Sim::new(35);
    let h = sim.add_node("h");
    let o = sim.add_node("o");
    connect(&mut sim, h, o, lat(1));
    sim.run_for(secs(3));
    for k in 0..100u16 {
        let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0x100 + k, 0, 0, 0, 0, 0);
        inject(&mut sim, h, EN0, &ra(1800, None, prefix, 3600, 3600));
    }
    sim.run_for(secs(2));
    let st = sim.stack(h);
    let autoconf = st
        .iface(EN0)
        .unwrap()
        .addrs6
        .iter()
        .filter(|a| a.autoconf)
        .count();
    assert_eq!(autoconf, iopkt_stack::ndp::MAX_AUTOCONF_ADDRS);
    let learned = st
        .routes6
        .iter()
        .filter(|r| r.flags.contains(RouteFlags::DYNAMIC) && r.plen == 64)
        .count();
    assert_eq!(learned, iopkt_stack::ndp::MAX_LEARNED_PREFIXES);
    assert_eq!(st.iface(EN0).unwrap().nd.routers.len(), 1);
}
