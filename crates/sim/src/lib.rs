//! A simulated network for whole-stack tests.
//!
//! Several [`Stack`]s live in one [`Sim`]; links (point to point or shared
//! segments) carry their frames with a latency and the impairments of
//! `iopkt-impair`, drawn from a seeded generator. Time is virtual: the
//! simulator jumps straight to the next frame delivery or stack timer, so a
//! test of a two-minute timeout takes microseconds, and a run is the same
//! every time for the same seed. The seed is printed when a simulation
//! starts, and `IOPKT_SIM_SEED` overrides it to replay a failure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use iopkt_impair::{Impairment, corrupt_frame};
use iopkt_pkt::{PktBuf, Pool};
use iopkt_stack::socket::SocketId;
use iopkt_stack::{Config, Ctx, IfIndex, IfKind, Instant, Mac, Stack};

pub type NodeId = usize;

/// A small, fast, seedable generator (SplitMix64): plenty for simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The context a simulated stack runs in.
pub struct SimCtx {
    now: Instant,
    rng: Rng,
    outbox: Vec<(IfIndex, PktBuf)>,
    /// Sockets that reported readiness since the test last looked.
    pub ready: Vec<SocketId>,
}

impl Ctx for SimCtx {
    fn now(&self) -> Instant {
        self.now
    }
    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
    fn transmit(&mut self, ifindex: IfIndex, frame: PktBuf) {
        self.outbox.push((ifindex, frame));
    }
    fn socket_ready(&mut self, sock: SocketId) {
        if !self.ready.contains(&sock) {
            self.ready.push(sock);
        }
    }
}

/// One simulated host.
pub struct Node {
    pub name: String,
    pub stack: Stack,
    pub ctx: SimCtx,
    /// (ifindex, port) of each simulated interface.
    ports: Vec<(IfIndex, usize)>,
}

/// Properties of a link.
#[derive(Debug, Clone, Default)]
pub struct LinkCfg {
    /// One-way latency.
    pub latency: Duration,
    /// Impairments applied to each frame, in each direction.
    pub impair: Impairment,
    /// MTU of the interfaces on the link (default 1500).
    pub mtu: Option<u32>,
}

struct Port {
    node: NodeId,
    ifindex: IfIndex,
    segment: usize,
    /// Drops the frames it returns true for, as they leave this port (a
    /// test losing chosen segments).
    drop_filter: Option<DropFilter>,
}

/// A test's choice of frames to lose: true drops the frame.
pub type DropFilter = Box<dyn FnMut(&[u8]) -> bool>;

struct Segment {
    ports: Vec<usize>,
    cfg: LinkCfg,
    /// When false, frames are dropped (a cable pulled).
    connected: bool,
}

/// A frame seen on the wire, recorded when capture is on.
#[derive(Debug, Clone)]
pub struct Captured {
    pub time: Instant,
    pub from: NodeId,
    pub ifindex: IfIndex,
    pub frame: Vec<u8>,
}

pub struct Sim {
    now: Instant,
    seed: u64,
    rng: Rng,
    pool: Pool,
    nodes: Vec<Node>,
    ports: Vec<Port>,
    segments: Vec<Segment>,
    events: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    pending: Vec<Option<PktBuf>>,
    free_slots: Vec<usize>,
    seq: u64,
    capture: Option<Vec<Captured>>,
    /// Scratch for `flush`: (port, delay, corruption) of each copy of one
    /// frame.
    deliveries: Vec<(usize, Duration, Option<u64>)>,
    /// Scratch for `step`: frames due now for one interface.
    batch: Vec<PktBuf>,
    /// Frames delivered and lost so far (all links).
    pub delivered: u64,
    pub lost: u64,
}

/// Frames in flight at most, so a broadcast storm in a test ends as drops
/// rather than exhausting memory.
const MAX_IN_FLIGHT: usize = 1 << 20;
/// Frames handed to a stack in one `input` call at most (a driver's
/// receive batch).
const MAX_BATCH: usize = 64;

