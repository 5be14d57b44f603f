//! TCP between whole stacks on the simulated network, in virtual time:
//! handshakes, transfers through impaired links, closing in every order,
//! timers, the RFC 5961 protections and hostile segments.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{A4, A6, B4, B6, Net, forge_v4, net_with, pattern, pump, recv_all, sa, seal_v4};
use iopkt_impair::Impairment;
use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::{SockOpt, SockOptName, SockType};
use iopkt_stack::{IfIndex, PktBuf};
use iopkt_wire::checksum;
use iopkt_wire::tcp as wire;

fn net() -> Net {
    net_with(7, Duration::from_millis(5))
}

fn open(sim: &mut Sim, n: NodeId, v6: bool) -> SocketId {
    sim.with(n, |s, c| s.socket_open(c, v6, SockType::Stream))
        .expect("socket")
}

fn listen_on(sim: &mut Sim, n: NodeId, at: SocketAddr, backlog: u32) -> SocketId {
    let l = open(sim, n, at.is_ipv6());
    sim.with(n, |s, c| s.socket_bind(c, l, at)).expect("bind");
    sim.with(n, |s, c| s.socket_listen(c, l, backlog))
        .expect("listen");
    l
}

fn connect(sim: &mut Sim, n: NodeId, to: SocketAddr) -> SocketId {
    let id = open(sim, n, to.is_ipv6());
    let r = sim.with(n, |s, c| s.socket_connect(c, id, to));
    assert_eq!(r, Err(Error::InProgress));
    id
}

fn state(sim: &Sim, n: NodeId, id: SocketId) -> Option<State> {
    sim.stack(n).tcp.state(id)
}

fn accept(sim: &mut Sim, n: NodeId, l: SocketId) -> Result<(SocketId, SocketAddr), Error> {
    sim.with(n, |s, c| s.socket_accept(c, l))
}

/// A connection from `a` to `b` (port 80), established: (client, server).
fn established(net: &mut Net, v6: bool) -> (SocketId, SocketId) {
    let (a, b) = (net.a, net.b);
    let at = if v6 { sa(B6, 80) } else { sa(B4, 80) };
    let l = listen_on(&mut net.sim, b, at, 16);
    let c = connect(&mut net.sim, a, at);
    let mut server = None;
    let ok = net.sim.run_until(Duration::from_secs(5), |s| {
        if server.is_none() {
            server = accept(s, b, l).ok().map(|x| x.0);
        }
        server.is_some() && state(s, a, c) == Some(State::Established)
    });
    assert!(ok, "handshake did not complete");
    (c, server.unwrap())
}

/// TCP segments in captured frames: (from node, flags, seq, ack, window,
/// payload length, options).
struct SegView {
    from: NodeId,
    time: iopkt_stack::Instant,
    flags: u8,
    seq: u32,
    ack: u32,
    wnd: u16,
    len: usize,
    opts: wire::TcpOptions,
}

fn tcp_of(c: &Captured) -> Option<SegView> {
    let f = &c.frame;
    let et = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let l4 = match et {
        0x0800 if f.get(23) == Some(&6) => 14 + usize::from(f.get(14)? & 0x0f) * 4,
        0x86dd if f.get(20) == Some(&6) => 14 + 40,
        _ => return None,
    };
    let seg = f.get(l4..)?;
    let (h, o) = wire::TcpHdr::parse(seg)?;
    Some(SegView {
        from: c.from,
        time: c.time,
        flags: h.flags,
        seq: h.seq.get(),
        ack: h.ack.get(),
        wnd: h.window.get(),
        len: seg.len() - h.header_len(),
        opts: wire::TcpOptions::parse(o),
    })
}

fn segments(sim: &mut Sim) -> Vec<SegView> {
    sim.take_captured().iter().filter_map(tcp_of).collect()
}

#[test]
fn handshake_over_ipv4_negotiates_mss_options_and_addresses() {
    let mut net = net();
    net.sim.capture();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    assert_eq!(state(&net.sim, b, s), Some(State::Established));
    let segs = segments(&mut net.sim);
    let syn = segs.iter().find(|x| x.flags == wire::SYN).expect("SYN");
    assert_eq!(syn.opts.mss, Some(1460));
    assert!(syn.opts.sack_permitted && syn.opts.timestamp.is_some());
    let synack = segs
        .iter()
        .find(|x| x.flags == wire::SYN | wire::ACK)
        .expect("SYN-ACK");
    assert_eq!(synack.ack, syn.seq.wrapping_add(1));
    // 1460 less the 12 bytes of the timestamp option.
    let (mss, ours, _, _, ts, sack) = net.sim.stack(a).tcp.negotiated(c).unwrap();
    assert_eq!((mss, ours, ts, sack), (1448, 1460, true, true));
    let peer = net.sim.stack(a).socket_peer(c);
    assert_eq!(peer, Some(sa(B4, 80)));
    let local = net.sim.stack(a).socket_local(c).unwrap();
    assert_eq!(local.ip(), A4.parse::<IpAddr>().unwrap());
    assert!((32_768..=60_999).contains(&local.port()));
    assert_eq!(net.sim.stack(b).socket_peer(s), Some(local));
    let w = net.sim.stack(a).socket_readiness(c);
    assert!(w.writable && !w.readable);
    let info = net
        .sim
        .stack(b)
        .socket_list()
        .into_iter()
        .find(|i| i.id == s)
        .unwrap();
    assert_eq!((info.proto, info.state), ("tcp", "ESTABLISHED"));
    let st = net.sim.stack(a).tcp.stats;
    assert_eq!((st.active_opens, st.established), (1, 1));
    assert_eq!(net.sim.stack(b).tcp.stats.passive_opens, 1);
}

#[test]
fn handshake_over_ipv6() {
    let mut net = net();
    let (c, s) = established(&mut net, true);
    let (mss, ours, ..) = net.sim.stack(net.a).tcp.negotiated(c).unwrap();
    assert_eq!((mss, ours), (1428, 1440));
    assert_eq!(
        net.sim.stack(net.b).socket_peer(s).unwrap().ip(),
        A6.parse::<IpAddr>().unwrap()
    );
    let info = net.sim.stack(net.a).socket_list();
    assert!(info.iter().any(|i| i.id == c && i.proto == "tcp6"));
}

#[test]
fn a_megabyte_each_way_arrives_intact() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    let up = pattern(1 << 20, 0x5a);
    let got = pump(&mut net.sim, (a, c), (b, s), &up, Duration::from_secs(60));
    assert!(got == up, "upload corrupted or short: {} bytes", got.len());
    let down = pattern(1 << 20, 0xa5);
    let got = pump(&mut net.sim, (b, s), (a, c), &down, Duration::from_secs(60));
    assert!(
        got == down,
        "download corrupted or short: {} bytes",
        got.len()
    );
}

fn shutdown_write(sim: &mut Sim, n: NodeId, id: SocketId) {
    sim.with(n, |s, c| s.socket_shutdown(c, id, false, true))
        .expect("shutdown");
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"request", None))
        .unwrap();
    shutdown_write(&mut net.sim, a, c);
    assert_eq!(
        net.sim.with(a, |st, cx| st.socket_send(cx, c, b"x", None)),
        Err(Error::BrokenPipe)
    );
    let mut got = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        recv_all(sim, b, s, &mut got).unwrap()
    }));
    assert_eq!(got, b"request");
    assert_eq!(state(&net.sim, b, s), Some(State::CloseWait));
    // The ACK of the FIN is on its way.
    net.sim.run_for(Duration::from_millis(50));
    assert_eq!(state(&net.sim, a, c), Some(State::FinWait2));
    // The server still talks; the client still reads.
    let reply = pattern(100_000, 3);
    let back = pump(
        &mut net.sim,
        (b, s),
        (a, c),
        &reply,
        Duration::from_secs(10),
    );
    assert!(back == reply);
    net.sim.with(b, |st, cx| st.socket_close(cx, s));
    let mut rest = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        recv_all(sim, a, c, &mut rest).unwrap()
    }));
    assert!(rest.is_empty());
    assert_eq!(state(&net.sim, a, c), Some(State::TimeWait));
    // The server's side is gone once its FIN was acknowledged.
    net.sim.run_for(Duration::from_secs(1));
    assert_eq!(state(&net.sim, b, s), None);
}

#[test]
fn time_wait_lasts_sixty_seconds_then_the_connection_is_gone() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim.with(a, |st, cx| st.socket_close(cx, c));
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        state(sim, a, c) == Some(State::FinWait2)
    }));
    net.sim.with(b, |st, cx| st.socket_close(cx, s));
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        state(sim, a, c) == Some(State::TimeWait)
    }));
    let entered = net.sim.now();
    // The closed socket is gone from the socket table but its connection
    // still shows.
    assert!(net.sim.stack(a).socket_list().iter().all(|i| i.id != c));
    let shown = net.sim.stack(a).tcp_connections();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].state, "TIME_WAIT");
    assert!(
        net.sim
            .run_until(Duration::from_secs(120), |sim| state(sim, a, c).is_none())
    );
    let waited = net.sim.now() - entered;
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_millis(60_100),
        "TIME-WAIT lasted {waited:?}"
    );
    assert_eq!(net.sim.stack(a).tcp.len(), 0);
    assert_eq!(net.sim.stack(a).sockets.len(), 0);
}

