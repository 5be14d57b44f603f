//! Answers to multicast routers' queries on the simulated network: IGMPv3
//! (RFC 3376 section 5.2) and MLDv2 (RFC 3810 section 6.2) reports come
//! after a random delay within the query's maximum response time, a
//! general query's answer covers every group, a pending sooner answer
//! suppresses later ones, and hostile or misaddressed queries are ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use iopkt_sim::{Captured, LinkCfg, NodeId, Sim};
use iopkt_stack::group_query::{igmp_max_resp, mld_max_resp};
use iopkt_stack::socket::SocketId;
use iopkt_stack::time::Instant;
use iopkt_stack::transport::{SockOpt, SockType};
use iopkt_stack::{IfIndex, Mac, PktBuf};
use iopkt_wire::IntoBytes;
use iopkt_wire::checksum::{checksum, finish, pseudo_v6, sum};
use iopkt_wire::ipproto;
use iopkt_wire::ipv4::Ipv4Hdr;
use iopkt_wire::ipv6::Ipv6Hdr;

const EN0: IfIndex = 2;
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0x99, 1];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Two hosts on a segment, `b` holding 10.0.0.2 and 2001:db8::b; returns
/// the simulator (capturing) and b.
fn host(seed: u64) -> (Sim, NodeId) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    sim.segment(&[a, b], LinkCfg::default());
    sim.with(b, |s, ctx| {
        s.set_link(ctx, EN0, true).unwrap();
        s.add_addr4(ctx, EN0, Ipv4Addr::new(10, 0, 0, 2), 24, false)
            .unwrap();
        s.add_addr6(ctx, EN0, "2001:db8::b".parse().unwrap(), 64)
            .unwrap();
    });
    // Duplicate address detection and start-up reports end first.
    sim.run_for(Duration::from_secs(5));
    sim.capture();
    let _ = sim.take_captured();
    (sim, b)
}

fn member(sim: &mut Sim, b: NodeId, groups: &[IpAddr]) -> SocketId {
    let v6 = groups.iter().any(IpAddr::is_ipv6);
    let s = sim
        .with(b, |s, ctx| s.socket_open(ctx, v6, SockType::Datagram))
        .unwrap();
    for g in groups {
        sim.with(b, |st, ctx| {
            st.socket_setopt(ctx, s, SockOpt::JoinGroup(*g, EN0))
        })
        .unwrap();
    }
    s
}

fn igmp_query(group: Ipv4Addr, code: u8, src: Ipv4Addr) -> Vec<u8> {
    let mut q = vec![0x11, code, 0, 0];
    q.extend_from_slice(&group.octets());
    q.extend_from_slice(&[2, 125, 0, 0]);
    let ck = checksum(&q);
    q[2..4].copy_from_slice(&ck.to_be_bytes());
    let dst = if group.is_unspecified() {
        Ipv4Addr::new(224, 0, 0, 1)
    } else {
        group
    };
    let mut f = Vec::new();
    f.extend_from_slice(&Mac::ipv4_multicast(dst).0);
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(Ipv4Hdr::new(src, dst, ipproto::IGMP, 1, 1, 0, q.len(), 0).as_bytes());
    f.extend_from_slice(&q);
    f
}

fn mld_query(group: Ipv6Addr, code: u16, src: Ipv6Addr) -> Vec<u8> {
    let dst: Ipv6Addr = if group.is_unspecified() {
        "ff02::1".parse().unwrap()
    } else {
        group
    };
    let mut m = vec![130, 0, 0, 0];
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&group.octets());
    m.extend_from_slice(&[2, 125, 0, 0]);
    let ck = finish(sum(
        pseudo_v6(src, dst, ipproto::ICMPV6, m.len() as u32),
        &m,
    ));
    m[2..4].copy_from_slice(&ck.to_be_bytes());
    let hbh = [ipproto::ICMPV6, 0, 5, 2, 0, 0, 1, 0];
    let mut f = Vec::new();
    f.extend_from_slice(&Mac::ipv6_multicast(dst).0);
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(Ipv6Hdr::new(src, dst, ipproto::HOPOPTS, 1, 8 + m.len()).as_bytes());
    f.extend_from_slice(&hbh);
    f.extend_from_slice(&m);
    f
}

fn inject(sim: &mut Sim, b: NodeId, f: &[u8]) {
    sim.with(b, |s, ctx| s.input(ctx, EN0, [PktBuf::from_slice(f)]));
}

/// IGMPv3 reports b sent: (time, records as (type, group)).
fn igmp_reports(cap: &[Captured], b: NodeId) -> Vec<(Instant, Vec<(u8, Ipv4Addr)>)> {
    let mut out = Vec::new();
    for c in cap.iter().filter(|c| c.from == b) {
        let f = &c.frame;
        if f.get(12..14) != Some(&[0x08, 0x00]) || f.get(23) != Some(&ipproto::IGMP) {
            continue;
        }
        let hl = usize::from(f[14] & 15) * 4;
        let m = &f[14 + hl..];
        assert_eq!(m[0], 0x22, "a version 3 report");
        assert_eq!(checksum(m), 0);
        let n = usize::from(u16::from_be_bytes([m[6], m[7]]));
        let recs = (0..n)
            .map(|k| {
                let r = &m[8 + 8 * k..16 + 8 * k];
                (r[0], Ipv4Addr::new(r[4], r[5], r[6], r[7]))
            })
            .collect();
        out.push((c.time, recs));
    }
    out
}