impl Sim {
    /// A simulation whose random choices all follow from `seed` (or from
    /// `IOPKT_SIM_SEED` when set).
    pub fn new(seed: u64) -> Sim {
        let seed = std::env::var("IOPKT_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(seed);
        eprintln!("iopkt-sim: seed {seed} (replay with IOPKT_SIM_SEED={seed})");
        Sim {
            now: Instant::from_millis(1),
            seed,
            rng: Rng::new(seed),
            pool: Pool::standard(),
            nodes: Vec::new(),
            ports: Vec::new(),
            segments: Vec::new(),
            events: BinaryHeap::new(),
            pending: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            capture: None,
            deliveries: Vec::new(),
            batch: Vec::new(),
            delivered: 0,
            lost: 0,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a host with a fresh stack (`lo0` only).
    pub fn add_node(&mut self, name: &str) -> NodeId {
        self.add_node_with(name, Config::default())
    }

    pub fn add_node_with(&mut self, name: &str, config: Config) -> NodeId {
        let id = self.nodes.len();
        let mut ctx = SimCtx {
            now: self.now,
            rng: Rng::new(self.seed ^ (id as u64 + 1).wrapping_mul(0x51_7cc1_b727_220a)),
            outbox: Vec::new(),
            ready: Vec::new(),
        };
        let stack = Stack::new(&mut ctx, self.pool.clone(), config);
        self.nodes.push(Node {
            name: name.to_string(),
            stack,
            ctx,
            ports: Vec::new(),
        });
        self.flush(id);
        id
    }

    /// Joins two hosts with a point-to-point link; returns the new interface
    /// of each (`enN`, up, with a MAC derived from node and port).
    pub fn connect(&mut self, a: NodeId, b: NodeId, cfg: LinkCfg) -> (IfIndex, IfIndex) {
        let v = self.segment(&[a, b], cfg);
        (v[0], v[1])
    }

    /// A shared segment (a hub) among `nodes`; returns each one's interface.
    pub fn segment(&mut self, nodes: &[NodeId], cfg: LinkCfg) -> Vec<IfIndex> {
        let seg = self.segments.len();
        let mtu = cfg.mtu.unwrap_or(1500);
        self.segments.push(Segment {
            ports: Vec::new(),
            cfg,
            connected: true,
        });
        let mut out = Vec::new();
        for &n in nodes {
            let port = self.ports.len();
            let unit = self.nodes[n].ports.len();
            let mac = Mac([
                0x02,
                0x00,
                (n >> 8) as u8,
                n as u8,
                (port >> 8) as u8,
                port as u8,
            ]);
            let name = format!("en{unit}");
            let node = &mut self.nodes[n];
            let ifindex = node
                .stack
                .add_interface(&name, IfKind::Ethernet, mac, mtu)
                .expect("simulated interface");
            // A simulated cable is always plugged in: carrier, then up.
            node.stack
                .set_link(&mut node.ctx, ifindex, true)
                .expect("carrier");
            node.stack
                .set_up(&mut node.ctx, ifindex, true)
                .expect("interface up");
            node.ports.push((ifindex, port));
            self.ports.push(Port {
                node: n,
                ifindex,
                segment: seg,
                drop_filter: None,
            });
            self.segments[seg].ports.push(port);
            out.push(ifindex);
            self.flush(n);
        }
        out
    }

    /// Pulls (false) or plugs back (true) the cable of the segment that
    /// `node`'s interface `ifindex` is on.
    pub fn set_connected(&mut self, node: NodeId, ifindex: IfIndex, connected: bool) {
        if let Some(p) = self
            .ports
            .iter()
            .find(|p| p.node == node && p.ifindex == ifindex)
        {
            self.segments[p.segment].connected = connected;
        }
    }

    /// Changes the impairments of the segment `node`'s `ifindex` is on.
    pub fn set_impairment(&mut self, node: NodeId, ifindex: IfIndex, impair: Impairment) {
        if let Some(p) = self
            .ports
            .iter()
            .find(|p| p.node == node && p.ifindex == ifindex)
        {
            self.segments[p.segment].cfg.impair = impair;
        }
    }

    /// Drops the frames `f` picks as they leave `node` through `ifindex`
    /// (after capture, so captures show them), or no longer (`None`).
    pub fn set_drop_filter(&mut self, node: NodeId, ifindex: IfIndex, f: Option<DropFilter>) {
        if let Some(p) = self
            .ports
            .iter_mut()
            .find(|p| p.node == node && p.ifindex == ifindex)
        {
            p.drop_filter = f;
        }
    }

    /// Starts recording every frame sent.
    pub fn capture(&mut self) {
        self.capture = Some(Vec::new());
    }

    /// Frames recorded since capture started (and clears the record).
    pub fn take_captured(&mut self) -> Vec<Captured> {
        self.capture
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn node(&mut self, n: NodeId) -> &mut Node {
        &mut self.nodes[n]
    }

    pub fn stack(&self, n: NodeId) -> &Stack {
        &self.nodes[n].stack
    }

    /// Runs `f` on a node's stack with its context (to configure it, open
    /// sockets, send), then puts whatever it transmitted on the wire.
    pub fn with<R>(&mut self, n: NodeId, f: impl FnOnce(&mut Stack, &mut SimCtx) -> R) -> R {
        let node = &mut self.nodes[n];
        node.ctx.now = self.now;
        let r = f(&mut node.stack, &mut node.ctx);
        self.flush(n);
        r
    }

    /// Moves node `n`'s transmitted frames onto their links. A frame goes
    /// to its last receiver as it is (moved, not copied): the simulator's
    /// own copies would otherwise be counted as the stack's cost in the
    /// in-process benchmark.
    fn flush(&mut self, n: NodeId) {
        let mut out = std::mem::take(&mut self.nodes[n].ctx.outbox);
        let mut deliveries = std::mem::take(&mut self.deliveries);
        for (ifindex, frame) in out.drain(..) {
            let Some(&(_, port)) = self.nodes[n].ports.iter().find(|(i, _)| *i == ifindex) else {
                continue;
            };
            if let Some(c) = self.capture.as_mut() {
                c.push(Captured {
                    time: self.now,
                    from: n,
                    ifindex,
                    frame: frame.data().to_vec(),
                });
            }
            let seg = self.ports[port].segment;
            if let Some(f) = self.ports[port].drop_filter.as_mut()
                && f(frame.data())
            {
                self.lost += 1;
                continue;
            }
            if !self.segments[seg].connected {
                self.lost += 1;
                continue;
            }
            deliveries.clear();
            let segment = &self.segments[seg];
            let cfg = &segment.cfg;
            for &peer in segment.ports.iter().filter(|p| **p != port) {
                if cfg.impair == Impairment::default() {
                    // No impairment draws nothing from the generator, as
                    // `fate` would not either: one copy, on time.
                    deliveries.push((peer, cfg.latency, None));
                    continue;
                }
                let rng = &mut self.rng;
                let fate = cfg.impair.fate(&mut || rng.next_u64());
                if fate.copies.is_empty() {
                    self.lost += 1;
                    continue;
                }
                for d in fate.copies {
                    deliveries.push((peer, cfg.latency + d, fate.corrupt));
                }
            }
            let mut frame = Some(frame);
            let last = deliveries.len().saturating_sub(1);
            for (i, &(peer, delay, corrupt)) in deliveries.iter().enumerate() {
                let copy = if i == last {
                    frame.take()
                } else {
                    frame.as_ref().map(PktBuf::duplicate)
                };
                let Some(mut copy) = copy else {
                    continue;
                };
                if let Some(r) = corrupt {
                    corrupt_frame(copy.data_mut(), r);
                }
                self.schedule(self.now + delay, peer, copy);
            }
        }
        self.deliveries = deliveries;
        // Hand the (now empty) vector back so its capacity is reused.
        self.nodes[n].ctx.outbox = out;
    }

    fn schedule(&mut self, at: Instant, port: usize, frame: PktBuf) {
        if self.events.len() >= MAX_IN_FLIGHT {
            self.lost += 1;
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.pending[s] = Some(frame);
                s
            }
            None => {
                self.pending.push(Some(frame));
                self.pending.len() - 1
            }
        };
        // Encode the port in the event; the slot holds the frame.
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, slot << 20 | port)));
    }