#[test]
fn simultaneous_open_establishes_both_ends() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let ca = open(&mut net.sim, a, false);
    let cb = open(&mut net.sim, b, false);
    net.sim
        .with(a, |s, c| s.socket_bind(c, ca, sa(A4, 5000)))
        .unwrap();
    net.sim
        .with(b, |s, c| s.socket_bind(c, cb, sa(B4, 6000)))
        .unwrap();
    // ARP first, so both SYNs cross on the wire.
    net.sim.capture();
    assert_eq!(
        net.sim
            .with(a, |s, c| s.socket_connect(c, ca, sa(B4, 6000))),
        Err(Error::InProgress)
    );
    assert_eq!(
        net.sim
            .with(b, |s, c| s.socket_connect(c, cb, sa(A4, 5000))),
        Err(Error::InProgress)
    );
    assert!(net.sim.run_until(Duration::from_secs(10), |sim| {
        state(sim, a, ca) == Some(State::Established)
            && state(sim, b, cb) == Some(State::Established)
    }));
    let segs = segments(&mut net.sim);
    let syns = segs.iter().filter(|x| x.flags == wire::SYN).count();
    let synacks = segs
        .iter()
        .filter(|x| x.flags == wire::SYN | wire::ACK)
        .count();
    assert!(syns >= 2 && synacks >= 2, "{syns} SYNs, {synacks} SYN-ACKs");
    let data = pattern(5000, 9);
    let got = pump(
        &mut net.sim,
        (a, ca),
        (b, cb),
        &data,
        Duration::from_secs(5),
    );
    assert!(got == data);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut net = net_with(11, Duration::from_millis(20));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    shutdown_write(&mut net.sim, a, c);
    shutdown_write(&mut net.sim, b, s);
    assert_eq!(state(&net.sim, a, c), Some(State::FinWait1));
    let mut saw_closing = false;
    assert!(net.sim.run_until(Duration::from_secs(5), |sim| {
        saw_closing |= state(sim, a, c) == Some(State::Closing);
        state(sim, a, c) == Some(State::TimeWait) && state(sim, b, s) == Some(State::TimeWait)
    }));
    assert!(saw_closing);
    let mut v = Vec::new();
    assert_eq!(recv_all(&mut net.sim, a, c, &mut v), Ok(true));
}

#[test]
fn a_closed_port_refuses_with_a_reset() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let c = connect(&mut net.sim, a, sa(B4, 9));
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        sim.stack(a).socket_readiness(c).error
    }));
    assert_eq!(
        net.sim.with(a, |s, _| s.socket_take_error(c)),
        Some(Error::ConnRefused)
    );
    assert_eq!(state(&net.sim, a, c), Some(State::Closed));
    assert_eq!(net.sim.stack(b).tcp.stats.no_port, 1);
    assert_eq!(net.sim.stack(b).tcp.stats.resets_out, 1);
    assert_eq!(net.sim.stack(a).tcp.stats.attempt_fails, 1);
}

#[test]
fn connect_to_an_unplugged_peer_times_out_after_six_retries() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    // Resolve the neighbour first so only TCP's timers count.
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    let c0 = connect(&mut net.sim, a, sa(B4, 80));
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c0), Some(State::Established));
    let _ = l;
    net.sim.set_connected(a, net.ia, false);
    let start = net.sim.now();
    let c = connect(&mut net.sim, a, sa(B4, 80));
    assert!(net.sim.run_until(Duration::from_secs(300), |sim| {
        sim.stack(a).socket_readiness(c).error
    }));
    // 1 + 2 + 4 + 8 + 16 + 32 + 64 seconds.
    let took = net.sim.now() - start;
    assert_eq!(took, Duration::from_secs(127));
    assert_eq!(
        net.sim.with(a, |s, _| s.socket_take_error(c)),
        Some(Error::TimedOut)
    );
}

#[test]
fn bulk_transfer_survives_loss_reordering_and_duplication() {
    let mut net = net_with(21, Duration::from_millis(10));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    let bad = Impairment {
        loss: 2.0,
        reorder: 2.0,
        dup: 1.0,
        ..Impairment::default()
    };
    net.sim.set_impairment(a, net.ia, bad);
    let data = pattern(2 << 20, 0x77);
    let got = pump(
        &mut net.sim,
        (a, c),
        (b, s),
        &data,
        Duration::from_secs(300),
    );
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    let st = net.sim.stack(a).tcp.stats;
    assert!(st.retrans_segs > 0, "loss must have caused retransmissions");
    assert!(
        st.fast_retransmits > 0,
        "three duplicate ACKs should have been seen"
    );
    assert!(net.sim.stack(b).tcp.stats.ooo_segments > 0);
    // Both directions still work afterwards.
    let back = pattern(50_000, 1);
    assert!(pump(&mut net.sim, (b, s), (a, c), &back, Duration::from_secs(60)) == back);
    // Many small connections' worth of endings through the same link:
    // data then FIN, each must reach end of stream intact.
    for round in 0..20u8 {
        let tail = pattern(30_000, round);
        let mut sent = 0;
        while sent < tail.len() {
            sent += net
                .sim
                .with(a, |st, cx| st.socket_send(cx, c, &tail[sent..], None))
                .unwrap_or(0);
            net.sim.run_for(Duration::from_millis(5));
            let mut sink = Vec::new();
            recv_all(&mut net.sim, b, s, &mut sink).unwrap();
        }
        if round == 19 {
            shutdown_write(&mut net.sim, a, c);
        }
    }
    let mut rest = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(120), |sim| {
        recv_all(sim, b, s, &mut rest).unwrap()
    }));
    assert_eq!(state(&net.sim, b, s), Some(State::CloseWait));
}

#[test]
fn a_receiver_that_does_not_read_gets_window_probes_with_backoff() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    net.sim
        .with(b, |st, cx| {
            st.socket_setopt(cx, l, SockOpt::RecvBuf(16_384))
        })
        .unwrap();
    let c = connect(&mut net.sim, a, sa(B4, 80));
    let mut s = None;
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        s = s.or(accept(sim, b, l).ok().map(|x| x.0));
        s.is_some()
    }));
    let s = s.unwrap();
    let data = pattern(100_000, 5);
    let sent = net
        .sim
        .with(a, |st, cx| st.socket_send(cx, c, &data, None))
        .unwrap();
    net.sim.capture();
    net.sim.run_for(Duration::from_secs(30));
    let segs = segments(&mut net.sim);
    // The window closed after 16 KiB; probes went out at growing
    // intervals.
    let zero = segs.iter().filter(|x| x.from == b && x.wnd == 0).count();
    assert!(zero > 0, "the receiver advertised a zero window");
    let probes: Vec<_> = segs
        .iter()
        .filter(|x| x.from == a && x.len == 0 && x.flags == wire::ACK)
        .map(|x| x.time)
        .collect();
    let n = net.sim.stack(a).tcp.stats.window_probes as usize;
    assert!((3..=12).contains(&n), "{n} probes in 30 s");
    assert!(probes.len() >= n);
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.last() > gaps.first(), "probe intervals grow: {gaps:?}");
    // Reading reopens the window; everything arrives.
    let mut got = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(30), |sim| {
        recv_all(sim, b, s, &mut got).unwrap();
        got.len() >= sent
    }));
    assert!(got[..] == data[..sent]);
}

#[test]
fn an_orphan_facing_a_shut_window_gives_up() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    net.sim
        .with(b, |st, cx| st.socket_setopt(cx, l, SockOpt::RecvBuf(4096)))
        .unwrap();
    let c = connect(&mut net.sim, a, sa(B4, 80));
    net.sim.run_for(Duration::from_millis(100));
    let (s, _) = accept(&mut net.sim, b, l).unwrap();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, &[7u8; 50_000], None))
        .unwrap();
    net.sim.run_for(Duration::from_secs(5));
    net.sim.with(a, |st, cx| st.socket_close(cx, c));
    assert_eq!(net.sim.stack(a).tcp.state(c), Some(State::FinWait1));
    assert!(net.sim.run_until(Duration::from_secs(3600), |sim| {
        sim.stack(a).tcp.is_empty()
    }));
    assert!(net.sim.stack(a).tcp.stats.window_probes >= 15);
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, b, s), Some(State::Closed));
}

/// Data segments `a` sends while writing `writes` small chunks, with the
/// given TCP_NODELAY.
fn small_write_segments(nodelay: bool) -> (usize, Vec<u8>) {
    let mut net = net_with(5, Duration::from_millis(20));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim
        .with(a, |st, cx| {
            st.socket_setopt(cx, c, SockOpt::NoDelay(nodelay))
        })
        .unwrap();
    assert_eq!(
        net.sim.stack(a).socket_getopt(c, SockOptName::NoDelay),
        Ok(SockOpt::NoDelay(nodelay))
    );
    net.sim.capture();
    let mut want = Vec::new();
    for i in 0..50u8 {
        let chunk = [i; 10];
        want.extend_from_slice(&chunk);
        net.sim
            .with(a, |st, cx| st.socket_send(cx, c, &chunk, None))
            .unwrap();
        net.sim.run_for(Duration::from_millis(2));
    }
    let mut got = Vec::new();
    net.sim.run_until(Duration::from_secs(5), |sim| {
        recv_all(sim, b, s, &mut got).unwrap();
        got.len() >= want.len()
    });
    assert!(got == want);
    let n = segments(&mut net.sim)
        .iter()
        .filter(|x| x.from == a && x.len > 0)
        .count();
    (n, got)
}

#[test]
fn nagle_coalesces_small_writes_and_nodelay_does_not() {
    let (nagle, _) = small_write_segments(false);
    let (nodelay, _) = small_write_segments(true);
    assert_eq!(nodelay, 50);
    // One segment per round trip (40 ms) while 2 ms writes accumulate.
    assert!(nagle <= 6, "Nagle sent {nagle} segments");
}

#[test]
fn a_lone_segment_is_acknowledged_after_the_delayed_ack_timer() {
    let mut net = net_with(3, Duration::from_millis(1));
    let (c, _s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim.run_for(Duration::from_secs(1));
    net.sim.capture();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"ping", None))
        .unwrap();
    net.sim.run_for(Duration::from_secs(1));
    let segs = segments(&mut net.sim);
    let data = segs.iter().find(|x| x.from == a && x.len == 4).unwrap();
    let ack = segs
        .iter()
        .find(|x| x.from == b && x.ack == data.seq.wrapping_add(4))
        .unwrap();
    let delay = ack.time - data.time;
    // 1 ms on the wire, then the 40 ms timer.
    assert_eq!(delay, Duration::from_millis(41));
    assert_eq!(net.sim.stack(b).tcp.stats.delayed_acks, 1);
    // Two full segments are acknowledged at once.
    net.sim.capture();
    let two = pattern(2 * 1448, 0);
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, &two, None))
        .unwrap();
    net.sim.run_for(Duration::from_secs(1));
    let segs = segments(&mut net.sim);
    let last = segs.iter().rfind(|x| x.from == a && x.len > 0).unwrap();
    let ack = segs
        .iter()
        .find(|x| x.from == b && x.ack == last.seq.wrapping_add(last.len as u32))
        .unwrap();
    assert_eq!(ack.time - last.time, Duration::from_millis(1));
}

