//! The stack value: every table and queue of one TCP/IP instance.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use iopkt_pkt::{PktBuf, Pool};
use iopkt_wire::Mac;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::iface::{IfIndex, IfKind, Interface};
use crate::route::RouteTable;
use crate::socket::SocketTable;
use crate::time::{Instant, earliest};

/// Frames looped back through `lo0` per call at most, so a routing loop on
/// the loopback cannot keep the stack busy forever.
const LOOPBACK_BUDGET: usize = 4096;
/// Frames waiting on `lo0` at most.
const LOOPBACK_QUEUE: usize = 4096;

/// One TCP/IP stack instance.
pub struct Stack {
    pub config: Config,
    /// Where the stack takes buffers for packets it makes itself.
    pub pool: Pool,
    pub(crate) ifaces: Vec<Option<Interface>>,
    pub routes4: RouteTable<Ipv4Addr>,
    pub routes6: RouteTable<Ipv6Addr>,
    pub v4: crate::ipv4::Ipv4State,
    pub v6: crate::ipv6::Ipv6State,
    pub sockets: SocketTable,
    /// UDP port demux, multicast memberships and counters.
    pub udp: crate::udp::UdpState,
    pub tcp: crate::tcp::TcpState,
    pub(crate) loopback: VecDeque<PktBuf>,
    /// Bumped whenever an interface's admin state or MTU may have changed
    /// (or one was added or removed), so a host that tells drivers about
    /// those settings can tell in O(1) that nothing changed.
    pub(crate) link_settings_gen: u64,
}

impl Stack {
    /// A stack with `lo0` up, holding 127.0.0.1/8 and ::1.
    pub fn new(ctx: &mut impl Ctx, pool: Pool, config: Config) -> Stack {
        let mut s = Stack {
            v4: crate::ipv4::Ipv4State::new(&config),
            v6: crate::ipv6::Ipv6State::new(&config),
            config,
            pool,
            ifaces: Vec::new(),
            routes4: RouteTable::default(),
            routes6: RouteTable::default(),
            sockets: SocketTable::default(),
            udp: crate::udp::UdpState::default(),
            tcp: crate::tcp::TcpState::new(ctx),
            loopback: VecDeque::new(),
            link_settings_gen: 0,
        };
        let lo = s
            .add_interface("lo0", IfKind::Loopback, Mac::ZERO, 33_184)
            .expect("lo0 is the first interface");
        debug_assert_eq!(lo, crate::LOOPBACK_IFINDEX);
        s.add_addr4(ctx, lo, Ipv4Addr::LOCALHOST, 8, true)
            .expect("127.0.0.1/8 on lo0");
        s.add_addr6(ctx, lo, Ipv6Addr::LOCALHOST, 128)
            .expect("::1 on lo0");
        s.set_up(ctx, lo, true).expect("lo0 up");
        s
    }

    /// Frames received on `ifindex`, as one batch.
    pub fn input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        frames: impl IntoIterator<Item = PktBuf>,
    ) {
        // TCP acknowledges the batch once (`tcp::stretch`).
        self.tcp_batch_begin();
        for f in frames {
            self.eth_input(ctx, ifindex, f);
        }
        self.tcp_batch_end(ctx);
        self.drain_loopback(ctx);
    }

    /// Runs every timer that is due. Call at or after [`Stack::next_deadline`]
    /// (calling early is harmless).
    pub fn poll(&mut self, ctx: &mut impl Ctx) {
        let now = ctx.now();
        self.routes4.expire(now);
        self.routes6.expire(now);
        self.ipv4_poll(ctx);
        self.ipv6_poll(ctx);
        self.tcp_poll(ctx);
        self.group_query_poll(ctx);
        self.drain_loopback(ctx);
    }

    /// When [`Stack::poll`] next has work, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.loopback.is_empty() {
            // Frames sent to ourselves outside input() and poll() (by a
            // socket call) wait on lo0 until the next poll: due at once.
            return Some(Instant::ZERO);
        }
        let mut d = earliest(self.routes4.next_expiry(), self.routes6.next_expiry());
        d = earliest(d, self.ipv4_next_deadline());
        d = earliest(d, self.ipv6_next_deadline());
        d = earliest(d, self.tcp_next_deadline());
        d = earliest(d, self.group_query_next_deadline());
        d
    }

    /// Queues a frame for delivery back into the stack through `lo0`.
    pub(crate) fn loopback_enqueue(&mut self, frame: PktBuf) {
        let full = self.loopback.len() >= LOOPBACK_QUEUE;
        let lo = self.iface_mut(crate::LOOPBACK_IFINDEX);
        if full {
            if let Some(lo) = lo {
                lo.stats.tx_drops += 1;
            }
            return;
        }
        if let Some(lo) = lo {
            lo.stats.tx_packets += 1;
            lo.stats.tx_bytes += frame.len() as u64;
        }
        self.loopback.push_back(frame);
    }

    /// The generation of the interfaces' admin states and MTUs: it
    /// changes whenever one of them may have (`set_up`, `set_mtu`,
    /// `set_max_mtu`, an interface added or removed).
    pub fn link_settings_generation(&self) -> u64 {
        self.link_settings_gen
    }

    /// Delivers the frames a socket call sent to ourselves through `lo0`
    /// (they wait there otherwise until the next [`Stack::poll`]). A host
    /// calls it after each socket call so that loopback traffic does not
    /// wait for its timer thread.
    pub fn run_loopback(&mut self, ctx: &mut impl Ctx) {
        if !self.loopback.is_empty() {
            self.drain_loopback(ctx);
        }
    }

    pub(crate) fn drain_loopback(&mut self, ctx: &mut impl Ctx) {
        for _ in 0..LOOPBACK_BUDGET {
            let Some(f) = self.loopback.pop_front() else {
                break;
            };
            self.eth_input(ctx, crate::LOOPBACK_IFINDEX, f);
        }
    }
}
