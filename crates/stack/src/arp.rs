//! ARP (RFC 826): resolving IPv4 next hops to Ethernet addresses.
//!
//! Each interface has its own bounded cache. An entry is
//! - *incomplete* while broadcast requests go out ([`RETRY_INTERVAL`] apart,
//!   [`MAX_TRIES`] of them) with up to `net.inet.arp.hold` packets waiting;
//!   when no answer comes those packets are dropped, counted, and answered
//!   with ICMP host unreachable (RFC 1812 section 4.3.3.1);
//! - *reachable* for `net.inet.arp.keep` seconds after the mapping was last
//!   confirmed;
//! - *stale* after that: still used, but the first packet sent through it
//!   starts a *probe* with unicast requests (as Linux does), and an unused
//!   stale entry goes away after another `keep` seconds;
//! - *probe* while those unicast requests run; without an answer the entry
//!   is dropped and the next packet resolves afresh.
//!
//! The loopback interface never resolves: its frames carry zero addresses.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use iopkt_pkt::PktBuf;
use iopkt_wire::IntoBytes;
use iopkt_wire::Mac;
use iopkt_wire::arp::{self, ArpPkt, OP_REPLY, OP_REQUEST};
use iopkt_wire::ethernet::ethertype;
use iopkt_wire::icmp::v4 as icmpv4;

use crate::ctx::Ctx;
use crate::icmp4::Icmp4Error;
use crate::iface::{IfIndex, IfKind};
use crate::neighbor::NeighborInfo;
use crate::stack::Stack;
use crate::time::Instant;

/// Time between two requests for the same address.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Requests sent before giving up on an address.
pub const MAX_TRIES: u32 = 3;
/// Least time between two defences of an address (RFC 5227 section 2.4 (b),
/// DEFEND_INTERVAL), so two stations claiming one address do not flood.
pub const DEFEND_INTERVAL: Duration = Duration::from_secs(10);

/// ARP counters, as `netstat -s` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpStats {
    pub received: u64,
    /// Not Ethernet/IPv4, unknown operation, or impossible addresses.
    pub bad: u64,
    pub requests_received: u64,
    pub replies_received: u64,
    pub requests_sent: u64,
    pub replies_sent: u64,
    pub gratuitous_sent: u64,
    /// Another station claims one of our addresses.
    pub conflicts: u64,
    /// Addresses that did not answer any request.
    pub resolve_failed: u64,
    /// Packets dropped because their next hop did not answer.
    pub dropped_unresolved: u64,
    /// Packets dropped because the hold queue of their neighbour was full.
    pub hold_overflow: u64,
    /// Entries pushed out of a full cache.
    pub evicted: u64,
    /// Packets dropped with their entry (eviction, deletion, interface down).
    pub dropped_flushed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    /// Resolving with broadcast requests: `tries` sent, the next due at `next`.
    Incomplete { tries: u32, next: Instant },
    /// A known mapping; reachable or stale by the age of `confirmed`.
    Resolved,
    /// A stale mapping in use, being checked with unicast requests.
    Probe { tries: u32, next: Instant },
}

#[derive(Debug)]
struct ArpEntry {
    mac: Option<Mac>,
    state: EntryState,
    /// When the mapping was last confirmed (for incomplete entries, when
    /// the entry was made). The oldest entry is evicted first.
    confirmed: Instant,
    /// Packets waiting for resolution, complete IP datagrams.
    hold: VecDeque<PktBuf>,
}

/// The ARP cache of one interface.
#[derive(Debug, Default)]
pub struct ArpCache {
    entries: HashMap<Ipv4Addr, ArpEntry>,
    /// When we last defended one of our addresses on this link.
    last_defend: Option<Instant>,
}

