//! The seed inputs committed under `fuzz/corpus/<target>/`: small, valid
//! inputs that take each target past its first checks (a fuzzer mutating
//! them reaches deep code far sooner than from nothing). The example
//! `write_corpus` writes them; a test checks the committed files are these.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use iopkt_rsrcmgr::proto::{
    AddrOp, Event, ModuleKindWire, Request, Response, RouteSpec, encode_event, encode_request,
    encode_response,
};
use iopkt_wire::checksum::{checksum, finish, pseudo_v4, pseudo_v6, sum};

use crate::reassembly::{Fragment, encode_input};
use crate::tcp_segments::{Dest, Segment};

/// One seed: the target it is for, its file name, its bytes.
pub struct Seed {
    pub target: &'static str,
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target, name, bytes| {
        out.push(Seed {
            target,
            name,
            bytes,
        })
    };
    for (name, bytes) in stack_input() {
        add("stack_input", name, bytes);
    }
    for (name, bytes) in daemon_options() {
        add("daemon_options", name, bytes);
    }
    for (name, bytes) in driver_options() {
        add("driver_options", name, bytes);
    }
    for (name, bytes) in control_request() {
        add("control_request", name, bytes);
    }
    for (name, bytes) in control_server() {
        add("control_server", name, bytes);
    }
    for (name, bytes) in reassembly() {
        add("reassembly", name, bytes);
    }
    for (name, bytes) in tcp_segments() {
        add("tcp_segments", name, bytes);
    }
    for (name, bytes) in virtio_net_hdr() {
        add("virtio_net_hdr", name, bytes);
    }
    for (name, bytes) in shm_ring() {
        add("shm_ring", name, bytes);
    }
    out
}

// ------------------------------------------------------------ shm_ring

/// One operation of the `shm_ring` target: its code and value.
fn ring_op(code: u8, v: u64) -> Vec<u8> {
    let mut b = vec![code];
    b.extend_from_slice(&v.to_le_bytes());
    b
}

fn shm_ring() -> Vec<(&'static str, Vec<u8>)> {
    let ring = 256 * 1024u64;
    let seq = |ops: &[(u8, u64)]| ops.iter().flat_map(|&(c, v)| ring_op(c, v)).collect();
    vec![
        // An application writes, io-pkt takes it all, sleeps.
        (
            "write_take_sleep",
            seq(&[(0, 5000), (5, 0), (6, 4096), (6, 4096), (8, 0)]),
        ),
        // A full ring, its filler held, then room.
        (
            "full_ring",
            seq(&[(0, ring), (2, 1), (9, 0), (6, 60_000), (6, 60_000), (9, 0)]),
        ),
        // The stack fills the application's ring; it reads some.
        (
            "rx_fill_read",
            seq(&[
                (11, 65_000),
                (11, 65_000),
                (12, 0),
                (1, 30_000),
                (10, 0),
                (13, 0),
            ]),
        ),
        // Counters beyond the ring, and running backwards.
        (
            "broken_counters",
            seq(&[
                (0, ring + 1),
                (5, 0),
                (6, 100),
                (1, u64::MAX),
                (11, 10),
                (13, 0),
            ]),
        ),
    ]
}

// ---------------------------------------------------------------- frames

/// The fuzz network of `iopkt_sim::fuzz`: the target (node 0, port 0) and
/// its peer (node 1, port 1), with the simulator's MAC numbering.
const TARGET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0x01, 0, 0x01];
const TARGET4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const TARGET6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

fn ethernet(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_request() -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    a.extend_from_slice(&PEER_MAC);
    a.extend_from_slice(&PEER4.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&TARGET4.octets());
    ethernet([0xff; 6], 0x0806, &a)
}

