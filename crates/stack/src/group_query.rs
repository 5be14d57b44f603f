//! Answers to multicast routers' queries: IGMPv3 (RFC 3376 section 5.2)
//! and MLDv2 (RFC 3810 section 6.2). A query is not answered at once but
//! after a random delay within its maximum response time, so the reports
//! of many hosts on a link spread out; a general query schedules one
//! report of every group of the interface, a group-specific query one of
//! that group. Current-state records are MODE_IS_EXCLUDE with no sources:
//! every membership of the stack is "any source".
//!
//! Queries of older versions (IGMPv1/v2, MLDv1) are answered the same way,
//! with version 3 / version 2 reports: the stack keeps no compatibility
//! mode (RFC 3376 section 7, RFC 3810 section 8).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::ctx::Ctx;
use crate::iface::IfIndex;
use crate::stack::Stack;
use crate::time::{Instant, earliest};

/// Pending answers at most (each is one interface, or one interface and
/// group the stack is a member of; the bound only guards memory).
const MAX_PENDING: usize = 4096;

/// Group records in one MLDv2 report at most: 20 bytes each, so a report
/// fits the IPv6 minimum MTU (RFC 3810 section 5.2.15).
const MLD_RECORDS_PER_REPORT: usize = 56;

/// Record type of a current-state report (RFC 3376 section 4.2.12, RFC
/// 3810 section 5.2.12).
const MODE_IS_EXCLUDE: u8 = 2;

/// Reports scheduled in answer to queries.
#[derive(Debug, Default)]
pub struct PendingReports {
    general4: HashMap<IfIndex, Instant>,
    general6: HashMap<IfIndex, Instant>,
    group4: HashMap<(IfIndex, Ipv4Addr), Instant>,
    group6: HashMap<(IfIndex, Ipv6Addr), Instant>,
}

impl PendingReports {
    fn next_deadline(&self) -> Option<Instant> {
        let mut d = None;
        for t in self
            .general4
            .values()
            .chain(self.general6.values())
            .chain(self.group4.values())
            .chain(self.group6.values())
        {
            d = earliest(d, Some(*t));
        }
        d
    }

    fn len(&self) -> usize {
        self.general4.len() + self.general6.len() + self.group4.len() + self.group6.len()
    }
}

/// IGMPv3 Max Resp Code to a duration (RFC 3376 section 4.1.1): tenths of
/// a second, in a floating-point form from 128 on.
pub fn igmp_max_resp(code: u8) -> Duration {
    let tenths = if code < 128 {
        u64::from(code)
    } else {
        let mant = u64::from(code & 0x0f);
        let exp = u32::from((code >> 4) & 0x07);
        (mant | 0x10) << (exp + 3)
    };
    Duration::from_millis(tenths * 100)
}

/// MLDv2 Maximum Response Code to a duration (RFC 3810 section 5.1.3):
/// milliseconds, in a floating-point form from 32768 on.
pub fn mld_max_resp(code: u16) -> Duration {
    let ms = if code < 32_768 {
        u64::from(code)
    } else {
        let mant = u64::from(code & 0x0fff);
        let exp = u32::from((code >> 12) & 0x07);
        (mant | 0x1000) << (exp + 3)
    };
    Duration::from_millis(ms)
}

/// A delay chosen uniformly in [0, max] (RFC 3376 section 5.2, RFC 3810
/// section 6.2), at millisecond granularity.
fn random_delay(ctx: &mut impl Ctx, max: Duration) -> Duration {
    let ms = max.as_millis() as u64;
    Duration::from_millis(ctx.random_below(ms + 1))
}

/// Schedules a general query's answer on `map`'s interface entry: a
/// pending one that comes sooner stays, a later one is replaced (RFC 3376
/// section 5.2 rules 1 and 2).
fn schedule_general(map: &mut HashMap<IfIndex, Instant>, ifx: IfIndex, at: Instant, room: bool) {
    match map.get_mut(&ifx) {
        Some(t) => *t = (*t).min(at),
        None if room => {
            map.insert(ifx, at);
        }
        None => {}
    }
}

/// Schedules a group-specific answer: unless a general answer comes
/// sooner (rule 1), at the earlier of a pending one and `at` (rules 3, 4).
fn schedule_group<K: std::hash::Hash + Eq>(
    general: Option<&Instant>,
    map: &mut HashMap<K, Instant>,
    key: K,
    at: Instant,
    room: bool,
) {
    if general.is_some_and(|g| *g <= at) {
        return;
    }
    match map.get_mut(&key) {
        Some(t) => *t = (*t).min(at),
        None if room => {
            map.insert(key, at);
        }
        None => {}
    }
}

