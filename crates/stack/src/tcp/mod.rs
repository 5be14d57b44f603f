//! TCP (RFC 9293).
//!
//! Every TCP socket's connection state lives here, in [`TcpState`], keyed
//! by its [`SocketId`]; the socket table holds only a marker
//! ([`TcpSocket`]) so the socket calls dispatch here. A connection the
//! application closed stays in [`TcpState`] until it has finished closing
//! (FIN exchange, TIME-WAIT), as the kernel's does.
//!
//! One idea per file:
//! - [`seq`]: sequence-number arithmetic;
//! - [`isn`]: initial sequence numbers (RFC 6528);
//! - [`tcb`]: the connection block and its states;
//! - [`buffers`]: send buffer, receive buffer with reassembly;
//! - `autotune`: growing both buffers with the path (dynamic
//!   right-sizing on receive, the congestion window on send);
//! - `memory`: the stack-wide bound on buffered bytes (`tcp_mem`);
//! - [`listen`]: listeners, SYN and accept queues;
//! - `cookie`: SYN cookies (RFC 4987 section 3.6) when a SYN queue is full;
//! - `input`: segment arrival (RFC 9293 section 3.10.7, RFC 5961);
//! - `output`: the send loop and segment building;
//! - `timers`: retransmission, persist, delayed ACK, keepalive, TIME-WAIT;
//! - `stretch`: one ACK per receive batch;
//! - [`rtt`]: the RFC 6298 estimator;
//! - [`sack`]: the sender's SACK scoreboard (RFC 6675);
//! - `rack`: RACK loss detection from transmission times (RFC 8985
//!   section 6), with DSACK (RFC 2883) widening its reordering window;
//! - `tlp`: tail loss probes (RFC 8985 section 7);
//! - `undo`: taking back the reduction of a recovery DSACKs prove needless;
//! - [`cc`]: congestion control (NewReno) and its trait;
//! - `cubic`: CUBIC (RFC 9438), the default;
//! - `icmp`: ICMP errors and path MTU changes reaching connections;
//! - `info`: TCP_INFO ([`TcpInfo`], `Stack::tcp_info_of`);
//! - `api`: the socket calls;
//! - [`stats`]: the counters (`netstat -s`).
//!
//! Not here: path MTU probing (RFC 4821); ECN.

mod api;
mod autotune;
pub mod buffers;
pub mod cc;
mod challenge;
mod cookie;
mod cubic;
mod icmp;
mod info;
mod input;
pub mod isn;
pub mod listen;
mod memory;
mod output;
mod rack;
pub mod ring;
pub mod rtt;
pub mod sack;
pub mod seq;
pub mod sink;
pub mod stats;
mod stretch;
pub mod tcb;
mod timers;
mod tlp;
mod undo;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::ctx::Ctx;
use crate::socket::{SocketId, SocketKind};
use crate::stack::Stack;
use crate::time::Instant;

pub use autotune::BufTuning;
pub(crate) use icmp::{kind_of_icmp4, kind_of_icmp6};
pub use info::{TcpInfo, TcpInfoOptions};
pub use memory::{MEM_MIN_PER_CONN, TcpMemory};
pub use stats::TcpStats;
pub use tcb::State;

/// TCP connections (and listeners) at most, in all states.
pub const MAX_CONNECTIONS: usize = 65_536;
/// Ephemeral ports (Linux ip_local_port_range).
pub const EPHEMERAL_FIRST: u16 = 32_768;
pub const EPHEMERAL_LAST: u16 = 60_999;

/// A TCP socket as the socket table sees it; its state is in
/// [`Stack::tcp`].
#[derive(Debug, Default)]
pub struct TcpSocket {}

/// Tables keyed by socket handle. Every segment looks its connection up
/// here several times, so the hash must be cheap; the keys are handles the
/// stack hands out itself (a counter, never chosen by a peer or a
/// client), so a fixed-seed fast hash cannot be driven into collisions.
pub(crate) type IdMap<V> = HashMap<SocketId, V, foldhash::fast::FixedState>;

/// The demultiplexing table, keyed by the 4-tuple. A peer chooses its own
/// address and port, so a hash it could predict would let it fill one
/// bucket chain with connections (a collision flood turning every lookup
/// into a walk). The hash is keyed: a per-table secret drawn from the
/// context's randomness plus a process-wide one, neither ever sent. That
/// defeats precomputed collisions; foldhash does not claim more (an
/// attacker able to time many lookups might learn the secret, which
/// SipHash would resist at about a hundred instructions more per
/// segment). What a flood could cost is bounded anyway: entries are only
/// added by handshakes, which the backlogs, SYN cookies and
/// `MAX_CONNECTIONS` limit.
pub(crate) type TupleMap =
    HashMap<(SocketAddr, SocketAddr), SocketId, foldhash::fast::SeedableRandomState>;

