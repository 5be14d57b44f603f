//! IGMPv3 (RFC 3376), host side and minimal: a state-change report when
//! the first socket on an interface joins a group or the last one leaves,
//! and current-state reports in answer to queries, after the random delay
//! of section 5.2 (scheduled in `group_query`).
//!
//! Minimal on purpose: each state-change report is sent once (no
//! robustness retransmissions, RFC 3376 section 8.1); source filters are
//! not supported (every membership is EXCLUDE with no sources, i.e. any
//! source).

use std::net::Ipv4Addr;

use iopkt_pkt::PktBuf;
use iopkt_wire::IntoBytes;
use iopkt_wire::checksum;
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::Ipv4Hdr;

use crate::ctx::Ctx;
use crate::iface::{IfIndex, IfKind};
use crate::ipv4::{NextHop, Rx4, fill_header_checksum};
use crate::stack::Stack;

/// Where version 3 reports go (RFC 3376 section 4.2.14).
pub const ALL_IGMPV3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
/// Every host is in it; it is never reported (RFC 3376 section 5).
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);

pub const MEMBERSHIP_QUERY: u8 = 0x11;
pub const V3_MEMBERSHIP_REPORT: u8 = 0x22;
/// Group record types (RFC 3376 section 4.2.12).
pub const MODE_IS_EXCLUDE: u8 = 2;
pub const CHANGE_TO_INCLUDE_MODE: u8 = 3;
pub const CHANGE_TO_EXCLUDE_MODE: u8 = 4;

/// Records in one report at most: 8 bytes each, well inside a 1500-byte
/// link.
const RECORDS_PER_REPORT: usize = 64;
/// IP header with the router alert option (RFC 2113) every IGMP message
/// carries (RFC 3376 section 4).
const IP_HEADER_WITH_ALERT: usize = 24;

/// IGMP counters, as `netstat -s` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IgmpStats {
    pub in_msgs: u64,
    /// Too short or with a bad checksum.
    pub in_errors: u64,
    pub in_queries: u64,
    pub out_reports: u64,
}

impl Stack {
    /// The first membership of `g` on `ifindex` began (`join`) or the last
    /// ended: a state-change report (RFC 3376 section 5.1).
    pub(crate) fn igmp_change(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        g: Ipv4Addr,
        join: bool,
    ) {
        if g == ALL_HOSTS {
            return;
        }
        let record = if join {
            CHANGE_TO_EXCLUDE_MODE
        } else {
            CHANGE_TO_INCLUDE_MODE
        };
        self.igmp_report(ctx, ifindex, &[(record, g)]);
    }

    /// Sends one version 3 membership report with `records`.
    fn igmp_report(&mut self, ctx: &mut impl Ctx, ifindex: IfIndex, records: &[(u8, Ipv4Addr)]) {
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        if iface.kind == IfKind::Loopback || !iface.is_running() || records.is_empty() {
            return;
        }
        // RFC 3376 section 4.2.13: the source is an address of the
        // interface, or 0.0.0.0 while it has none.
        let src = iface
            .addrs4
            .first()
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr);
        let msg_len = 8 + 8 * records.len();
        let total = IP_HEADER_WITH_ALERT + msg_len;
        let mut pkt: PktBuf = self.pool.alloc_for(total);
        let Some(b) = pkt.try_append(total) else {
            return;
        };
        b.fill(0);
        let ident = ctx.random_u64() as u16;
        let hdr = Ipv4Hdr::new(
            src,
            ALL_IGMPV3_ROUTERS,
            ipproto::IGMP,
            1,
            ident,
            0,
            msg_len + 4,
            0,
        );
        b[..20].copy_from_slice(hdr.as_bytes());
        b[0] = 0x46;
        b[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]);
        fill_header_checksum(b, IP_HEADER_WITH_ALERT);
        let m = &mut b[IP_HEADER_WITH_ALERT..];
        m[0] = V3_MEMBERSHIP_REPORT;
        m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (k, (ty, g)) in records.iter().enumerate() {
            let r = &mut m[8 + 8 * k..16 + 8 * k];
            r[0] = *ty;
            r[4..8].copy_from_slice(&g.octets());
        }
        let c = checksum::checksum(m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        self.udp.igmp.out_reports += 1;
        self.ipv4_output_l2(ctx, ifindex, NextHop::Multicast(ALL_IGMPV3_ROUTERS), pkt);
    }

    /// An IGMP message for us; `pkt` still starts with the IP header.
    pub(crate) fn igmp_input(&mut self, ctx: &mut impl Ctx, pkt: PktBuf, rx: Rx4) {
        self.udp.igmp.in_msgs += 1;
        let msg = pkt.data().get(rx.hl..).unwrap_or_default();
        if msg.len() < 8 || checksum::checksum(msg) != 0 {
            self.udp.igmp.in_errors += 1;
            return;
        }
        if msg[0] != MEMBERSHIP_QUERY {
            // Other hosts' reports: a version 3 host does not suppress its
            // own on hearing them (RFC 3376 section 5.1).
            return;
        }
        self.udp.igmp.in_queries += 1;
        let asked = Ipv4Addr::new(msg[4], msg[5], msg[6], msg[7]);
        // A general query asks for every group, a group-specific one for
        // that group (RFC 3376 section 5.2). A version 1 query (8 bytes,
        // code 0) allows 10 s (RFC 2236 section 4); versions 2 and 3 say
        // how long in their Max Resp Code.
        let max = if msg.len() == 8 && msg[1] == 0 {
            std::time::Duration::from_secs(10)
        } else if msg.len() == 8 {
            std::time::Duration::from_millis(u64::from(msg[1]) * 100)
        } else {
            crate::group_query::igmp_max_resp(msg[1])
        };
        self.igmp_query(ctx, rx.ifindex, asked, max);
    }

    /// Current-state reports of `groups` on `ifindex` (every one "any
    /// source", MODE_IS_EXCLUDE), as many as the records need.
    pub(crate) fn igmp_current_state(
        &mut self,
        ctx: &mut impl Ctx,
        ifindex: IfIndex,
        groups: &[Ipv4Addr],
    ) {
        for chunk in groups.chunks(RECORDS_PER_REPORT) {
            let records: Vec<(u8, Ipv4Addr)> =
                chunk.iter().map(|g| (MODE_IS_EXCLUDE, *g)).collect();
            self.igmp_report(ctx, ifindex, &records);
        }
    }
}
