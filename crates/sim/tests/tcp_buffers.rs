//! TCP send and receive buffers on the simulated network, in virtual time:
//! receive-buffer auto-tuning (dynamic right-sizing) and send-buffer
//! auto-tuning on a long fat path, SO_RCVBUF / SO_SNDBUF locking, the
//! stack-wide memory bound under many connections with a slow reader, the
//! listen backlog cap, and the right edge of the offered window never
//! moving left (RFC 9293 section 3.8.6, RFC 7323 section 2.4).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_impair::Impairment;
use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::Config;
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::{SockOpt, SockOptName, SockType};
use iopkt_wire::tcp as wire;

const A4: &str = "10.0.0.1";
const B4: &str = "10.0.0.2";
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("test address"), port)
}

struct Net {
    sim: Sim,
    a: NodeId,
    b: NodeId,
}

/// Two hosts on one link with `one_way` latency; `a` sends, `b` receives.
fn net(seed: u64, one_way: Duration, ca: Config, cb: Config, impair: Impairment) -> Net {
    let mut sim = Sim::new(seed);
    let a = sim.add_node_with("a", ca);
    let b = sim.add_node_with("b", cb);
    let (ia, ib) = sim.connect(
        a,
        b,
        LinkCfg {
            latency: one_way,
            ..LinkCfg::default()
        },
    );
    for (n, i, v4) in [(a, ia, A4), (b, ib, B4)] {
        sim.with(n, |s, c| {
            s.add_addr4(c, i, v4.parse().unwrap(), 24, false).unwrap();
        });
    }
    sim.run_for(Duration::from_secs(3));
    // Impairments from here on, so the set-up traffic is not disturbed.
    sim.set_impairment(a, ia, impair);
    Net { sim, a, b }
}

fn open(sim: &mut Sim, n: NodeId) -> SocketId {
    sim.with(n, |s, c| s.socket_open(c, false, SockType::Stream))
        .expect("socket")
}

fn setopt(sim: &mut Sim, n: NodeId, id: SocketId, o: SockOpt) {
    sim.with(n, |s, c| s.socket_setopt(c, id, o))
        .expect("setsockopt");
}

fn getopt(sim: &Sim, n: NodeId, id: SocketId, name: SockOptName) -> usize {
    match sim.stack(n).socket_getopt(id, name) {
        Ok(SockOpt::RecvBuf(v)) | Ok(SockOpt::SendBuf(v)) => v,
        other => panic!("getsockopt {name:?}: {other:?}"),
    }
}

fn listen(sim: &mut Sim, n: NodeId, port: u16, backlog: u32, opts: &[SockOpt]) -> SocketId {
    let l = open(sim, n);
    for o in opts {
        setopt(sim, n, l, o.clone());
    }
    sim.with(n, |s, c| s.socket_bind(c, l, sa(B4, port)))
        .expect("bind");
    sim.with(n, |s, c| s.socket_listen(c, l, backlog))
        .expect("listen");
    l
}

/// Connections from `a` to a listener on `b`, established and accepted:
/// (client, server) pairs, with `copts` set on each client before connect.
fn connect_many(
    net: &mut Net,
    l: SocketId,
    port: u16,
    count: usize,
    copts: &[SockOpt],
) -> Vec<(SocketId, SocketId)> {
    let (a, b) = (net.a, net.b);
    let mut clients = Vec::new();
    for _ in 0..count {
        let c = open(&mut net.sim, a);
        for o in copts {
            setopt(&mut net.sim, a, c, o.clone());
        }
        let r = net
            .sim
            .with(a, |s, cx| s.socket_connect(cx, c, sa(B4, port)));
        assert_eq!(r, Err(Error::InProgress));
        clients.push(c);
    }
    let mut servers: Vec<(SocketId, SocketAddr)> = Vec::new();
    let ok = net.sim.run_until(Duration::from_secs(10), |s| {
        while let Ok(x) = s.with(b, |st, cx| st.socket_accept(cx, l)) {
            servers.push(x);
        }
        servers.len() == count
            && clients
                .iter()
                .all(|c| s.stack(a).tcp.state(*c) == Some(State::Established))
    });
    assert!(ok, "{} of {count} connections accepted", servers.len());
    clients
        .iter()
        .map(|c| {
            let local = net.sim.stack(a).socket_local(*c).unwrap();
            let s = servers.iter().find(|(_, p)| *p == local).unwrap().0;
            (*c, s)
        })
        .collect()
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 251) as u8) ^ salt)
        .collect()
}

