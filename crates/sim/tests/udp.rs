//! UDP sockets between whole stacks on the simulated network: delivery in
//! both families, ports and bind rules, connected sockets and ICMP errors,
//! checksums, broadcast and multicast, queues, options and hostile input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::transport::{RecvInfo, SockOpt, SockOptName, SockType};
use iopkt_stack::udp::{DATAGRAM_OVERHEAD, EPHEMERAL_FIRST, EPHEMERAL_LAST};
use iopkt_stack::{IfIndex, Mac, PktBuf};
use iopkt_wire::IntoBytes;
use iopkt_wire::checksum::{finish, pseudo_v4, pseudo_v6, sum};
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::Ipv4Hdr;
use iopkt_wire::ipv6::Ipv6Hdr;
use proptest::prelude::*;

const EN0: IfIndex = 2;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test socket address")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Three hosts on one segment: a (10.0.0.1, 2001:db8::a), b (.2, ::b),
/// c (.3, ::c).
struct Lan {
    sim: Sim,
    a: NodeId,
    b: NodeId,
    c: NodeId,
}

fn lan(seed: u64) -> Lan {
    lan_with(seed, LinkCfg::default())
}

fn lan_with(seed: u64, cfg: LinkCfg) -> Lan {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let c = sim.add_node("c");
    let ifs = sim.segment(&[a, b, c], cfg);
    for (k, (&n, &ifx)) in [a, b, c].iter().zip(&ifs).enumerate() {
        assert_eq!(ifx, EN0);
        let k = k as u8 + 1;
        sim.with(n, |s, ctx| {
            s.set_link(ctx, ifx, true).unwrap();
            s.add_addr4(ctx, ifx, Ipv4Addr::new(10, 0, 0, k), 24, false)
                .unwrap();
            let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9 + k as u16);
            s.add_addr6(ctx, ifx, v6, 64).unwrap();
        });
    }
    sim.run_for(secs(3));
    // Resolve every neighbour first (an echo each way), so that tests
    // see UDP behaviour rather than the bounded queues of ARP and ND.
    for &from in &[a, b, c] {
        for k in 1..=3u8 {
            let d4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, k));
            let d6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9 + k as u16));
            for d in [d4, d6] {
                sim.with(from, |s, ctx| {
                    let p = s.ping_open(ctx, d.is_ipv6()).unwrap();
                    let ty = if d.is_ipv6() { 128 } else { 8 };
                    s.ping_send(ctx, p, d, &[ty, 0, 0, 0, 0, 0, 0, 1]).unwrap();
                    s.socket_close(ctx, p);
                });
            }
        }
    }
    sim.run_for(secs(1));
    Lan { sim, a, b, c }
}

fn open(sim: &mut Sim, n: NodeId, v6: bool) -> SocketId {
    sim.with(n, |s, ctx| s.socket_open(ctx, v6, SockType::Datagram))
        .expect("UDP socket")
}

fn bind(sim: &mut Sim, n: NodeId, id: SocketId, a: &str) -> Result<(), Error> {
    sim.with(n, |s, ctx| s.socket_bind(ctx, id, sa(a)))
}

fn setopt(sim: &mut Sim, n: NodeId, id: SocketId, o: SockOpt) -> Result<(), Error> {
    sim.with(n, |s, ctx| s.socket_setopt(ctx, id, o))
}

fn send(
    sim: &mut Sim,
    n: NodeId,
    id: SocketId,
    data: &[u8],
    dst: Option<&str>,
) -> Result<usize, Error> {
    sim.with(n, |s, ctx| s.socket_send(ctx, id, data, dst.map(sa)))
}

fn recv(sim: &mut Sim, n: NodeId, id: SocketId, cap: usize) -> Result<(Vec<u8>, RecvInfo), Error> {
    let mut buf = vec![0; cap];
    let r = sim.with(n, |s, ctx| s.socket_recv(ctx, id, &mut buf, false))?;
    buf.truncate(r.len);
    Ok((buf, r))
}

/// Runs the network up to a second and reads one datagram, if one came.
fn wait_recv(sim: &mut Sim, n: NodeId, id: SocketId) -> Option<(Vec<u8>, RecvInfo)> {
    let mut got = None;
    sim.run_until(secs(1), |s| {
        let mut buf = vec![0; 70_000];
        match s.with(n, |st, ctx| st.socket_recv(ctx, id, &mut buf, false)) {
            Ok(r) => {
                buf.truncate(r.len);
                got = Some((buf, r));
                true
            }
            Err(_) => false,
        }
    });
    got
}

fn local(sim: &Sim, n: NodeId, id: SocketId) -> SocketAddr {
    sim.stack(n).socket_local(id).expect("bound")
}

/// An IPv4 packet on the wire: (from node, src, dst, proto, ttl, payload).
struct Ip4 {
    from: NodeId,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    hl: usize,
    payload: Vec<u8>,
}

fn ip4(c: &Captured) -> Option<Ip4> {
    let f = &c.frame;
    if f.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = f.get(14..)?;
    let hl = ((ip.first()? & 0x0f) as usize) * 4;
    let tl = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
    Some(Ip4 {
        from: c.from,
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        proto: ip[9],
        ttl: ip[8],
        hl,
        payload: ip.get(hl..tl)?.to_vec(),
    })
}

/// An IPv6 packet on the wire: (from node, dst, payload after the fixed
/// header, next header).
fn ip6(c: &Captured) -> Option<(NodeId, Ipv6Addr, u8, Vec<u8>)> {
    let f = &c.frame;
    if f.get(12..14)? != [0x86, 0xdd] {
        return None;
    }
    let ip = f.get(14..)?;
    let plen = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as usize;
    let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
    Some((
        c.from,
        Ipv6Addr::from(dst),
        ip[6],
        ip.get(40..40 + plen)?.to_vec(),
    ))
}