#[test]
fn window_scaling_opens_a_large_window() {
    let mut net = net_with(8, Duration::from_millis(50));
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    net.sim
        .with(b, |st, cx| {
            st.socket_setopt(cx, l, SockOpt::RecvBuf(4 << 20))
        })
        .unwrap();
    let c = open(&mut net.sim, a, false);
    net.sim
        .with(a, |st, cx| {
            st.socket_setopt(cx, c, SockOpt::SendBuf(4 << 20))
        })
        .unwrap();
    assert_eq!(
        net.sim
            .with(a, |st, cx| st.socket_connect(cx, c, sa(B4, 80))),
        Err(Error::InProgress)
    );
    let mut s = None;
    assert!(net.sim.run_until(Duration::from_secs(2), |sim| {
        s = s.or(accept(sim, b, l).ok().map(|x| x.0));
        s.is_some() && state(sim, a, c) == Some(State::Established)
    }));
    let s = s.unwrap();
    let (_, _, snd_ws, _, _, _) = net.sim.stack(a).tcp.negotiated(c).unwrap();
    assert_eq!(snd_ws, 7, "4 MiB needs a shift of 7");
    let (_, _, _, rcv_ws, _, _) = net.sim.stack(b).tcp.negotiated(s).unwrap();
    assert_eq!(rcv_ws, 7);
    // With a 100 ms round trip, 8 MiB would take minutes through a
    // 64 KiB window (about 0.6 MiB/s); the scaled window does it fast.
    let data = pattern(8 << 20, 2);
    let start = net.sim.now();
    let got = pump(&mut net.sim, (a, c), (b, s), &data, Duration::from_secs(60));
    assert!(got == data);
    let took = net.sim.now() - start;
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// The last captured TCP frame from `from`, for forging a segment like it.
fn last_tcp_frame(caps: &[Captured], from: NodeId) -> Vec<u8> {
    caps.iter()
        .rev()
        .find(|c| c.from == from && tcp_of(c).is_some())
        .map(|c| c.frame.clone())
        .expect("a TCP frame")
}

#[test]
fn an_in_window_reset_that_is_not_exact_gets_a_challenge_ack() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b, ib) = (net.a, net.b, net.ib);
    net.sim.capture();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"hello", None))
        .unwrap();
    net.sim.run_for(Duration::from_secs(1));
    let caps = net.sim.take_captured();
    let frame = last_tcp_frame(&caps, a);
    let seg = tcp_of(
        caps.iter()
            .rev()
            .find(|x| x.from == a && tcp_of(x).is_some())
            .unwrap(),
    )
    .unwrap();
    // The next sequence number b expects from a.
    let nxt = seg.seq.wrapping_add(seg.len as u32);
    net.sim.capture();
    // In the window, but not RCV.NXT: RFC 5961 section 3.2.
    let rst = forge_v4(&frame, wire::RST, nxt.wrapping_add(1000), &[]);
    net.sim.with(b, |st, cx| st.input(cx, ib, [rst]));
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, b, s), Some(State::Established));
    assert_eq!(net.sim.stack(b).tcp.stats.challenge_acks, 1);
    let acks = segments(&mut net.sim);
    assert!(
        acks.iter()
            .any(|x| x.from == b && x.flags == wire::ACK && x.ack == nxt)
    );
    // A SYN in the window: also a challenge ACK (section 4.2).
    let syn = forge_v4(&frame, wire::SYN, nxt.wrapping_add(10), &[]);
    net.sim.with(b, |st, cx| st.input(cx, ib, [syn]));
    assert_eq!(net.sim.stack(b).tcp.stats.challenge_acks, 2);
    assert_eq!(state(&net.sim, b, s), Some(State::Established));
    // Data whose ACK acknowledges what b never sent (section 5.2):
    // dropped, with a challenge ACK.
    let bogus = Hostile {
        to_listener: false,
        flags: wire::ACK | wire::PSH,
        seq_delta: 0,
        ack_delta: 1_000_000,
        wnd: 1000,
        options: Vec::new(),
        payload: b"injected".to_vec(),
    };
    let pkt = forge_any(&frame, &bogus, nxt, seg.ack);
    net.sim.with(b, |st, cx| st.input(cx, ib, [pkt]));
    assert_eq!(net.sim.stack(b).tcp.stats.challenge_acks, 3);
    let mut got = Vec::new();
    assert_eq!(recv_all(&mut net.sim, b, s, &mut got), Ok(false));
    assert_eq!(got, b"hello");
    // The exact one resets.
    let rst = forge_v4(&frame, wire::RST, nxt, &[]);
    net.sim.with(b, |st, cx| st.input(cx, ib, [rst]));
    assert_eq!(state(&net.sim, b, s), Some(State::Closed));
    assert_eq!(
        net.sim.with(b, |st, _| st.socket_take_error(s)),
        Some(Error::ConnReset)
    );
    // Outside the window: ignored with a plain ACK, nothing else.
    let _ = c;
}

#[test]
fn a_listener_holds_no_more_than_its_backlog() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    // Without SYN cookies, which would let the others through the full
    // SYN queue (see below).
    net.sim.with(b, |st, _| st.tcp.syncookies = false);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 2);
    let clients: Vec<SocketId> = (0..5)
        .map(|_| connect(&mut net.sim, a, sa(B4, 80)))
        .collect();
    net.sim.run_for(Duration::from_millis(500));
    let info = net.sim.stack(b).tcp.count_in(State::Established);
    assert_eq!(info, 2, "only the backlog's worth is established");
    assert!(net.sim.stack(b).tcp.stats.listen_overflows >= 3);
    let mut accepted = Vec::new();
    // Accepting makes room; the others get in on their SYN retries.
    assert!(net.sim.run_until(Duration::from_secs(30), |sim| {
        while let Ok((id, _)) = accept(sim, b, l) {
            accepted.push(id);
        }
        accepted.len() == 5
    }));
    assert!(
        clients
            .iter()
            .all(|c| state(&net.sim, a, *c) == Some(State::Established))
    );
    assert_eq!(accept(&mut net.sim, b, l), Err(Error::WouldBlock));
}

#[test]
fn a_thousand_connections_between_two_hosts_all_complete() {
    let mut net = net_with(13, Duration::from_millis(2));
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4096);
    let clients: Vec<SocketId> = (0..1000)
        .map(|_| connect(&mut net.sim, a, sa(B4, 80)))
        .collect();
    let mut servers = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(30), |sim| {
        while let Ok((id, _)) = accept(sim, b, l) {
            servers.push(id);
        }
        servers.len() == 1000
    }));
    for (i, c) in clients.iter().enumerate() {
        let msg = format!("client {i}");
        net.sim
            .with(a, |st, cx| st.socket_send(cx, *c, msg.as_bytes(), None))
            .unwrap();
        net.sim
            .with(a, |st, cx| st.socket_shutdown(cx, *c, false, true))
            .unwrap();
    }
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); servers.len()];
    let mut done = vec![false; servers.len()];
    assert!(net.sim.run_until(Duration::from_secs(30), |sim| {
        for (i, s) in servers.iter().enumerate() {
            if !done[i] {
                done[i] = recv_all(sim, b, *s, &mut got[i]).unwrap();
            }
        }
        done.iter().all(|d| *d)
    }));
    let mut texts: Vec<String> = got
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect();
    texts.sort();
    let mut want: Vec<String> = (0..1000).map(|i| format!("client {i}")).collect();
    want.sort();
    assert_eq!(texts, want);
    let ports: std::collections::HashSet<u16> = clients
        .iter()
        .map(|c| net.sim.stack(a).socket_local(*c).unwrap().port())
        .collect();
    assert_eq!(ports.len(), 1000);
}

#[test]
fn keepalive_detects_a_dead_peer() {
    let mut net = net();
    let (c, _s) = established(&mut net, false);
    let a = net.a;
    for o in [
        SockOpt::KeepIdle(10),
        SockOpt::KeepIntvl(5),
        SockOpt::KeepCnt(3),
        SockOpt::KeepAlive(true),
    ] {
        net.sim
            .with(a, |st, cx| st.socket_setopt(cx, c, o))
            .unwrap();
    }
    // An idle but live peer answers the probes.
    net.sim.run_for(Duration::from_secs(60));
    assert_eq!(state(&net.sim, a, c), Some(State::Established));
    assert!(net.sim.stack(a).tcp.stats.keepalive_probes >= 4);
    net.sim.set_connected(a, net.ia, false);
    let start = net.sim.now();
    assert!(net.sim.run_until(Duration::from_secs(120), |sim| {
        state(sim, a, c) == Some(State::Closed)
    }));
    let took = net.sim.now() - start;
    // Idle 10 s, then three probes 5 s apart, dead 5 s after the last.
    assert!(
        took <= Duration::from_secs(25) && took > Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(
        net.sim.with(a, |st, _| st.socket_take_error(c)),
        Some(Error::TimedOut)
    );
    assert_eq!(net.sim.stack(a).tcp.stats.keepalive_drops, 1);
}

#[test]
fn closing_with_unread_data_resets_the_connection() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"unread", None))
        .unwrap();
    net.sim.run_for(Duration::from_millis(100));
    net.sim.with(b, |st, cx| st.socket_close(cx, s));
    assert_eq!(net.sim.stack(b).tcp.len(), 1, "only the listener is left");
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c), Some(State::Closed));
    assert_eq!(
        net.sim.with(a, |st, _| st.socket_take_error(c)),
        Some(Error::ConnReset)
    );
    assert_eq!(
        net.sim.with(a, |st, cx| st.socket_send(cx, c, b"x", None)),
        Err(Error::BrokenPipe)
    );
}

#[test]
fn data_to_a_vanished_peer_times_out_after_fifteen_retransmissions() {
    let mut net = net();
    let (c, _s) = established(&mut net, false);
    let a = net.a;
    let rto = net.sim.stack(a).tcp.rto(c).unwrap();
    net.sim.set_connected(a, net.ia, false);
    let start = net.sim.now();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"into the void", None))
        .unwrap();
    assert!(net.sim.run_until(Duration::from_secs(3600), |sim| {
        state(sim, a, c) == Some(State::Closed)
    }));
    // RFC 6298 backoff, capped at 120 s: the first send and 15
    // retransmissions each wait out their timer.
    let want: Duration = (0..16)
        .map(|k| (rto * (1u32 << k)).min(Duration::from_secs(120)))
        .sum();
    assert_eq!(net.sim.now() - start, want);
    assert_eq!(
        net.sim.with(a, |st, _| st.socket_take_error(c)),
        Some(Error::TimedOut)
    );
    assert_eq!(net.sim.stack(a).tcp.stats.retrans_segs, 15);
}