/// MLDv2 reports b sent: (time, records as (type, group)).
fn mld_reports(cap: &[Captured], b: NodeId) -> Vec<(Instant, Vec<(u8, Ipv6Addr)>)> {
    let mut out = Vec::new();
    for c in cap.iter().filter(|c| c.from == b) {
        let f = &c.frame;
        // Ethernet, IPv6, an 8-byte hop-by-hop header, ICMPv6 143.
        if f.get(12..14) != Some(&[0x86, 0xdd]) || f.get(20) != Some(&ipproto::HOPOPTS) {
            continue;
        }
        let m = &f[62..];
        if m[0] != 143 {
            continue;
        }
        let n = usize::from(u16::from_be_bytes([m[6], m[7]]));
        let recs = (0..n)
            .map(|k| {
                let r = &m[8 + 20 * k..28 + 20 * k];
                (
                    r[0],
                    Ipv6Addr::from(<[u8; 16]>::try_from(&r[4..20]).unwrap()),
                )
            })
            .collect();
        out.push((c.time, recs));
    }
    out
}

const ROUTER4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 99);

#[test]
fn max_resp_codes_decode_both_forms() {
    // RFC 3376 section 4.1.1: tenths of a second; from 128 a mantissa and
    // exponent: (mant | 0x10) << (exp + 3).
    assert_eq!(igmp_max_resp(0), ms(0));
    assert_eq!(igmp_max_resp(100), ms(10_000));
    assert_eq!(igmp_max_resp(127), ms(12_700));
    assert_eq!(igmp_max_resp(0x80), ms(12_800));
    assert_eq!(igmp_max_resp(0xff), ms(3_174_400));
    // RFC 3810 section 5.1.3: milliseconds; from 32768 the same idea
    // with 12 bits of mantissa.
    assert_eq!(mld_max_resp(10_000), ms(10_000));
    assert_eq!(mld_max_resp(0x8000), ms(32_768));
    assert_eq!(mld_max_resp(0xffff), ms(0x1fff << 10));
}

#[test]
fn an_igmp_general_query_is_answered_after_a_random_delay_within_max_resp() {
    let g1 = Ipv4Addr::new(239, 1, 1, 1);
    let g2 = Ipv4Addr::new(239, 2, 2, 2);
    let mut delays = Vec::new();
    for seed in 0..8 {
        let (mut sim, b) = host(100 + seed);
        let _m = member(&mut sim, b, &[IpAddr::V4(g2), IpAddr::V4(g1)]);
        let _ = sim.take_captured();
        let t0 = sim.now();
        // Max Resp Code 50: five seconds.
        inject(&mut sim, b, &igmp_query(Ipv4Addr::UNSPECIFIED, 50, ROUTER4));
        sim.run_for(ms(5_001));
        let r = igmp_reports(&sim.take_captured(), b);
        assert_eq!(r.len(), 1, "one answer: {r:?}");
        // Every group, as current state, sorted.
        assert_eq!(r[0].1, vec![(2, g1), (2, g2)]);
        let d = r[0].0.saturating_since(t0);
        assert!(d <= ms(5_000), "answered after {d:?}");
        delays.push(d);
    }
    // The delays are spread, not one fixed value: eight draws in [0, 5 s]
    // at millisecond grain never all coincide unless the delay is constant.
    delays.sort();
    delays.dedup();
    assert!(delays.len() >= 4, "delays {delays:?}");
}

