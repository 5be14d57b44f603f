//! Forged TCP segments against a stack with a listener and an established
//! connection. Every segment carries valid IPv4 and TCP checksums so it
//! reaches TCP processing; sequence and acknowledgement numbers are
//! usually relative to what the stack last sent on that port pair, so many
//! land in the window (and a forged handshake can complete).
//!
//! Invariants checked: no panic; the connection table stays within what
//! the listener's backlog allows (SYN queue and accept queue are each
//! bounded by it); the listener stays in LISTEN (RFC 9293 section 3.10.7.2:
//! a RST or anything else in LISTEN never closes it); and once the input
//! is over, ten minutes of timers leave no connection in SYN-RECEIVED
//! (SYN-ACK retransmission gives up, RFC 9293 section 3.8.1 / RFC 6298).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::SockType;
use iopkt_stack::{IfIndex, PktBuf};
use iopkt_wire::checksum::{checksum, finish, pseudo_v4, sum};

/// The target's address and its listening port.
pub const TARGET: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LISTEN_PORT: u16 = 80;
/// A port nothing listens on (segments there are answered with RST).
pub const CLOSED_PORT: u16 = 81;
/// The listener's backlog: it bounds both the SYN queue and the accept
/// queue.
pub const BACKLOG: u32 = 8;
/// The listener, the accepted connection, and both queues full.
pub const MAX_CONNECTIONS: usize = 2 + 2 * BACKLOG as usize;
/// Bytes of a record before its options and payload.
pub const RECORD_HEADER: usize = 14;

/// How long to let the network run after a segment, by the record's
/// three wait bits.
const WAITS_MS: [u64; 8] = [0, 1, 10, 50, 200, 1_000, 5_000, 30_000];

/// Where a record's segment goes (the low three bits of its control byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The established connection, from its real peer port.
    Connection,
    /// The listener, from one of four forged peer ports.
    Listener(u8),
    /// A port with no socket.
    Closed,
}

/// One forged segment, as [`encode_input`] writes it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub dest: Dest,
    /// Sequence number taken as is, not relative to what the stack
    /// acknowledged last.
    pub seq_absolute: bool,
    /// Acknowledgement number taken as is, not relative to what the stack
    /// sent last.
    pub ack_absolute: bool,
    /// Index into the wait table (0..8).
    pub wait: u8,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Input layout: repeated records of
/// `ctl, flags, seq (4, BE), ack (4, BE), window (2, BE), optlen, paylen`,
/// then `optlen % 41` option bytes and `paylen` payload bytes. `ctl` bits
/// 0-2 choose the destination (0-2 the connection, 3-6 the listener from
/// four peer ports, 7 a closed port), bit 3 and 4 make seq and ack
/// absolute, bits 5-7 how long to wait afterwards.
pub fn encode_input(segs: &[Segment]) -> Vec<u8> {
    let mut v = Vec::new();
    for s in segs {
        let dest = match s.dest {
            Dest::Connection => 0,
            Dest::Listener(i) => 3 + (i % 4),
            Dest::Closed => 7,
        };
        let ctl = dest
            | u8::from(s.seq_absolute) << 3
            | u8::from(s.ack_absolute) << 4
            | (s.wait % 8) << 5;
        v.push(ctl);
        v.push(s.flags);
        v.extend_from_slice(&s.seq.to_be_bytes());
        v.extend_from_slice(&s.ack.to_be_bytes());
        v.extend_from_slice(&s.window.to_be_bytes());
        let opts = &s.options[..s.options.len().min(40)];
        let pay = &s.payload[..s.payload.len().min(255)];
        v.push(opts.len() as u8);
        v.push(pay.len() as u8);
        v.extend_from_slice(opts);
        v.extend_from_slice(pay);
    }
    v
}

/// Splits `data` into records; a short tail is dropped.
pub fn decode_input(data: &[u8]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((h, tail)) = rest.split_at_checked(RECORD_HEADER) {
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let ctl = h[0];
        let dest = match ctl & 7 {
            0..=2 => Dest::Connection,
            7 => Dest::Closed,
            i => Dest::Listener(i - 3),
        };
        let optlen = usize::from(h[12]) % 41;
        let paylen = usize::from(h[13]);
        let (options, tail) = tail.split_at(optlen.min(tail.len()));
        let (payload, tail) = tail.split_at(paylen.min(tail.len()));
        out.push(Segment {
            dest,
            seq_absolute: ctl & 8 != 0,
            ack_absolute: ctl & 16 != 0,
            wait: ctl >> 5,
            flags: h[1],
            seq: be32(&h[2..6]),
            ack: be32(&h[6..10]),
            window: u16::from_be_bytes([h[10], h[11]]),
            options: options.to_vec(),
            payload: payload.to_vec(),
        });
        rest = tail;
    }
    out
}