#[test]
fn linger_zero_closes_with_a_reset() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim
        .with(a, |st, cx| {
            st.socket_setopt(cx, c, SockOpt::Linger(Some(0)))
        })
        .unwrap();
    net.sim.with(a, |st, cx| st.socket_close(cx, c));
    // No TIME-WAIT left behind.
    assert_eq!(net.sim.stack(a).tcp.len(), 0);
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, b, s), Some(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(
        net.sim
            .with(b, |st, cx| st.socket_recv(cx, s, &mut buf, false)),
        Err(Error::ConnReset)
    );
    // After the error, end of stream.
    assert_eq!(
        net.sim
            .with(b, |st, cx| st.socket_recv(cx, s, &mut buf, false))
            .map(|i| i.len),
        Ok(0)
    );
    assert_eq!(net.sim.stack(b).tcp.stats.estab_resets, 1);
}

#[test]
fn a_lost_segment_is_retransmitted_after_the_rto() {
    let mut net = net_with(4, Duration::from_millis(10));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    let rto = net.sim.stack(a).tcp.rto(c).unwrap();
    assert!(
        rto >= Duration::from_millis(200) && rto < Duration::from_secs(1),
        "{rto:?}"
    );
    net.sim.set_connected(a, net.ia, false);
    net.sim.capture();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"lost once", None))
        .unwrap();
    net.sim.run_for(rto / 2);
    net.sim.set_connected(a, net.ia, true);
    let mut got = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(5), |sim| {
        recv_all(sim, b, s, &mut got).unwrap();
        got.len() == 9
    }));
    // Let the (delayed) ACK come back.
    net.sim.run_for(Duration::from_millis(100));
    let sends: Vec<_> = segments(&mut net.sim)
        .into_iter()
        .filter(|x| x.from == a && x.len == 9)
        .collect();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[1].time - sends[0].time, rto);
    assert_eq!(net.sim.stack(a).tcp.stats.retrans_segs, 1);
    assert_eq!(
        net.sim.stack(a).tcp.rto(c),
        Some(rto),
        "a fresh sample resets the backoff"
    );
}

#[test]
fn options_read_back_and_unknown_congestion_control_is_refused() {
    let mut net = net();
    let a = net.a;
    let c = open(&mut net.sim, a, false);
    let set = |sim: &mut Sim, o| sim.with(a, |st, cx| st.socket_setopt(cx, c, o));
    // CUBIC is the default (RFC 9438, as on Linux); either can be chosen.
    assert_eq!(
        net.sim.stack(a).socket_getopt(c, SockOptName::Congestion),
        Ok(SockOpt::Congestion("cubic".into()))
    );
    assert_eq!(
        set(&mut net.sim, SockOpt::Congestion("cubic".into())),
        Ok(())
    );
    assert_eq!(
        set(&mut net.sim, SockOpt::Congestion("newreno".into())),
        Ok(())
    );
    assert!(matches!(
        set(&mut net.sim, SockOpt::Congestion("vegas".into())),
        Err(Error::Invalid(_))
    ));
    assert_eq!(set(&mut net.sim, SockOpt::Linger(Some(0))), Ok(()));
    assert_eq!(set(&mut net.sim, SockOpt::MaxSeg(1000)), Ok(()));
    let get = |n| net.sim.stack(a).socket_getopt(c, n);
    assert_eq!(
        get(SockOptName::Congestion),
        Ok(SockOpt::Congestion("newreno".into()))
    );
    assert_eq!(get(SockOptName::Linger), Ok(SockOpt::Linger(Some(0))));
    assert_eq!(get(SockOptName::MaxSeg), Ok(SockOpt::MaxSeg(1000)));
    assert_eq!(get(SockOptName::KeepCnt), Ok(SockOpt::KeepCnt(9)));
    // TCP_MAXSEG on a listener reaches the connections it accepts, and
    // the peer's segments respect it.
    let b = net.b;
    let l = open(&mut net.sim, b, false);
    net.sim
        .with(b, |st, cx| st.socket_setopt(cx, l, SockOpt::MaxSeg(600)))
        .unwrap();
    net.sim
        .with(b, |st, cx| st.socket_bind(cx, l, sa(B4, 80)))
        .unwrap();
    net.sim
        .with(b, |st, cx| st.socket_listen(cx, l, 1))
        .unwrap();
    let c2 = connect(&mut net.sim, a, sa(B4, 80));
    net.sim.run_for(Duration::from_millis(100));
    let (s2, _) = accept(&mut net.sim, b, l).unwrap();
    assert_eq!(net.sim.stack(b).tcp.negotiated(s2).map(|n| n.1), Some(600));
    assert_eq!(net.sim.stack(a).tcp.negotiated(c2).map(|n| n.0), Some(588));
    let mut buf = [0u8; 4];
    assert_eq!(
        net.sim
            .with(a, |st, cx| st.socket_recv(cx, c, &mut buf, false)),
        Err(Error::NotConnected)
    );
    assert_eq!(
        net.sim
            .with(a, |st, cx| st.socket_accept(cx, c))
            .map(|x| x.0),
        Err(Error::Invalid("socket is not listening".into()))
    );
}

/// One hostile segment: fields relative to a real segment of the
/// connection, so many land in the window.
#[derive(Debug, Clone)]
struct Hostile {
    to_listener: bool,
    flags: u8,
    seq_delta: i32,
    ack_delta: i32,
    wnd: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn forge_any(frame: &[u8], h: &Hostile, base_seq: u32, base_ack: u32) -> PktBuf {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let l4 = 14 + ihl;
    let mut f = frame[..l4 + 20].to_vec();
    let mut opts = h.options.clone();
    opts.truncate(40);
    while !opts.len().is_multiple_of(4) {
        opts.push(1);
    }
    f[l4 + 12] = (((20 + opts.len()) / 4) as u8) << 4;
    f.extend_from_slice(&opts);
    f.extend_from_slice(&h.payload);
    if h.to_listener {
        f[l4 + 2..l4 + 4].copy_from_slice(&80u16.to_be_bytes());
        f[l4..l4 + 2].copy_from_slice(&4242u16.to_be_bytes());
    }
    f[l4 + 4..l4 + 8].copy_from_slice(&base_seq.wrapping_add(h.seq_delta as u32).to_be_bytes());
    f[l4 + 8..l4 + 12].copy_from_slice(&base_ack.wrapping_add(h.ack_delta as u32).to_be_bytes());
    f[l4 + 13] = h.flags;
    f[l4 + 14..l4 + 16].copy_from_slice(&h.wnd.to_be_bytes());
    seal_v4(&mut f)
}

fn hostile() -> impl proptest::strategy::Strategy<Value = Hostile> {
    use proptest::prelude::*;
    (
        any::<bool>(),
        any::<u8>(),
        prop_oneof![-3000i32..3000, any::<i32>()],
        prop_oneof![-3000i32..3000, any::<i32>()],
        any::<u16>(),
        proptest::collection::vec(
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
        proptest::collection::vec(any::<u8>(), 0..1500),
    )
        .prop_map(
            |(to_listener, flags, seq_delta, ack_delta, wnd, options, payload)| Hostile {
                to_listener,
                flags,
                seq_delta,
                ack_delta,
                wnd,
                options,
                payload,
            },
        )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    #[test]
    fn hostile_segments_never_panic_and_tables_stay_bounded(
        segs in proptest::collection::vec(hostile(), 1..24),
    ) {
        let mut net = net_with(99, Duration::from_millis(1));
        let (c, s) = established(&mut net, false);
        let (a, b, ib) = (net.a, net.b, net.ib);
        net.sim.capture();
        net.sim.with(a, |st, cx| st.socket_send(cx, c, b"x", None)).unwrap();
        net.sim.run_for(Duration::from_millis(100));
        let caps = net.sim.take_captured();
        let frame = last_tcp_frame(&caps, a);
        let base = caps.iter().rev().find_map(|x| (x.from == a).then(|| tcp_of(x)).flatten()).unwrap();
        for h in &segs {
            let pkt = forge_any(&frame, h, base.seq, base.ack);
            net.sim.with(b, |st, cx| st.input(cx, ib, [pkt]));
            net.sim.run_for(Duration::from_millis(30));
            let mut sink = Vec::new();
            let _ = recv_all(&mut net.sim, b, s, &mut sink);
        }
        net.sim.run_for(Duration::from_secs(200));
        // Whatever happened, the stack serves a new connection.
        let tcp = &net.sim.stack(b).tcp;
        proptest::prop_assert!(tcp.len() < 40);
        let l2 = listen_on(&mut net.sim, b, sa(B4, 81), 4);
        let c2 = connect(&mut net.sim, a, sa(B4, 81));
        let up = net.sim.run_until(Duration::from_secs(5), |sim| {
            state(sim, a, c2) == Some(State::Established)
        });
        proptest::prop_assert!(up);
        let _ = l2;
    }
}

#[test]
fn connections_over_loopback_work_for_both_families() {
    let mut net = net();
    let a = net.a;
    for (addr, port) in [("127.0.0.1", 7000), ("::1", 7001)] {
        let l = listen_on(&mut net.sim, a, sa(addr, port), 8);
        let c = connect(&mut net.sim, a, sa(addr, port));
        let mut s = None;
        assert!(net.sim.run_until(Duration::from_secs(1), |sim| {
            s = s.or(accept(sim, a, l).ok().map(|x| x.0));
            s.is_some() && state(sim, a, c) == Some(State::Established)
        }));
        let s = s.unwrap();
        // lo0's large MTU gives a large MSS.
        let (mss, ..) = net.sim.stack(a).tcp.negotiated(c).unwrap();
        assert!(mss > 30_000, "MSS {mss} over loopback");
        let data = pattern(300_000, 4);
        let got = pump(&mut net.sim, (a, c), (a, s), &data, Duration::from_secs(10));
        assert!(got == data);
    }
}

#[test]
fn a_lost_syn_ack_is_sent_again() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    // Resolve addresses first.
    let c0 = connect(&mut net.sim, a, sa(B4, 80));
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c0), Some(State::Established));
    net.sim.capture();
    let start = net.sim.now();
    let c = connect(&mut net.sim, a, sa(B4, 80));
    // The SYN is on the wire; the cable goes before the SYN-ACK leaves.
    net.sim.run_for(Duration::from_millis(3));
    net.sim.set_connected(a, net.ia, false);
    net.sim.run_for(Duration::from_millis(500));
    net.sim.set_connected(a, net.ia, true);
    assert!(net.sim.run_until(Duration::from_secs(10), |sim| {
        state(sim, a, c) == Some(State::Established)
    }));
    // Recovered on the first retransmission (a's SYN or b's SYN-ACK,
    // both due a second later), not the second one at three seconds.
    assert!(net.sim.now() - start < Duration::from_millis(1100));
    let synacks = segments(&mut net.sim)
        .iter()
        .filter(|x| x.from == b && x.flags == wire::SYN | wire::ACK)
        .count();
    assert!(synacks >= 2, "{synacks} SYN-ACKs");
    assert_eq!(state(&net.sim, b, l), Some(State::Listen));
}