/// Every TCP connection of a stack.
#[derive(Debug)]
pub struct TcpState {
    pub(crate) conns: IdMap<tcb::Tcb>,
    /// (local, remote) → connection: the demultiplexing table.
    pub(crate) by_tuple: TupleMap,
    /// Local port → listening sockets on it.
    pub(crate) listeners: HashMap<u16, Vec<SocketId>>,
    /// Local port → connections using it (bound or connected).
    pub(crate) port_refs: HashMap<u16, u32>,
    pub(crate) timer_index: BTreeSet<(Instant, SocketId)>,
    pub(crate) key: isn::IsnKey,
    pub(crate) challenge: challenge::ChallengeLimiter,
    pub stats: TcpStats,
    /// Offer SACK on new connections (RFC 2018; Linux net.ipv4.tcp_sack).
    pub sack_enabled: bool,
    /// Answer with SYN cookies when a SYN queue is full (Linux
    /// net.ipv4.tcp_syncookies).
    pub syncookies: bool,
    /// When the last SYN cookie went out.
    pub(crate) last_cookie: Option<Instant>,
    /// Bytes held by all connections' buffers (`memory`).
    pub mem: TcpMemory,
    /// ACKs held back until the end of a receive batch (`stretch`).
    pub(crate) stretch: stretch::StretchAcks,
}

impl TcpState {
    /// Draws the ISN secret (RFC 6528 section 3).
    pub fn new(ctx: &mut impl Ctx) -> TcpState {
        let key = isn::IsnKey(ctx.random_u64(), ctx.random_u64());
        let tuple_seed = ctx.random_u64();
        TcpState {
            conns: IdMap::default(),
            by_tuple: TupleMap::with_hasher(foldhash::fast::SeedableRandomState::with_seed(
                tuple_seed,
                foldhash::SharedSeed::global_random(),
            )),
            listeners: HashMap::new(),
            port_refs: HashMap::new(),
            timer_index: BTreeSet::new(),
            key,
            challenge: challenge::ChallengeLimiter::default(),
            stats: TcpStats::default(),
            sack_enabled: true,
            syncookies: true,
            last_cookie: None,
            mem: TcpMemory::default(),
            stretch: stretch::StretchAcks::default(),
        }
    }

    /// Connections in the table, listeners and closing ones included.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The state of socket `id`'s connection.
    pub fn state(&self, id: SocketId) -> Option<State> {
        self.conns.get(&id).map(|t| t.state)
    }

    /// Connections in `state` (for tests and `netstat`).
    pub fn count_in(&self, state: State) -> usize {
        self.conns.values().filter(|t| t.state == state).count()
    }

    /// (effective MSS, our announced MSS, send window scale, receive window
    /// scale, timestamps on, SACK on) of a connection: what the handshake
    /// settled.
    pub fn negotiated(&self, id: SocketId) -> Option<(u32, u16, u8, u8, bool, bool)> {
        self.conns.get(&id).map(|t| {
            (
                t.mss,
                t.our_mss,
                t.snd_wscale,
                t.rcv_wscale,
                t.ts_ok,
                t.sack_ok,
            )
        })
    }

    /// The current retransmission timeout of a connection.
    pub fn rto(&self, id: SocketId) -> Option<std::time::Duration> {
        self.conns.get(&id).map(|t| t.rtt.rto())
    }
}

impl Stack {
    /// A new TCP socket in CLOSED, in the socket table and ours.
    pub(crate) fn tcp_new_socket(&mut self, v6: bool) -> Option<SocketId> {
        if self.tcp.conns.len() >= MAX_CONNECTIONS {
            return None;
        }
        let id = self.sockets.insert(SocketKind::Tcp(TcpSocket {}))?;
        let mut t = tcb::Tcb::new(v6);
        t.rack_wanted = self.config.tcp_rack;
        let (rcv, snd) = self.tcp_initial_bufs();
        t.rcvbuf = buffers::RecvBuf::new(rcv);
        t.sndbuf = buffers::SendBuf::new(snd);
        self.tcp.conns.insert(id, t);
        Some(id)
    }

