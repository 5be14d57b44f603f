//! The protocol counters of `netstat -s`, grouped by protocol and worded as
//! NetBSD's `netstat -s` words them where NetBSD keeps the same counter.
//!
//! This file is the one place that maps a stats field to its description.
//! Every mapping destructures its struct without `..`, so a counter added to
//! a stats struct does not compile until it is given a description here.

use crate::arp::ArpStats;
use crate::icmp4::Icmp4Stats;
use crate::igmp::IgmpStats;
use crate::ipv4::Ipv4Stats;
use crate::ipv6::{Icmp6Stats, Ipv6Stats};
use crate::reasm::ReasmStats;
use crate::socket::SocketStats;
use crate::stack::Stack;
use crate::tcp::TcpStats;
use crate::udp::UdpStats;

use iopkt_wire::icmp::v6 as icmp6;

/// The counters of one protocol, in the order `netstat -s` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterGroup {
    /// "ip", "icmp", "arp", "ip6", "icmp6", "sockets", "udp", "igmp" or
    /// "tcp".
    pub name: &'static str,
    /// (description, value). Descriptions are unique within a group.
    pub counters: Vec<(&'static str, u64)>,
}

impl Stack {
    /// Every protocol counter the stack keeps, by protocol. Per-interface
    /// counters are not here: they travel with each interface.
    pub fn counters(&self) -> Vec<CounterGroup> {
        let mut ip = ipv4(&self.v4.stats);
        ip.extend(reassembly(&self.v4.reasm.stats));
        let mut ip6 = ipv6(&self.v6.stats);
        ip6.extend(reassembly(&self.v6.reasm.stats));
        vec![
            CounterGroup {
                name: "ip",
                counters: ip,
            },
            CounterGroup {
                name: "icmp",
                counters: icmp4(&self.v4.icmp),
            },
            CounterGroup {
                name: "arp",
                counters: arp(&self.v4.arp),
            },
            CounterGroup {
                name: "ip6",
                counters: ip6,
            },
            CounterGroup {
                name: "icmp6",
                counters: icmp6(&self.v6.icmp_stats),
            },
            CounterGroup {
                name: "sockets",
                counters: sockets(&self.sockets.stats),
            },
            CounterGroup {
                name: "udp",
                counters: udp(&self.udp.stats),
            },
            CounterGroup {
                name: "igmp",
                counters: igmp(&self.udp.igmp),
            },
            CounterGroup {
                name: "tcp",
                counters: tcp(&self.tcp.stats),
            },
        ]
    }
}

fn ipv4(s: &Ipv4Stats) -> Vec<(&'static str, u64)> {
    let Ipv4Stats {
        received,
        too_short,
        bad_header,
        bad_checksum,
        martians,
        delivered,
        unknown_proto,
        not_forwarded,
        l2_bcast_unicast,
        forwarded,
        no_route,
        ttl_exceeded,
        cant_fragment,
        fragmented,
        fragments_created,
        reassembled_too_long,
        output_requests,
        output_discards,
    } = *s;
    vec![
        ("total packets received", received),
        ("bad header checksums", bad_checksum),
        ("with size smaller than minimum", too_short),
        ("with bad header fields", bad_header),
        ("with length > max ip packet size", reassembled_too_long),
        ("datagrams with bad address in header", martians),
        (
            "unicast packets in link-level broadcasts dropped",
            l2_bcast_unicast,
        ),
        ("packets for this host", delivered),
        ("packets for unknown/unsupported protocol", unknown_proto),
        ("packets forwarded", forwarded),
        ("packets not forwardable", not_forwarded),
        (
            "packets not forwarded because the TTL ran out",
            ttl_exceeded,
        ),
        ("packets sent from this host", output_requests),
        (
            "output packets dropped due to no bufs, etc.",
            output_discards,
        ),
        ("output packets discarded due to no route", no_route),
        ("output datagrams fragmented", fragmented),
        ("fragments created", fragments_created),
        ("datagrams that can't be fragmented", cant_fragment),
    ]
}