/// An IPv4 header (RFC 791 section 3.1) with its checksum.
fn ipv4(proto: u8, ident: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&PEER4.octets());
    h.extend_from_slice(&TARGET4.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn icmp4_echo(len: usize) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend((0..len).map(|i| i as u8));
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message with its checksum over the pseudo-header (RFC 8200
/// section 8.1).
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, mut m: Vec<u8>) -> Vec<u8> {
    let acc = sum(pseudo_v6(src, dst, 58, m.len() as u32), &m);
    m[2..4].copy_from_slice(&finish(acc).to_be_bytes());
    m
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hops: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hops]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn icmp6_echo(len: usize) -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0, 0x56, 0x78, 0, 1];
    m.extend((0..len).map(|i| i as u8));
    icmp6(PEER6, TARGET6, m)
}

/// A neighbour solicitation for the target's address, to its
/// solicited-node group (RFC 4861 section 4.3), with a source link-layer
/// address option.
fn neighbor_solicit() -> Vec<u8> {
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0001);
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&TARGET6.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&PEER_MAC);
    let m = icmp6(PEER6, group, m);
    let mut dst = vec![0x33, 0x33];
    dst.extend_from_slice(&group.octets()[12..]);
    let dst: [u8; 6] = dst.try_into().unwrap_or([0x33, 0x33, 0xff, 0, 0, 1]);
    ethernet(dst, 0x86dd, &ipv6(PEER6, group, 58, 255, &m))
}

/// Frames as the `stack_input` entry reads them: a length byte in 8-byte
/// units, then the frame padded with zeros to that length (as Ethernet pads).
fn frames(list: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in list {
        let units = f.len().div_ceil(8);
        out.push(units.min(255) as u8);
        out.extend_from_slice(f);
        out.resize(out.len() + units * 8 - f.len(), 0);
    }
    out
}

fn stack_input() -> Vec<(&'static str, Vec<u8>)> {
    let echo4 = ethernet(TARGET_MAC, 0x0800, &ipv4(1, 1, 0, &icmp4_echo(32)));
    // One echo in two fragments: 8 + 40 bytes of ICMP (RFC 791 section 3.2).
    let big = icmp4_echo(40);
    let frag4 = [
        ethernet(
            TARGET_MAC,
            0x0800,
            &ipv4(1, 7, 0x2000, big.get(..24).unwrap_or_default()),
        ),
        ethernet(
            TARGET_MAC,
            0x0800,
            &ipv4(1, 7, 3, big.get(24..).unwrap_or_default()),
        ),
    ];
    let echo6 = ethernet(
        TARGET_MAC,
        0x86dd,
        &ipv6(PEER6, TARGET6, 58, 64, &icmp6_echo(32)),
    );
    // The same for IPv6: a fragment header (RFC 8200 section 4.5) on each.
    let big6 = icmp6_echo(40);
    let frag6 = |off: usize, more: bool, part: &[u8]| {
        let mut p = vec![58, 0];
        p.extend_from_slice(&(((off / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
        p.extend_from_slice(&0x0bad_cafe_u32.to_be_bytes());
        p.extend_from_slice(part);
        ethernet(TARGET_MAC, 0x86dd, &ipv6(PEER6, TARGET6, 44, 64, &p))
    };
    let frag6 = [
        frag6(0, true, big6.get(..24).unwrap_or_default()),
        frag6(24, false, big6.get(24..).unwrap_or_default()),
    ];
    let udp4 = {
        let mut u = vec![0x30, 0x39, 0x00, 0x07, 0, 16, 0, 0];
        u.extend_from_slice(b"datagram");
        let c = finish(sum(pseudo_v4(PEER4, TARGET4, 17, 16), &u));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        ethernet(TARGET_MAC, 0x0800, &ipv4(17, 2, 0, &u))
    };
    vec![
        ("arp_request", frames(&[arp_request()])),
        ("ipv4_echo", frames(&[echo4])),
        ("ipv4_fragments", frames(&frag4)),
        ("ipv4_udp_closed_port", frames(&[udp4])),
        ("ipv6_neighbor_solicit", frames(&[neighbor_solicit()])),
        ("ipv6_echo", frames(&[neighbor_solicit(), echo6])),
        ("ipv6_fragments", frames(&frag6)),
    ]
}

// ---------------------------------------------------------------- options

fn lines(args: &[&str]) -> Vec<u8> {
    args.join("\n").into_bytes()
}

fn daemon_options() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "acceptance",
            lines(&[
                "-d",
                "tap",
                "dev=xtap,name=en",
                "-p",
                "tcpip",
                "prefix=/tmp/X",
            ]),
        ),
        (
            "glued_flags",
            lines(&[
                "-dtap",
                "-i3",
                "-t2",
                "-vvv",
                "-p",
                "tcpip",
                "forward,forward6,somaxconn=128",
            ]),
        ),
        (
            "two_drivers",
            lines(&[
                "-d",
                "udp",
                "local=127.0.0.1:7000,peer=127.0.0.1:7001",
                "-d",
                "tap",
            ]),
        ),
        ("help", lines(&["-h"])),
    ]
}

fn driver_options() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "common",
            b"dev=tap0,name=en,unit=1,mtu=1500,mac=02:00:00:00:00:01".to_vec(),
        ),
        (
            "impairments",
            b"dev=x,loss=1.5,delay=20ms,reorder=5%,dup=1,corrupt=0.1".to_vec(),
        ),
        (
            "module_known",
            b"local,peer,fanout\nlocal=127.0.0.1:7000, peer=127.0.0.1:7001,fanout,mtu=9000"
                .to_vec(),
        ),
    ]
}