impl ArpCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The resolved MAC of `ip`, if any.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.entries.get(&ip).and_then(|e| e.mac)
    }

    /// Packets waiting for `ip` to resolve.
    pub fn held(&self, ip: Ipv4Addr) -> usize {
        self.entries.get(&ip).map_or(0, |e| e.hold.len())
    }

    /// Makes room for one more entry by evicting the oldest ones; returns the
    /// packets they held.
    fn make_room(&mut self, max: usize, stats: &mut ArpStats) -> usize {
        let mut dropped = 0;
        while self.entries.len() >= max.max(1) {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.confirmed)
                .map(|(ip, _)| *ip)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                dropped += e.hold.len();
            }
            stats.evicted += 1;
        }
        dropped
    }

    fn next_deadline(&self, keep: Duration) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| match e.state {
                EntryState::Incomplete { next, .. } | EntryState::Probe { next, .. } => next,
                EntryState::Resolved => e.confirmed + keep + keep,
            })
            .min()
    }
}

/// What the cache says about a next hop, decided before acting on it.
enum Lookup {
    Send(Mac),
    /// Send, and check the stale mapping with a unicast request.
    SendAndProbe(Mac),
    /// Resolution is under way: wait with it.
    Hold,
    /// Unknown: start resolving.
    New,
}

/// What a timer found due for one entry.
enum Due {
    Request { ip: Ipv4Addr, to: Option<Mac> },
    Failed { held: VecDeque<PktBuf> },
}

impl Stack {
    fn arp_keep(&self) -> Duration {
        Duration::from_secs(self.config.arp_keep_secs as u64)
    }

    fn arp_cache_mut(&mut self, ifindex: IfIndex) -> Option<&mut ArpCache> {
        self.iface_mut(ifindex).map(|i| &mut i.arp)
    }

    /// Sends IP datagram `pkt` to neighbour `nexthop` on `ifindex`, resolving
    /// its MAC first if needed (the datagram then waits in the entry's hold
    /// queue).
    pub(crate) fn arp_output(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        nexthop: Ipv4Addr,
        pkt: PktBuf,
    ) {
        let now = ctx.now();
        let keep = self.arp_keep();
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        if iface.kind == IfKind::Loopback {
            self.eth_output(ctx, ifindex, Mac::ZERO, ethertype::IPV4, pkt);
            return;
        }
        let lookup = match iface.arp.entries.get_mut(&nexthop) {
            Some(e) => match e.mac {
                Some(mac) if e.state == EntryState::Resolved && now >= e.confirmed + keep => {
                    e.state = EntryState::Probe {
                        tries: 1,
                        next: now + RETRY_INTERVAL,
                    };
                    Lookup::SendAndProbe(mac)
                }
                Some(mac) => Lookup::Send(mac),
                None => Lookup::Hold,
            },
            None => Lookup::New,
        };
        match lookup {
            Lookup::Send(mac) => self.eth_output(ctx, ifindex, mac, ethertype::IPV4, pkt),
            Lookup::SendAndProbe(mac) => {
                self.eth_output(ctx, ifindex, mac, ethertype::IPV4, pkt);
                self.arp_request(ctx, ifindex, nexthop, Some(mac));
            }
            Lookup::Hold => self.arp_hold(ifindex, nexthop, pkt),
            Lookup::New => {
                let max = self.config.arp_max_entries as usize;
                let stats = &mut self.v4.arp;
                let Some(cache) = self
                    .ifaces
                    .get_mut((ifindex as usize).wrapping_sub(1))
                    .and_then(|i| i.as_mut())
                    .map(|i| &mut i.arp)
                else {
                    return;
                };
                let dropped = cache.make_room(max, stats);
                stats.dropped_flushed += dropped as u64;
                cache.entries.insert(
                    nexthop,
                    ArpEntry {
                        mac: None,
                        state: EntryState::Incomplete {
                            tries: 1,
                            next: now + RETRY_INTERVAL,
                        },
                        confirmed: now,
                        hold: VecDeque::from([pkt]),
                    },
                );
                self.arp_request(ctx, ifindex, nexthop, None);
            }
        }
    }