/// Shared by `ip` and `ip6`: both families reassemble with the same queue.
fn reassembly(s: &ReasmStats) -> Vec<(&'static str, u64)> {
    let ReasmStats {
        fragments,
        reassembled,
        timeouts,
        overlaps,
        malformed,
        evicted,
    } = *s;
    vec![
        ("fragments received", fragments),
        ("packets reassembled ok", reassembled),
        ("malformed fragments dropped", malformed),
        // RFC 5722: an overlap discards the whole datagram.
        ("datagrams dropped for overlapping fragments", overlaps),
        ("datagrams dropped after reassembly timeout", timeouts),
        ("datagrams dropped (out of reassembly space)", evicted),
    ]
}

fn icmp4(s: &Icmp4Stats) -> Vec<(&'static str, u64)> {
    let Icmp4Stats {
        in_msgs,
        in_errors,
        in_echo_requests,
        in_echo_replies,
        in_dest_unreach,
        in_time_exceeded,
        in_param_problem,
        in_other,
        bmcast_echo_ignored,
        out_msgs,
        out_echo_replies,
        out_dest_unreach,
        out_time_exceeded,
        out_param_problem,
        errors_suppressed,
        errors_rate_limited,
    } = *s;
    vec![
        ("messages received", in_msgs),
        ("messages < minimum length or with bad checksum", in_errors),
        ("echo requests received", in_echo_requests),
        ("echo replies received", in_echo_replies),
        ("destination unreachable messages received", in_dest_unreach),
        ("time exceeded messages received", in_time_exceeded),
        ("parameter problem messages received", in_param_problem),
        ("messages of other types received", in_other),
        (
            "broadcast/multicast echo requests ignored",
            bmcast_echo_ignored,
        ),
        ("messages sent", out_msgs),
        ("echo replies sent", out_echo_replies),
        ("destination unreachable messages sent", out_dest_unreach),
        ("time exceeded messages sent", out_time_exceeded),
        ("parameter problem messages sent", out_param_problem),
        (
            "errors not generated because old message was icmp, a fragment or a broadcast",
            errors_suppressed,
        ),
        (
            "errors not generated because of rate limitation",
            errors_rate_limited,
        ),
    ]
}

fn arp(s: &ArpStats) -> Vec<(&'static str, u64)> {
    let ArpStats {
        received,
        bad,
        requests_received,
        replies_received,
        requests_sent,
        replies_sent,
        gratuitous_sent,
        conflicts,
        resolve_failed,
        dropped_unresolved,
        hold_overflow,
        evicted,
        dropped_flushed,
    } = *s;
    vec![
        ("packets received", received),
        ("packets with bad length or unknown type", bad),
        ("valid request packets received", requests_received),
        ("reply packets received", replies_received),
        ("request packets sent", requests_sent),
        ("reply packets sent", replies_sent),
        ("gratuitous packets sent", gratuitous_sent),
        ("duplicates for a local IP address", conflicts),
        ("addresses that could not be resolved", resolve_failed),
        ("packets dropped pending ARP resolution", dropped_unresolved),
        ("packets dropped from a full hold queue", hold_overflow),
        ("entries evicted from a full cache", evicted),
        ("packets dropped with their flushed entry", dropped_flushed),
    ]
}

fn ipv6(s: &Ipv6Stats) -> Vec<(&'static str, u64)> {
    let Ipv6Stats {
        in_receives,
        in_hdr_errors,
        in_addr_errors,
        in_unknown_protos,
        in_discards,
        in_delivers,
        in_multicast,
        forwarded,
        hop_limit_exceeded,
        too_big,
        no_routes,
        out_requests,
        out_discards,
        frag_oks,
        frag_fails,
        frag_creates,
        reasm_reqds,
        reasm_oks,
        reasm_fails,
        dad_duplicates,
        nd_hold_drops,
        nd_resolve_failures,
        nd_evictions,
    } = *s;
    vec![
        ("total packets received", in_receives),
        ("packets with bad headers", in_hdr_errors),
        (
            "packets not forwardable or with bad addresses",
            in_addr_errors,
        ),
        (
            "packets for unknown/unsupported protocol",
            in_unknown_protos,
        ),
        (
            "packets discarded for a tentative address or a group not joined",
            in_discards,
        ),
        ("packets for this host", in_delivers),
        ("multicast packets received", in_multicast),
        ("packets forwarded", forwarded),
        (
            "packets not forwarded because the hop limit ran out",
            hop_limit_exceeded,
        ),
        ("packets too big for the next link", too_big),
        ("output packets discarded due to no route", no_routes),
        ("packets sent from this host", out_requests),
        ("output packets dropped due to no bufs, etc.", out_discards),
        ("output datagrams fragmented", frag_oks),
        ("datagrams that can't be fragmented", frag_fails),
        ("fragments created", frag_creates),
        // RFC 4293's ipSystemStatsReasm*: counted by IPv6 around the queue,
        // so fragments refused before queueing count here too.
        ("fragments received that needed reassembly", reasm_reqds),
        ("datagrams successfully reassembled", reasm_oks),
        ("reassembly failures", reasm_fails),
        ("duplicate addresses detected", dad_duplicates),
        (
            "packets dropped from a full neighbor hold queue",
            nd_hold_drops,
        ),
        ("neighbor resolution failures", nd_resolve_failures),
        ("neighbor entries evicted", nd_evictions),
    ]
}