/// The stack under test and what the forger knows about it.
struct Bench {
    sim: Sim,
    target: NodeId,
    ifindex: IfIndex,
    listener: SocketId,
    conn: SocketId,
    /// The real peer's port of the established connection.
    conn_port: u16,
    /// Ethernet header of frames from the peer to the target.
    ether: [u8; 14],
    /// Per (peer port, target port): the target's next sequence number
    /// and the acknowledgement it sent last, from captured frames.
    seen: HashMap<(u16, u16), (u32, u32)>,
}

/// A TCP segment in a captured frame from the target: ports, seq, ack and
/// the sequence space it uses.
fn tcp_from_target(c: &Captured, target: NodeId) -> Option<((u16, u16), u32, u32)> {
    if c.from != target {
        return None;
    }
    let f = &c.frame;
    if f.get(12..14)? != [0x08, 0x00] || *f.get(23)? != 6 {
        return None;
    }
    let ihl = usize::from(f.get(14)? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*f.get(16)?, *f.get(17)?]));
    let t = f.get(14 + ihl..14 + total)?;
    let (h, _) = iopkt_wire::tcp::TcpHdr::parse(t)?;
    let payload = t.len().saturating_sub(h.header_len()) as u32;
    let syn_fin = u32::from(h.has(iopkt_wire::tcp::SYN)) + u32::from(h.has(iopkt_wire::tcp::FIN));
    let next = h.seq.get().wrapping_add(payload + syn_fin);
    Some(((h.dst_port.get(), h.src_port.get()), next, h.ack.get()))
}

impl Bench {
    /// Target (10.0.0.1) listening on port 80; the peer (10.0.0.2)
    /// connects and the target accepts; then the peer's cable is pulled,
    /// so only forged segments reach the target and its answers go
    /// nowhere (timers alone must clean up).
    fn new() -> Option<Bench> {
        let mut sim = Sim::new(1);
        let a = sim.add_node("target");
        let b = sim.add_node("peer");
        let (ia, ib) = sim.connect(
            a,
            b,
            LinkCfg {
                latency: Duration::from_millis(1),
                ..LinkCfg::default()
            },
        );
        sim.with(a, |s, c| s.add_addr4(c, ia, TARGET, 24, false))
            .ok()?;
        sim.with(b, |s, c| s.add_addr4(c, ib, PEER, 24, false))
            .ok()?;
        let at = SocketAddr::new(IpAddr::V4(TARGET), LISTEN_PORT);
        let l = sim
            .with(a, |s, c| s.socket_open(c, false, SockType::Stream))
            .ok()?;
        sim.with(a, |s, c| s.socket_bind(c, l, at)).ok()?;
        sim.with(a, |s, c| s.socket_listen(c, l, BACKLOG)).ok()?;
        sim.capture();
        let client = sim
            .with(b, |s, c| s.socket_open(c, false, SockType::Stream))
            .ok()?;
        let _ = sim.with(b, |s, c| s.socket_connect(c, client, at));
        let mut conn = None;
        sim.run_until(Duration::from_secs(5), |sim| {
            if conn.is_none() {
                conn = sim.with(a, |s, c| s.socket_accept(c, l)).ok().map(|x| x.0);
            }
            conn.is_some()
        });
        let conn = conn?;
        let conn_port = sim.stack(b).socket_local(client)?.port();
        sim.set_connected(b, ib, false);
        let caps = sim.take_captured();
        // An IPv4 frame (not the ARP broadcast): addressed to the target.
        let from_peer = caps
            .iter()
            .find(|c| c.from == b && c.frame.get(12..14) == Some(&[0x08, 0x00][..]))?;
        let mut ether = [0u8; 14];
        ether.copy_from_slice(&from_peer.frame[..14]);
        let mut bench = Bench {
            sim,
            target: a,
            ifindex: ia,
            listener: l,
            conn,
            conn_port,
            ether,
            seen: HashMap::new(),
        };
        bench.learn(&caps);
        Some(bench)
    }

    fn learn(&mut self, caps: &[Captured]) {
        for c in caps {
            if let Some((key, next, ack)) = tcp_from_target(c, self.target) {
                self.seen.insert(key, (next, ack));
            }
        }
    }

