//! Neighbor discovery (RFC 4861) and stateless address autoconfiguration
//! (RFC 4862).
//!
//! Each interface keeps its own [`NdState`]: the neighbour cache with the
//! reachability state machine of RFC 4861 section 7.3.2, the default router
//! list, router solicitation progress and what router advertisements taught
//! (link MTU, hop limit, timers). Duplicate address detection runs from the
//! address timers in `ipv6.rs` and is decided here, where NS and NA arrive.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use iopkt_pkt::PktBuf;
use iopkt_wire::Mac;
use iopkt_wire::ethernet::ethertype;
use iopkt_wire::icmp::v6 as icmp6;

use crate::ctx::Ctx;
use crate::iface::{Addr6State, IfIndex};
use crate::ipv6::{ALL_NODES, ALL_ROUTERS, addr_at, eui64_iid, is_solicited_node, prefix_of};
use crate::neighbor::NeighborInfo;
use crate::route::{Route, RouteFlags};
use crate::stack::Stack;
use crate::time::{Instant, earliest};

// RFC 4861 section 10 protocol constants.
pub const MAX_MULTICAST_SOLICIT: u32 = 3;
pub const MAX_UNICAST_SOLICIT: u32 = 3;
pub const REACHABLE_TIME_MS: u32 = 30_000;
pub const RETRANS_TIMER_MS: u32 = 1_000;
pub const DELAY_FIRST_PROBE_TIME: Duration = Duration::from_secs(5);
pub const MAX_RTR_SOLICITATIONS: u32 = 3;
pub const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// A stale entry nobody used for this long is forgotten (the RFC leaves
/// garbage collection to the implementation, section 7.3.2).
pub const STALE_GC_TIME: Duration = Duration::from_secs(1200);
/// Default routers remembered per interface at most.
pub const MAX_ROUTERS: usize = 8;
/// Prefix options honoured per router advertisement at most.
pub const MAX_PREFIX_OPTS: usize = 16;
/// Addresses SLAAC makes per interface at most, prefix routes learned
/// from advertisements per interface at most, and host routes learned from
/// redirects per interface at most: a flood of forged advertisements fills
/// these and stops, leaving the rest of the route table alone.
pub const MAX_AUTOCONF_ADDRS: usize = 16;
pub const MAX_LEARNED_PREFIXES: usize = 16;
pub const MAX_REDIRECT_ROUTES: usize = 64;
/// How long a route learned from a redirect lasts.
pub const REDIRECT_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 4862 section 5.5.3 (e): the two-hour floor on valid lifetime updates.
const TWO_HOURS: Duration = Duration::from_secs(7200);
/// An infinite lifetime in prefix options (RFC 4861 section 4.6.2).
const INFINITE: u32 = 0xffff_ffff;

/// The reachability state of a neighbour (RFC 4861 section 7.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
}

impl NeighState {
    pub fn as_str(self) -> &'static str {
        match self {
            NeighState::Incomplete => "incomplete",
            NeighState::Reachable => "reachable",
            NeighState::Stale => "stale",
            NeighState::Delay => "delay",
            NeighState::Probe => "probe",
        }
    }
}

/// One neighbour cache entry.
#[derive(Debug)]
pub struct Neighbor {
    /// Meaningless while incomplete.
    pub mac: Mac,
    pub state: NeighState,
    pub is_router: bool,
    /// When the state's timer fires (retransmission, reachability end,
    /// first probe, garbage collection).
    pub timer: Option<Instant>,
    /// Solicitations sent in the current state.
    pub probes: u32,
    /// Packets waiting for resolution, oldest first (bounded by
    /// `config.neigh_hold`).
    pub hold: VecDeque<PktBuf>,
    /// Source of the packet that started resolution: preferred as the
    /// solicitation's source (RFC 4861 section 7.2.2).
    src_hint: Option<Ipv6Addr>,
    updated: Instant,
}

/// A router from the default router list (RFC 4861 section 6.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRouter {
    pub addr: Ipv6Addr,
    pub expires: Instant,
}

/// The neighbour discovery state of one interface.
#[derive(Debug)]
pub struct NdState {
    pub neighbors: BTreeMap<Ipv6Addr, Neighbor>,
    pub routers: Vec<DefaultRouter>,
    /// BaseReachableTime and RetransTimer, in milliseconds (RFC 4861
    /// section 6.3.2), as router advertisements set them.
    pub base_reachable_ms: u32,
    pub retrans_ms: u32,
    /// MTU option of the last router advertisement.
    pub link_mtu: Option<u32>,
    /// Cur Hop Limit of the last router advertisement.
    pub cur_hop_limit: Option<u8>,
    /// Router solicitations still to send and when the next is due.
    pub rs_left: u32,
    pub rs_next: Option<Instant>,
    /// Multicast groups joined (all-nodes and our solicited-node groups).
    pub groups: Vec<Ipv6Addr>,
}

impl Default for NdState {
    fn default() -> Self {
        NdState {
            neighbors: BTreeMap::new(),
            routers: Vec::new(),
            base_reachable_ms: REACHABLE_TIME_MS,
            retrans_ms: RETRANS_TIMER_MS,
            link_mtu: None,
            cur_hop_limit: None,
            rs_left: 0,
            rs_next: None,
            groups: Vec::new(),
        }
    }
}