#[test]
fn ipv4_datagrams_cross_both_ways_from_an_ephemeral_port() {
    let Lan { mut sim, a, b, .. } = lan(1);
    let srv = open(&mut sim, b, false);
    bind(&mut sim, b, srv, "0.0.0.0:5000").unwrap();
    let cli = open(&mut sim, a, false);
    assert_eq!(
        send(&mut sim, a, cli, b"hello", Some("10.0.0.2:5000")),
        Ok(5)
    );
    let port = local(&sim, a, cli).port();
    assert!(
        (EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(&port),
        "port {port}"
    );
    let (data, info) = wait_recv(&mut sim, b, srv).expect("datagram at b");
    assert_eq!(data, b"hello");
    assert_eq!(
        info.from,
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port
        ))
    );
    assert!(!info.truncated);
    assert_eq!(info.pktinfo, None, "PKTINFO is off by default");
    let back = info.from.unwrap().to_string();
    send(&mut sim, b, srv, b"world", Some(&back)).unwrap();
    let (data, info) = wait_recv(&mut sim, a, cli).expect("reply at a");
    assert_eq!(data, b"world");
    assert_eq!(info.from, Some(sa("10.0.0.2:5000")));
    assert_eq!(sim.stack(b).udp.stats.received, 1);
    assert_eq!(sim.stack(b).udp.stats.sent, 1);
    assert_eq!(sim.stack(a).udp.stats.sent, 1);
    // netstat -a sees both.
    let l = sim.stack(b).socket_list();
    let i = l.iter().find(|i| i.id == srv).unwrap();
    assert_eq!(
        (i.proto, i.local, i.remote),
        ("udp", Some(sa("0.0.0.0:5000")), None)
    );
}

#[test]
fn ipv6_datagrams_and_v4_mapped_senders_on_a_dual_stack_socket() {
    let Lan { mut sim, a, b, c } = lan(2);
    let srv = open(&mut sim, b, true);
    bind(&mut sim, b, srv, "[::]:5001").unwrap();
    let cli6 = open(&mut sim, a, true);
    send(&mut sim, a, cli6, b"six", Some("[2001:db8::b]:5001")).unwrap();
    let (data, info) = wait_recv(&mut sim, b, srv).expect("IPv6 datagram");
    assert_eq!(data, b"six");
    let from = info.from.unwrap();
    assert_eq!(from.ip(), "2001:db8::a".parse::<IpAddr>().unwrap());
    assert_eq!(from.port(), local(&sim, a, cli6).port());

    let cli4 = open(&mut sim, c, false);
    send(&mut sim, c, cli4, b"four", Some("10.0.0.2:5001")).unwrap();
    let (data, info) = wait_recv(&mut sim, b, srv).expect("IPv4 datagram on the IPv6 socket");
    assert_eq!(data, b"four");
    let from = info.from.unwrap();
    assert_eq!(from.ip(), "::ffff:10.0.0.3".parse::<IpAddr>().unwrap());
    // The answer to a v4-mapped address leaves as IPv4.
    send(&mut sim, b, srv, b"back", Some(&from.to_string())).unwrap();
    let (data, info) = wait_recv(&mut sim, c, cli4).expect("reply over IPv4");
    assert_eq!(data, b"back");
    assert_eq!(info.from, Some(sa("10.0.0.2:5001")));

    // IPV6_V6ONLY: IPv4 no longer reaches it, and the sender hears so.
    let only = open(&mut sim, b, true);
    setopt(&mut sim, b, only, SockOpt::V6Only(true)).unwrap();
    bind(&mut sim, b, only, "[::]:5002").unwrap();
    assert_eq!(
        sim.stack(b).socket_getopt(only, SockOptName::V6Only),
        Ok(SockOpt::V6Only(true))
    );
    let before = sim.stack(b).udp.stats.no_port;
    send(&mut sim, c, cli4, b"x", Some("10.0.0.2:5002")).unwrap();
    assert!(wait_recv(&mut sim, b, only).is_none());
    assert_eq!(sim.stack(b).udp.stats.no_port, before + 1);
    assert_eq!(
        setopt(&mut sim, b, only, SockOpt::V6Only(false)),
        Err(Error::Invalid("IPV6_V6ONLY after bind".into()))
    );
}