    /// The time of the next thing to happen: a delivery or a stack timer.
    fn next_event(&self) -> Option<Instant> {
        let d = self.events.peek().map(|Reverse((t, _, _))| *t);
        self.nodes
            .iter()
            .filter_map(|n| n.stack.next_deadline())
            .chain(d)
            .min()
            .map(|t| t.max(self.now))
    }

    /// Advances to the next event and handles everything due then. Returns
    /// false when nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_event() else {
            return false;
        };
        self.now = t;
        while let Some(Reverse((at, _, code))) = self.events.peek().copied() {
            if at > self.now {
                break;
            }
            // Every frame due now for the same port goes in as one batch,
            // as a driver hands over what it read in one go: the stack
            // may then process them together (and acknowledge once).
            // The order of frames is the one of the event queue either
            // way.
            let port = code & 0xf_ffff;
            let mut batch = std::mem::take(&mut self.batch);
            while let Some(Reverse((at, _, code))) = self.events.peek().copied() {
                if at > self.now || code & 0xf_ffff != port || batch.len() >= MAX_BATCH {
                    break;
                }
                self.events.pop();
                let slot = code >> 20;
                if let Some(frame) = self.pending[slot].take() {
                    self.free_slots.push(slot);
                    self.delivered += 1;
                    batch.push(frame);
                }
            }
            let (node, ifindex) = (self.ports[port].node, self.ports[port].ifindex);
            let n = &mut self.nodes[node];
            n.ctx.now = self.now;
            n.stack.input(&mut n.ctx, ifindex, batch.drain(..));
            self.batch = batch;
            self.flush(node);
        }
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .stack
                .next_deadline()
                .is_some_and(|d| d <= self.now);
            if due {
                let n = &mut self.nodes[i];
                n.ctx.now = self.now;
                n.stack.poll(&mut n.ctx);
                self.flush(i);
            }
        }
        true
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.next_event() {
            if t > end {
                break;
            }
            self.step();
        }
        self.now = end;
    }

    /// Runs until `done` holds, for at most `limit` of virtual time. Returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            match self.next_event() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = end;
                    return done(self);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_a_link_with_latency_in_virtual_time() {
        let mut sim = Sim::new(1);
        let a = sim.add_node("a");
        let b = sim.add_node("b");
        let link = LinkCfg {
            latency: Duration::from_millis(10),
            ..Default::default()
        };
        let (ia, ib) = sim.connect(a, b, link);
        // Let the start-up traffic (DAD, MLD, router solicitations) settle.
        sim.run_for(Duration::from_secs(30));
        let delivered = sim.delivered;
        let b_rx = sim.stack(b).iface(ib).unwrap().stats.rx_packets;
        sim.capture();
        let start = sim.now();
        sim.with(a, |s, ctx| {
            let mut p = s.pool.alloc();
            p.append(60).fill(0xff);
            ctx.transmit(ia, p);
        });
        assert_eq!(sim.take_captured().len(), 1);
        assert!(sim.run_until(Duration::from_secs(1), |s| s.delivered == delivered + 1));
        assert_eq!(sim.now() - start, Duration::from_millis(10));
        let rx = sim.stack(b).iface(ib).unwrap().stats.rx_packets;
        assert_eq!(rx, b_rx + 1);
    }

    #[test]
    fn loss_is_applied_per_frame() {
        let mut sim = Sim::new(2);
        let a = sim.add_node("a");
        let b = sim.add_node("b");
        let (ia, _) = sim.connect(a, b, LinkCfg::default());
        sim.run_for(Duration::from_secs(30));
        sim.set_impairment(
            a,
            ia,
            Impairment {
                loss: 50.0,
                ..Default::default()
            },
        );
        let (delivered, lost) = (sim.delivered, sim.lost);
        for _ in 0..1000 {
            sim.with(a, |s, ctx| {
                let mut p = s.pool.alloc();
                p.append(60).fill(0xff);
                ctx.transmit(ia, p);
            });
        }
        sim.run_for(Duration::from_secs(1));
        let (delivered, lost) = (sim.delivered - delivered, sim.lost - lost);
        assert_eq!(delivered + lost, 1000);
        assert!((400..600).contains(&lost), "lost {lost}");
    }
}