#[test]
fn closing_a_listener_resets_connections_not_yet_accepted() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    let c = connect(&mut net.sim, a, sa(B4, 80));
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c), Some(State::Established));
    net.sim.with(b, |st, cx| st.socket_close(cx, l));
    assert_eq!(net.sim.stack(b).tcp.len(), 0);
    assert_eq!(net.sim.stack(b).sockets.len(), 0);
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c), Some(State::Closed));
    assert_eq!(
        net.sim.with(a, |st, _| st.socket_take_error(c)),
        Some(Error::ConnReset)
    );
    // The port is free again.
    let l2 = open(&mut net.sim, b, false);
    assert_eq!(
        net.sim.with(b, |st, cx| st.socket_bind(cx, l2, sa(B4, 80))),
        Ok(())
    );
    let l3 = open(&mut net.sim, b, false);
    assert_eq!(
        net.sim
            .with(b, |st, cx| st.socket_bind(cx, l3, sa("0.0.0.0", 80))),
        Err(Error::AddrInUse)
    );
}

#[test]
fn out_of_order_data_and_a_fin_beyond_a_hole_are_reassembled() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b, ib) = (net.a, net.b, net.ib);
    net.sim.capture();
    net.sim
        .with(a, |st, cx| st.socket_send(cx, c, b"0", None))
        .unwrap();
    net.sim.run_for(Duration::from_millis(100));
    let caps = net.sim.take_captured();
    let frame = last_tcp_frame(&caps, a);
    let seg = caps
        .iter()
        .rev()
        .find_map(|x| (x.from == a).then(|| tcp_of(x)).flatten())
        .unwrap();
    let nxt = seg.seq.wrapping_add(seg.len as u32);
    // Take a off the wire so its own stack does not interfere.
    net.sim.set_connected(a, net.ia, false);
    net.sim.capture();
    let late = forge_v4(&frame, wire::ACK | wire::FIN, nxt.wrapping_add(5), b"world");
    let early = forge_v4(&frame, wire::ACK, nxt, b"hello");
    net.sim.with(b, |st, cx| st.input(cx, ib, [late]));
    let mut got = Vec::new();
    assert_eq!(recv_all(&mut net.sim, b, s, &mut got), Ok(false));
    assert_eq!(got, b"0");
    // The gap is reported at once, with a SACK block for what is held.
    let acks = segments(&mut net.sim);
    let dup = acks.iter().find(|x| x.from == b).expect("an immediate ACK");
    assert_eq!(dup.ack, nxt);
    assert_eq!(
        dup.opts.sack_blocks(),
        &[(nxt.wrapping_add(5), nxt.wrapping_add(10))]
    );
    net.sim.with(b, |st, cx| st.input(cx, ib, [early]));
    assert_eq!(recv_all(&mut net.sim, b, s, &mut got), Ok(true));
    assert_eq!(got, b"0helloworld");
    assert_eq!(state(&net.sim, b, s), Some(State::CloseWait));
    let acks = segments(&mut net.sim);
    assert!(
        acks.iter()
            .any(|x| x.from == b && x.ack == nxt.wrapping_add(11))
    );
}

#[test]
fn a_smaller_mtu_after_the_handshake_shrinks_the_segments() {
    let mut net = net();
    let (c, s) = established(&mut net, false);
    let (a, b, ia) = (net.a, net.b, net.ia);
    net.sim.with(a, |st, _| st.set_mtu(ia, 1000)).unwrap();
    net.sim.capture();
    let data = pattern(200_000, 6);
    let got = pump(&mut net.sim, (a, c), (b, s), &data, Duration::from_secs(30));
    assert!(got == data);
    let (mss, ..) = net.sim.stack(a).tcp.negotiated(c).unwrap();
    assert_eq!(mss, 1000 - 40 - 12);
    let biggest = segments(&mut net.sim)
        .iter()
        .filter(|x| x.from == a)
        .map(|x| x.len)
        .max()
        .unwrap();
    assert_eq!(biggest, 948);
}

/// A 1 MB transfer through 2 % loss with congestion control `cc` on the
/// sender; returns the sender's counters and the virtual time it took.
fn lossy_transfer_with(cc: &str, seed: u64) -> (iopkt_stack::tcp::TcpStats, Duration) {
    let mut net = net_with(seed, Duration::from_millis(10));
    let (c, s) = established(&mut net, false);
    let a = net.a;
    net.sim
        .with(a, |st, cx| {
            st.socket_setopt(cx, c, SockOpt::Congestion(cc.into()))
        })
        .unwrap();
    assert_eq!(
        net.sim.stack(a).socket_getopt(c, SockOptName::Congestion),
        Ok(SockOpt::Congestion(cc.into()))
    );
    let took = lossy_bulk(&mut net, (c, s), 2.0, 0x3c, Duration::from_secs(300), cc);
    (net.sim.stack(a).tcp.stats, took)
}

/// Sends 1 MB from `a` to `b` over an established connection with
/// `loss` % of `a`'s frames dropped from now on; asserts it arrives
/// intact (`label` names the run) and returns the virtual time it took.
fn lossy_bulk(
    net: &mut Net,
    (c, s): (SocketId, SocketId),
    loss: f64,
    salt: u8,
    limit: Duration,
    label: &str,
) -> Duration {
    let (a, b) = (net.a, net.b);
    net.sim.set_impairment(
        a,
        net.ia,
        Impairment {
            loss,
            ..Impairment::default()
        },
    );
    let data = pattern(1 << 20, salt);
    let start = net.sim.now();
    let got = pump(&mut net.sim, (a, c), (b, s), &data, limit);
    assert_eq!(got.len(), data.len(), "{label}: incomplete");
    assert!(got == data, "{label}: bytes differ");
    net.sim.now() - start
}

#[test]
fn cubic_and_newreno_both_complete_a_lossy_bulk_transfer() {
    for cc in ["cubic", "newreno"] {
        let (st, took) = lossy_transfer_with(cc, 41);
        assert!(
            st.retrans_segs > 0,
            "{cc}: loss must have cost retransmissions"
        );
        assert!(took < Duration::from_secs(300), "{cc}: {took:?}");
    }
}

/// A 1 MB transfer through 3 % loss, SACK offered or not by both stacks:
/// (sender's counters, virtual time taken, SACK negotiated).
fn transfer_with_sack(sack: bool, seed: u64) -> (iopkt_stack::tcp::TcpStats, Duration, bool) {
    let mut net = net_with(seed, Duration::from_millis(20));
    let (a, b) = (net.a, net.b);
    for n in [a, b] {
        net.sim.with(n, |st, _| st.tcp.sack_enabled = sack);
    }
    let (c, s) = established(&mut net, false);
    let negotiated = net.sim.stack(a).tcp.negotiated(c).unwrap().5;
    let label = format!("sack={sack}");
    let took = lossy_bulk(
        &mut net,
        (c, s),
        3.0,
        0x5a,
        Duration::from_secs(600),
        &label,
    );
    (net.sim.stack(a).tcp.stats, took, negotiated)
}

#[test]
fn sack_recovery_repairs_several_losses_per_window_faster_than_newreno() {
    // The same seeds, so the same impaired links, with and without SACK.
    let (mut t_with, mut t_without) = (Duration::ZERO, Duration::ZERO);
    let (mut rto_with, mut rto_without) = (0, 0);
    for seed in 53..59 {
        let (with, tw, neg_with) = transfer_with_sack(true, seed);
        let (without, two, neg_without) = transfer_with_sack(false, seed);
        assert!(neg_with && !neg_without);
        assert!(with.sack_recoveries > 0 && with.sack_retransmits > 0);
        assert_eq!(without.sack_recoveries, 0);
        t_with += tw;
        t_without += two;
        rto_with += with.rexmit_timeouts;
        rto_without += without.rexmit_timeouts;
    }
    // Several holes per window are repaired in one round trip instead of
    // one per round trip, and far fewer end in a retransmission timeout.
    assert!(
        t_with < t_without,
        "time: SACK {t_with:?} vs NewReno {t_without:?}"
    );
    assert!(
        rto_with < rto_without,
        "timeouts: SACK {rto_with} vs NewReno {rto_without}"
    );
}

/// An Ethernet + IPv4 + TCP frame with its source address, ports,
/// sequence and acknowledgment numbers replaced, checksums fixed.
fn rewrite_v4(frame: &[u8], src: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32) -> PktBuf {
    let mut f = frame.to_vec();
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let l4 = 14 + ihl;
    f[26..30].copy_from_slice(&src);
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
    f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    f[l4 + 8..l4 + 12].copy_from_slice(&ack.to_be_bytes());
    f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    let dst: [u8; 4] = f[30..34].try_into().unwrap();
    let p = checksum::pseudo_v4(src.into(), dst.into(), 6, (f.len() - l4) as u16);
    let c = checksum::finish(checksum::sum(p, &f[l4..]));
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    PktBuf::from_slice(&f)
}