#[test]
fn ephemeral_ports_are_distinct_and_in_range() {
    let Lan { mut sim, a, .. } = lan(3);
    let mut seen = std::collections::HashSet::new();
    for k in 0..200 {
        let s = open(&mut sim, a, k % 2 == 0);
        if k % 3 == 0 {
            bind(
                &mut sim,
                a,
                s,
                if k % 2 == 0 { "[::]:0" } else { "0.0.0.0:0" },
            )
            .unwrap();
        } else {
            let dst = if k % 2 == 0 {
                "[2001:db8::b]:7"
            } else {
                "10.0.0.2:7"
            };
            sim.with(a, |st, ctx| st.socket_connect(ctx, s, sa(dst)))
                .unwrap();
        }
        let p = local(&sim, a, s).port();
        assert!((EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(&p));
        assert!(seen.insert(p), "port {p} given twice");
    }
    // A connected socket shows the source address its route chose.
    let s = open(&mut sim, a, false);
    sim.with(a, |st, ctx| st.socket_connect(ctx, s, sa("10.0.0.2:9")))
        .unwrap();
    assert_eq!(
        local(&sim, a, s).ip(),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(sim.stack(a).socket_peer(s), Some(sa("10.0.0.2:9")));
}

#[test]
fn bind_conflicts_and_sharing_options() {
    let Lan { mut sim, b, .. } = lan(4);
    let s1 = open(&mut sim, b, false);
    let s2 = open(&mut sim, b, false);
    bind(&mut sim, b, s1, "0.0.0.0:6000").unwrap();
    assert_eq!(bind(&mut sim, b, s2, "0.0.0.0:6000"), Err(Error::AddrInUse));
    assert_eq!(
        bind(&mut sim, b, s2, "10.0.0.2:6000"),
        Err(Error::AddrInUse)
    );
    assert_eq!(
        bind(&mut sim, b, s2, "10.0.0.9:6001"),
        Err(Error::AddrNotAvailable)
    );
    // Different addresses on one port are fine when neither is wildcard.
    bind(&mut sim, b, s2, "10.0.0.2:6001").unwrap();
    let s3 = open(&mut sim, b, false);
    bind(&mut sim, b, s3, "127.0.0.1:6001").unwrap();
    assert_eq!(
        bind(&mut sim, b, s3, "127.0.0.1:6002"),
        Err(Error::Invalid("socket already bound".into()))
    );

    // A dual-stack IPv6 wildcard covers IPv4 too; a V6ONLY one does not.
    let d = open(&mut sim, b, true);
    assert_eq!(bind(&mut sim, b, d, "[::]:6000"), Err(Error::AddrInUse));
    setopt(&mut sim, b, d, SockOpt::V6Only(true)).unwrap();
    bind(&mut sim, b, d, "[::]:6000").unwrap();

    // SO_REUSEADDR on both shares, on one only does not.
    let r1 = open(&mut sim, b, false);
    let r2 = open(&mut sim, b, false);
    let r3 = open(&mut sim, b, false);
    setopt(&mut sim, b, r1, SockOpt::ReuseAddr(true)).unwrap();
    bind(&mut sim, b, r1, "0.0.0.0:6100").unwrap();
    assert_eq!(bind(&mut sim, b, r3, "0.0.0.0:6100"), Err(Error::AddrInUse));
    setopt(&mut sim, b, r2, SockOpt::ReuseAddr(true)).unwrap();
    bind(&mut sim, b, r2, "0.0.0.0:6100").unwrap();
    assert_eq!(
        sim.stack(b).socket_getopt(r2, SockOptName::ReuseAddr),
        Ok(SockOpt::ReuseAddr(true))
    );
    // Closing frees the port.
    sim.with(b, |s, ctx| s.socket_close(ctx, s1));
    let s4 = open(&mut sim, b, false);
    bind(&mut sim, b, s4, "0.0.0.0:6000").unwrap();
    assert_eq!(
        sim.with(b, |s, ctx| s.socket_send(ctx, s1, b"x", None)),
        Err(Error::BadSocket)
    );
}

#[test]
fn reuseport_spreads_flows_and_keeps_each_flow_on_one_socket() {
    let Lan { mut sim, a, b, .. } = lan(5);
    let group: Vec<SocketId> = (0..4)
        .map(|_| {
            let s = open(&mut sim, b, false);
            setopt(&mut sim, b, s, SockOpt::ReusePort(true)).unwrap();
            bind(&mut sim, b, s, "0.0.0.0:7000").unwrap();
            s
        })
        .collect();
    let senders: Vec<SocketId> = (0..40).map(|_| open(&mut sim, a, false)).collect();
    for (k, s) in senders.iter().enumerate() {
        for _ in 0..2 {
            send(&mut sim, a, *s, &[k as u8], Some("10.0.0.2:7000")).unwrap();
        }
    }
    sim.run_for(secs(1));
    let mut per_socket = Vec::new();
    let mut flows = std::collections::HashMap::new();
    for g in &group {
        let mut n = 0;
        while let Ok((d, _)) = recv(&mut sim, b, *g, 16) {
            n += 1;
            let prev = flows.insert(d[0], *g);
            assert!(
                prev.is_none_or(|p| p == *g),
                "flow {} split over sockets",
                d[0]
            );
        }
        per_socket.push(n);
    }
    assert_eq!(per_socket.iter().sum::<usize>(), 80, "{per_socket:?}");
    let used = per_socket.iter().filter(|n| **n > 0).count();
    assert!(used >= 3, "load not spread: {per_socket:?}");
}

#[test]
fn a_connected_socket_hears_only_its_peer() {
    let Lan { mut sim, a, b, c } = lan(6);
    let conn = open(&mut sim, b, false);
    setopt(&mut sim, b, conn, SockOpt::ReuseAddr(true)).unwrap();
    bind(&mut sim, b, conn, "0.0.0.0:8001").unwrap();
    sim.with(b, |s, ctx| s.socket_connect(ctx, conn, sa("10.0.0.1:8000")))
        .unwrap();
    let any = open(&mut sim, b, false);
    setopt(&mut sim, b, any, SockOpt::ReuseAddr(true)).unwrap();
    bind(&mut sim, b, any, "0.0.0.0:8001").unwrap();

    let from_a = open(&mut sim, a, false);
    bind(&mut sim, a, from_a, "0.0.0.0:8000").unwrap();
    let from_c = open(&mut sim, c, false);
    send(&mut sim, a, from_a, b"peer", Some("10.0.0.2:8001")).unwrap();
    send(&mut sim, c, from_c, b"stranger", Some("10.0.0.2:8001")).unwrap();
    sim.run_for(secs(1));
    let (d, _) = recv(&mut sim, b, conn, 64).unwrap();
    assert_eq!(d, b"peer");
    assert_eq!(recv(&mut sim, b, conn, 64).err(), Some(Error::WouldBlock));
    let (d, _) = recv(&mut sim, b, any, 64).unwrap();
    assert_eq!(d, b"stranger");
    // send() without an address goes to the peer; with one, to that one.
    send(&mut sim, b, conn, b"to peer", None).unwrap();
    assert_eq!(wait_recv(&mut sim, a, from_a).unwrap().0, b"to peer");
    let to_c = local(&sim, c, from_c)
        .to_string()
        .replace("0.0.0.0", "10.0.0.3");
    send(&mut sim, b, conn, b"sendto", Some(&to_c)).unwrap();
    assert_eq!(wait_recv(&mut sim, c, from_c).unwrap().0, b"sendto");
    // An unconnected socket without an address has nowhere to send.
    assert_eq!(send(&mut sim, b, any, b"?", None), Err(Error::NotConnected));
}

#[test]
fn port_unreachable_refuses_a_connected_socket_over_both_families() {
    let Lan { mut sim, a, b, .. } = lan(7);
    for (v6, dst) in [(false, "10.0.0.2:9999"), (true, "[2001:db8::b]:9999")] {
        let conn = open(&mut sim, a, v6);
        sim.with(a, |s, ctx| s.socket_connect(ctx, conn, sa(dst)))
            .unwrap();
        let loose = open(&mut sim, a, v6);
        sim.capture();
        let before = sim.stack(b).udp.stats.no_port;
        send(&mut sim, a, conn, b"anyone?", None).unwrap();
        send(&mut sim, a, loose, b"anyone?", Some(dst)).unwrap();
        let ok = sim.run_until(secs(1), |s| s.stack(a).socket_readiness(conn).error);
        assert!(ok, "no error on the connected socket ({dst})");
        sim.run_for(secs(1));
        assert_eq!(sim.stack(b).udp.stats.no_port, before + 2);
        let wire = sim.take_captured();
        let unreach = wire
            .iter()
            .filter(|c| c.from == b)
            .filter(|c| {
                if v6 {
                    ip6(c).is_some_and(|(_, _, nh, p)| {
                        nh == ipproto::ICMPV6 && p[0] == 1 && p[1] == 4
                    })
                } else {
                    ip4(c).is_some_and(|p| {
                        p.proto == ipproto::ICMP && p.payload[0] == 3 && p.payload[1] == 3
                    })
                }
            })
            .count();
        assert_eq!(unreach, 2, "port unreachable on the wire ({dst})");
        assert!(sim.stack(a).socket_readiness(conn).readable);
        assert_eq!(
            sim.with(a, |s, _| s.socket_take_error(conn)),
            Some(Error::ConnRefused)
        );
        assert_eq!(sim.with(a, |s, _| s.socket_take_error(conn)), None);
        // The unconnected socket cannot tell which send failed: no error.
        assert!(!sim.stack(a).socket_readiness(loose).error);
        // The next call on the connected socket reports the next refusal.
        send(&mut sim, a, conn, b"again", None).unwrap();
        sim.run_for(secs(1));
        assert_eq!(recv(&mut sim, a, conn, 16).err(), Some(Error::ConnRefused));
    }
}

#[test]
fn broadcast_needs_so_broadcast_reaches_every_bound_socket_and_never_draws_icmp() {
    let Lan { mut sim, a, b, c } = lan(8);
    let tx = open(&mut sim, a, false);
    assert_eq!(
        send(&mut sim, a, tx, b"all", Some("255.255.255.255:5353")),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        send(&mut sim, a, tx, b"all", Some("10.0.0.255:5353")),
        Err(Error::PermissionDenied)
    );
    setopt(&mut sim, a, tx, SockOpt::Broadcast(true)).unwrap();
    let rb = open(&mut sim, b, false);
    bind(&mut sim, b, rb, "0.0.0.0:5353").unwrap();
    let rc = open(&mut sim, c, true);
    bind(&mut sim, c, rc, "[::]:5353").unwrap();
    // Bound to its unicast address: broadcasts are not for it.
    let narrow = open(&mut sim, b, false);
    setopt(&mut sim, b, rb, SockOpt::ReuseAddr(true)).unwrap();
    bind(&mut sim, b, narrow, "10.0.0.2:5353").unwrap_err();
    let narrow2 = open(&mut sim, b, false);
    bind(&mut sim, b, narrow2, "10.0.0.2:5354").unwrap();
    sim.capture();
    send(&mut sim, a, tx, b"all", Some("255.255.255.255:5353")).unwrap();
    send(&mut sim, a, tx, b"subnet", Some("10.0.0.255:5353")).unwrap();
    send(&mut sim, a, tx, b"nobody", Some("10.0.0.255:5354")).unwrap();
    sim.run_for(secs(1));
    for (n, s) in [(b, rb), (c, rc)] {
        assert_eq!(recv(&mut sim, n, s, 64).unwrap().0, b"all");
        assert_eq!(recv(&mut sim, n, s, 64).unwrap().0, b"subnet");
    }
    assert_eq!(
        recv(&mut sim, b, narrow2, 64).err(),
        Some(Error::WouldBlock)
    );
    let icmp = sim
        .take_captured()
        .iter()
        .filter_map(ip4)
        .filter(|p| p.proto == ipproto::ICMP)
        .count();
    assert_eq!(icmp, 0, "ICMP about a broadcast");
    assert!(sim.stack(c).udp.stats.no_port_broadcast >= 1);
    assert_eq!(sim.stack(c).udp.stats.no_port, 0);
}

/// An Ethernet frame to b (10.0.0.2 / 2001:db8::b) carrying UDP from port
/// 1234 to `dport`, with `fix` applied to the UDP segment after the
/// checksum was computed.
fn udp_frame(
    sim: &Sim,
    b: NodeId,
    v6: bool,
    dport: u16,
    payload: &[u8],
    fix: impl FnOnce(&mut Vec<u8>),
) -> PktBuf {
    let mut seg = Vec::new();
    seg.extend_from_slice(&1234u16.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(&[0, 0]);
    seg.extend_from_slice(payload);
    let mut f = Vec::new();
    f.extend_from_slice(&sim.stack(b).iface(EN0).unwrap().mac.0);
    f.extend_from_slice(&Mac([2, 0, 0, 0, 0x99, 1]).0);
    if v6 {
        let (s, d): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::99".parse().unwrap(),
            "2001:db8::b".parse().unwrap(),
        );
        let c = finish(sum(pseudo_v6(s, d, ipproto::UDP, seg.len() as u32), &seg));
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        fix(&mut seg);
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(Ipv6Hdr::new(s, d, ipproto::UDP, 64, seg.len()).as_bytes());
    } else {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 99), Ipv4Addr::new(10, 0, 0, 2));
        let c = finish(sum(pseudo_v4(s, d, ipproto::UDP, seg.len() as u16), &seg));
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        fix(&mut seg);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(Ipv4Hdr::new(s, d, ipproto::UDP, 64, 7, 0, seg.len(), 0).as_bytes());
    }
    f.extend_from_slice(&seg);
    PktBuf::from_slice(&f)
}