    /// Queues `pkt` on the incomplete entry for `ip`, dropping the oldest
    /// waiting packet when the queue is full: the newest is likelier to
    /// still matter when the answer comes.
    fn arp_hold(&mut self, ifindex: IfIndex, ip: Ipv4Addr, pkt: PktBuf) {
        let max = self.config.neigh_hold.max(1) as usize;
        let mut overflow = 0;
        if let Some(e) = self
            .arp_cache_mut(ifindex)
            .and_then(|c| c.entries.get_mut(&ip))
        {
            while e.hold.len() >= max {
                e.hold.pop_front();
                overflow += 1;
            }
            e.hold.push_back(pkt);
        }
        self.v4.arp.hold_overflow += overflow;
    }

    /// The address we speak for on `ifindex` when asking about `target`: the
    /// one in its subnet, else the first.
    fn arp_sender_addr(&self, ifindex: IfIndex, target: Ipv4Addr) -> Option<Ipv4Addr> {
        let i = self.iface(ifindex)?;
        i.addrs4
            .iter()
            .find(|a| a.contains(target))
            .or(i.addrs4.first())
            .map(|a| a.addr)
    }

    /// Sends an ARP packet out of `ifindex` in a frame to `eth_dst`.
    #[allow(clippy::too_many_arguments)]
    fn arp_send(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        eth_dst: Mac,
        op: u16,
        spa: Ipv4Addr,
        tha: Mac,
        tpa: Ipv4Addr,
    ) {
        let Some(sha) = self
            .iface(ifindex)
            .filter(|i| i.kind != IfKind::Loopback)
            .map(|i| i.mac)
        else {
            return;
        };
        let mut p = self.pool.alloc();
        let Some(b) = p.try_append(arp::LEN) else {
            return;
        };
        b.copy_from_slice(ArpPkt::new(op, sha, spa, tha, tpa).as_bytes());
        self.eth_output(ctx, ifindex, eth_dst, ethertype::ARP, p);
    }

    /// Asks who has `target`: broadcast while resolving, unicast to the
    /// known `mac` while probing a stale entry.
    fn arp_request(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        target: Ipv4Addr,
        mac: Option<Mac>,
    ) {
        let spa = self
            .arp_sender_addr(ifindex, target)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.v4.arp.requests_sent += 1;
        self.arp_send(
            ctx,
            ifindex,
            mac.unwrap_or(Mac::BROADCAST),
            OP_REQUEST,
            spa,
            Mac::ZERO,
            target,
        );
    }

    /// Gratuitous ARP (RFC 5227 section 2.3 announcement): a request for our
    /// own new address, so neighbours with an old mapping update it.
    pub(crate) fn arp_announce(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, addr: Ipv4Addr) {
        let ok = self
            .iface(ifindex)
            .is_some_and(|i| i.kind == IfKind::Ethernet && i.is_running());
        if !ok {
            return;
        }
        self.v4.arp.gratuitous_sent += 1;
        self.arp_send(
            ctx,
            ifindex,
            Mac::BROADCAST,
            OP_REQUEST,
            addr,
            Mac::ZERO,
            addr,
        );
    }