#[test]
fn syn_cookies_let_a_client_in_past_a_flooded_syn_queue() {
    let mut net = net();
    let (a, b, ib) = (net.a, net.b, net.ib);
    let l = listen_on(&mut net.sim, b, sa(B4, 80), 4);
    // A SYN to learn the frame layout from (port 81 is closed).
    net.sim.capture();
    let probe = connect(&mut net.sim, a, sa(B4, 81));
    net.sim.run_for(Duration::from_millis(50));
    assert_eq!(state(&net.sim, a, probe), Some(State::Closed));
    let syn = last_tcp_frame(&net.sim.take_captured(), a);
    // A flood from an address nobody answers for: the handshakes never
    // complete.
    let flood: Vec<PktBuf> = (0..20u16)
        .map(|i| rewrite_v4(&syn, [10, 0, 0, 77], 2000 + i, 80, 1000 * u32::from(i), 0))
        .collect();
    net.sim.with(b, |st, cx| st.input(cx, ib, flood));
    net.sim.run_for(Duration::from_millis(10));
    assert_eq!(net.sim.stack(b).tcp.count_in(State::SynReceived), 4);
    assert_eq!(net.sim.stack(b).tcp.stats.syncookies_sent, 16);
    let conns_before = net.sim.stack(b).tcp.len();
    // A real client still gets in, with its options intact.
    net.sim.capture();
    let c = connect(&mut net.sim, a, sa(B4, 80));
    let mut server = None;
    assert!(net.sim.run_until(Duration::from_secs(2), |s| {
        if server.is_none() {
            server = accept(s, b, l).ok();
        }
        server.is_some() && state(s, a, c) == Some(State::Established)
    }));
    let (srv, peer) = server.unwrap();
    assert_eq!(peer, net.sim.stack(a).socket_local(c).unwrap());
    assert_eq!(net.sim.stack(b).tcp.stats.syncookies_recv, 1);
    assert_eq!(net.sim.stack(b).tcp.count_in(State::SynReceived), 4);
    let (mss, _, snd_ws, _, ts, sack) = net.sim.stack(b).tcp.negotiated(srv).unwrap();
    let (_, _, _, client_rcv_ws, ..) = net.sim.stack(a).tcp.negotiated(c).unwrap();
    assert_eq!(mss, 1460 - 12, "MSS from the cookie, less the timestamps");
    assert!(ts && sack, "timestamps and SACK through the TSval bits");
    assert_eq!(snd_ws, client_rcv_ws, "the client's window scale came back");
    let caps = net.sim.take_captured();
    let ack_frame = last_tcp_frame(&caps, a);
    let data = pattern(300_000, 9);
    assert!(
        pump(
            &mut net.sim,
            (a, c),
            (b, srv),
            &data,
            Duration::from_secs(10)
        ) == data
    );
    let back = pattern(100_000, 10);
    assert!(
        pump(
            &mut net.sim,
            (b, srv),
            (a, c),
            &back,
            Duration::from_secs(10)
        ) == back
    );
    // A forged final ACK: a cookie that was never issued to that tuple.
    let resets = net.sim.stack(b).tcp.stats.resets_out;
    let forged = rewrite_v4(&ack_frame, [10, 0, 0, 1], 4444, 80, 5000, 0x1234_5678);
    net.sim.with(b, |st, cx| st.input(cx, ib, [forged]));
    let st = net.sim.stack(b).tcp.stats;
    assert_eq!(st.syncookies_failed, 1);
    assert_eq!(st.syncookies_recv, 1);
    assert_eq!(st.resets_out, resets + 1, "refused with a reset");
    assert_eq!(net.sim.stack(b).tcp.len(), conns_before + 1);
    assert_eq!(accept(&mut net.sim, b, l), Err(Error::WouldBlock));
}

/// a (10.0.1.2) — r (10.0.1.1 | 10.0.2.1) — b (10.0.2.2); r forwards,
/// and its interface towards b has an MTU of `mtu_rb`: (sim, a, r, b,
/// a's interface).
fn routed(seed: u64, mtu_rb: u32) -> (Sim, NodeId, NodeId, NodeId, IfIndex) {
    use iopkt_stack::route::{Route, RouteFlags};
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let r = sim.add_node_with(
        "r",
        iopkt_stack::Config {
            forwarding4: true,
            ..iopkt_stack::Config::default()
        },
    );
    let b = sim.add_node("b");
    let lc = LinkCfg {
        latency: Duration::from_millis(5),
        ..LinkCfg::default()
    };
    let (ia, ra) = sim.connect(a, r, lc.clone());
    let (rb, ib) = sim.connect(r, b, lc);
    for (n, i, ad) in [
        (a, ia, "10.0.1.2"),
        (r, ra, "10.0.1.1"),
        (r, rb, "10.0.2.1"),
        (b, ib, "10.0.2.2"),
    ] {
        sim.with(n, |s, c| s.add_addr4(c, i, ad.parse().unwrap(), 24, true))
            .unwrap();
    }
    for (n, i, gw) in [(a, ia, "10.0.1.1"), (b, ib, "10.0.2.1")] {
        sim.with(n, |s, _| {
            s.routes4.add(Route {
                dest: std::net::Ipv4Addr::UNSPECIFIED,
                plen: 0,
                gateway: Some(gw.parse().unwrap()),
                ifindex: i,
                flags: RouteFlags::STATIC,
                expires: None,
            })
        })
        .unwrap();
    }
    sim.with(r, |s, _| s.set_mtu(rb, mtu_rb)).unwrap();
    sim.run_for(Duration::from_millis(10));
    (sim, a, r, b, ia)
}

#[test]
fn frag_needed_from_a_router_lowers_the_mss_and_the_data_gets_through() {
    let (mut sim, a, r, b, _) = routed(61, 1000);
    let l = listen_on(&mut sim, b, sa("10.0.2.2", 80), 4);
    let c = connect(&mut sim, a, sa("10.0.2.2", 80));
    let mut server = None;
    assert!(sim.run_until(Duration::from_secs(2), |s| {
        if server.is_none() {
            server = accept(s, b, l).ok().map(|x| x.0);
        }
        server.is_some() && state(s, a, c) == Some(State::Established)
    }));
    let srv = server.unwrap();
    // The handshake saw 1500-byte MTUs at both ends.
    assert_eq!(sim.stack(a).tcp.negotiated(c).unwrap().0, 1460 - 12);
    sim.capture();
    let data = pattern(300_000, 12);
    let got = pump(&mut sim, (a, c), (b, srv), &data, Duration::from_secs(20));
    assert!(got == data, "bytes differ");
    let st = sim.stack(a).tcp.stats;
    assert_eq!(st.pmtu_shrinks, 1);
    assert!(st.icmp_errors >= 1);
    assert_eq!(sim.stack(a).tcp.negotiated(c).unwrap().0, 1000 - 40 - 12);
    assert_eq!(st.rexmit_timeouts, 0, "resent at once, not after the RTO");
    // Everything after the report fits the narrow link.
    let caps = sim.take_captured();
    let biggest_at_b = caps
        .iter()
        .filter(|x| x.from == r)
        .filter_map(tcp_of)
        .map(|x| x.len)
        .max()
        .unwrap();
    assert_eq!(biggest_at_b, 948);
}

#[test]
fn an_unreachable_network_is_reported_when_connect_gives_up() {
    let (mut sim, a, r, _, _) = routed(62, 1500);
    let c = connect(&mut sim, a, sa("10.9.9.9", 80));
    sim.run_for(Duration::from_secs(200));
    assert!(sim.stack(r).v4.stats.no_route >= 1);
    assert_eq!(state(&sim, a, c), Some(State::Closed));
    // A soft error (RFC 1122 section 4.2.3.9): the attempt went on until
    // it timed out, and then says why.
    assert_eq!(
        sim.with(a, |s, _| s.socket_take_error(c)),
        Some(Error::NetUnreachable)
    );
}