#[test]
fn checksums_are_verified_and_zero_means_none_only_over_ipv4() {
    let Lan { mut sim, b, .. } = lan(9);
    let s4 = open(&mut sim, b, false);
    bind(&mut sim, b, s4, "0.0.0.0:4444").unwrap();
    let s6 = open(&mut sim, b, true);
    setopt(&mut sim, b, s6, SockOpt::V6Only(true)).unwrap();
    bind(&mut sim, b, s6, "[::]:4444").unwrap();
    let inject = |sim: &mut Sim, f: PktBuf| sim.with(b, |s, ctx| s.input(ctx, EN0, [f]));

    let good = udp_frame(&sim, b, false, 4444, b"good", |_| {});
    inject(&mut sim, good);
    assert_eq!(recv(&mut sim, b, s4, 64).unwrap().0, b"good");
    // One flipped payload bit: dropped and counted.
    let bad = udp_frame(&sim, b, false, 4444, b"bad!", |s| s[9] ^= 0x10);
    inject(&mut sim, bad);
    assert_eq!(recv(&mut sim, b, s4, 64).err(), Some(Error::WouldBlock));
    assert_eq!(sim.stack(b).udp.stats.bad_checksum, 1);
    // Zero over IPv4: the sender computed none (RFC 768).
    let zero = udp_frame(&sim, b, false, 4444, b"zero", |s| s[6..8].fill(0));
    inject(&mut sim, zero);
    assert_eq!(recv(&mut sim, b, s4, 64).unwrap().0, b"zero");
    // A length field past the data is refused; one short of it trims.
    let long = udp_frame(&sim, b, false, 4444, b"long", |s| {
        s[4..6].copy_from_slice(&40u16.to_be_bytes())
    });
    inject(&mut sim, long);
    assert_eq!(sim.stack(b).udp.stats.bad_length, 1);
    let short = udp_frame(&sim, b, false, 4444, b"trim", |s| {
        s[4..6].copy_from_slice(&10u16.to_be_bytes());
        s[6..8].fill(0);
    });
    inject(&mut sim, short);
    assert_eq!(recv(&mut sim, b, s4, 64).unwrap().0, b"tr");

    let good6 = udp_frame(&sim, b, true, 4444, b"good6", |_| {});
    inject(&mut sim, good6);
    assert_eq!(recv(&mut sim, b, s6, 64).unwrap().0, b"good6");
    // Zero over IPv6 is invalid (RFC 8200 section 8.1).
    let zero6 = udp_frame(&sim, b, true, 4444, b"zero6", |s| s[6..8].fill(0));
    inject(&mut sim, zero6);
    let bad6 = udp_frame(&sim, b, true, 4444, b"bad6", |s| s[8] ^= 1);
    inject(&mut sim, bad6);
    assert_eq!(recv(&mut sim, b, s6, 64).err(), Some(Error::WouldBlock));
    assert_eq!(sim.stack(b).udp.stats.bad_checksum, 3);
    assert_eq!(sim.stack(b).udp.stats.received, 4);
}