    /// An ARP packet arrived on `ifindex` (Ethernet header removed).
    pub(crate) fn arp_input(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, pkt: PktBuf) {
        self.v4.clock = ctx.now();
        self.v4.arp.received += 1;
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        if iface.kind == IfKind::Loopback {
            return;
        }
        let Some(a) = ArpPkt::parse(pkt.data()) else {
            self.v4.arp.bad += 1;
            return;
        };
        let (op, sha, spa, tpa) = (a.op(), a.sha(), a.spa(), a.tpa());
        if (op != OP_REQUEST && op != OP_REPLY) || !sha.is_unicast() {
            self.v4.arp.bad += 1;
            return;
        }
        if sha == iface.mac {
            // Our own frame reflected back to us.
            return;
        }
        let claims_ours = iface.has_addr4(spa);
        let for_us = iface.has_addr4(tpa);
        if op == OP_REQUEST {
            self.v4.arp.requests_received += 1;
        } else {
            self.v4.arp.replies_received += 1;
        }
        if claims_ours {
            // Someone else uses our address (RFC 5227 section 2.4). Do not
            // learn it; defend by announcing ours again, at most once per
            // DEFEND_INTERVAL.
            self.v4.arp.conflicts += 1;
            let now = ctx.now();
            let defend = self.arp_cache_mut(ifindex).is_some_and(|c| {
                let ok = c.last_defend.is_none_or(|t| now >= t + DEFEND_INTERVAL);
                if ok {
                    c.last_defend = Some(now);
                }
                ok
            });
            if defend {
                self.arp_announce(ctx, ifindex, spa);
            }
            return;
        }
        if spa.is_unspecified() {
            // An address probe (RFC 5227 section 2.1.1): nothing to learn,
            // but a probe for our address gets its answer.
            if for_us && op == OP_REQUEST {
                self.v4.arp.replies_sent += 1;
                self.arp_send(ctx, ifindex, sha, OP_REPLY, tpa, sha, spa);
            }
            return;
        }
        if spa.is_multicast() || spa.is_broadcast() || spa.is_loopback() {
            self.v4.arp.bad += 1;
            return;
        }
        // RFC 826 "packet reception": update an entry we have (merge), and
        // add one only when the packet is aimed at us.
        self.arp_learn(ctx, ifindex, spa, sha, for_us);
        if for_us && op == OP_REQUEST {
            self.v4.arp.replies_sent += 1;
            self.arp_send(ctx, ifindex, sha, OP_REPLY, tpa, sha, spa);
        }
    }

    /// Records that `ip` is at `mac` on `ifindex` (updating an entry, or
    /// adding one if `create`), and sends what waited for it.
    fn arp_learn(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        ip: Ipv4Addr,
        mac: Mac,
        create: bool,
    ) {
        let now = ctx.now();
        let max = self.config.arp_max_entries as usize;
        let stats = &mut self.v4.arp;
        let Some(cache) = self
            .ifaces
            .get_mut((ifindex as usize).wrapping_sub(1))
            .and_then(|i| i.as_mut())
            .map(|i| &mut i.arp)
        else {
            return;
        };
        let held = match cache.entries.get_mut(&ip) {
            Some(e) => {
                e.mac = Some(mac);
                e.state = EntryState::Resolved;
                e.confirmed = now;
                std::mem::take(&mut e.hold)
            }
            None if create => {
                let dropped = cache.make_room(max, stats);
                stats.dropped_flushed += dropped as u64;
                cache.entries.insert(
                    ip,
                    ArpEntry {
                        mac: Some(mac),
                        state: EntryState::Resolved,
                        confirmed: now,
                        hold: VecDeque::new(),
                    },
                );
                VecDeque::new()
            }
            None => VecDeque::new(),
        };
        for p in held {
            self.eth_output(ctx, ifindex, mac, ethertype::IPV4, p);
        }
    }