impl NdState {
    pub fn retrans_timer(&self) -> Duration {
        Duration::from_millis(self.retrans_ms as u64)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.rs_next;
        d = earliest(d, self.routers.iter().map(|r| r.expires).min());
        d = earliest(d, self.neighbors.values().filter_map(|n| n.timer).min());
        d
    }

    /// Makes room for one more entry: the oldest stale entry goes first,
    /// then the oldest of any state. Returns how many were evicted.
    fn make_room(&mut self, max: usize) -> u64 {
        let mut evicted = 0;
        while self.neighbors.len() >= max {
            let rank = |s: NeighState| match s {
                NeighState::Stale => 0,
                NeighState::Delay | NeighState::Probe | NeighState::Reachable => 1,
                NeighState::Incomplete => 2,
            };
            let Some(victim) = self
                .neighbors
                .iter()
                .min_by_key(|(_, n)| (rank(n.state), n.updated))
                .map(|(a, _)| *a)
            else {
                break;
            };
            self.neighbors.remove(&victim);
            evicted += 1;
        }
        evicted
    }
}

/// A prefix information option (RFC 4861 section 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    pub plen: u8,
    pub on_link: bool,
    pub autonomous: bool,
    pub valid: u32,
    pub preferred: u32,
    pub prefix: Ipv6Addr,
}

/// The options of an ND message that the stack uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NdOpts {
    pub slla: Option<Mac>,
    pub tlla: Option<Mac>,
    pub mtu: Option<u32>,
    pub prefixes: Vec<PrefixInfo>,
}

/// Parses ND options. `None` for a malformed list: an option of length
/// zero or running past the end invalidates the whole message (RFC 4861
/// sections 4.6 and 7.1). Unknown options are skipped (section 4.6).
pub fn parse_nd_opts(mut b: &[u8]) -> Option<NdOpts> {
    let mut o = NdOpts::default();
    while !b.is_empty() {
        let ty = *b.first()?;
        let len = *b.get(1)? as usize * 8;
        if len == 0 || len > b.len() {
            return None;
        }
        let opt = &b[..len];
        match ty {
            1 | 2 => {
                let m: [u8; 6] = opt.get(2..8)?.try_into().ok()?;
                if ty == 1 {
                    o.slla = Some(Mac(m));
                } else {
                    o.tlla = Some(Mac(m));
                }
            }
            3 if len == 32 && o.prefixes.len() < MAX_PREFIX_OPTS => {
                let u32_at =
                    |k: usize| u32::from_be_bytes([opt[k], opt[k + 1], opt[k + 2], opt[k + 3]]);
                o.prefixes.push(PrefixInfo {
                    plen: opt[2],
                    on_link: opt[3] & 0x80 != 0,
                    autonomous: opt[3] & 0x40 != 0,
                    valid: u32_at(4),
                    preferred: u32_at(8),
                    prefix: addr_at(opt, 16)?,
                });
            }
            5 if len == 8 => {
                o.mtu = Some(u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]));
            }
            _ => {}
        }
        b = &b[len..];
    }
    Some(o)
}

fn lifetime(now: Instant, secs: u32) -> Option<Instant> {
    (secs != INFINITE).then(|| now + Duration::from_secs(secs as u64))
}

/// The target address and options of a neighbor solicitation or
/// advertisement (both: 4 bytes of flags, the 16-byte target, options), if
/// the message passes the checks of RFC 4861 sections 7.1.1 and 7.1.2.
fn target_and_options(msg: &[u8], hop: u8) -> Option<(Ipv6Addr, NdOpts)> {
    if !nd_valid(msg, hop, 24) {
        return None;
    }
    let target = addr_at(msg, 8)?;
    let opts = parse_nd_opts(msg.get(24..)?)?;
    Some((target, opts))
}

/// An ICMPv6 message with at least `min` bytes, code 0 and hop limit 255:
/// the checks every ND message shares (RFC 4861 sections 6.1 and 7.1).
fn nd_valid(msg: &[u8], hop: u8, min: usize) -> bool {
    hop == 255 && msg.len() >= min && msg.get(1) == Some(&0)
}

impl Stack {
    /// A random ReachableTime for `ifindex`: 0.5 to 1.5 times the base
    /// (RFC 4861 section 6.3.2).
    fn nd_reachable_time(&self, ctx: &mut impl Ctx, ifindex: IfIndex) -> Duration {
        let base = self
            .iface(ifindex)
            .map_or(REACHABLE_TIME_MS, |i| i.nd.base_reachable_ms)
            .max(1) as u64;
        Duration::from_millis(base / 2 + ctx.random_below(base))
    }

    /// The source for a solicitation on `ifindex`: the prompting packet's
    /// source if it belongs to the interface, else a link-local address,
    /// else any usable address of the interface.
    fn nd_ns_source(&self, ifindex: IfIndex, hint: Option<Ipv6Addr>) -> Option<Ipv6Addr> {
        let i = self.iface(ifindex)?;
        if let Some(h) = hint
            && i.addr6(&h).is_some_and(|a| a.is_usable())
        {
            return Some(h);
        }
        i.link_local6()
            .or_else(|| i.addrs6.iter().find(|a| a.is_usable()).map(|a| a.addr))
    }