    /// The frame for one record: Ethernet, IPv4 (RFC 791) and TCP
    /// (RFC 9293 section 3.1) with both checksums right.
    fn forge(&self, s: &Segment) -> PktBuf {
        let (src_port, dst_port) = match s.dest {
            Dest::Connection => (self.conn_port, LISTEN_PORT),
            Dest::Listener(i) => (40_000 + u16::from(i), LISTEN_PORT),
            Dest::Closed => (40_100, CLOSED_PORT),
        };
        let (next, acked) = self
            .seen
            .get(&(src_port, dst_port))
            .copied()
            .unwrap_or((0, 0));
        // What the target acknowledged is where it expects our data; what
        // it sent next is what we would acknowledge.
        let seq = if s.seq_absolute {
            s.seq
        } else {
            acked.wrapping_add(s.seq)
        };
        let ack = if s.ack_absolute {
            s.ack
        } else {
            next.wrapping_add(s.ack)
        };
        let mut opts = s.options[..s.options.len().min(40)].to_vec();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let mut tcp = Vec::with_capacity(20 + opts.len() + s.payload.len());
        tcp.extend_from_slice(&src_port.to_be_bytes());
        tcp.extend_from_slice(&dst_port.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push((((20 + opts.len()) / 4) as u8) << 4);
        tcp.push(s.flags);
        tcp.extend_from_slice(&s.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&opts);
        tcp.extend_from_slice(&s.payload);
        let c = finish(sum(pseudo_v4(PEER, TARGET, 6, tcp.len() as u16), &tcp));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let total = (20 + tcp.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&PEER.octets());
        ip.extend_from_slice(&TARGET.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = self.ether.to_vec();
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        PktBuf::from_slice(&f)
    }

    /// Reads what the connection received, as an application would, so
    /// the receive window opens again.
    fn drain(&mut self) -> usize {
        let mut buf = [0u8; 4096];
        let conn = self.conn;
        let mut got = 0;
        for _ in 0..64 {
            match self
                .sim
                .with(self.target, |s, c| s.socket_recv(c, conn, &mut buf, false))
            {
                Ok(r) if r.len > 0 => got += r.len,
                _ => break,
            }
        }
        got
    }

    fn check_bounded(&self) {
        let n = self.sim.stack(self.target).tcp_connections().len();
        assert!(
            n <= MAX_CONNECTIONS,
            "{n} connections, at most {MAX_CONNECTIONS} expected"
        );
        assert_eq!(
            self.sim.stack(self.target).tcp.state(self.listener),
            Some(State::Listen),
            "the listener left LISTEN"
        );
    }
}

/// What a run did, so tests can check the forged segments really reach
/// TCP (a harness whose segments all fail their checksum would pass every
/// invariant and test nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Connections the target accepted passively, the set-up one included.
    pub passive_opens: u64,
    /// The most connections in the table at once.
    pub most_connections: usize,
    /// Bytes the application read from the established connection.
    pub read_on_connection: usize,
}

/// Runs one input and checks the invariants (panics when one breaks).
pub fn run(data: &[u8]) -> Outcome {
    let Some(mut b) = Bench::new() else {
        panic!("the fuzz network did not come up");
    };
    let mut out = Outcome::default();
    for s in decode_input(data) {
        let pkt = b.forge(&s);
        let (t, i) = (b.target, b.ifindex);
        b.sim.with(t, |st, c| st.input(c, i, [pkt]));
        let wait = WAITS_MS[usize::from(s.wait % 8)];
        b.sim.run_for(Duration::from_millis(wait));
        let caps = b.sim.take_captured();
        b.learn(&caps);
        out.read_on_connection += b.drain();
        b.check_bounded();
        let n = b.sim.stack(b.target).tcp_connections().len();
        out.most_connections = out.most_connections.max(n);
    }
    b.sim.run_for(Duration::from_secs(600));
    b.check_bounded();
    let left: Vec<_> = b
        .sim
        .stack(b.target)
        .tcp_connections()
        .into_iter()
        .filter(|c| c.state == State::SynReceived.name())
        .collect();
    assert!(
        left.is_empty(),
        "still in SYN_RECEIVED after 10 minutes: {left:?}"
    );
    out.passive_opens = b.sim.stack(b.target).tcp.stats.passive_opens;
    out
}

/// The entry function of the `tcp_segments` fuzz target.
pub fn tcp_segments(data: &[u8]) {
    run(data);
}