/// An Ethernet frame carrying ICMPv4 type 3 `code` from `from`, quoting
/// the IP packet of `frame` (an Ethernet frame we sent), sent back to its
/// sender.
fn icmp_unreach_about(frame: &[u8], from: [u8; 4], code: u8) -> PktBuf {
    use iopkt_wire::IntoBytes;
    use iopkt_wire::ipv4::Ipv4Hdr;
    let ip = &frame[14..];
    let quoted = &ip[..ip.len().min(28 + 20)];
    let mut icmp = vec![3, code, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(quoted);
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let dst: [u8; 4] = ip[12..16].try_into().unwrap();
    let h = Ipv4Hdr::new(from.into(), dst.into(), 1, 64, 7, 0, icmp.len(), 0);
    let mut f = Vec::new();
    f.extend_from_slice(&frame[6..12]);
    f.extend_from_slice(&frame[0..6]);
    f.extend_from_slice(&frame[12..14]);
    f.extend_from_slice(h.as_bytes());
    f.extend_from_slice(&icmp);
    PktBuf::from_slice(&f)
}

#[test]
fn port_unreachable_refuses_a_connection_only_for_a_quote_in_flight() {
    let (mut sim, a, _, _, ia) = routed(63, 1500);
    sim.capture();
    // Nobody answers at 10.0.2.99: the SYN leaves and nothing comes back.
    let c = connect(&mut sim, a, sa("10.0.2.99", 80));
    sim.run_for(Duration::from_millis(100));
    let syn = last_tcp_frame(&sim.take_captured(), a);
    // A quote whose sequence number is not our ISN: ignored (RFC 5927).
    let mut wrong = syn.clone();
    let l4 = 14 + usize::from(wrong[14] & 0x0f) * 4;
    wrong[l4 + 7] ^= 0x55;
    let e = icmp_unreach_about(&wrong, [10, 0, 1, 1], 3);
    sim.with(a, |s, cx| s.input(cx, ia, [e]));
    assert_eq!(state(&sim, a, c), Some(State::SynSent));
    assert_eq!(sim.stack(a).tcp.stats.icmp_ignored, 1);
    // Host unreachable is soft: the attempt goes on.
    let e = icmp_unreach_about(&syn, [10, 0, 1, 1], 1);
    sim.with(a, |s, cx| s.input(cx, ia, [e]));
    assert_eq!(state(&sim, a, c), Some(State::SynSent));
    // Port unreachable in SYN-SENT is hard: ECONNREFUSED.
    let e = icmp_unreach_about(&syn, [10, 0, 1, 1], 3);
    sim.with(a, |s, cx| s.input(cx, ia, [e]));
    assert_eq!(state(&sim, a, c), Some(State::Closed));
    assert_eq!(
        sim.with(a, |s, _| s.socket_take_error(c)),
        Some(Error::ConnRefused)
    );
    assert_eq!(sim.stack(a).tcp.stats.icmp_errors, 2);
}

#[test]
fn tcp_info_reports_the_connection() {
    let mut net = net_with(71, Duration::from_millis(5));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    let info = net.sim.stack(a).tcp_info_of(c).unwrap();
    assert_eq!(info.state, State::Established);
    assert_eq!(info.congestion, "cubic");
    assert_eq!((info.snd_mss, info.rcv_mss), (1448, 1460));
    assert_eq!(info.snd_ssthresh, u32::MAX, "no loss yet");
    assert!(info.options.timestamps && info.options.sack && info.options.wscale);
    net.sim.set_impairment(
        a,
        net.ia,
        Impairment {
            loss: 2.0,
            ..Impairment::default()
        },
    );
    let data = pattern(400_000, 3);
    assert!(pump(&mut net.sim, (a, c), (b, s), &data, Duration::from_secs(60)) == data);
    net.sim.run_for(Duration::from_millis(200));
    let info = net.sim.stack(a).tcp_info_of(c).unwrap();
    assert_eq!(info.bytes_acked, data.len() as u64);
    assert_eq!(info.total_retrans, net.sim.stack(a).tcp.stats.retrans_segs);
    assert!(info.total_retrans > 0);
    assert!(info.snd_ssthresh < u32::MAX, "the losses lowered ssthresh");
    assert!(
        info.rtt >= Duration::from_millis(10) && info.rtt < Duration::from_millis(30),
        "{:?}",
        info.rtt
    );
    assert!(info.rto >= Duration::from_millis(200));
    assert_eq!(info.retransmits, 0);
    let rinfo = net.sim.stack(b).tcp_info_of(s).unwrap();
    assert_eq!(rinfo.bytes_received, data.len() as u64);
    assert_eq!(rinfo.options.snd_wscale, info.options.rcv_wscale);
    assert!(net.sim.stack(a).tcp_info_of(SocketId(9999)).is_none());
}

#[test]
fn an_ipv6_wildcard_listener_takes_ipv4_connections_unless_v6only() {
    let mut net = net();
    let (a, b) = (net.a, net.b);
    let l = listen_on(&mut net.sim, b, sa("::", 80), 4);
    let c = connect(&mut net.sim, a, sa(B4, 80));
    let mut got = None;
    assert!(net.sim.run_until(Duration::from_secs(2), |s| {
        if got.is_none() {
            got = accept(s, b, l).ok();
        }
        got.is_some() && state(s, a, c) == Some(State::Established)
    }));
    let (srv, peer) = got.unwrap();
    let client = net.sim.stack(a).socket_local(c).unwrap();
    assert_eq!(
        peer,
        sa(&format!("::ffff:{A4}"), client.port()),
        "the peer as an IPv4-mapped address"
    );
    assert_eq!(
        net.sim.stack(b).socket_local(srv),
        Some(sa(&format!("::ffff:{B4}"), 80))
    );
    assert_eq!(net.sim.stack(b).socket_peer(srv), Some(peer));
    let data = pattern(50_000, 4);
    assert!(
        pump(
            &mut net.sim,
            (a, c),
            (b, srv),
            &data,
            Duration::from_secs(5)
        ) == data
    );
    let back = pattern(20_000, 5);
    assert!(
        pump(
            &mut net.sim,
            (b, srv),
            (a, c),
            &back,
            Duration::from_secs(5)
        ) == back
    );
    // With IPV6_V6ONLY the same listener shape refuses IPv4.
    let l6 = open(&mut net.sim, b, true);
    net.sim
        .with(b, |st, cx| st.socket_setopt(cx, l6, SockOpt::V6Only(true)))
        .unwrap();
    net.sim
        .with(b, |st, cx| st.socket_bind(cx, l6, sa("::", 81)))
        .unwrap();
    net.sim
        .with(b, |st, cx| st.socket_listen(cx, l6, 4))
        .unwrap();
    let c2 = connect(&mut net.sim, a, sa(B4, 81));
    net.sim.run_for(Duration::from_millis(100));
    assert_eq!(state(&net.sim, a, c2), Some(State::Closed));
    assert_eq!(
        net.sim.with(a, |s, _| s.socket_take_error(c2)),
        Some(Error::ConnRefused)
    );
    // An IPv4 listener on the port is preferred over the dual one.
    let l4 = listen_on(&mut net.sim, b, sa("0.0.0.0", 82), 4);
    let l46 = listen_on(&mut net.sim, b, sa("::", 82), 4);
    let _c3 = connect(&mut net.sim, a, sa(B4, 82));
    net.sim.run_for(Duration::from_millis(100));
    assert!(accept(&mut net.sim, b, l4).is_ok());
    assert_eq!(accept(&mut net.sim, b, l46), Err(Error::WouldBlock));
}

#[test]
fn an_ipv6_packet_too_big_lowers_the_mss_of_the_connection() {
    let mut net = net();
    let (c, s) = established(&mut net, true);
    let (a, b, ia) = (net.a, net.b, net.ia);
    assert_eq!(net.sim.stack(a).tcp.negotiated(c).unwrap().0, 1440 - 12);
    net.sim.capture();
    let data = pattern(100_000, 8);
    let sent = net
        .sim
        .with(a, |st, cx| st.socket_send(cx, c, &data, None))
        .unwrap();
    let frame = last_tcp_frame(&net.sim.take_captured(), a);
    // A router on the way says 1280 (RFC 8201), quoting our segment.
    let quoted = &frame[14..frame.len().min(14 + 1232)];
    let mut icmp = vec![2, 0, 0, 0];
    icmp.extend_from_slice(&1280u32.to_be_bytes());
    icmp.extend_from_slice(quoted);
    let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (B6.parse().unwrap(), A6.parse().unwrap());
    let p = checksum::pseudo_v6(src, dst, 58, icmp.len() as u32);
    let ck = checksum::finish(checksum::sum(p, &icmp));
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&frame[6..12]);
    f.extend_from_slice(&frame[0..6]);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    net.sim.capture();
    net.sim
        .with(a, |st, cx| st.input(cx, ia, [PktBuf::from_slice(&f)]));
    assert_eq!(net.sim.stack(a).tcp.stats.pmtu_shrinks, 1);
    assert_eq!(
        net.sim.stack(a).tcp.negotiated(c).unwrap().0,
        1280 - 60 - 12
    );
    let mut got = Vec::new();
    assert!(net.sim.run_until(Duration::from_secs(10), |sim| {
        recv_all(sim, b, s, &mut got).unwrap();
        got.len() >= sent
    }));
    assert!(got == data[..sent]);
    let after = segments(&mut net.sim);
    let biggest = after.iter().filter(|x| x.from == a).map(|x| x.len).max();
    assert_eq!(biggest, Some(1208));
}

/// A 1 MB transfer over a link with `impair` (latency `latency`), RACK-TLP
/// on or off on both stacks (net.inet.tcp.rack); drops the frames `drop`
/// picks among `a`'s. Returns the sender's counters and the time taken.
fn transfer_rack(
    rack: bool,
    seed: u64,
    latency: Duration,
    impair: Impairment,
    drop: Option<iopkt_sim::DropFilter>,
) -> (iopkt_stack::tcp::TcpStats, Duration) {
    let mut net = net_with(seed, latency);
    let (a, b) = (net.a, net.b);
    for n in [a, b] {
        net.sim.with(n, |st, _| {
            st.config.set("net.inet.tcp.rack", i64::from(rack)).unwrap()
        });
    }
    let (c, s) = established(&mut net, false);
    net.sim.set_impairment(a, net.ia, impair);
    net.sim.set_drop_filter(a, net.ia, drop);
    let data = pattern(1 << 20, 0x2b);
    let start = net.sim.now();
    let got = pump(
        &mut net.sim,
        (a, c),
        (b, s),
        &data,
        Duration::from_secs(300),
    );
    assert!(
        got == data,
        "rack={rack} seed={seed}: transfer incomplete or corrupt"
    );
    (net.sim.stack(a).tcp.stats, net.sim.now() - start)
}

/// (sequence number, payload length) of an IPv4 TCP frame.
fn data_of(frame: &[u8]) -> Option<(u32, usize)> {
    if frame.get(12..14)? != [0x08, 0x00] || *frame.get(23)? != 6 {
        return None;
    }
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]));
    let tcp = frame.get(14 + ihl..)?;
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    let hl = usize::from(tcp.get(12)? >> 4) * 4;
    Some((seq, total.checked_sub(ihl + hl)?))
}

#[test]
fn rack_retransmits_far_less_than_three_dupacks_when_the_link_only_reorders() {
    // 2 % of frames held 2 ms, none lost, 5 ms each way: every
    // retransmission is needless. Three duplicate ACKs fire at each
    // reordering; RACK, once it has seen reordering, waits min_RTT / 4
    // (2.5 ms) before calling a segment lost, and DSACKs undo the one
    // needless recovery that taught it.
    let reorder = Impairment {
        reorder: 2.0,
        ..Impairment::default()
    };
    let (mut with, mut without) = ((0, 0), (0, 0));
    for seed in [61, 62, 63] {
        let (r, _) = transfer_rack(true, seed, Duration::from_millis(5), reorder, None);
        let (d, _) = transfer_rack(false, seed, Duration::from_millis(5), reorder, None);
        with.0 += r.retrans_segs;
        with.1 += r.fast_retransmits;
        without.0 += d.retrans_segs;
        without.1 += d.fast_retransmits;
        assert_eq!(d.rack_lost, 0, "the dup-ACK rule alone when off");
        assert!(r.dsacks_in <= r.retrans_segs);
    }
    assert!(without.1 >= 10, "the dup-ACK rule was fooled: {without:?}");
    assert!(
        with.0 * 4 <= without.0 && with.1 * 4 <= without.1,
        "retransmissions, fast retransmits: RACK {with:?} vs dup ACKs {without:?}"
    );
}