    /// Runs the ARP timers of every interface: retries, give-ups, expiry.
    pub(crate) fn arp_poll(&mut self, ctx: &mut impl Ctx) {
        let now = ctx.now();
        let keep = self.arp_keep();
        let indexes: Vec<IfIndex> = self
            .interfaces()
            .filter(|i| i.kind == IfKind::Ethernet && !i.arp.is_empty())
            .map(|i| i.index)
            .collect();
        for ifindex in indexes {
            let mut due = Vec::new();
            let mut failed = 0;
            if let Some(cache) = self.arp_cache_mut(ifindex) {
                cache.entries.retain(|ip, e| match e.state {
                    EntryState::Incomplete { tries, next } | EntryState::Probe { tries, next }
                        if next <= now =>
                    {
                        if tries >= MAX_TRIES {
                            if e.mac.is_none() {
                                failed += 1;
                                due.push(Due::Failed {
                                    held: std::mem::take(&mut e.hold),
                                });
                            }
                            return false;
                        }
                        let next = now + RETRY_INTERVAL;
                        e.state = match e.state {
                            EntryState::Probe { .. } => EntryState::Probe {
                                tries: tries + 1,
                                next,
                            },
                            _ => EntryState::Incomplete {
                                tries: tries + 1,
                                next,
                            },
                        };
                        due.push(Due::Request { ip: *ip, to: e.mac });
                        true
                    }
                    // An unused stale entry is forgotten after another
                    // `keep` seconds.
                    EntryState::Resolved => now < e.confirmed + keep + keep,
                    _ => true,
                });
            }
            self.v4.arp.resolve_failed += failed;
            for d in due {
                match d {
                    Due::Request { ip, to } => self.arp_request(ctx, ifindex, ip, to),
                    Due::Failed { held } => {
                        self.v4.arp.dropped_unresolved += held.len() as u64;
                        for p in held {
                            // RFC 1812 section 4.3.3.1 / RFC 1122 section
                            // 3.2.2.1: the next hop is unreachable. Rate
                            // limited with every other error.
                            self.icmp4_error(
                                ctx,
                                p.data(),
                                false,
                                Icmp4Error::DestUnreach(icmpv4::UNREACH_HOST),
                            );
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn arp_next_deadline(&self) -> Option<Instant> {
        let keep = self.arp_keep();
        self.interfaces()
            .filter_map(|i| i.arp.next_deadline(keep))
            .min()
    }

    /// Forgets every entry of `ifindex` (it went down), dropping what waited.
    pub(crate) fn arp_flush(&mut self, ifindex: IfIndex) {
        let Some(cache) = self.arp_cache_mut(ifindex) else {
            return;
        };
        let dropped: usize = cache.entries.drain().map(|(_, e)| e.hold.len()).sum();
        self.v4.arp.dropped_flushed += dropped as u64;
    }

    /// Every ARP entry of every interface (`arp -an`).
    /// States and times left are as of the last time the stack ran.
    pub fn arp_entries(&self) -> Vec<NeighborInfo> {
        self.arp_entries_at(self.v4.clock)
    }

    /// [`Stack::arp_entries`] with states and times left as of `now`.
    pub fn arp_entries_at(&self, now: Instant) -> Vec<NeighborInfo> {
        let keep = self.arp_keep();
        let mut out = Vec::new();
        for i in self.interfaces() {
            for (ip, e) in &i.arp.entries {
                let (state, until) = match e.state {
                    EntryState::Incomplete { next, .. } => ("incomplete", next),
                    EntryState::Probe { next, .. } => ("probe", next),
                    EntryState::Resolved if now >= e.confirmed + keep => {
                        ("stale", e.confirmed + keep + keep)
                    }
                    EntryState::Resolved => ("reachable", e.confirmed + keep),
                };
                out.push(NeighborInfo {
                    ip: IpAddr::V4(*ip),
                    mac: e.mac,
                    ifindex: i.index,
                    state,
                    expires: Some(until.saturating_since(now)),
                    is_router: false,
                });
            }
        }
        out.sort_by_key(|n| (n.ifindex, n.ip));
        out
    }

    /// `arp -d ADDR`: forgets the entry for `addr`; false if there was none.
    pub fn arp_delete(&mut self, addr: Ipv4Addr) -> bool {
        let mut found = false;
        let mut dropped = 0;
        for i in self.ifaces.iter_mut().flatten() {
            if let Some(e) = i.arp.entries.remove(&addr) {
                found = true;
                dropped += e.hold.len();
            }
        }
        self.v4.arp.dropped_flushed += dropped as u64;
        found
    }
}