    /// Sends `pkt` (a complete IPv6 packet) to on-link `nexthop`, resolving
    /// its link-layer address first if needed (RFC 4861 section 7.2.2).
    pub(crate) fn nd_resolve_send(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        nexthop: Ipv6Addr,
        pkt: PktBuf,
    ) {
        let now = ctx.now();
        let hold_max = self.config.neigh_hold.max(1) as usize;
        let max = self.config.nd_max_entries.max(1) as usize;
        let hint = addr_at(pkt.data(), 8);
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        if let Some(n) = i.nd.neighbors.get_mut(&nexthop) {
            if n.state != NeighState::Incomplete {
                let mac = n.mac;
                if n.state == NeighState::Stale {
                    // Section 7.3.3: sending to a stale neighbour starts the
                    // wait for upper-layer confirmation before probing.
                    n.state = NeighState::Delay;
                    n.timer = Some(now + DELAY_FIRST_PROBE_TIME);
                    n.probes = 0;
                    n.updated = now;
                }
                self.eth_output(ctx, ifindex, mac, ethertype::IPV6, pkt);
                return;
            }
            n.hold.push_back(pkt);
            if n.hold.len() > hold_max {
                n.hold.pop_front();
                self.v6.stats.nd_hold_drops += 1;
            }
            return;
        }
        let evicted = i.nd.make_room(max);
        let retrans = i.nd.retrans_timer();
        i.nd.neighbors.insert(
            nexthop,
            Neighbor {
                mac: Mac::ZERO,
                state: NeighState::Incomplete,
                is_router: false,
                timer: Some(now + retrans),
                probes: 1,
                hold: VecDeque::from([pkt]),
                src_hint: hint,
                updated: now,
            },
        );
        self.v6.stats.nd_evictions += evicted;
        if let Some(src) = self.nd_ns_source(ifindex, hint) {
            self.nd_send_ns(ctx, ifindex, nexthop, src, None);
        }
    }

    /// A neighbour solicitation for `target`: multicast to its
    /// solicited-node group, or unicast to `unicast_mac` (reachability
    /// probes). `src` unspecified makes it a DAD probe without SLLAO.
    fn nd_send_ns(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        target: Ipv6Addr,
        src: Ipv6Addr,
        unicast_mac: Option<Mac>,
    ) {
        let Some(mymac) = self.iface(ifindex).map(|i| i.mac) else {
            return;
        };
        let dst = if unicast_mac.is_some() {
            target
        } else {
            crate::ipv6::solicited_node(&target)
        };
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(&target.octets());
        if !src.is_unspecified() {
            body.extend_from_slice(&[1, 1]);
            body.extend_from_slice(&mymac.0);
        }
        let _ = self.icmp6_output(
            ctx,
            Some(ifindex),
            Some(src),
            dst,
            icmp6::NEIGHBOR_SOLICIT,
            0,
            [0; 4],
            &body,
            Some(255),
            unicast_mac,
        );
    }

    /// A DAD probe for tentative `addr` (RFC 4862 section 5.4.2).
    pub(crate) fn nd_send_dad(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv6Addr) {
        self.nd_send_ns(ctx, ifindex, addr, Ipv6Addr::UNSPECIFIED, None);
    }