#[test]
fn igmp_group_queries_ask_only_for_that_group_and_sooner_answers_win() {
    let g1 = Ipv4Addr::new(239, 1, 1, 1);
    let g2 = Ipv4Addr::new(239, 2, 2, 2);
    let other = Ipv4Addr::new(239, 9, 9, 9);
    let (mut sim, b) = host(7);
    let m = member(&mut sim, b, &[IpAddr::V4(g1), IpAddr::V4(g2)]);
    let _ = sim.take_captured();

    // A group-specific query for g2: an answer for g2 alone.
    inject(&mut sim, b, &igmp_query(g2, 10, ROUTER4));
    // One for a group nobody here joined: no answer at all.
    inject(&mut sim, b, &igmp_query(other, 10, ROUTER4));
    sim.run_for(ms(1_001));
    let r = igmp_reports(&sim.take_captured(), b);
    assert_eq!(
        r.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        vec![vec![(2, g2)]]
    );

    // A general answer pending sooner than a group query's delay covers
    // it (rule 1): a short general query, then a long group query.
    inject(&mut sim, b, &igmp_query(Ipv4Addr::UNSPECIFIED, 1, ROUTER4));
    inject(&mut sim, b, &igmp_query(g1, 0x80, ROUTER4));
    sim.run_for(Duration::from_secs(14));
    let r = igmp_reports(&sim.take_captured(), b);
    assert_eq!(
        r.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        vec![vec![(2, g1), (2, g2)]],
        "the group query needed no answer of its own"
    );

    // A second general query with a longer time keeps the sooner one:
    // still one answer, within the first query's 0.1 s.
    let t0 = sim.now();
    inject(&mut sim, b, &igmp_query(Ipv4Addr::UNSPECIFIED, 1, ROUTER4));
    inject(
        &mut sim,
        b,
        &igmp_query(Ipv4Addr::UNSPECIFIED, 100, ROUTER4),
    );
    sim.run_for(Duration::from_secs(11));
    let r = igmp_reports(&sim.take_captured(), b);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].0.saturating_since(t0) <= ms(100));

    // Leaving before the answer is due: nothing is reported as current
    // state for the group left (the leave is a state change, type 3).
    inject(&mut sim, b, &igmp_query(g1, 100, ROUTER4));
    sim.with(b, |s, ctx| {
        s.socket_setopt(ctx, m, SockOpt::LeaveGroup(IpAddr::V4(g1), EN0))
    })
    .unwrap();
    sim.run_for(Duration::from_secs(11));
    let r = igmp_reports(&sim.take_captured(), b);
    assert_eq!(
        r.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        vec![vec![(3, g1)]]
    );

    // Corrupted queries are counted as errors and not answered.
    let mut bad = igmp_query(Ipv4Addr::UNSPECIFIED, 10, ROUTER4);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let errors = sim.stack(b).udp.igmp.in_errors;
    inject(&mut sim, b, &bad);
    sim.run_for(Duration::from_secs(2));
    assert!(igmp_reports(&sim.take_captured(), b).is_empty());
    assert_eq!(sim.stack(b).udp.igmp.in_errors, errors + 1);
}

#[test]
fn an_mld_general_query_is_answered_with_every_group_after_a_delay() {
    let g: Ipv6Addr = "ff15::1:2:3".parse().unwrap();
    let solicited: Ipv6Addr = "ff02::1:ff00:b".parse().unwrap();
    let (mut sim, b) = host(21);
    let _m = member(&mut sim, b, &[IpAddr::V6(g)]);
    let _ = sim.take_captured();
    let router: Ipv6Addr = "fe80::99".parse().unwrap();

    let t0 = sim.now();
    // Maximum Response Code 2000: two seconds.
    inject(&mut sim, b, &mld_query(Ipv6Addr::UNSPECIFIED, 2000, router));
    // Not at once.
    sim.run_for(ms(1));
    let early = mld_reports(&sim.take_captured(), b);
    sim.run_for(ms(2_000));
    let r = mld_reports(&sim.take_captured(), b);
    let all: Vec<_> = early.iter().chain(&r).collect();
    assert_eq!(all.len(), 1, "one answer: {all:?}");
    let (when, recs) = all[0];
    assert!(when.saturating_since(t0) <= ms(2_000));
    // Current state of the joined group and of the solicited-node groups
    // of b's addresses (link-local fe80::...:b's and 2001:db8::b's share
    // one); never the all-nodes group.
    assert!(recs.contains(&(2, g)), "{recs:?}");
    assert!(recs.contains(&(2, solicited)), "{recs:?}");
    assert!(
        recs.iter()
            .all(|(t, x)| *t == 2 && *x != "ff02::1".parse::<Ipv6Addr>().unwrap())
    );

    // A group-specific query names one group.
    inject(&mut sim, b, &mld_query(g, 500, router));
    sim.run_for(ms(501));
    let r = mld_reports(&sim.take_captured(), b);
    assert_eq!(
        r.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        vec![vec![(2, g)]]
    );

    // RFC 3810 section 5.1.14: a query from a global address is ignored.
    inject(
        &mut sim,
        b,
        &mld_query(Ipv6Addr::UNSPECIFIED, 100, "2001:db8::99".parse().unwrap()),
    );
    // As is a group-specific query for a group b is not in.
    inject(
        &mut sim,
        b,
        &mld_query("ff15::9".parse().unwrap(), 100, router),
    );
    sim.run_for(Duration::from_secs(1));
    assert!(mld_reports(&sim.take_captured(), b).is_empty());
}

#[test]
fn a_flood_of_queries_keeps_one_pending_answer_per_interface() {
    let (mut sim, b) = host(33);
    let g = Ipv4Addr::new(239, 3, 3, 3);
    let _m = member(&mut sim, b, &[IpAddr::V4(g)]);
    let _ = sim.take_captured();
    for _ in 0..10_000 {
        inject(
            &mut sim,
            b,
            &igmp_query(Ipv4Addr::UNSPECIFIED, 100, ROUTER4),
        );
        inject(&mut sim, b, &igmp_query(g, 100, ROUTER4));
    }
    sim.run_for(Duration::from_secs(11));
    let r = igmp_reports(&sim.take_captured(), b);
    // The general answer: at most one, plus perhaps one for the group if
    // its timer came first (RFC 3376 section 5.2 rule 1 keeps it only
    // when sooner).
    assert!(!r.is_empty() && r.len() <= 2, "{r:?}");
    assert_eq!(sim.stack(b).udp.igmp.in_queries, 20_000);
}