// ---------------------------------------------------------------- control

fn request(id: u32, r: &Request) -> Vec<u8> {
    encode_request(id, r).unwrap_or_default()
}

fn stream(reqs: &[Request]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        out.extend(request(i as u32 + 1, r));
    }
    out
}

fn control_request() -> Vec<(&'static str, Vec<u8>)> {
    let v6: Ipv6Addr = TARGET6;
    vec![
        ("list_interfaces", request(1, &Request::ListInterfaces)),
        (
            "set_addr4",
            request(
                2,
                &Request::SetAddr4 {
                    ifname: "en0".into(),
                    addr: Ipv4Addr::new(10, 0, 0, 1),
                    plen: 24,
                    op: AddrOp::Set,
                },
            ),
        ),
        (
            "set_addr6",
            request(
                3,
                &Request::SetAddr6 {
                    ifname: "en0".into(),
                    addr: v6,
                    plen: 64,
                    op: AddrOp::Alias,
                },
            ),
        ),
        (
            "route_add",
            request(
                4,
                &Request::RouteAdd(RouteSpec {
                    dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    plen: 0,
                    gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))),
                    ifname: Some("en0".into()),
                }),
            ),
        ),
        (
            "sysctl_set",
            request(
                5,
                &Request::SysctlSet {
                    name: "net.inet.ip.ttl".into(),
                    value: 32,
                },
            ),
        ),
        (
            "mount",
            request(
                6,
                &Request::Mount {
                    instance: 0,
                    kind: ModuleKindWire::Driver,
                    module: "devnp-tap.so".into(),
                    options: "dev=xtap,name=en".into(),
                },
            ),
        ),
        (
            "ping_send",
            request(
                7,
                &Request::PingSend {
                    sock: 1,
                    dst: IpAddr::V6(v6),
                    icmp: vec![128, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb],
                },
            ),
        ),
        (
            "two_in_a_stream",
            stream(&[Request::RouteList, Request::Stats]),
        ),
        (
            "response",
            encode_response(8, &Response::error(22, "invalid")).unwrap_or_default(),
        ),
        (
            "event",
            encode_event(&Event::PingReply {
                sock: 1,
                from: IpAddr::V4(Ipv4Addr::LOCALHOST),
                ttl: 64,
                icmp: vec![0, 0, 0, 0, 0, 1, 0, 1],
            })
            .unwrap_or_default(),
        ),
    ]
}