#[test]
fn a_lost_retransmission_is_repaired_without_a_timeout() {
    // The 30th data segment is lost, and so is its first retransmission.
    let dropper = || -> iopkt_sim::DropFilter {
        let (mut n, mut target, mut drops) = (0, None, 0);
        Box::new(move |f: &[u8]| {
            let Some((seq, len)) = data_of(f) else {
                return false;
            };
            if len == 0 {
                return false;
            }
            n += 1;
            if n == 30 {
                target = Some(seq);
            }
            let hit = target == Some(seq) && drops < 2;
            drops += u32::from(hit);
            hit
        })
    };
    let none = Impairment::default();
    let lat = Duration::from_millis(10);
    let (r, took_rack) = transfer_rack(true, 71, lat, none, Some(dropper()));
    let (d, took_dup) = transfer_rack(false, 71, lat, none, Some(dropper()));
    // RACK: the retransmission was sent before new data that got
    // SACKed, so it is lost too: sent a third time, no timeout.
    assert_eq!(r.rexmit_timeouts, 0, "{r:?}");
    assert!(r.rack_lost >= 2 && r.retrans_segs >= 2, "{r:?}");
    // Without it only the retransmission timer notices.
    assert!(d.rexmit_timeouts >= 1, "{d:?}");
    eprintln!("lost retransmission: RACK {took_rack:?}, without {took_dup:?}");
}

/// Writes ten full segments at once, the last two of them lost once;
/// returns (time from the loss to the first retransmission, time from the
/// loss to the last retransmission, the sender's counters, RTO and
/// smoothed RTT when the burst went out).
fn tail_loss(
    rack: bool,
) -> (
    Duration,
    Duration,
    iopkt_stack::tcp::TcpStats,
    Duration,
    Duration,
) {
    let mut net = net_with(81, Duration::from_millis(10));
    let (a, b) = (net.a, net.b);
    for n in [a, b] {
        net.sim.with(n, |st, _| st.config.tcp_rack = rack);
    }
    let (c, s) = established(&mut net, false);
    net.sim
        .with(a, |st, cx| st.socket_setopt(cx, c, SockOpt::NoDelay(true)))
        .unwrap();
    // A few exchanges first, so there is a round-trip estimate.
    for i in 0..5u8 {
        let d = pattern(3000, i);
        assert!(pump(&mut net.sim, (a, c), (b, s), &d, Duration::from_secs(5)) == d);
    }
    net.sim.run_for(Duration::from_millis(300));
    let info = net.sim.stack(a).tcp_info_of(c).unwrap();
    let mss = net.sim.stack(a).tcp.negotiated(c).unwrap().0 as usize;
    let burst = pattern(10 * mss, 0x33);
    let mut seen = 0;
    net.sim.set_drop_filter(
        a,
        net.ia,
        Some(Box::new(move |f: &[u8]| {
            let is_data = data_of(f).is_some_and(|(_, l)| l > 0);
            seen += u32::from(is_data);
            is_data && (seen == 9 || seen == 10)
        })),
    );
    net.sim.capture();
    let got = pump(
        &mut net.sim,
        (a, c),
        (b, s),
        &burst,
        Duration::from_secs(10),
    );
    assert!(got == burst);
    let sends: Vec<_> = segments(&mut net.sim)
        .into_iter()
        .filter(|x| x.from == a && x.len > 0)
        .collect();
    let lost = sends.get(8).map(|x| x.time).unwrap();
    let rexmits: Vec<_> = sends.iter().skip(10).map(|x| x.time).collect();
    assert_eq!(rexmits.len(), 2, "the two lost segments went out again");
    (
        rexmits[0] - lost,
        rexmits[1] - lost,
        net.sim.stack(a).tcp.stats,
        info.rto,
        info.rtt,
    )
}

#[test]
fn a_tail_loss_is_repaired_by_a_probe_after_about_two_round_trips() {
    let (probe, repaired, st, rto, srtt) = tail_loss(true);
    assert_eq!(st.tlp_probes, 1, "{st:?}");
    assert_eq!(st.rexmit_timeouts, 0, "{st:?}");
    // PTO = 2 SRTT from the last ACK, which came one round trip after
    // the burst: the probe (the last segment again) about 3 SRTT after
    // the loss; its SACK lets RACK resend the other one a round trip
    // later. Both well before the RTO.
    assert!(
        probe <= srtt * 3 + Duration::from_millis(5),
        "{probe:?}, srtt {srtt:?}"
    );
    assert!(repaired <= probe + srtt * 2, "{repaired:?} vs {probe:?}");
    assert!(repaired < rto, "{repaired:?} vs RTO {rto:?}");
    // Without probes the retransmission timer it is.
    let (first_off, _, st_off, rto_off, _) = tail_loss(false);
    assert_eq!(st_off.tlp_probes, 0);
    assert_eq!(st_off.rexmit_timeouts, 1);
    assert!(first_off >= rto_off, "{first_off:?} vs {rto_off:?}");
}

#[test]
fn slow_start_doubles_each_round_trip_with_one_ack_per_batch() {
    // Large buffers so only the congestion window limits the sender.
    let mut net = net_with(91, Duration::from_millis(10));
    let (a, b) = (net.a, net.b);
    for n in [a, b] {
        net.sim.with(n, |st, _| {
            st.config.tcp_recvspace = 8 << 20;
            st.config.tcp_sendspace = 8 << 20;
        });
    }
    let (c, s) = established(&mut net, false);
    let mss = net.sim.stack(a).tcp.negotiated(c).unwrap().0;
    let cwnd = |sim: &Sim| sim.stack(a).tcp_info_of(c).unwrap().snd_cwnd;
    assert_eq!(cwnd(&net.sim), 10 * mss, "initial window (RFC 6928)");
    net.sim.capture();
    let data = pattern(6 << 20, 0x5c);
    let sent = net
        .sim
        .with(a, |st, cx| st.socket_send(cx, c, &data, None))
        .unwrap();
    assert!(sent > 2 << 20);
    // The first ACK of each flight comes back one round trip (20 ms)
    // after it left; look just after it.
    let mut seen = Vec::new();
    net.sim.run_for(Duration::from_millis(1));
    for _ in 0..5 {
        net.sim.run_for(Duration::from_millis(20));
        seen.push(cwnd(&net.sim) / mss);
        let mut sink = Vec::new();
        recv_all(&mut net.sim, b, s, &mut sink).unwrap();
    }
    assert_eq!(
        seen,
        [20, 40, 80, 160, 320],
        "segments after each round trip"
    );
    // And the receiver sent one ACK per batch, far fewer than one per
    // two segments.
    let segs = segments(&mut net.sim);
    let data_segs = segs.iter().filter(|x| x.from == a && x.len > 0).count();
    let acks = segs.iter().filter(|x| x.from == b && x.len == 0).count();
    assert!(data_segs >= 600, "{data_segs}");
    assert!(
        acks * 8 <= data_segs,
        "{acks} ACKs for {data_segs} segments"
    );
}

/// A receive sink standing for an application's ring of `cap` bytes:
/// what it takes goes into `stream`, as the bytes the test moves out of
/// the receive buffer do.
struct RingLike {
    stream: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Bytes of `stream` the reader consumed (the ring's tail).
    consumed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cap: usize,
}

impl iopkt_stack::tcp::sink::RecvSink for RingLike {
    fn take(&mut self, data: &[u8]) -> usize {
        let mut s = self.stream.lock().unwrap();
        let used = s.len() - self.consumed.load(std::sync::atomic::Ordering::Relaxed);
        let n = data.len().min(self.cap.saturating_sub(used));
        s.extend_from_slice(&data[..n]);
        n
    }
}

#[test]
fn a_receive_sink_takes_in_order_bytes_and_the_buffer_the_rest() {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    let mut net = net_with(33, Duration::from_millis(5));
    let (c, s) = established(&mut net, false);
    let (a, b) = (net.a, net.b);
    net.sim.set_impairment(
        a,
        net.ia,
        Impairment {
            loss: 1.0,
            reorder: 1.0,
            ..Impairment::default()
        },
    );
    let stream = Arc::new(Mutex::new(Vec::new()));
    let consumed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink = RingLike {
        stream: stream.clone(),
        consumed: consumed.clone(),
        cap: 48 * 1024,
    };
    net.sim
        .with(b, |st, _| st.socket_set_recv_sink(s, Some(Box::new(sink))))
        .unwrap();
    let data = pattern(3 << 20, 0x5a);
    let mut sent = 0;
    let mut buf = vec![0u8; 16 * 1024];
    let (mut via_buffer, mut rounds) = (0usize, 0u32);
    let done = net.sim.run_until(Duration::from_secs(120), |sim| {
        while sent < data.len() {
            match sim.with(a, |st, cx| st.socket_send(cx, c, &data[sent..], None)) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        // The reader: every few turns it empties the "ring", then moves
        // what waits in the receive buffer behind it (as io-pkt does).
        rounds += 1;
        if rounds % 3 == 0 {
            let len = stream.lock().unwrap().len();
            consumed.store(len, Ordering::Relaxed);
            while let Ok(i) = sim.with(b, |st, cx| st.socket_recv(cx, s, &mut buf, false)) {
                if i.len == 0 {
                    break;
                }
                via_buffer += i.len;
                stream.lock().unwrap().extend_from_slice(&buf[..i.len]);
            }
        }
        stream.lock().unwrap().len() >= data.len()
    });
    assert!(done, "transfer did not finish");
    let got = stream.lock().unwrap().clone();
    assert!(got == data, "bytes differ or are out of order");
    // Both ways were used: straight into the sink, and through the buffer
    // while the sink was full.
    assert!(via_buffer > 0, "the buffer was never used");
    assert!(via_buffer < data.len(), "the sink took nothing");
    // Taken away, the sink gets nothing more.
    net.sim
        .with(b, |st, _| st.socket_set_recv_sink(s, None))
        .unwrap();
    let before = stream.lock().unwrap().len();
    let more = pattern(10_000, 1);
    let got = pump(&mut net.sim, (a, c), (b, s), &more, Duration::from_secs(30));
    assert_eq!(got, more);
    assert_eq!(stream.lock().unwrap().len(), before);
}