/// ICMPv6 types with their own histogram line (NetBSD's names); others
/// are summed into one "other types" line.
const ICMP6_TYPES: [(u8, &str, &str); 15] = [
    (
        icmp6::DEST_UNREACH,
        "destination unreachable messages received",
        "destination unreachable messages sent",
    ),
    (
        icmp6::PACKET_TOO_BIG,
        "packet too big messages received",
        "packet too big messages sent",
    ),
    (
        icmp6::TIME_EXCEEDED,
        "time exceeded messages received",
        "time exceeded messages sent",
    ),
    (
        icmp6::PARAM_PROBLEM,
        "parameter problem messages received",
        "parameter problem messages sent",
    ),
    (
        icmp6::ECHO_REQUEST,
        "echo requests received",
        "echo requests sent",
    ),
    (
        icmp6::ECHO_REPLY,
        "echo replies received",
        "echo replies sent",
    ),
    (
        icmp6::MLD_QUERY,
        "multicast listener queries received",
        "multicast listener queries sent",
    ),
    (
        icmp6::MLD_REPORT,
        "MLDv1 listener reports received",
        "MLDv1 listener reports sent",
    ),
    (
        icmp6::MLD_DONE,
        "MLDv1 listener done messages received",
        "MLDv1 listener done messages sent",
    ),
    (
        icmp6::ROUTER_SOLICIT,
        "router solicitations received",
        "router solicitations sent",
    ),
    (
        icmp6::ROUTER_ADVERT,
        "router advertisements received",
        "router advertisements sent",
    ),
    (
        icmp6::NEIGHBOR_SOLICIT,
        "neighbor solicitations received",
        "neighbor solicitations sent",
    ),
    (
        icmp6::NEIGHBOR_ADVERT,
        "neighbor advertisements received",
        "neighbor advertisements sent",
    ),
    (icmp6::REDIRECT, "redirects received", "redirects sent"),
    (
        icmp6::MLDV2_REPORT,
        "MLDv2 listener reports received",
        "MLDv2 listener reports sent",
    ),
];