#[test]
fn corrupted_frames_on_the_link_never_reach_the_socket() {
    let link = LinkCfg {
        impair: iopkt_impair::Impairment {
            corrupt: 100.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let Lan { mut sim, a, b, .. } = lan_with(10, link);
    let srv = open(&mut sim, b, false);
    bind(&mut sim, b, srv, "0.0.0.0:4445").unwrap();
    let cli = open(&mut sim, a, false);
    let body = vec![0x5a; 400];
    let mut delivered = Vec::new();
    for _ in 0..50 {
        // Neighbours may not resolve over a corrupting link; what matters
        // is that nothing corrupted is ever handed over.
        let _ = send(&mut sim, a, cli, &body, Some("10.0.0.2:4445"));
    }
    sim.run_for(secs(5));
    while let Ok((d, _)) = recv(&mut sim, b, srv, 1000) {
        delivered.push(d);
    }
    assert!(
        delivered.iter().all(|d| *d == body),
        "a corrupted datagram was delivered"
    );
}

fn igmp_records(sim_cap: &[Captured], from: NodeId) -> Vec<(u8, Ipv4Addr)> {
    let mut out = Vec::new();
    for p in sim_cap
        .iter()
        .filter_map(ip4)
        .filter(|p| p.from == from && p.proto == ipproto::IGMP)
    {
        assert_eq!(p.dst, Ipv4Addr::new(224, 0, 0, 22));
        assert_eq!(p.ttl, 1);
        assert_eq!(p.hl, 24, "router alert option");
        assert_eq!(p.payload[0], 0x22);
        assert_eq!(iopkt_wire::checksum::checksum(&p.payload), 0);
        let n = u16::from_be_bytes([p.payload[6], p.payload[7]]) as usize;
        for k in 0..n {
            let r = &p.payload[8 + 8 * k..16 + 8 * k];
            out.push((r[0], Ipv4Addr::new(r[4], r[5], r[6], r[7])));
        }
    }
    out
}

#[test]
fn ipv4_multicast_joins_report_and_deliver_to_members_only() {
    let Lan { mut sim, a, b, c } = lan(11);
    let g = Ipv4Addr::new(239, 1, 2, 3);
    let member = open(&mut sim, b, false);
    bind(&mut sim, b, member, "0.0.0.0:5004").unwrap();
    let outsider = open(&mut sim, c, false);
    bind(&mut sim, c, outsider, "0.0.0.0:5004").unwrap();
    sim.capture();
    setopt(&mut sim, b, member, SockOpt::JoinGroup(IpAddr::V4(g), 0)).unwrap();
    assert_eq!(
        setopt(&mut sim, b, member, SockOpt::JoinGroup(IpAddr::V4(g), 0)),
        Err(Error::AddrInUse)
    );
    // A second socket joining the same group says nothing more on the wire.
    let second = open(&mut sim, b, false);
    setopt(&mut sim, b, second, SockOpt::JoinGroup(IpAddr::V4(g), EN0)).unwrap();
    assert_eq!(igmp_records(&sim.take_captured(), b), vec![(4, g)]);

    let tx = open(&mut sim, a, false);
    send(&mut sim, a, tx, b"stream", Some("239.1.2.3:5004")).unwrap();
    let out = sim.take_captured();
    let sent = out
        .iter()
        .filter_map(ip4)
        .find(|p| p.proto == ipproto::UDP)
        .unwrap();
    assert_eq!(sent.ttl, 1, "multicast TTL defaults to 1");
    sim.run_for(secs(1));
    assert_eq!(recv(&mut sim, b, member, 64).unwrap().0, b"stream");
    assert_eq!(
        recv(&mut sim, c, outsider, 64).err(),
        Some(Error::WouldBlock)
    );

    // An IGMP general query is answered with the groups held.
    let mut q = vec![0x11, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let ck = iopkt_wire::checksum::checksum(&q);
    q[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&Mac::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 1)).0);
    f.extend_from_slice(&[2, 0, 0, 0, 0x99, 2, 0x08, 0x00]);
    f.extend_from_slice(
        Ipv4Hdr::new(
            Ipv4Addr::new(10, 0, 0, 99),
            Ipv4Addr::new(224, 0, 0, 1),
            ipproto::IGMP,
            1,
            1,
            0,
            q.len(),
            0,
        )
        .as_bytes(),
    );
    f.extend_from_slice(&q);
    sim.with(b, |s, ctx| s.input(ctx, EN0, [PktBuf::from_slice(&f)]));
    // The answer comes after a random delay within the query's Max Resp
    // Time of 1 s (RFC 3376 section 5.2; tests/group_query.rs for more).
    sim.run_for(Duration::from_millis(1001));
    assert_eq!(igmp_records(&sim.take_captured(), b), vec![(2, g)]);
    assert_eq!(sim.stack(b).udp.igmp.in_queries, 1);

    // The last member leaving reports it, and the group stops arriving.
    setopt(&mut sim, b, member, SockOpt::LeaveGroup(IpAddr::V4(g), 0)).unwrap();
    assert!(
        igmp_records(&sim.take_captured(), b).is_empty(),
        "one member is left"
    );
    sim.with(b, |s, ctx| s.socket_close(ctx, second));
    assert_eq!(igmp_records(&sim.take_captured(), b), vec![(3, g)]);
    assert_eq!(
        setopt(&mut sim, b, member, SockOpt::LeaveGroup(IpAddr::V4(g), 0)),
        Err(Error::AddrNotAvailable)
    );
    let dropped = sim.stack(b).udp.stats.no_port_broadcast;
    send(&mut sim, a, tx, b"gone", Some("239.1.2.3:5004")).unwrap();
    sim.run_for(secs(1));
    assert_eq!(recv(&mut sim, b, member, 64).err(), Some(Error::WouldBlock));
    assert_eq!(sim.stack(b).udp.stats.no_port_broadcast, dropped + 1);
}

#[test]
fn multicast_loops_back_to_local_members_unless_turned_off() {
    let Lan { mut sim, a, .. } = lan(12);
    let g = IpAddr::V4(Ipv4Addr::new(239, 9, 9, 9));
    let member = open(&mut sim, a, false);
    bind(&mut sim, a, member, "0.0.0.0:5005").unwrap();
    setopt(&mut sim, a, member, SockOpt::JoinGroup(g, EN0)).unwrap();
    let tx = open(&mut sim, a, false);
    send(&mut sim, a, tx, b"loop", Some("239.9.9.9:5005")).unwrap();
    assert_eq!(recv(&mut sim, a, member, 64).unwrap().0, b"loop");
    setopt(&mut sim, a, tx, SockOpt::MulticastLoop(false)).unwrap();
    send(&mut sim, a, tx, b"quiet", Some("239.9.9.9:5005")).unwrap();
    sim.run_for(secs(1));
    assert_eq!(recv(&mut sim, a, member, 64).err(), Some(Error::WouldBlock));
    // Memberships per socket are bounded.
    for k in 1..20u8 {
        setopt(
            &mut sim,
            a,
            member,
            SockOpt::JoinGroup(IpAddr::V4(Ipv4Addr::new(239, 0, 0, k)), 0),
        )
        .unwrap();
    }
    assert_eq!(
        setopt(
            &mut sim,
            a,
            member,
            SockOpt::JoinGroup(IpAddr::V4(Ipv4Addr::new(239, 0, 1, 1)), 0)
        ),
        Err(Error::NoBuffers)
    );
    assert!(matches!(
        setopt(
            &mut sim,
            a,
            member,
            SockOpt::JoinGroup(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 0)
        ),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn ipv6_multicast_joins_send_mldv2_and_deliver_to_members_only() {
    let Lan { mut sim, a, b, c } = lan(13);
    let g: Ipv6Addr = "ff15::1234".parse().unwrap();
    let member = open(&mut sim, b, true);
    bind(&mut sim, b, member, "[::]:5006").unwrap();
    let outsider = open(&mut sim, c, true);
    bind(&mut sim, c, outsider, "[::]:5006").unwrap();
    sim.capture();
    setopt(&mut sim, b, member, SockOpt::JoinGroup(IpAddr::V6(g), EN0)).unwrap();
    let mld = |cap: &[Captured]| -> Vec<(u8, Ipv6Addr)> {
        cap.iter()
            .filter_map(ip6)
            .filter(|(from, dst, nh, _)| {
                *from == b
                    && *nh == ipproto::HOPOPTS
                    && *dst == "ff02::16".parse::<Ipv6Addr>().unwrap()
            })
            .filter(|(_, _, _, p)| p[8] == 143)
            .map(|(_, _, _, p)| {
                let r = &p[16..36];
                (
                    r[0],
                    Ipv6Addr::from(<[u8; 16]>::try_from(&r[4..20]).unwrap()),
                )
            })
            .collect()
    };
    assert_eq!(mld(&sim.take_captured()), vec![(4, g)]);
    let tx = open(&mut sim, a, true);
    let dst = format!("[{g}%{EN0}]:5006");
    send(&mut sim, a, tx, b"six-cast", Some(&dst)).unwrap();
    sim.run_for(secs(1));
    assert_eq!(recv(&mut sim, b, member, 64).unwrap().0, b"six-cast");
    assert_eq!(
        recv(&mut sim, c, outsider, 64).err(),
        Some(Error::WouldBlock)
    );
    setopt(&mut sim, b, member, SockOpt::LeaveGroup(IpAddr::V6(g), 0)).unwrap();
    assert_eq!(mld(&sim.take_captured()), vec![(3, g)]);
    send(&mut sim, a, tx, b"after", Some(&dst)).unwrap();
    sim.run_for(secs(1));
    assert_eq!(recv(&mut sim, b, member, 64).err(), Some(Error::WouldBlock));
}

#[test]
fn the_receive_queue_is_bounded_by_bytes() {
    let Lan { mut sim, a, b, .. } = lan(14);
    let srv = open(&mut sim, b, false);
    bind(&mut sim, b, srv, "0.0.0.0:5100").unwrap();
    setopt(&mut sim, b, srv, SockOpt::RecvBuf(8192)).unwrap();
    assert_eq!(
        sim.stack(b).socket_getopt(srv, SockOptName::RecvBuf),
        Ok(SockOpt::RecvBuf(8192))
    );
    let cli = open(&mut sim, a, false);
    for k in 0..20u8 {
        send(&mut sim, a, cli, &[k; 1000], Some("10.0.0.2:5100")).unwrap();
    }
    sim.run_for(secs(1));
    let fits = 8192 / (1000 + DATAGRAM_OVERHEAD);
    let info = sim
        .stack(b)
        .socket_list()
        .into_iter()
        .find(|i| i.id == srv)
        .unwrap();
    assert_eq!(info.recv_queue, fits * 1000);
    assert_eq!(sim.stack(b).udp.stats.full_buffers, (20 - fits) as u64);
    for k in 0..fits {
        let (d, _) = recv(&mut sim, b, srv, 2000).unwrap();
        assert_eq!(d, vec![k as u8; 1000], "order kept");
    }
    assert_eq!(recv(&mut sim, b, srv, 2000).err(), Some(Error::WouldBlock));
    assert!(!sim.stack(b).socket_readiness(srv).readable);
}

#[test]
fn truncation_peek_and_pktinfo() {
    let Lan { mut sim, a, b, .. } = lan(15);
    let srv = open(&mut sim, b, false);
    bind(&mut sim, b, srv, "0.0.0.0:5200").unwrap();
    setopt(&mut sim, b, srv, SockOpt::PktInfo(true)).unwrap();
    let cli = open(&mut sim, a, false);
    let body: Vec<u8> = (0..100).collect();
    send(&mut sim, a, cli, &body, Some("10.0.0.2:5200")).unwrap();
    sim.run_for(secs(1));
    assert!(sim.stack(b).socket_readiness(srv).readable);
    let mut small = [0u8; 10];
    let r = sim
        .with(b, |s, ctx| s.socket_recv(ctx, srv, &mut small, true))
        .unwrap();
    assert_eq!((r.len, r.truncated, r.full_len), (10, true, 100));
    assert_eq!(small, body[..10]);
    assert_eq!(
        r.pktinfo,
        Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), EN0))
    );
    // Peeking left it queued; a short read takes it and loses the rest.
    let (d, r) = recv(&mut sim, b, srv, 30).unwrap();
    assert_eq!(
        (d.as_slice(), r.truncated, r.full_len),
        (&body[..30], true, 100)
    );
    assert_eq!(recv(&mut sim, b, srv, 200).err(), Some(Error::WouldBlock));

    let s6 = open(&mut sim, b, true);
    bind(&mut sim, b, s6, "[::]:5201").unwrap();
    setopt(&mut sim, b, s6, SockOpt::PktInfo(true)).unwrap();
    let c6 = open(&mut sim, a, true);
    send(&mut sim, a, c6, b"six", Some("[2001:db8::b]:5201")).unwrap();
    let (_, r) = wait_recv(&mut sim, b, s6).unwrap();
    assert_eq!(r.pktinfo, Some(("2001:db8::b".parse().unwrap(), EN0)));
    assert!(!r.truncated);
}

#[test]
fn large_datagrams_travel_as_ip_fragments_in_both_families() {
    let Lan { mut sim, a, b, .. } = lan(16);
    for (v6, bind_to, dst) in [
        (false, "0.0.0.0:5300", "10.0.0.2:5300"),
        (true, "[::]:5301", "[2001:db8::b]:5301"),
    ] {
        let srv = open(&mut sim, b, v6);
        bind(&mut sim, b, srv, bind_to).unwrap();
        let cli = open(&mut sim, a, v6);
        let body: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 251) as u8).collect();
        sim.capture();
        send(&mut sim, a, cli, &body, Some(dst)).unwrap();
        let (d, r) = wait_recv(&mut sim, b, srv).expect("reassembled datagram");
        assert_eq!(d.len(), body.len());
        assert!(d == body && !r.truncated);
        let frames = sim.take_captured().iter().filter(|c| c.from == a).count();
        assert!(frames >= 21, "only {frames} frames for 30000 bytes");
    }
    let cli = open(&mut sim, a, false);
    assert_eq!(
        send(&mut sim, a, cli, &vec![0; 65_508], Some("10.0.0.2:5300")),
        Err(Error::MessageTooLarge)
    );
    let six = open(&mut sim, a, true);
    assert_eq!(
        send(
            &mut sim,
            a,
            six,
            &vec![0; 65_528],
            Some("[2001:db8::b]:5301")
        ),
        Err(Error::MessageTooLarge)
    );
    // The largest IPv4 datagram still goes.
    assert_eq!(
        send(&mut sim, a, cli, &vec![1; 65_507], Some("10.0.0.2:5300")),
        Ok(65_507)
    );
}