fn control_server() -> Vec<(&'static str, Vec<u8>)> {
    let en0 = || "en0".to_string();
    let configure = vec![
        Request::SetAddr4 {
            ifname: en0(),
            addr: Ipv4Addr::new(10, 0, 0, 1),
            plen: 24,
            op: AddrOp::Set,
        },
        Request::SetAddr6 {
            ifname: en0(),
            addr: TARGET6,
            plen: 64,
            op: AddrOp::Set,
        },
        Request::SetUp {
            ifname: en0(),
            up: true,
        },
        Request::SetMtu {
            ifname: en0(),
            mtu: 9000,
        },
        Request::RouteAdd(RouteSpec {
            dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            plen: 0,
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))),
            ifname: None,
        }),
        Request::RouteGet {
            dest: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        },
        Request::RouteList,
        Request::ListInterfaces,
        Request::ArpList,
        Request::NdpList,
    ];
    let sysctl = vec![
        Request::SysctlList,
        Request::SysctlGet {
            name: "net.inet.ip.ttl".into(),
        },
        Request::SysctlSet {
            name: "net.inet.ip.ttl".into(),
            value: 7,
        },
        Request::Stats,
    ];
    let ping = vec![
        Request::PingOpen { v6: false },
        Request::PingSend {
            sock: 1,
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            icmp: vec![8, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
        },
        Request::PingOpen { v6: true },
        Request::PingSend {
            sock: 2,
            dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
            icmp: vec![128, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
        },
        Request::Close { sock: 1 },
        Request::Close { sock: 2 },
    ];
    let teardown = [
        Request::ArpDelete {
            addr: Ipv4Addr::new(10, 0, 0, 2),
        },
        Request::RouteDelete(RouteSpec {
            dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            plen: 0,
            gateway: None,
            ifname: None,
        }),
        Request::SetAddr4 {
            ifname: en0(),
            addr: Ipv4Addr::new(10, 0, 0, 1),
            plen: 24,
            op: AddrOp::Delete,
        },
        Request::DestroyInterface { ifname: en0() },
        Request::DestroyInterface {
            ifname: "lo0".into(),
        },
    ];
    let mut all = configure.clone();
    all.extend(teardown.iter().cloned());
    vec![
        ("configure", stream(&configure)),
        ("sysctl", stream(&sysctl)),
        ("ping", stream(&ping)),
        ("configure_and_tear_down", stream(&all)),
    ]
}

// ---------------------------------------------------------------- reassembly

fn frag(key: u8, offset: u16, len: usize, more: bool) -> Fragment {
    Fragment {
        key,
        more,
        wait: 0,
        offset,
        len,
        expire: false,
    }
}

fn reassembly() -> Vec<(&'static str, Vec<u8>)> {
    let roomy = 16_384;
    vec![
        (
            "in_order",
            encode_input(
                roomy,
                &[
                    frag(1, 0, 64, true),
                    frag(1, 64, 64, true),
                    frag(1, 128, 13, false),
                ],
            ),
        ),
        (
            "out_of_order_two_flows",
            encode_input(
                roomy,
                &[
                    frag(2, 16, 5, false),
                    frag(3, 8, 8, false),
                    frag(2, 0, 8, true),
                    frag(3, 0, 8, true),
                    frag(2, 8, 8, true),
                ],
            ),
        ),
        (
            "overlap_and_duplicate",
            encode_input(
                roomy,
                &[
                    frag(4, 0, 16, true),
                    frag(4, 0, 16, true),
                    frag(4, 8, 16, true),
                    frag(4, 0, 8, false),
                ],
            ),
        ),
        (
            "timeout",
            encode_input(
                roomy,
                &[
                    frag(5, 0, 16, true),
                    Fragment {
                        wait: 61,
                        expire: true,
                        ..frag(6, 8, 8, true)
                    },
                    frag(5, 16, 3, false),
                ],
            ),
        ),
        (
            "memory_pressure",
            encode_input(
                64,
                &[
                    frag(7, 0, 128, true),
                    frag(8, 0, 128, true),
                    frag(9, 0, 200, true),
                    frag(8, 128, 8, false),
                ],
            ),
        ),
        (
            "largest_datagram",
            encode_input(
                u16::MAX,
                &[frag(10, 0, 2040, true), frag(10, 63_488, 2047, false)],
            ),
        ),
    ]
}

// ---------------------------------------------------------------- TCP segments

/// A segment relative to what the target sent and acknowledged last on
/// that port pair, then 10 ms of network time.
fn seg(dest: Dest, flags: u8, payload: &[u8]) -> Segment {
    Segment {
        dest,
        seq_absolute: false,
        ack_absolute: false,
        wait: 2,
        flags,
        seq: 0,
        ack: 0,
        window: 65_535,
        options: Vec::new(),
        payload: payload.to_vec(),
    }
}

/// A first SYN from a forged port: its own sequence number, an MSS option.
fn syn(port: u8) -> Segment {
    Segment {
        seq_absolute: true,
        ack_absolute: true,
        seq: 1_000 * (u32::from(port) + 1),
        options: vec![2, 4, 0x05, 0xb4],
        ..seg(Dest::Listener(port), 0x02, b"")
    }
}

fn tcp_segments() -> Vec<(&'static str, Vec<u8>)> {
    use crate::tcp_segments::encode_input;
    let (ack, psh, fin, rst) = (0x10, 0x08, 0x01, 0x04);
    vec![
        (
            "handshake_data_close",
            encode_input(&[
                syn(0),
                seg(Dest::Listener(0), ack, b""),
                seg(Dest::Listener(0), ack | psh, b"hello"),
                seg(Dest::Listener(0), ack | fin, b""),
            ]),
        ),
        (
            "syn_flood",
            encode_input(&[syn(0), syn(1), syn(2), syn(3), syn(0)]),
        ),
        (
            "connection_data_then_reset",
            encode_input(&[
                seg(Dest::Connection, ack | psh, b"data on the connection"),
                Segment {
                    window: 0,
                    ..seg(Dest::Connection, ack, b"")
                },
                seg(Dest::Connection, rst, b""),
            ]),
        ),
        (
            "connection_fin",
            encode_input(&[seg(Dest::Connection, ack | fin, b"last words")]),
        ),
        (
            "closed_port",
            encode_input(&[Segment {
                dest: Dest::Closed,
                ..syn(0)
            }]),
        ),
    ]
}

// ---------------------------------------------------------------- virtio-net

/// A TCP segment from the peer to the target's port 80 with `payload`, its
/// checksum left partial (the pseudo-header sum only), as the kernel sends
/// it through a TAP device.
fn tcp4_partial(payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&65_535u16.to_be_bytes());
    t.extend_from_slice(payload);
    let pseudo = pseudo_v4(PEER4, TARGET4, 6, t.len() as u16);
    t[16..18].copy_from_slice(&(!finish(pseudo)).to_be_bytes());
    ethernet(TARGET_MAC, 0x0800, &ipv4(6, 9, 0, &t))
}

/// Header (little-endian fields), the GSO consent byte, the frame.
fn vnet(h: [u16; 4], flags: u8, gso_type: u8, accept_gso: bool, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, gso_type];
    for v in h {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(u8::from(accept_gso));
    out.extend_from_slice(frame);
    out
}

fn virtio_net_hdr() -> Vec<(&'static str, Vec<u8>)> {
    let small = tcp4_partial(b"hello");
    let large = tcp4_partial(&vec![0x5a; 6000]);
    vec![
        (
            "plain_echo",
            vnet(
                [0; 4],
                0,
                0,
                false,
                &ethernet(TARGET_MAC, 0x0800, &ipv4(1, 3, 0, &icmp4_echo(16))),
            ),
        ),
        ("data_valid", vnet([0; 4], 2, 0, false, &small)),
        ("needs_csum", vnet([0, 0, 34, 16], 1, 0, false, &small)),
        ("gso_tcpv4", vnet([54, 1448, 34, 16], 1, 1, true, &large)),
        ("gso_refused", vnet([54, 1448, 34, 16], 1, 1, false, &large)),
        (
            "csum_past_end",
            vnet([0, 0, 60_000, 16], 1, 0, false, &small),
        ),
    ]
}