/// One direction's per-type counts: a line per named type that is not
/// zero (as NetBSD prints its histograms), and the rest summed.
fn icmp6_histogram(by_type: &[u64; 256], received: bool, out: &mut Vec<(&'static str, u64)>) {
    let mut other = 0u64;
    for (ty, &n) in by_type.iter().enumerate() {
        let named = ICMP6_TYPES.iter().find(|(t, _, _)| usize::from(*t) == ty);
        match named {
            Some(&(_, rx, tx)) if n != 0 => out.push((if received { rx } else { tx }, n)),
            Some(_) => {}
            None => other = other.saturating_add(n),
        }
    }
    if other != 0 {
        let what = if received {
            "messages of other types received"
        } else {
            "messages of other types sent"
        };
        out.push((what, other));
    }
}

fn icmp6(s: &Icmp6Stats) -> Vec<(&'static str, u64)> {
    let Icmp6Stats {
        in_msgs,
        in_errors,
        in_by_type,
        out_msgs,
        out_by_type,
        rate_limited,
        err_suppressed,
        nd_invalid,
        pmtu_updates,
    } = s;
    let mut v = vec![
        ("messages received", *in_msgs),
        ("messages with bad checksum, length or fields", *in_errors),
    ];
    icmp6_histogram(in_by_type, true, &mut v);
    v.push(("messages sent", *out_msgs));
    icmp6_histogram(out_by_type, false, &mut v);
    v.extend([
        (
            "errors not generated because old message was icmp6 or so",
            *err_suppressed,
        ),
        (
            "errors not generated because of rate limitation",
            *rate_limited,
        ),
        ("invalid neighbor discovery messages", *nd_invalid),
        ("path MTU changes", *pmtu_updates),
    ]);
    v
}

fn sockets(s: &SocketStats) -> Vec<(&'static str, u64)> {
    let SocketStats {
        ping_unmatched,
        ping_rx_dropped,
    } = *s;
    vec![
        ("echo replies and errors matching no socket", ping_unmatched),
        (
            "replies dropped due to full socket buffers",
            ping_rx_dropped,
        ),
    ]
}

fn udp(s: &UdpStats) -> Vec<(&'static str, u64)> {
    let UdpStats {
        received,
        sent,
        bad_checksum,
        bad_length,
        no_port,
        no_port_broadcast,
        full_buffers,
    } = *s;
    vec![
        ("datagrams received", received),
        ("with bad data length field", bad_length),
        ("with bad checksum", bad_checksum),
        ("dropped due to no socket", no_port),
        (
            "broadcast/multicast datagrams dropped due to no socket",
            no_port_broadcast,
        ),
        ("dropped due to full socket buffers", full_buffers),
        ("datagrams output", sent),
    ]
}

fn igmp(s: &IgmpStats) -> Vec<(&'static str, u64)> {
    let IgmpStats {
        in_msgs,
        in_errors,
        in_queries,
        out_reports,
    } = *s;
    vec![
        ("messages received", in_msgs),
        (
            "messages received with too few bytes or bad checksum",
            in_errors,
        ),
        ("membership queries received", in_queries),
        ("membership reports sent", out_reports),
    ]
}

fn tcp(s: &TcpStats) -> Vec<(&'static str, u64)> {
    let TcpStats {
        active_opens,
        passive_opens,
        attempt_fails,
        estab_resets,
        established,
        segs_in,
        segs_out,
        retrans_segs,
        bad_checksum,
        malformed,
        resets_in,
        resets_out,
        challenge_acks,
        challenge_acks_limited,
        no_port,
        listen_overflows,
        timeouts,
        fast_retransmits,
        delayed_acks,
        window_probes,
        keepalive_probes,
        keepalive_drops,
        out_of_window,
        ooo_segments,
        dup_segments,
        table_full,
        sack_recoveries,
        sack_retransmits,
        rexmit_timeouts,
        syncookies_sent,
        syncookies_recv,
        syncookies_failed,
        icmp_errors,
        icmp_ignored,
        pmtu_shrinks,
        rcvbuf_grown,
        sndbuf_grown,
        mem_pressures,
        mem_drops,
        rack_lost,
        rack_reo_timeouts,
        tlp_probes,
        tlp_recoveries,
        dsacks_in,
        dsacks_out,
        undos,
    } = *s;
    vec![
        ("connection requests", active_opens),
        ("connection accepts", passive_opens),
        ("failed connection attempts", attempt_fails),
        ("connections established", established),
        ("established connections reset", estab_resets),
        ("packets received", segs_in),
        ("discarded for bad checksums", bad_checksum),
        (
            "discarded for bad header offset fields or addresses",
            malformed,
        ),
        ("packets received out of window", out_of_window),
        ("out-of-order packets received", ooo_segments),
        ("completely duplicate packets received", dup_segments),
        ("resets received", resets_in),
        ("packets sent", segs_out),
        ("data packets retransmitted", retrans_segs),
        ("resets sent", resets_out),
        ("challenge ACKs sent", challenge_acks),
        (
            "challenge ACKs not sent because of rate limitation",
            challenge_acks_limited,
        ),
        ("packets to a port with no listener", no_port),
        ("listen queue overflows", listen_overflows),
        ("connections dropped by retransmit timeout", timeouts),
        ("fast retransmits", fast_retransmits),
        ("delayed acks sent", delayed_acks),
        ("window probes sent", window_probes),
        ("keepalive probes sent", keepalive_probes),
        ("connections dropped by keepalive", keepalive_drops),
        (
            "connections refused for a full connection table",
            table_full,
        ),
        ("SACK recovery episodes", sack_recoveries),
        (
            "segments retransmitted from the SACK scoreboard",
            sack_retransmits,
        ),
        ("retransmit timeouts", rexmit_timeouts),
        ("SYN cookies sent", syncookies_sent),
        ("SYN cookies received", syncookies_recv),
        ("invalid SYN cookies received", syncookies_failed),
        ("ICMP errors applied to connections", icmp_errors),
        ("ICMP errors ignored as out of window", icmp_ignored),
        ("MSS lowered by path MTU reports", pmtu_shrinks),
        ("receive buffer grown", rcvbuf_grown),
        ("send buffer grown", sndbuf_grown),
        ("memory pressure events", mem_pressures),
        ("segments cut for the memory limit", mem_drops),
        ("segments found lost by RACK", rack_lost),
        ("RACK reordering timeouts", rack_reo_timeouts),
        ("tail loss probes sent", tlp_probes),
        ("losses repaired by a tail loss probe", tlp_recoveries),
        ("DSACKs received", dsacks_in),
        ("DSACKs sent", dsacks_out),
        ("needless recoveries undone", undos),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ctx::Ctx;
    use crate::iface::IfIndex;
    use crate::time::Instant;
    use iopkt_pkt::{PktBuf, Pool};

    struct Still;

    impl Ctx for Still {
        fn now(&self) -> Instant {
            Instant::ZERO
        }
        fn random_u64(&mut self) -> u64 {
            7
        }
        fn transmit(&mut self, _: IfIndex, _: PktBuf) {}
    }

    /// The top-level fields of a struct's `Debug` text, each with its value
    /// when that is a number (arrays are `None`): the test learns the fields
    /// from the struct itself rather than from a list kept beside it.
    fn debug_fields(text: &str) -> Vec<Option<u64>> {
        let body = text
            .split_once('{')
            .and_then(|(_, b)| b.trim_end().strip_suffix('}'))
            .unwrap();
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut cur = String::new();
        for c in body.chars() {
            match c {
                '[' | '{' | '(' => depth += 1,
                ']' | '}' | ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        if !cur.trim().is_empty() {
            parts.push(cur);
        }
        parts
            .iter()
            .map(|p| p.split_once(':').unwrap().1.trim().parse().ok())
            .collect()
    }

    /// What one group must show: its name, how many fields its structs
    /// have, the numeric field values (each listed exactly once), and the
    /// sum of every counter, histogram buckets included.
    struct Expected {
        name: &'static str,
        fields: usize,
        scalars: Vec<u64>,
        sum: u64,
    }

    /// A stack whose every counter holds a value no other counter holds.
    fn distinct_stack() -> (Stack, Vec<Expected>) {
        let mut ctx = Still;
        let mut s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let mut next = 1000u64;
        let mut n = || {
            next += 1;
            next
        };
        s.v4.stats = Ipv4Stats {
            received: n(),
            too_short: n(),
            bad_header: n(),
            bad_checksum: n(),
            martians: n(),
            delivered: n(),
            unknown_proto: n(),
            not_forwarded: n(),
            l2_bcast_unicast: n(),
            forwarded: n(),
            no_route: n(),
            ttl_exceeded: n(),
            cant_fragment: n(),
            fragmented: n(),
            fragments_created: n(),
            reassembled_too_long: n(),
            output_requests: n(),
            output_discards: n(),
        };
        let mut reasm = || ReasmStats {
            fragments: n(),
            reassembled: n(),
            timeouts: n(),
            overlaps: n(),
            malformed: n(),
            evicted: n(),
        };
        s.v4.reasm.stats = reasm();
        s.v6.reasm.stats = reasm();
        s.v4.icmp = Icmp4Stats {
            in_msgs: n(),
            in_errors: n(),
            in_echo_requests: n(),
            in_echo_replies: n(),
            in_dest_unreach: n(),
            in_time_exceeded: n(),
            in_param_problem: n(),
            in_other: n(),
            bmcast_echo_ignored: n(),
            out_msgs: n(),
            out_echo_replies: n(),
            out_dest_unreach: n(),
            out_time_exceeded: n(),
            out_param_problem: n(),
            errors_suppressed: n(),
            errors_rate_limited: n(),
        };
        s.v4.arp = ArpStats {
            received: n(),
            bad: n(),
            requests_received: n(),
            replies_received: n(),
            requests_sent: n(),
            replies_sent: n(),
            gratuitous_sent: n(),
            conflicts: n(),
            resolve_failed: n(),
            dropped_unresolved: n(),
            hold_overflow: n(),
            evicted: n(),
            dropped_flushed: n(),
        };
        s.v6.stats = Ipv6Stats {
            in_receives: n(),
            in_hdr_errors: n(),
            in_addr_errors: n(),
            in_unknown_protos: n(),
            in_discards: n(),
            in_delivers: n(),
            in_multicast: n(),
            forwarded: n(),
            hop_limit_exceeded: n(),
            too_big: n(),
            no_routes: n(),
            out_requests: n(),
            out_discards: n(),
            frag_oks: n(),
            frag_fails: n(),
            frag_creates: n(),
            reasm_reqds: n(),
            reasm_oks: n(),
            reasm_fails: n(),
            dad_duplicates: n(),
            nd_hold_drops: n(),
            nd_resolve_failures: n(),
            nd_evictions: n(),
        };
        // Histogram buckets far above the scalars, so no sum of unnamed
        // buckets can equal a scalar by accident.
        let mut in_by_type = [0u64; 256];
        let mut out_by_type = [0u64; 256];
        for t in 0..256 {
            in_by_type[t] = 1_000_000 + t as u64;
            out_by_type[t] = 2_000_000 + t as u64;
        }
        s.v6.icmp_stats = Icmp6Stats {
            in_msgs: n(),
            in_errors: n(),
            in_by_type,
            out_msgs: n(),
            out_by_type,
            rate_limited: n(),
            err_suppressed: n(),
            nd_invalid: n(),
            pmtu_updates: n(),
        };
        s.sockets.stats = SocketStats {
            ping_unmatched: n(),
            ping_rx_dropped: n(),
        };
        s.tcp.stats = TcpStats {
            active_opens: n(),
            passive_opens: n(),
            attempt_fails: n(),
            estab_resets: n(),
            established: n(),
            segs_in: n(),
            segs_out: n(),
            retrans_segs: n(),
            bad_checksum: n(),
            malformed: n(),
            resets_in: n(),
            resets_out: n(),
            challenge_acks: n(),
            challenge_acks_limited: n(),
            no_port: n(),
            listen_overflows: n(),
            timeouts: n(),
            fast_retransmits: n(),
            delayed_acks: n(),
            window_probes: n(),
            keepalive_probes: n(),
            keepalive_drops: n(),
            out_of_window: n(),
            ooo_segments: n(),
            dup_segments: n(),
            table_full: n(),
            sack_recoveries: n(),
            sack_retransmits: n(),
            rexmit_timeouts: n(),
            syncookies_sent: n(),
            syncookies_recv: n(),
            syncookies_failed: n(),
            icmp_errors: n(),
            icmp_ignored: n(),
            pmtu_shrinks: n(),
            rcvbuf_grown: n(),
            sndbuf_grown: n(),
            mem_pressures: n(),
            mem_drops: n(),
            rack_lost: n(),
            rack_reo_timeouts: n(),
            tlp_probes: n(),
            tlp_recoveries: n(),
            dsacks_in: n(),
            dsacks_out: n(),
            undos: n(),
        };
        s.udp.stats = UdpStats {
            received: n(),
            sent: n(),
            bad_checksum: n(),
            bad_length: n(),
            no_port: n(),
            no_port_broadcast: n(),
            full_buffers: n(),
        };
        s.udp.igmp = IgmpStats {
            in_msgs: n(),
            in_errors: n(),
            in_queries: n(),
            out_reports: n(),
        };

        let mut groups = Vec::new();
        let mut group = |name, texts: &[String], extra: u64| {
            let fields: Vec<Option<u64>> = texts.iter().flat_map(|t| debug_fields(t)).collect();
            let scalars: Vec<u64> = fields.iter().flatten().copied().collect();
            let sum = scalars.iter().sum::<u64>() + extra;
            groups.push(Expected {
                name,
                fields: fields.len(),
                scalars,
                sum,
            });
        };
        group(
            "ip",
            &[
                format!("{:?}", s.v4.stats),
                format!("{:?}", s.v4.reasm.stats),
            ],
            0,
        );
        group("icmp", &[format!("{:?}", s.v4.icmp)], 0);
        group("arp", &[format!("{:?}", s.v4.arp)], 0);
        group(
            "ip6",
            &[
                format!("{:?}", s.v6.stats),
                format!("{:?}", s.v6.reasm.stats),
            ],
            0,
        );
        let histograms = in_by_type.iter().chain(&out_by_type).sum();
        group("icmp6", &[format!("{:?}", s.v6.icmp_stats)], histograms);
        group("sockets", &[format!("{:?}", s.sockets.stats)], 0);
        group("udp", &[format!("{:?}", s.udp.stats)], 0);
        group("igmp", &[format!("{:?}", s.udp.igmp)], 0);
        group("tcp", &[format!("{:?}", s.tcp.stats)], 0);
        (s, groups)
    }

    #[test]
    fn every_counter_of_every_stats_struct_is_listed_once() {
        let (s, expected) = distinct_stack();
        let got = s.counters();
        let names: Vec<&str> = got.iter().map(|g| g.name).collect();
        assert_eq!(
            names,
            [
                "ip", "icmp", "arp", "ip6", "icmp6", "sockets", "udp", "igmp", "tcp"
            ]
        );
        for Expected {
            name,
            fields,
            scalars: values,
            sum,
        } in expected
        {
            let g = got.iter().find(|g| g.name == name).unwrap();
            // icmp6's two histograms are the only fields that are not numbers.
            let arrays = if name == "icmp6" { 2 } else { 0 };
            assert_eq!(values.len() + arrays, fields, "{name}: scalar fields read");
            for v in &values {
                let hits = g.counters.iter().filter(|(_, x)| x == v).count();
                assert_eq!(hits, 1, "{name}: value {v} listed {hits} times");
            }
            let total: u64 = g.counters.iter().map(|(_, x)| x).sum();
            assert_eq!(total, sum, "{name}: every counter, nothing twice");
            let mut descs: Vec<&str> = g.counters.iter().map(|(d, _)| *d).collect();
            descs.sort_unstable();
            let before = descs.len();
            descs.dedup();
            assert_eq!(descs.len(), before, "{name}: descriptions repeat");
            assert!(descs.iter().all(|d| !d.is_empty() && !d.contains('\n')));
        }
    }

    #[test]
    fn icmp6_histograms_name_known_types_and_sum_the_rest() {
        let mut s = Icmp6Stats::default();
        s.in_by_type[usize::from(icmp6::ECHO_REQUEST)] = 5;
        s.in_by_type[200] = 2;
        s.in_by_type[201] = 3;
        s.out_by_type[usize::from(icmp6::ECHO_REPLY)] = 5;
        let v = icmp6(&s);
        assert!(v.contains(&("echo requests received", 5)));
        assert!(v.contains(&("messages of other types received", 5)));
        assert!(v.contains(&("echo replies sent", 5)));
        // Zero buckets are left out, as in NetBSD's histograms.
        assert!(!v.iter().any(|(d, _)| *d == "echo replies received"));
        assert!(!v.iter().any(|(d, _)| *d == "messages of other types sent"));
    }

    #[test]
    fn a_fresh_stack_lists_zero_counters_under_their_descriptions() {
        let mut ctx = Still;
        let s = Stack::new(&mut ctx, Pool::standard(), Config::default());
        let g = s.counters();
        let ip = g.iter().find(|g| g.name == "ip").unwrap();
        assert_eq!(ip.counters[0].0, "total packets received");
        assert!(ip.counters.contains(&("packets forwarded", 0)));
        assert!(
            ip.counters
                .contains(&("output packets discarded due to no route", 0))
        );
    }
}