#[test]
fn loopback_carries_datagrams_in_both_families() {
    let Lan { mut sim, a, .. } = lan(17);
    for (v6, bind_to, dst, from_ip) in [
        (false, "127.0.0.1:5400", "127.0.0.1:5400", "127.0.0.1"),
        (true, "[::1]:5401", "[::1]:5401", "::1"),
    ] {
        let srv = open(&mut sim, a, v6);
        bind(&mut sim, a, srv, bind_to).unwrap();
        let cli = open(&mut sim, a, v6);
        send(&mut sim, a, cli, b"self", Some(dst)).unwrap();
        let (d, r) = wait_recv(&mut sim, a, srv).expect("looped datagram");
        assert_eq!(d, b"self");
        let from = r.from.unwrap();
        assert_eq!(from.ip(), from_ip.parse::<IpAddr>().unwrap());
        assert_eq!(from.port(), local(&sim, a, cli).port());
    }
    // Options that do not apply to UDP say so.
    let s = open(&mut sim, a, false);
    assert!(matches!(
        setopt(&mut sim, a, s, SockOpt::NoDelay(true)),
        Err(Error::NotSupported(_))
    ));
    assert!(matches!(
        setopt(&mut sim, a, s, SockOpt::V6Only(true)),
        Err(Error::NotSupported(_))
    ));
    setopt(&mut sim, a, s, SockOpt::Ttl(7)).unwrap();
    assert_eq!(
        sim.stack(a).socket_getopt(s, SockOptName::Ttl),
        Ok(SockOpt::Ttl(7))
    );
    assert!(matches!(
        sim.with(a, |st, ctx| st.socket_listen(ctx, s, 5)),
        Err(Error::NotSupported(_))
    ));
    // shutdown(): reads see end of data, writes fail.
    sim.with(a, |st, ctx| st.socket_shutdown(ctx, s, true, true))
        .unwrap();
    let r = recv(&mut sim, a, s, 10).unwrap();
    assert_eq!(r.1.len, 0);
    assert_eq!(
        send(&mut sim, a, s, b"x", Some("127.0.0.1:9")),
        Err(Error::BrokenPipe)
    );
    assert!(sim.stack(a).socket_readiness(s).hup);
}