/// Reads what is there (at most `max` bytes) into `into`.
fn read_some(sim: &mut Sim, n: NodeId, id: SocketId, into: &mut Vec<u8>, max: usize) {
    let mut buf = vec![0u8; 64 * KIB];
    let mut left = max;
    while left > 0 {
        let want = left.min(buf.len());
        match sim.with(n, |s, c| s.socket_recv(c, id, &mut buf[..want], false)) {
            Ok(i) if i.len == 0 => return,
            Ok(i) => {
                into.extend_from_slice(&buf[..i.len]);
                left -= i.len;
            }
            Err(Error::WouldBlock) => return,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn send_some(sim: &mut Sim, n: NodeId, id: SocketId, data: &[u8], sent: &mut usize) {
    while *sent < data.len() {
        match sim.with(n, |s, c| s.socket_send(c, id, &data[*sent..], None)) {
            Ok(k) => *sent += k,
            Err(Error::WouldBlock) => return,
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// Sends `data` from `a` to `b` over one connection, the receiver
/// reading everything as soon as it arrives; returns the virtual time it
/// took.
fn transfer(net: &mut Net, (c, s): (SocketId, SocketId), data: &[u8], limit: Duration) -> Duration {
    let (a, b) = (net.a, net.b);
    let start = net.sim.now();
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let done = net.sim.run_until(limit, |sim| {
        send_some(sim, a, c, data, &mut sent);
        read_some(sim, b, s, &mut got, usize::MAX);
        got.len() >= data.len()
    });
    assert!(done, "only {} of {} bytes arrived", got.len(), data.len());
    assert!(got == data, "data corrupted");
    net.sim.now() - start
}

/// A TCP segment in a captured frame: (from, flags, ack, window field).
fn tcp_of(c: &Captured) -> Option<(NodeId, u8, u32, u16, wire::TcpOptions)> {
    let f = &c.frame;
    if u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) != 0x0800 || f.get(23) != Some(&6) {
        return None;
    }
    let l4 = 14 + usize::from(f.get(14)? & 0x0f) * 4;
    let (h, o) = wire::TcpHdr::parse(f.get(l4..)?)?;
    Some((
        c.from,
        h.flags,
        h.ack.get(),
        h.window.get(),
        wire::TcpOptions::parse(o),
    ))
}

/// Checks the right edge (ACK + scaled window) of every segment `from`
/// sent never moves left, and returns the largest window it offered.
/// `wscale` is the shift `from` announced on its SYN.
fn offered_windows(caps: &[Captured], from: NodeId, wscale: u8) -> usize {
    let mut edge: Option<u32> = None;
    let mut largest = 0usize;
    let mut checked = 0;
    for (f, flags, ack, wnd, _) in caps.iter().filter_map(tcp_of) {
        if f != from || flags & wire::ACK == 0 || flags & wire::RST != 0 {
            continue;
        }
        // RFC 7323 section 2.2: a SYN's window is never scaled.
        let w = if flags & wire::SYN != 0 {
            u32::from(wnd)
        } else {
            u32::from(wnd) << wscale
        };
        let e = ack.wrapping_add(w);
        if let Some(prev) = edge {
            assert!(
                e.wrapping_sub(prev) as i32 >= 0,
                "right edge moved left: {prev} to {e} (ack {ack}, window {w})"
            );
        }
        edge = Some(e);
        largest = largest.max(w as usize);
        checked += 1;
    }
    assert!(checked > 10, "only {checked} segments from node {from}");
    largest
}

/// The window scale node `n` announced on its SYN or SYN-ACK.
fn announced_wscale(caps: &[Captured], n: NodeId) -> u8 {
    caps.iter()
        .filter_map(tcp_of)
        .find(|(f, flags, ..)| *f == n && flags & wire::SYN != 0)
        .and_then(|x| x.4.wscale)
        .expect("a SYN with a window scale")
}

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    f(&mut c);
    c
}

const LFN_ONE_WAY: Duration = Duration::from_millis(25);

/// One bulk transfer of `len` bytes over a 50 ms round trip with the
/// receiver's configuration `cb`: (virtual time, largest window offered,
/// receive buffer getsockopt reports after, receiver's stats).
fn long_fat_run(
    seed: u64,
    cb: Config,
    impair: Impairment,
    len: usize,
) -> (Duration, usize, usize, iopkt_stack::tcp::TcpStats) {
    let mut net = net(seed, LFN_ONE_WAY, Config::default(), cb, impair);
    let l = listen(&mut net.sim, net.b, 80, 4, &[]);
    net.sim.capture();
    let pair = connect_many(&mut net, l, 80, 1, &[])[0];
    let data = pattern(len, 7);
    let took = transfer(&mut net, pair, &data, Duration::from_secs(600));
    let caps = net.sim.take_captured();
    let ws = announced_wscale(&caps, net.b);
    let largest = offered_windows(&caps, net.b, ws);
    let rcvbuf = getopt(&net.sim, net.b, pair.1, SockOptName::RecvBuf);
    (took, largest, rcvbuf, net.sim.stack(net.b).tcp.stats)
}

fn mib_per_s(len: usize, d: Duration) -> f64 {
    len as f64 / MIB as f64 / d.as_secs_f64()
}

#[test]
fn an_auto_tuned_receiver_outruns_a_fixed_buffer_on_a_long_fat_path() {
    let len = 32 * MIB;
    let (auto_t, auto_wnd, auto_buf, auto_st) =
        long_fat_run(21, Config::default(), Impairment::default(), len);
    let fixed = config(|c| c.tcp_recvbuf_auto = false);
    let (fixed_t, fixed_wnd, fixed_buf, fixed_st) =
        long_fat_run(21, fixed, Impairment::default(), len);
    eprintln!(
        "50 ms RTT, 32 MiB: auto-tuned {:.1} MiB/s (largest window {} KiB, buffer {} KiB), \
         fixed {:.1} MiB/s (largest window {} KiB)",
        mib_per_s(len, auto_t),
        auto_wnd / KIB,
        auto_buf / 2 / KIB,
        mib_per_s(len, fixed_t),
        fixed_wnd / KIB,
    );
    // The fixed buffer never offers more than its 128 KiB...
    assert!(fixed_wnd <= 128 * KIB, "fixed window {fixed_wnd}");
    assert_eq!(fixed_buf, 2 * 128 * KIB);
    assert_eq!(fixed_st.rcvbuf_grown, 0);
    // ...the auto-tuned one grows well past it, towards the 6 MiB cap.
    assert!(auto_wnd >= 1 << 20, "auto-tuned window only {auto_wnd}");
    assert!(auto_buf / 2 <= 6 * MIB && auto_buf / 2 >= MIB, "{auto_buf}");
    assert!(auto_st.rcvbuf_grown > 0);
    assert!(
        fixed_t >= auto_t * 4,
        "auto-tuned {auto_t:?} not well ahead of fixed {fixed_t:?}"
    );
}

#[test]
fn the_window_grows_and_its_edge_holds_through_loss_reordering_and_duplication() {
    let impair = Impairment {
        loss: 0.01,
        reorder: 2.0,
        dup: 1.0,
        ..Impairment::default()
    };
    let len = 24 * MIB;
    // offered_windows asserts the right edge never moved left.
    let (took, wnd, _, st) = long_fat_run(33, Config::default(), impair, len);
    eprintln!(
        "impaired 50 ms RTT, 24 MiB: {:.1} MiB/s, largest window {} KiB, {} duplicates, {} out of order",
        mib_per_s(len, took),
        wnd / KIB,
        st.dup_segments,
        st.ooo_segments
    );
    assert!(st.dup_segments > 0 && st.ooo_segments > 0, "{st:?}");
    assert!(wnd > 512 * KIB, "window stayed at {wnd}");
}

#[test]
fn a_send_buffer_follows_the_congestion_window() {
    // The receiver's window is large and fixed, so only the sender's
    // buffer can hold the transfer back.
    let big = [SockOpt::RecvBuf(8 * MIB)];
    let run = |ca: Config| {
        let mut net = net(5, LFN_ONE_WAY, ca, Config::default(), Impairment::default());
        let l = listen(&mut net.sim, net.b, 80, 4, &big);
        let pair = connect_many(&mut net, l, 80, 1, &[])[0];
        let data = pattern(16 * MIB, 3);
        let took = transfer(&mut net, pair, &data, Duration::from_secs(600));
        let sndbuf = getopt(&net.sim, net.a, pair.0, SockOptName::SendBuf);
        (took, sndbuf, net.sim.stack(net.a).tcp.stats.sndbuf_grown)
    };
    let (auto_t, auto_buf, grown) = run(Config::default());
    let (fixed_t, fixed_buf, fixed_grown) = run(config(|c| c.tcp_sendbuf_auto = false));
    eprintln!(
        "send side, 16 MiB: auto-tuned {:.1} MiB/s (buffer {} KiB), fixed 256 KiB {:.1} MiB/s",
        mib_per_s(16 * MIB, auto_t),
        auto_buf / 2 / KIB,
        mib_per_s(16 * MIB, fixed_t),
    );
    assert_eq!((fixed_buf, fixed_grown), (2 * 256 * KIB, 0));
    assert!(
        grown > 0 && auto_buf / 2 > MIB && auto_buf / 2 <= 4 * MIB,
        "{auto_buf}"
    );
    assert!(fixed_t >= auto_t * 3, "auto {auto_t:?} fixed {fixed_t:?}");
}

#[test]
fn so_rcvbuf_and_so_sndbuf_lock_the_size_and_read_back_doubled() {
    let mut net = net(
        9,
        LFN_ONE_WAY,
        Config::default(),
        Config::default(),
        Impairment::default(),
    );
    let (a, b) = (net.a, net.b);
    // A fresh socket reports twice the sysctl sizes, as Linux reports
    // twice what it holds.
    let fresh = open(&mut net.sim, a);
    assert_eq!(
        getopt(&net.sim, a, fresh, SockOptName::RecvBuf),
        2 * 128 * KIB
    );
    assert_eq!(
        getopt(&net.sim, a, fresh, SockOptName::SendBuf),
        2 * 256 * KIB
    );
    let l = listen(&mut net.sim, b, 80, 4, &[SockOpt::RecvBuf(48 * KIB)]);
    assert_eq!(getopt(&net.sim, b, l, SockOptName::RecvBuf), 96 * KIB);
    net.sim.capture();
    let pair = connect_many(&mut net, l, 80, 1, &[SockOpt::SendBuf(64 * KIB)])[0];
    let caps = net.sim.take_captured();
    // The locked receiver scales for its 48 KiB; the unlocked one (the
    // client) for the 6 MiB its buffer may grow to (RFC 7323 section 2.3).
    assert_eq!(announced_wscale(&caps, b), 0);
    assert_eq!(announced_wscale(&caps, a), 7);
    // The accepted connection inherits the lock.
    assert_eq!(getopt(&net.sim, b, pair.1, SockOptName::RecvBuf), 96 * KIB);
    net.sim.capture();
    let data = pattern(4 * MIB, 1);
    transfer(&mut net, pair, &data, Duration::from_secs(600));
    let caps = net.sim.take_captured();
    let wnd = offered_windows(&caps, b, 0);
    assert!(wnd <= 48 * KIB, "locked receiver offered {wnd}");
    // Neither locked side grew.
    assert_eq!(getopt(&net.sim, b, pair.1, SockOptName::RecvBuf), 96 * KIB);
    assert_eq!(getopt(&net.sim, a, pair.0, SockOptName::SendBuf), 128 * KIB);
    assert_eq!(net.sim.stack(b).tcp.stats.rcvbuf_grown, 0);
    assert_eq!(net.sim.stack(a).tcp.stats.sndbuf_grown, 0);
    // The sysctl sizes are where unlocked connections start.
    net.sim.with(b, |s, _| {
        s.config.set("net.inet.tcp.recvspace", 32_768).unwrap();
        s.config.set("net.inet.tcp.sendspace", 16_384).unwrap();
    });
    let fresh = open(&mut net.sim, b);
    assert_eq!(getopt(&net.sim, b, fresh, SockOptName::RecvBuf), 65_536);
    assert_eq!(getopt(&net.sim, b, fresh, SockOptName::SendBuf), 32_768);
}

/// `n` connections each carrying `per_conn` bytes from `a` to `b`, where
/// the application on `b` reads `read_chunk` bytes per connection every
/// 20 ms; returns (peak bytes buffered on a, on b, stats of a, of b).
fn slow_reader_run(
    mem_max: u64,
    n: usize,
    per_conn: usize,
    read_chunk: usize,
) -> (
    usize,
    usize,
    iopkt_stack::tcp::TcpStats,
    iopkt_stack::tcp::TcpStats,
) {
    let cfg = config(|c| c.tcp_mem_max = mem_max);
    let mut net = net(
        17,
        Duration::from_millis(5),
        cfg.clone(),
        cfg,
        Impairment::default(),
    );
    let (a, b) = (net.a, net.b);
    let l = listen(&mut net.sim, b, 80, 64, &[]);
    let pairs = connect_many(&mut net, l, 80, n, &[]);
    let data: Vec<Vec<u8>> = (0..n).map(|i| pattern(per_conn, i as u8)).collect();
    let mut sent = vec![0usize; n];
    let mut got = vec![Vec::new(); n];
    // The reader wakes every 20 ms of virtual time, whether or not
    // anything happened on the network in between.
    let mut done = false;
    for _ in 0..45_000 {
        net.sim.run_until(Duration::from_millis(20), |sim| {
            for (i, (c, _)) in pairs.iter().enumerate() {
                send_some(sim, a, *c, &data[i], &mut sent[i]);
            }
            false
        });
        for (i, (_, s)) in pairs.iter().enumerate() {
            read_some(&mut net.sim, b, *s, &mut got[i], read_chunk);
        }
        for node in [a, b] {
            let st = net.sim.stack(node);
            assert_eq!(st.tcp_mem_used().0, st.tcp_mem_recount(), "node {node}");
        }
        if got.iter().all(|g| g.len() >= per_conn) {
            done = true;
            break;
        }
    }
    let lens: Vec<usize> = got.iter().map(|g| g.len()).collect();
    assert!(done, "stalled: received {lens:?}");
    for (i, g) in got.iter().enumerate() {
        assert!(*g == data[i], "connection {i}: data corrupted");
    }
    (
        net.sim.stack(a).tcp_mem_used().1,
        net.sim.stack(b).tcp_mem_used().1,
        net.sim.stack(a).tcp.stats,
        net.sim.stack(b).tcp.stats,
    )
}

#[test]
fn the_stack_wide_limit_bounds_buffered_bytes_under_many_connections() {
    let n = 24;
    let per_conn = 384 * KIB;
    let limit = MIB;
    // One segment or 4 KiB per connection may go past the limit.
    let slack = n * iopkt_stack::tcp::MEM_MIN_PER_CONN;
    // Without the limit, the slow reader's buffers fill up: 24 x 128 KiB.
    let (_, free_peak, _, _) = slow_reader_run(1 << 40, n, per_conn, 16 * KIB);
    assert!(free_peak > 2 * limit, "unbounded peak only {free_peak}");
    let (peak_a, peak_b, st_a, st_b) = slow_reader_run(limit as u64, n, per_conn, 16 * KIB);
    eprintln!(
        "{n} connections, slow reader: peak buffered without limit {} KiB; with a {} KiB \
         limit: receiver {} KiB, sender {} KiB; pressure events {} / {}, cut segments {}",
        free_peak / KIB,
        limit / KIB,
        peak_b / KIB,
        peak_a / KIB,
        st_b.mem_pressures,
        st_a.mem_pressures,
        st_b.mem_drops,
    );
    assert!(peak_b <= limit + slack, "receiver held {peak_b}");
    assert!(peak_a <= limit + slack, "sender held {peak_a}");
    assert!(st_b.mem_pressures > 0 && st_a.mem_pressures > 0);
}

#[test]
fn listen_backlogs_are_cut_to_somaxconn() {
    // SYN cookies take over when the SYN queue is full, but nothing gets
    // past a full accept queue: three connections wait for accept(2).
    let cb = config(|c| c.set("kern.ipc.somaxconn", 3).unwrap());
    let mut net = net(
        3,
        Duration::from_millis(5),
        Config::default(),
        cb,
        Impairment::default(),
    );
    let (a, b) = (net.a, net.b);
    let l = listen(&mut net.sim, b, 80, 1000, &[]);
    for _ in 0..8 {
        let c = open(&mut net.sim, a);
        let r = net.sim.with(a, |s, cx| s.socket_connect(cx, c, sa(B4, 80)));
        assert_eq!(r, Err(Error::InProgress));
    }
    net.sim.run_for(Duration::from_millis(500));
    let mut accepted = 0;
    while net.sim.with(b, |s, cx| s.socket_accept(cx, l)).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 3, "backlog 1000 should be cut to 3");
    assert!(net.sim.stack(b).tcp.stats.listen_overflows > 0);
    assert_eq!(net.sim.stack(b).config.get("kern.ipc.somaxconn"), Some(3));
}

#[test]
fn a_sender_held_back_by_the_peers_window_does_not_inflate_its_congestion_window() {
    // RFC 7661: the receiver's locked 64 KiB buffer is the limit, so the
    // congestion window has nothing to learn from the ACKs beyond it.
    let small = [SockOpt::RecvBuf(64 * KIB)];
    let mut net = net(
        6,
        Duration::from_millis(1),
        Config::default(),
        Config::default(),
        Impairment::default(),
    );
    let l = listen(&mut net.sim, net.b, 80, 4, &small);
    let pair = connect_many(&mut net, l, 80, 1, &[])[0];
    let data = pattern(8 * MIB, 4);
    transfer(&mut net, pair, &data, Duration::from_secs(600));
    let info = net.sim.stack(net.a).tcp_info_of(pair.0).expect("tcp info");
    let cwnd = info.snd_cwnd as usize;
    assert!(
        cwnd <= 4 * 64 * KIB,
        "congestion window grew to {} KiB past a 64 KiB receive window",
        cwnd / KIB
    );
}