impl Stack {
    /// An IGMP query on `ifx` for `group` (unspecified: a general query)
    /// allowing `max` to answer.
    pub(crate) fn igmp_query(
        &mut self,
        ctx: &mut impl Ctx,
        ifx: IfIndex,
        group: Ipv4Addr,
        max: Duration,
    ) {
        let at = ctx.now() + random_delay(ctx, max);
        let room = self.udp.queries.len() < MAX_PENDING;
        let q = &mut self.udp.queries;
        if group.is_unspecified() {
            schedule_general(&mut q.general4, ifx, at, room);
        } else if self.udp.groups4.contains_key(&(ifx, group)) {
            let general = q.general4.get(&ifx);
            schedule_group(general, &mut q.group4, (ifx, group), at, room);
        }
    }

    /// An MLD query on `ifx` for `group` (unspecified: a general query).
    pub(crate) fn mld_query(
        &mut self,
        ctx: &mut impl Ctx,
        ifx: IfIndex,
        group: Ipv6Addr,
        max: Duration,
    ) {
        let at = ctx.now() + random_delay(ctx, max);
        let room = self.udp.queries.len() < MAX_PENDING;
        let member = self.mld_groups(ifx).contains(&group);
        let q = &mut self.udp.queries;
        if group.is_unspecified() {
            schedule_general(&mut q.general6, ifx, at, room);
        } else if member {
            let general = q.general6.get(&ifx);
            schedule_group(general, &mut q.group6, (ifx, group), at, room);
        }
    }

    /// The groups of `ifx` MLD reports: the ones addresses need
    /// (solicited-node) and the ones sockets joined, except the all-nodes
    /// group and interface-local or reserved scopes (RFC 3810 section 6).
    fn mld_groups(&self, ifx: IfIndex) -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = self
            .iface(ifx)
            .map(|i| i.nd.groups.clone())
            .unwrap_or_default();
        for (i, g) in self.udp.groups6.keys() {
            if *i == ifx && !v.contains(g) {
                v.push(*g);
            }
        }
        v.retain(|g| {
            let scope = g.segments()[0] & 0xff0f;
            scope != 0xff01 && scope != 0xff00 && *g != Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
        });
        v.sort();
        v
    }

    /// The IGMP groups of `ifx`, all but the all-systems group.
    fn igmp_groups(&self, ifx: IfIndex) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .udp
            .groups4
            .keys()
            .filter(|(i, g)| *i == ifx && *g != crate::igmp::ALL_HOSTS)
            .map(|(_, g)| *g)
            .collect();
        v.sort();
        v
    }

    /// Sends the answers that are due.
    pub(crate) fn group_query_poll(&mut self, ctx: &mut impl Ctx) {
        let now = ctx.now();
        if self.udp.queries.len() == 0 || self.udp.queries.next_deadline().is_some_and(|d| d > now)
        {
            return;
        }
        let q = &mut self.udp.queries;
        let due4: Vec<IfIndex> = take_due(&mut q.general4, now);
        let due6: Vec<IfIndex> = take_due(&mut q.general6, now);
        let gdue4: Vec<(IfIndex, Ipv4Addr)> = take_due(&mut q.group4, now);
        let gdue6: Vec<(IfIndex, Ipv6Addr)> = take_due(&mut q.group6, now);
        for ifx in due4 {
            let groups = self.igmp_groups(ifx);
            self.igmp_current_state(ctx, ifx, &groups);
        }
        for (ifx, g) in gdue4 {
            // Still a member when the timer fires (RFC 3376 section 5.2).
            if self.udp.groups4.contains_key(&(ifx, g)) {
                self.igmp_current_state(ctx, ifx, &[g]);
            }
        }
        for ifx in due6 {
            let groups = self.mld_groups(ifx);
            for chunk in groups.chunks(MLD_RECORDS_PER_REPORT) {
                self.mld_report(ctx, ifx, chunk, MODE_IS_EXCLUDE);
            }
        }
        for (ifx, g) in gdue6 {
            if self.mld_groups(ifx).contains(&g) {
                self.mld_report(ctx, ifx, &[g], MODE_IS_EXCLUDE);
            }
        }
    }

    pub(crate) fn group_query_next_deadline(&self) -> Option<Instant> {
        self.udp.queries.next_deadline()
    }
}

/// Removes and returns the keys whose time has come.
fn take_due<K: Copy + std::hash::Hash + Eq + Ord>(
    map: &mut HashMap<K, Instant>,
    now: Instant,
) -> Vec<K> {
    let mut due: Vec<K> = map
        .iter()
        .filter(|(_, t)| **t <= now)
        .map(|(k, _)| *k)
        .collect();
    due.sort();
    for k in &due {
        map.remove(k);
    }
    due
}