#[test]
fn the_unicast_ttl_option_reaches_the_wire() {
    let Lan { mut sim, a, .. } = lan(18);
    let s = open(&mut sim, a, false);
    setopt(&mut sim, a, s, SockOpt::Ttl(3)).unwrap();
    sim.capture();
    send(&mut sim, a, s, b"ttl", Some("10.0.0.2:9")).unwrap();
    sim.run_for(secs(1));
    let p = sim
        .take_captured()
        .iter()
        .filter_map(ip4)
        .find(|p| p.from == a && p.proto == ipproto::UDP)
        .expect("datagram on the wire");
    assert_eq!(p.ttl, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random UDP headers and payloads, with valid IP headers around them,
    /// never panic the stack, whatever sockets are open.
    #[test]
    fn random_udp_segments_never_panic(
        v6 in any::<bool>(),
        dport in prop_oneof![Just(4000u16), Just(4001u16), any::<u16>()],
        ulen in any::<u16>(),
        csum in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        group in any::<bool>(),
    ) {
        let (mut sim, t, ifx) = iopkt_sim::fuzz::fuzz_network();
        sim.with(t, |s, ctx| {
            let a = s.socket_open(ctx, false, SockType::Datagram).unwrap();
            s.socket_bind(ctx, a, sa("0.0.0.0:4000")).unwrap();
            let b = s.socket_open(ctx, true, SockType::Datagram).unwrap();
            s.socket_bind(ctx, b, sa("[::]:4001")).unwrap();
            s.socket_connect(ctx, b, sa("[fd00::2]:1")).unwrap();
            let _ = s.socket_setopt(ctx, a, SockOpt::JoinGroup(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 1)), 0));
        });
        let mut seg = Vec::new();
        seg.extend_from_slice(&1u16.to_be_bytes());
        seg.extend_from_slice(&dport.to_be_bytes());
        seg.extend_from_slice(&ulen.to_be_bytes());
        seg.extend_from_slice(&csum.to_be_bytes());
        seg.extend_from_slice(&payload);
        let mac = sim.stack(t).iface(ifx).unwrap().mac;
        let mut f = Vec::new();
        f.extend_from_slice(&mac.0);
        f.extend_from_slice(&[2, 0, 0, 0, 0x77, 1]);
        if v6 {
            let d: Ipv6Addr = if group { "ff02::1".parse().unwrap() } else { "fd00::1".parse().unwrap() };
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(Ipv6Hdr::new("fd00::2".parse().unwrap(), d, ipproto::UDP, 64, seg.len()).as_bytes());
        } else {
            let d = if group { Ipv4Addr::new(239, 0, 0, 1) } else { Ipv4Addr::new(10, 0, 0, 1) };
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(Ipv4Hdr::new(Ipv4Addr::new(10, 0, 0, 2), d, ipproto::UDP, 64, 1, 0, seg.len(), 0).as_bytes());
        }
        f.extend_from_slice(&seg);
        sim.with(t, |s, ctx| s.input(ctx, ifx, [PktBuf::from_slice(&f)]));
        sim.run_for(secs(1));
        let st = sim.stack(t).udp.stats;
        prop_assert!(st.received + st.bad_checksum + st.bad_length + st.no_port + st.no_port_broadcast + st.full_buffers <= 1);
    }
}