    /// The listener for a segment to `local`: one bound to that address,
    /// else one bound to the wildcard of its family, else (for IPv4) an
    /// IPv6 wildcard listener without IPV6_V6ONLY, which takes IPv4
    /// connections as IPv4-mapped addresses (RFC 4291 section 2.5.5.2,
    /// RFC 3493 section 5.3), as Linux does.
    pub(crate) fn tcp_find_listener(&self, local: SocketAddr) -> Option<SocketId> {
        let ids = self.tcp.listeners.get(&local.port())?;
        let mut wildcard = None;
        let mut dual = None;
        for id in ids {
            let Some(t) = self.tcp.conns.get(id) else {
                continue;
            };
            let Some(a) = t.local else {
                continue;
            };
            if a.ip() == local.ip() {
                return Some(*id);
            }
            if a.ip().is_unspecified() && a.is_ipv6() == local.is_ipv6() {
                wildcard = Some(*id);
            }
            if a.ip().is_unspecified() && a.is_ipv6() && local.is_ipv4() && !t.opts.v6only {
                dual = Some(*id);
            }
        }
        wildcard.or(dual)
    }

    /// The MSS to announce towards `dst`: the outgoing interface's MTU (or
    /// path MTU) less the IP and TCP headers (RFC 9293 section 3.7.1).
    pub(crate) fn tcp_route_mss(&self, dst: IpAddr) -> u16 {
        let m = match dst {
            IpAddr::V4(d) => self
                .ipv4_path(d, None)
                .map(|p| p.mtu.saturating_sub(40))
                .unwrap_or(usize::from(tcb::DEFAULT_MSS_V4)),
            IpAddr::V6(d) => self
                .ipv6_route_for(&d, None)
                .map(|(ifx, _)| self.ipv6_path_mtu(ifx, &d).saturating_sub(60))
                .unwrap_or(usize::from(tcb::DEFAULT_MSS_V6)),
        };
        m.clamp(88, 65_495) as u16
    }

    pub(crate) fn tcp_claim_port(&mut self, port: u16) {
        *self.tcp.port_refs.entry(port).or_insert(0) += 1;
    }

    fn tcp_release_port(&mut self, port: u16) {
        if let Some(n) = self.tcp.port_refs.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.tcp.port_refs.remove(&port);
            }
        }
    }

    /// The connection reached CLOSED: out of the demultiplexing table and
    /// the timers. An orphan (closed by the application, or never
    /// accepted) disappears; a socket the application still holds stays,
    /// in CLOSED, to report its error and end of stream.
    pub(crate) fn tcp_closed(&mut self, ctx: &mut impl Ctx, id: SocketId) {
        let Some(t) = self.tcp.conns.get_mut(&id) else {
            return;
        };
        let was = t.state;
        t.state = State::Closed;
        t.timers = tcb::Timers::default();
        t.rcv_fin = true;
        let key = t.local.zip(t.remote);
        let embryonic = t.parent.is_some() && was == State::SynReceived;
        let gone = t.orphan || embryonic;
        let parent = t.parent;
        if let Some(k) = key
            && self.tcp.by_tuple.get(&k) == Some(&id)
        {
            self.tcp.by_tuple.remove(&k);
        }
        if embryonic
            && let Some(l) = parent
                .and_then(|p| self.tcp.conns.get_mut(&p))
                .and_then(|p| p.listen.as_mut())
        {
            l.syn_queue = l.syn_queue.saturating_sub(1);
        }
        if gone {
            self.tcp_forget(id);
        } else {
            self.tcp_rearm(id);
            ctx.socket_ready(id);
        }
    }

    /// Removes a connection entirely (table, timers, ports, socket).
    pub(crate) fn tcp_forget(&mut self, id: SocketId) {
        let Some(t) = self.tcp.conns.remove(&id) else {
            return;
        };
        self.tcp_mem_release(id, &t);
        if let Some(a) = t.armed {
            self.tcp.timer_index.remove(&(a, id));
        }
        if let Some(k) = t.local.zip(t.remote)
            && self.tcp.by_tuple.get(&k) == Some(&id)
        {
            self.tcp.by_tuple.remove(&k);
        }
        if let Some(l) = t.local {
            self.tcp_release_port(l.port());
            if t.listen.is_some()
                && let Some(v) = self.tcp.listeners.get_mut(&l.port())
            {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    self.tcp.listeners.remove(&l.port());
                }
            }
        }
        self.sockets.remove(id);
    }

    pub(crate) fn tcp_enter_time_wait(&mut self, id: SocketId, now: Instant) {
        if let Some(t) = self.tcp.conns.get_mut(&id) {
            t.state = State::TimeWait;
            t.timers = tcb::Timers {
                close: Some(now + tcb::TIME_WAIT),
                ..tcb::Timers::default()
            };
        }
    }

    /// A passive connection completed its handshake: to the accept queue.
    pub(crate) fn tcp_to_accept_queue(&mut self, ctx: &mut impl Ctx, lid: SocketId, id: SocketId) {
        if let Some(l) = self.tcp.conns.get_mut(&lid).and_then(|p| p.listen.as_mut()) {
            l.syn_queue = l.syn_queue.saturating_sub(1);
            l.accept_queue.push_back(id);
            ctx.socket_ready(lid);
        }
    }
}