    /// A neighbour advertisement for our `target` (RFC 4861 section 7.2.4).
    fn nd_send_na(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        target: Ipv6Addr,
        dst: Ipv6Addr,
        solicited: bool,
        mac: Option<Mac>,
    ) {
        let Some(mymac) = self.iface(ifindex).map(|i| i.mac) else {
            return;
        };
        // Override is set: we answer only for our own unicast addresses,
        // never anycast or proxied ones.
        let flags = if self.config.forwarding6 { 0x80 } else { 0 }
            | if solicited { 0x40 } else { 0 }
            | 0x20;
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(&target.octets());
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&mymac.0);
        let _ = self.icmp6_output(
            ctx,
            Some(ifindex),
            Some(target),
            dst,
            icmp6::NEIGHBOR_ADVERT,
            0,
            [flags, 0, 0, 0],
            &body,
            Some(255),
            mac,
        );
    }

    /// A router solicitation (RFC 4861 section 6.3.7): from our link-local
    /// address with SLLAO, or from :: without it while none is usable.
    fn nd_send_rs(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex) {
        let Some(i) = self.iface(ifindex) else {
            return;
        };
        let (mymac, src) = (i.mac, i.link_local6());
        let mut body = Vec::new();
        if src.is_some() {
            body.extend_from_slice(&[1, 1]);
            body.extend_from_slice(&mymac.0);
        }
        let _ = self.icmp6_output(
            ctx,
            Some(ifindex),
            Some(src.unwrap_or(Ipv6Addr::UNSPECIFIED)),
            ALL_ROUTERS,
            icmp6::ROUTER_SOLICIT,
            0,
            [0; 4],
            &body,
            Some(255),
            None,
        );
    }

    /// Sends the packets held for a neighbour that just got a link-layer
    /// address.
    fn nd_flush_hold(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv6Addr) {
        let now = ctx.now();
        let Some(n) = self
            .iface_mut(ifindex)
            .and_then(|i| i.nd.neighbors.get_mut(&addr))
        else {
            return;
        };
        if n.hold.is_empty() || n.state == NeighState::Incomplete {
            return;
        }
        let mac = n.mac;
        let held: Vec<PktBuf> = n.hold.drain(..).collect();
        if n.state == NeighState::Stale {
            n.state = NeighState::Delay;
            n.timer = Some(now + DELAY_FIRST_PROBE_TIME);
            n.probes = 0;
        }
        for p in held {
            self.eth_output(ctx, ifindex, mac, ethertype::IPV6, p);
        }
    }

    /// Records that `addr` uses `mac` (from an SLLAO or redirect target
    /// option): RFC 4861 section 7.2.3 / 6.3.4 / 8.3 rules. A new or changed
    /// address makes the entry stale.
    fn nd_learn(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        addr: Ipv6Addr,
        mac: Mac,
        router: Option<bool>,
    ) {
        let now = ctx.now();
        let max = self.config.nd_max_entries.max(1) as usize;
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        let mut evicted = 0;
        let flush = match i.nd.neighbors.get_mut(&addr) {
            Some(n) => {
                let was_incomplete = n.state == NeighState::Incomplete;
                if was_incomplete || n.mac != mac {
                    n.mac = mac;
                    n.state = NeighState::Stale;
                    n.timer = Some(now + STALE_GC_TIME);
                    n.probes = 0;
                    n.updated = now;
                }
                if let Some(r) = router {
                    n.is_router = r;
                }
                was_incomplete
            }
            None => {
                evicted = i.nd.make_room(max);
                i.nd.neighbors.insert(
                    addr,
                    Neighbor {
                        mac,
                        state: NeighState::Stale,
                        is_router: router.unwrap_or(false),
                        timer: Some(now + STALE_GC_TIME),
                        probes: 0,
                        hold: VecDeque::new(),
                        src_hint: None,
                        updated: now,
                    },
                );
                false
            }
        };
        self.v6.stats.nd_evictions += evicted;
        if flush {
            self.nd_flush_hold(ctx, ifindex, addr);
        }
    }

    /// Neighbour discovery messages from ICMPv6 input. `msg` is the whole
    /// ICMPv6 message, checksum already verified.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn nd_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) {
        let ok = match msg.first().copied() {
            Some(icmp6::NEIGHBOR_SOLICIT) => self.nd_ns_input(ctx, ifindex, src, dst, hop, msg),
            Some(icmp6::NEIGHBOR_ADVERT) => self.nd_na_input(ctx, ifindex, dst, hop, msg),
            Some(icmp6::ROUTER_SOLICIT) => self.nd_rs_input(ctx, ifindex, src, hop, msg),
            Some(icmp6::ROUTER_ADVERT) => self.nd_ra_input(ctx, ifindex, src, hop, msg),
            Some(icmp6::REDIRECT) => self.nd_redirect_input(ctx, ifindex, src, hop, msg),
            _ => true,
        };
        if !ok {
            self.v6.icmp_stats.nd_invalid += 1;
        }
    }

    /// RFC 4861 section 7.1.1 validation and section 7.2.3 processing, with
    /// RFC 4862 section 5.4.3 for tentative targets. Returns false for an
    /// invalid message.
    fn nd_ns_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) -> bool {
        let Some((target, opts)) = target_and_options(msg, hop) else {
            return false;
        };
        if target.is_multicast() {
            return false;
        }
        let dad = src.is_unspecified();
        if dad && (!is_solicited_node(&dst) || opts.slla.is_some()) {
            return false;
        }
        let Some(state) = self
            .iface(ifindex)
            .and_then(|i| i.addr6(&target))
            .map(|a| a.state)
        else {
            // Not an address of the receiving interface: silently ignored.
            return true;
        };
        match state {
            Addr6State::Tentative => {
                // Another node is probing the address we are probing: both
                // give it up (RFC 4862 section 5.4.3). A solicitation with a
                // real source is address resolution and is not answered.
                if dad {
                    self.nd_mark_duplicate(ifindex, target);
                }
            }
            Addr6State::Duplicated => {}
            Addr6State::Preferred | Addr6State::Deprecated => {
                if !dad && let Some(mac) = opts.slla {
                    self.nd_learn(ctx, ifindex, src, mac, None);
                }
                if dad {
                    // Tell the prober (and everyone) the address is taken.
                    self.nd_send_na(ctx, ifindex, target, ALL_NODES, false, None);
                } else {
                    self.nd_send_na(ctx, ifindex, target, src, true, opts.slla);
                }
            }
        }
        true
    }

    fn nd_mark_duplicate(&mut self, ifindex: IfIndex, addr: Ipv6Addr) {
        if let Some(a) = self
            .iface_mut(ifindex)
            .and_then(|i| i.addrs6.iter_mut().find(|a| a.addr == addr))
            && a.state == Addr6State::Tentative
        {
            // RFC 4862 section 5.4.5: the address is not used. The stack
            // has no log; the counter is how an operator learns of it, with
            // the address's state in `ifconfig`.
            a.state = Addr6State::Duplicated;
            a.dad_next = None;
            a.dad_probes_left = 0;
            self.v6.stats.dad_duplicates += 1;
        }
    }

    /// RFC 4861 section 7.1.2 validation and section 7.2.5 processing.
    fn nd_na_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        dst: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) -> bool {
        let Some((target, opts)) = target_and_options(msg, hop) else {
            return false;
        };
        let flags = msg[4];
        let (router, solicited, override_) =
            (flags & 0x80 != 0, flags & 0x40 != 0, flags & 0x20 != 0);
        if target.is_multicast() || (dst.is_multicast() && solicited) {
            return false;
        }
        if let Some(a) = self.iface(ifindex).and_then(|i| i.addr6(&target)) {
            // Someone else claims one of our addresses. While it is
            // tentative that is a DAD failure (RFC 4862 section 5.4.4).
            if a.state == Addr6State::Tentative {
                self.nd_mark_duplicate(ifindex, target);
            }
            return true;
        }
        let now = ctx.now();
        let reach = self.nd_reachable_time(ctx, ifindex);
        let Some(i) = self.iface_mut(ifindex) else {
            return true;
        };
        let Some(n) = i.nd.neighbors.get_mut(&target) else {
            return true; // unsolicited for an unknown neighbour: ignored
        };
        let mut flush = false;
        let mut router_lost = false;
        if n.state == NeighState::Incomplete {
            let Some(mac) = opts.tlla else {
                return true;
            };
            n.mac = mac;
            n.is_router = router;
            n.probes = 0;
            n.updated = now;
            if solicited {
                n.state = NeighState::Reachable;
                n.timer = Some(now + reach);
            } else {
                n.state = NeighState::Stale;
                n.timer = Some(now + STALE_GC_TIME);
            }
            flush = true;
        } else {
            let differs = opts.tlla.is_some_and(|m| m != n.mac);
            if !override_ && differs {
                if n.state == NeighState::Reachable {
                    n.state = NeighState::Stale;
                    n.timer = Some(now + STALE_GC_TIME);
                }
                return true;
            }
            if let Some(m) = opts.tlla {
                n.mac = m;
            }
            if solicited {
                n.state = NeighState::Reachable;
                n.timer = Some(now + reach);
                n.probes = 0;
                n.updated = now;
            } else if differs {
                n.state = NeighState::Stale;
                n.timer = Some(now + STALE_GC_TIME);
                n.updated = now;
            }
            router_lost = n.is_router && !router;
            n.is_router = router;
        }
        if router_lost {
            // A router that stopped being one leaves the default router
            // list (RFC 4861 section 7.2.5).
            i.nd.routers.retain(|r| r.addr != target);
            self.nd_remove_default_route(ifindex, target);
        }
        if flush {
            self.nd_flush_hold(ctx, ifindex, target);
        }
        true
    }

    /// Router solicitations (RFC 4861 section 6.1.1 validation). We send no
    /// advertisements, so as a router we only learn the sender's address.
    fn nd_rs_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) -> bool {
        if !nd_valid(msg, hop, 8) {
            return false;
        }
        let Some(opts) = parse_nd_opts(&msg[8..]) else {
            return false;
        };
        if src.is_unspecified() && opts.slla.is_some() {
            return false;
        }
        if self.config.forwarding6
            && !src.is_unspecified()
            && let Some(mac) = opts.slla
        {
            self.nd_learn(ctx, ifindex, src, mac, Some(false));
        }
        true
    }

    /// Router advertisements: RFC 4861 section 6.1.2 validation, section
    /// 6.3.4 processing, and RFC 4862 section 5.5.3 for prefixes.
    fn nd_ra_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) -> bool {
        if !nd_valid(msg, hop, 16) || !src.is_unicast_link_local() {
            return false;
        }
        let Some(opts) = parse_nd_opts(&msg[16..]) else {
            return false;
        };
        if !self.config.accept_rtadv || self.config.forwarding6 {
            return true;
        }
        let now = ctx.now();
        let cur_hop = msg[4];
        let router_lifetime = u16::from_be_bytes([msg[6], msg[7]]);
        let reachable = u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
        let retrans = u32::from_be_bytes([msg[12], msg[13], msg[14], msg[15]]);
        let Some(i) = self.iface_mut(ifindex) else {
            return true;
        };
        let if_mtu = i.mtu;
        // An answer ends our soliciting (RFC 4861 section 6.3.7).
        i.nd.rs_left = 0;
        i.nd.rs_next = None;
        if cur_hop != 0 {
            i.nd.cur_hop_limit = Some(cur_hop);
        }
        if reachable != 0 {
            // MAX_REACHABLE_TIME is one hour (section 6.2.1).
            i.nd.base_reachable_ms = reachable.min(3_600_000);
        }
        if retrans != 0 {
            // Bounded so that a hostile advertisement cannot make us probe
            // in a tight loop.
            i.nd.retrans_ms = retrans.clamp(100, 3_600_000);
        }
        if let Some(mtu) = opts.mtu
            && (crate::iface::MIN_MTU.max(1280)..=if_mtu).contains(&mtu)
        {
            i.nd.link_mtu = Some(mtu);
        }
        match opts.slla {
            Some(mac) => self.nd_learn(ctx, ifindex, src, mac, Some(true)),
            None => {
                if let Some(n) = self
                    .iface_mut(ifindex)
                    .and_then(|i| i.nd.neighbors.get_mut(&src))
                {
                    n.is_router = true;
                }
            }
        }
        self.nd_update_router(ifindex, src, now, router_lifetime);
        let mac = self.iface(ifindex).map(|i| i.mac).unwrap_or_default();
        for p in &opts.prefixes {
            self.nd_prefix(ctx, ifindex, mac, p);
        }
        true
    }

    /// The default router list and its default routes (section 6.3.4).
    fn nd_update_router(
        &mut self,
        ifindex: IfIndex,
        router: Ipv6Addr,
        now: Instant,
        lifetime: u16,
    ) {
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        if lifetime == 0 {
            i.nd.routers.retain(|r| r.addr != router);
            self.nd_remove_default_route(ifindex, router);
            return;
        }
        let expires = now + Duration::from_secs(lifetime as u64);
        let known = i.nd.routers.iter().position(|r| r.addr == router);
        match known {
            Some(k) => i.nd.routers[k].expires = expires,
            None if i.nd.routers.len() < MAX_ROUTERS => i.nd.routers.push(DefaultRouter {
                addr: router,
                expires,
            }),
            None => return,
        }
        match self
            .routes6
            .find_mut(Ipv6Addr::UNSPECIFIED, 0, Some(router))
        {
            Some(r) if r.flags.contains(RouteFlags::DYNAMIC) && r.ifindex == ifindex => {
                r.expires = Some(expires);
            }
            Some(_) => {} // configured by hand: leave it alone
            None => {
                let _ = self.routes6.add(Route {
                    dest: Ipv6Addr::UNSPECIFIED,
                    plen: 0,
                    gateway: Some(router),
                    ifindex,
                    flags: RouteFlags::DYNAMIC,
                    expires: Some(expires),
                });
            }
        }
    }

    /// Routes learned on `ifindex` (dynamic) that match `which`.
    fn nd_learned_routes(
        &self,
        ifindex: IfIndex,
        which: impl Fn(&Route<Ipv6Addr>) -> bool,
    ) -> usize {
        self.routes6
            .iter()
            .filter(|r| r.ifindex == ifindex && r.flags.contains(RouteFlags::DYNAMIC) && which(r))
            .count()
    }

    fn nd_remove_default_route(&mut self, ifindex: IfIndex, router: Ipv6Addr) {
        let learned = self.routes6.iter().any(|r| {
            r.plen == 0
                && r.gateway == Some(router)
                && r.ifindex == ifindex
                && r.flags.contains(RouteFlags::DYNAMIC)
        });
        if learned {
            let _ = self.routes6.delete(Ipv6Addr::UNSPECIFIED, 0, Some(router));
        }
    }

    /// One prefix information option: on-link routes (RFC 4861 section
    /// 6.3.4) and SLAAC (RFC 4862 section 5.5.3).
    fn nd_prefix(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, mac: Mac, p: &PrefixInfo) {
        if p.plen > 128 || p.prefix.is_unicast_link_local() || p.preferred > p.valid {
            return;
        }
        let now = ctx.now();
        let prefix = prefix_of(&p.prefix, p.plen);
        if p.on_link {
            let learned = self.nd_learned_routes(ifindex, |r| r.plen < 128 && r.gateway.is_none());
            match self.routes6.find_mut(prefix, p.plen, None) {
                Some(r) if r.flags.contains(RouteFlags::DYNAMIC) && r.ifindex == ifindex => {
                    if p.valid == 0 {
                        let _ = self.routes6.delete(prefix, p.plen, None);
                    } else {
                        r.expires = lifetime(now, p.valid);
                    }
                }
                Some(_) => {}
                None if p.valid > 0 && learned < MAX_LEARNED_PREFIXES => {
                    let _ = self.routes6.add(Route {
                        dest: prefix,
                        plen: p.plen,
                        gateway: None,
                        ifindex,
                        flags: RouteFlags(RouteFlags::CONNECTED.0 | RouteFlags::DYNAMIC.0),
                        expires: lifetime(now, p.valid),
                    });
                }
                None => {}
            }
        }
        // Our interface identifiers are 64 bits (modified EUI-64), so only
        // /64 prefixes can form addresses (RFC 4862 section 5.5.3 (d)).
        if !p.autonomous || p.plen != 64 {
            return;
        }
        let existing = self.iface(ifindex).and_then(|i| {
            i.addrs6
                .iter()
                .find(|a| a.autoconf && a.plen == 64 && prefix_of(&a.addr, 64) == prefix)
                .map(|a| a.addr)
        });
        let preferred_until = lifetime(now, p.preferred);
        match existing {
            None => {
                let autoconf = self
                    .iface(ifindex)
                    .map_or(0, |i| i.addrs6.iter().filter(|a| a.autoconf).count());
                if p.valid == 0 || autoconf >= MAX_AUTOCONF_ADDRS {
                    return;
                }
                let addr = Ipv6Addr::from(u128::from(prefix) | eui64_iid(mac) as u128);
                let _ = self.add_addr6_full(
                    ctx,
                    ifindex,
                    addr,
                    64,
                    true,
                    lifetime(now, p.valid),
                    preferred_until,
                );
            }
            Some(addr) => {
                let Some(a) = self
                    .iface_mut(ifindex)
                    .and_then(|i| i.addrs6.iter_mut().find(|a| a.addr == addr))
                else {
                    return;
                };
                a.preferred_until = preferred_until;
                if a.state == Addr6State::Deprecated && p.preferred > 0 {
                    a.state = Addr6State::Preferred;
                }
                // The two-hour rule (section 5.5.3 (e)): an unauthenticated
                // advertisement cannot cut a valid lifetime below two hours.
                let received = Duration::from_secs(p.valid as u64);
                let remaining = a.valid_until.map(|t| t.saturating_since(now));
                if p.valid == INFINITE {
                    a.valid_until = None;
                } else if received > TWO_HOURS || remaining.is_some_and(|r| received > r) {
                    a.valid_until = Some(now + received);
                } else if remaining.is_none_or(|r| r > TWO_HOURS) {
                    a.valid_until = Some(now + TWO_HOURS);
                }
            }
        }
    }

    /// Redirects (RFC 4861 section 8.1 validation, 8.3 processing): a host
    /// route to the destination through a better first hop, or on-link.
    fn nd_redirect_input(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        src: Ipv6Addr,
        hop: u8,
        msg: &[u8],
    ) -> bool {
        if !nd_valid(msg, hop, 40) || !src.is_unicast_link_local() {
            return false;
        }
        let (Some(target), Some(dest)) = (addr_at(msg, 8), addr_at(msg, 24)) else {
            return false;
        };
        let Some(opts) = parse_nd_opts(&msg[40..]) else {
            return false;
        };
        if dest.is_multicast() || !(target.is_unicast_link_local() || target == dest) {
            return false;
        }
        // Only the router we use for that destination may redirect us.
        let current = self
            .ipv6_route_for(&dest, None)
            .ok()
            .filter(|(i, nh)| *i == ifindex && *nh == src);
        if current.is_none() || self.config.forwarding6 {
            return current.is_some();
        }
        let now = ctx.now();
        let gateway = (target != dest).then_some(target);
        let redirect = |r: &Route<Ipv6Addr>| r.plen == 128;
        let replaces = |r: &Route<Ipv6Addr>| {
            r.dest == dest && r.ifindex == ifindex && r.flags.contains(RouteFlags::DYNAMIC)
        };
        if self.routes6.iter().any(|r| replaces(r) && redirect(r)) {
            let old: Vec<Option<Ipv6Addr>> = self
                .routes6
                .iter()
                .filter(|r| replaces(r) && redirect(r))
                .map(|r| r.gateway)
                .collect();
            for g in old {
                let _ = self.routes6.delete(dest, 128, g);
            }
        } else if self.nd_learned_routes(ifindex, redirect) >= MAX_REDIRECT_ROUTES {
            return true;
        }
        let _ = self.routes6.add(Route {
            dest,
            plen: 128,
            gateway,
            ifindex,
            flags: RouteFlags::DYNAMIC,
            expires: Some(now + REDIRECT_LIFETIME),
        });
        if let Some(mac) = opts.tlla {
            self.nd_learn(ctx, ifindex, target, mac, Some(target != dest));
        }
        true
    }

    /// Router solicitations, router list expiry and the neighbour timers of
    /// one interface.
    pub(crate) fn nd_poll_interface(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, now: Instant) {
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        let mut send_rs = false;
        if i.nd.rs_next.is_some_and(|t| t <= now) {
            if i.nd.rs_left > 0 {
                i.nd.rs_left -= 1;
                send_rs = true;
            }
            i.nd.rs_next = (i.nd.rs_left > 0).then_some(now + RTR_SOLICITATION_INTERVAL);
        }
        i.nd.routers.retain(|r| r.expires > now);
        let due: Vec<Ipv6Addr> =
            i.nd.neighbors
                .iter()
                .filter(|(_, n)| n.timer.is_some_and(|t| t <= now))
                .map(|(a, _)| *a)
                .collect();
        if send_rs {
            self.nd_send_rs(ctx, ifindex);
        }
        for addr in due {
            self.nd_neighbor_timer(ctx, ifindex, addr, now);
        }
    }

    /// The timer of one neighbour entry fired (RFC 4861 section 7.3.3).
    fn nd_neighbor_timer(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        addr: Ipv6Addr,
        now: Instant,
    ) {
        enum Act {
            Multicast(Option<Ipv6Addr>),
            Unicast(Mac),
            Fail(Vec<PktBuf>),
            Nothing,
        }
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        let retrans = i.nd.retrans_timer();
        let Some(n) = i.nd.neighbors.get_mut(&addr) else {
            return;
        };
        let act = match n.state {
            NeighState::Incomplete if n.probes < MAX_MULTICAST_SOLICIT => {
                n.probes += 1;
                n.timer = Some(now + retrans);
                Act::Multicast(n.src_hint)
            }
            NeighState::Incomplete => {
                let held: Vec<PktBuf> = n.hold.drain(..).collect();
                i.nd.neighbors.remove(&addr);
                Act::Fail(held)
            }
            NeighState::Reachable => {
                n.state = NeighState::Stale;
                n.timer = Some(now + STALE_GC_TIME);
                Act::Nothing
            }
            NeighState::Stale => {
                i.nd.neighbors.remove(&addr);
                Act::Nothing
            }
            NeighState::Delay => {
                n.state = NeighState::Probe;
                n.probes = 1;
                n.timer = Some(now + retrans);
                Act::Unicast(n.mac)
            }
            NeighState::Probe if n.probes < MAX_UNICAST_SOLICIT => {
                n.probes += 1;
                n.timer = Some(now + retrans);
                Act::Unicast(n.mac)
            }
            NeighState::Probe => {
                i.nd.neighbors.remove(&addr);
                Act::Fail(Vec::new())
            }
        };
        match act {
            Act::Multicast(hint) => {
                if let Some(src) = self.nd_ns_source(ifindex, hint) {
                    self.nd_send_ns(ctx, ifindex, addr, src, None);
                }
            }
            Act::Unicast(mac) => {
                if let Some(src) = self.nd_ns_source(ifindex, None) {
                    self.nd_send_ns(ctx, ifindex, addr, src, Some(mac));
                }
            }
            Act::Fail(held) => {
                self.v6.stats.nd_resolve_failures += 1;
                // RFC 4861 section 7.2.2: address unreachable for each
                // packet we were holding. Our own packets just fail.
                for p in held {
                    let ours =
                        addr_at(p.data(), 8).is_some_and(|s| self.local_iface6(&s).is_some());
                    if !ours {
                        self.icmp6_error(
                            ctx,
                            0,
                            p.data(),
                            false,
                            icmp6::DEST_UNREACH,
                            icmp6::UNREACH_ADDR,
                            0,
                        );
                    }
                }
            }
            Act::Nothing => {}
        }
    }

    /// Forgets everything learned on `ifindex` (it went down): neighbours
    /// with their held packets, routers and learned routes, soliciting.
    pub(crate) fn nd_flush_interface(&mut self, ifindex: IfIndex) {
        let Some(i) = self.iface_mut(ifindex) else {
            return;
        };
        i.nd.neighbors.clear();
        i.nd.routers.clear();
        i.nd.rs_left = 0;
        i.nd.rs_next = None;
        i.nd.link_mtu = None;
        i.nd.cur_hop_limit = None;
        let learned: Vec<(Ipv6Addr, u8, Option<Ipv6Addr>)> = self
            .routes6
            .iter()
            .filter(|r| r.ifindex == ifindex && r.flags.contains(RouteFlags::DYNAMIC))
            .map(|r| (r.dest, r.plen, r.gateway))
            .collect();
        for (d, p, g) in learned {
            let _ = self.routes6.delete(d, p, g);
        }
    }

    /// Every neighbour cache entry of every interface (`ndp -an`).
    pub fn nd_entries(&self) -> Vec<NeighborInfo> {
        let now = self.v6.now;
        let mut out = Vec::new();
        for i in self.interfaces() {
            for (a, n) in &i.nd.neighbors {
                out.push(NeighborInfo {
                    ip: IpAddr::V6(*a),
                    mac: (n.state != NeighState::Incomplete).then_some(n.mac),
                    ifindex: i.index,
                    state: n.state.as_str(),
                    expires: n.timer.map(|t| t.saturating_since(now)),
                    is_router: n.is_router,
                });
            }
        }
        out
    }

    /// Forgets the neighbour entry for `addr`; false if there was none.
    pub fn nd_delete(&mut self, addr: Ipv6Addr) -> bool {
        let mut found = false;
        for i in self.ifaces.iter_mut().flatten() {
            found |= i.nd.neighbors.remove(&addr).is_some();
        }
        found
    }

    /// Packets waiting for `addr` to resolve on `ifindex`.
    pub fn nd_held(&self, ifindex: IfIndex, addr: &Ipv6Addr) -> usize {
        self.iface(ifindex)
            .and_then(|i| i.nd.neighbors.get(addr))
            .map_or(0, |n| n.hold.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_malformed_lists_are_refused() {
        let mut b = vec![1, 1, 2, 0, 0, 0, 0, 7]; // SLLA
        b.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0]); // unknown: skipped
        b.extend_from_slice(&[5, 1, 0, 0, 0, 0, 5, 0xdc]); // MTU 1500
        b.extend_from_slice(&[3, 4, 64, 0x80, 0, 0, 0, 10, 0, 0, 0, 5, 0, 0, 0, 0]);
        b.extend_from_slice(&"2001:db8::".parse::<Ipv6Addr>().unwrap().octets());
        let o = parse_nd_opts(&b).unwrap();
        assert_eq!(o.slla, Some(Mac([2, 0, 0, 0, 0, 7])));
        assert_eq!(o.tlla, None);
        assert_eq!(o.mtu, Some(1500));
        assert_eq!(o.prefixes.len(), 1);
        let p = o.prefixes[0];
        assert!(p.on_link && !p.autonomous);
        assert_eq!((p.plen, p.valid, p.preferred), (64, 10, 5));

        assert!(parse_nd_opts(&[]).unwrap().slla.is_none());
        assert!(
            parse_nd_opts(&[1, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "zero length"
        );
        assert!(
            parse_nd_opts(&[1, 2, 0, 0, 0, 0, 0, 0]).is_none(),
            "past the end"
        );
        assert!(parse_nd_opts(&[1]).is_none(), "no length byte");
        // A prefix option of the wrong size is ignored, not misread.
        let o = parse_nd_opts(&[3, 1, 64, 0xc0, 0, 0, 0, 1]).unwrap();
        assert!(o.prefixes.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn option_parsing_never_panics(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_nd_opts(&b);
        }
    }

    #[test]
    fn eviction_prefers_the_oldest_stale_entry() {
        let mut nd = NdState::default();
        let entry = |state, t| Neighbor {
            mac: Mac::ZERO,
            state,
            is_router: false,
            timer: None,
            probes: 0,
            hold: VecDeque::new(),
            src_hint: None,
            updated: Instant::from_millis(t),
        };
        let a = |k: u16| Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, k);
        nd.neighbors.insert(a(1), entry(NeighState::Reachable, 1));
        nd.neighbors.insert(a(2), entry(NeighState::Stale, 5));
        nd.neighbors.insert(a(3), entry(NeighState::Stale, 3));
        nd.neighbors.insert(a(4), entry(NeighState::Incomplete, 0));
        assert_eq!(nd.make_room(4), 1);
        assert!(!nd.neighbors.contains_key(&a(3)));
        // Room for one more under a limit of 2: stale, then reachable go;
        // the entry still resolving stays.
        assert_eq!(nd.make_room(2), 2);
        assert_eq!(nd.neighbors.keys().copied().collect::<Vec<_>>(), vec![a(4)]);
    }
}