/// Entry points for fuzzing whole stacks (the `fuzz/` targets call these, and
/// the tests run them over generated inputs).
pub mod fuzz {
    use super::*;

    /// Builds a small network where node 0 has IPv4 and IPv6 addresses, a
    /// gateway route and a neighbour, so frames reach deep code paths.
    pub fn fuzz_network() -> (Sim, NodeId, IfIndex) {
        let mut sim = Sim::new(0);
        let a = sim.add_node("target");
        let b = sim.add_node("peer");
        let (ia, ib) = sim.connect(a, b, LinkCfg::default());
        sim.with(a, |s, c| {
            let _ = s.add_addr4(c, ia, std::net::Ipv4Addr::new(10, 0, 0, 1), 24, false);
            let _ = s.add_addr6(c, ia, "fd00::1".parse().expect("literal"), 64);
        });
        sim.with(b, |s, c| {
            let _ = s.add_addr4(c, ib, std::net::Ipv4Addr::new(10, 0, 0, 2), 24, false);
        });
        sim.run_for(Duration::from_secs(3));
        (sim, a, ia)
    }

    /// Splits `data` into frames (each prefixed by a length byte) and feeds
    /// them to the target node, running its timers in between. Must never
    /// panic, whatever the bytes.
    pub fn stack_input(data: &[u8]) {
        let (mut sim, a, ia) = fuzz_network();
        let mut rest = data;
        while let Some((&len, tail)) = rest.split_first() {
            let n = (len as usize * 8).min(tail.len());
            let (frame, next) = tail.split_at(n);
            rest = next;
            let frame = PktBuf::from_slice(frame);
            sim.with(a, |s, c| s.input(c, ia, [frame]));
            sim.run_for(Duration::from_millis(200));
        }
        sim.run_for(Duration::from_secs(120));
    }
}
