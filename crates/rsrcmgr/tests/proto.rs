//! The wire format: layout, round trips, and hostile bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use iopkt_rsrcmgr::proto::*;
use proptest::prelude::*;

fn every_request() -> Vec<Request> {
    let v4: Ipv4Addr = "10.77.0.2".parse().unwrap();
    let v6: Ipv6Addr = "fd00:77::2".parse().unwrap();
    vec![
        Request::ListInterfaces,
        Request::SetAddr4 {
            ifname: "en0".into(),
            addr: v4,
            plen: 24,
            op: AddrOp::Set,
        },
        Request::SetAddr6 {
            ifname: "en0".into(),
            addr: v6,
            plen: 64,
            op: AddrOp::Alias,
        },
        Request::SetUp {
            ifname: "en0".into(),
            up: true,
        },
        Request::SetMtu {
            ifname: "en0".into(),
            mtu: 9000,
        },
        Request::DestroyInterface {
            ifname: "en1".into(),
        },
        Request::RouteAdd(RouteSpec {
            dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            plen: 0,
            gateway: Some("10.77.0.1".parse().unwrap()),
            ifname: None,
        }),
        Request::RouteDelete(RouteSpec {
            dest: IpAddr::V6(v6),
            plen: 64,
            gateway: None,
            ifname: Some("en0".into()),
        }),
        Request::RouteGet {
            dest: IpAddr::V4(v4),
        },
        Request::RouteList,
        Request::ArpList,
        Request::ArpDelete { addr: v4 },
        Request::NdpList,
        Request::SysctlList,
        Request::SysctlGet {
            name: "net.inet.ip.ttl".into(),
        },
        Request::SysctlSet {
            name: "net.inet.ip.ttl".into(),
            value: -3,
        },
        Request::Mount {
            instance: 2,
            kind: ModuleKindWire::Driver,
            module: "devnp-tap.so".into(),
            options: "dev=ytap,name=en".into(),
        },
        Request::PingOpen { v6: true },
        Request::PingSend {
            sock: 7,
            dst: IpAddr::V6(v6),
            icmp: vec![128, 0, 0, 0, 0, 1, 0, 2, 9, 9],
        },
        Request::Close { sock: 7 },
        Request::Stats,
        Request::Counters,
        Request::SocketOpen {
            v6: true,
            stream: false,
        },
        Request::Bind {
            addr: "127.0.0.1:7".parse().unwrap(),
        },
        Request::Connect {
            addr: "[::1]:80".parse().unwrap(),
        },
        Request::ConnectWait,
        Request::Listen { backlog: 5 },
        Request::Accept,
        Request::Shutdown { how: 1 },
        Request::SetOpt {
            opt: SockOptWire::NoDelay(true),
        },
        Request::GetOpt {
            name: SockOptNameWire::Error,
        },
        Request::GetName,
        Request::GetPeer,
        Request::SocketList,
        Request::Disconnect,
        Request::SocketOpenRing { v6: true },
        Request::AcceptRing,
        Request::RingOf,
    ]
}

#[test]
fn socket_requests_validate_their_fields() {
    let bad = [
        Request::Shutdown { how: 3 },
        Request::SetOpt {
            opt: SockOptWire::Error(0),
        },
        Request::SetOpt {
            opt: SockOptWire::Congestion("x\ny".into()),
        },
        Request::SetOpt {
            opt: SockOptWire::Congestion("a".repeat(MAX_CONGESTION_NAME + 1)),
        },
    ];
    for req in bad {
        let bytes = encode_request(3, &req).unwrap();
        assert!(
            matches!(decode_request(&bytes), Err(ProtoError::Invalid(_))),
            "{req:?}"
        );
    }
}

#[test]
fn datagram_header_round_trips_and_has_the_documented_layout() {
    let h = DgramHeader {
        addr: Some("10.1.2.3:258".parse().unwrap()),
        flags: DGRAM_TRUNCATED,
        errno: 111,
        pktinfo: Some(("::1".parse().unwrap(), 7)),
    };
    let b = h.encode();
    assert_eq!(b.len(), DGRAM_HEADER_LEN);
    assert_eq!(b[0], 4);
    assert_eq!(b[1], 6);
    assert_eq!(&b[2..4], &[2, 1], "port 258, little-endian");
    assert_eq!(&b[4..8], &[1, 0, 0, 0]);
    assert_eq!(&b[8..12], &[111, 0, 0, 0]);
    assert_eq!(&b[12..16], &[7, 0, 0, 0]);
    assert_eq!(&b[16..20], &[10, 1, 2, 3]);
    assert_eq!(b[47], 1, "::1 ends in 1");
    assert_eq!(DgramHeader::decode(&b).unwrap(), h);
    // Short or nonsensical headers are refused, never a panic.
    assert!(DgramHeader::decode(&b[..47]).is_err());
    let mut odd = b;
    odd[0] = 5;
    assert!(DgramHeader::decode(&odd).is_err());
}

#[test]
fn every_request_round_trips_and_variant_indexes_are_stable() {
    let all = every_request();
    assert_eq!(all.len() as u64, REQUEST_VARIANTS);
    for (index, req) in all.iter().enumerate() {
        let bytes = encode_request(99, req).unwrap();
        // The body starts with the variant index (a one-byte varint here):
        // the numbers documented in docs/protocol.md.
        assert_eq!(bytes[HEADER_LEN] as usize, index, "{req:?}");
        let (id, back) = decode_request(&bytes).unwrap();
        assert_eq!(id, 99);
        assert_eq!(&back, req);
    }
}

#[test]
fn header_layout_is_the_documented_one() {
    let bytes = encode_request(0x0102_0304, &Request::RouteList).unwrap();
    assert_eq!(&bytes[0..4], b"IOPK");
    assert_eq!(&bytes[4..6], &[1, 0], "version 1, little-endian");
    assert_eq!(&bytes[6..8], &[1, 0], "kind 1 = request");
    assert_eq!(&bytes[8..12], &[4, 3, 2, 1], "request id, little-endian");
    assert_eq!(&bytes[12..16], &[1, 0, 0, 0], "body length");
    assert_eq!(&bytes[16..], &[9], "RouteList is variant 9");
    // An address travels as raw octets after its variant byte.
    let b = encode_request(
        1,
        &Request::RouteGet {
            dest: "10.1.2.3".parse().unwrap(),
        },
    )
    .unwrap();
    assert_eq!(&b[16..], &[8, 0, 10, 1, 2, 3]);
    let b = encode_request(
        1,
        &Request::SysctlGet {
            name: "ab".to_string(),
        },
    )
    .unwrap();
    assert_eq!(&b[16..], &[14, 2, b'a', b'b']);
}

#[test]
fn responses_and_events_round_trip() {
    let resps = vec![
        Response::Ok,
        Response::error(errno::EPERM, "no"),
        Response::Interfaces(vec![IfInfo {
            index: 1,
            name: "lo0".into(),
            kind: IfKindWire::Loopback,
            flags: ifflags::UP | ifflags::LOOPBACK,
            mac: MacWire([2, 0, 0, 0, 0, 1]),
            mtu: 33184,
            up: true,
            link_up: true,
            addrs4: vec![Addr4Info {
                addr: Ipv4Addr::LOCALHOST,
                plen: 8,
                broadcast: None,
            }],
            addrs6: vec![Addr6Info {
                addr: Ipv6Addr::LOCALHOST,
                plen: 128,
                state: Addr6StateWire::Tentative,
                autoconf: true,
                valid_secs: Some(7),
                preferred_secs: None,
            }],
            stats: IfStatsWire {
                rx_packets: u64::MAX,
                ..Default::default()
            },
        }]),
        Response::Routes(vec![RouteInfo {
            dest: "::".parse().unwrap(),
            plen: 0,
            gateway: Some("fe80::1".parse().unwrap()),
            ifindex: 2,
            ifname: "en0".into(),
            flags: "UGS".into(),
            expires_secs: Some(1800),
        }]),
        Response::Neighbors(vec![NeighborEntry {
            ip: "10.0.0.1".parse().unwrap(),
            mac: None,
            ifindex: 2,
            ifname: "en0".into(),
            state: "incomplete".into(),
            expires_secs: None,
            is_router: false,
        }]),
        Response::Sysctls(vec![SysctlEntry {
            name: "a.b".into(),
            value: -1,
            description: "x".into(),
        }]),
        Response::Mounted {
            interfaces: vec!["en0".into(), "en1".into()],
        },
        Response::SocketOpened { sock: 3 },
        Response::Stats(vec![StatEntry {
            name: "x".into(),
            value: 5,
        }]),
        Response::Counters(vec![CounterGroupWire {
            name: "ip".into(),
            counters: vec![StatEntry {
                name: "total packets received".into(),
                value: 300,
            }],
        }]),
    ];
    for r in resps {
        let b = encode_response(41, &r).unwrap();
        assert_eq!(
            decode_server_message(&b).unwrap(),
            ServerMessage::Response(41, r)
        );
    }
    let ev = Event::PingReply {
        sock: 1,
        from: "10.0.0.1".parse().unwrap(),
        ttl: 64,
        icmp: vec![0; 64],
    };
    let b = encode_event(&ev).unwrap();
    assert_eq!(decode_server_message(&b).unwrap(), ServerMessage::Event(ev));
}

#[test]
fn mac_is_a_string_in_json_and_six_bytes_on_the_wire() {
    let m = MacWire([0x02, 0, 0, 0xab, 0, 1]);
    assert_eq!(
        postcard::to_stdvec(&m).unwrap(),
        m.0.to_vec(),
        "six raw bytes"
    );
    assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:00:00:ab:00:01\"");
    assert_eq!(
        serde_json::from_str::<MacWire>("\"02:00:00:ab:00:01\"").unwrap(),
        m
    );
    assert_eq!(postcard::from_bytes::<MacWire>(&m.0).unwrap(), m);
    assert_eq!(m.to_string(), "02:00:00:ab:00:01");
    assert_eq!("02:00:00:ab:00:01".parse::<MacWire>().unwrap(), m);
    assert!("02:00:00:ab:00".parse::<MacWire>().is_err());
    assert!("02:00:00:ab:00:01:02".parse::<MacWire>().is_err());
    assert!("02:00:00:ab:00:zz".parse::<MacWire>().is_err());
}

#[test]
fn validation_refuses_bad_fields() {
    let bad = [
        Request::SetAddr4 {
            ifname: "en0".into(),
            addr: Ipv4Addr::LOCALHOST,
            plen: 33,
            op: AddrOp::Set,
        },
        Request::SetAddr6 {
            ifname: "en0".into(),
            addr: Ipv6Addr::LOCALHOST,
            plen: 129,
            op: AddrOp::Set,
        },
        Request::SetUp {
            ifname: "".into(),
            up: true,
        },
        Request::SetUp {
            ifname: "much_too_long_name0".into(),
            up: true,
        },
        Request::SetMtu {
            ifname: "en0/../x".into(),
            mtu: 1500,
        },
        Request::RouteAdd(RouteSpec {
            dest: "10.0.0.0".parse().unwrap(),
            plen: 8,
            gateway: Some("fe80::1".parse().unwrap()),
            ifname: None,
        }),
        Request::SysctlGet {
            name: "Net Inet".into(),
        },
        Request::Mount {
            instance: 0,
            kind: ModuleKindWire::Any,
            module: "".into(),
            options: "".into(),
        },
        Request::Mount {
            instance: 0,
            kind: ModuleKindWire::Any,
            module: "x\n".into(),
            options: "".into(),
        },
        Request::PingSend {
            sock: 1,
            dst: "10.0.0.1".parse().unwrap(),
            icmp: vec![8, 0, 0],
        },
    ];
    for req in bad {
        let b = encode_request(1, &req).unwrap();
        match decode_request(&b) {
            Err(ProtoError::Invalid(_)) => {}
            other => panic!("{req:?} gave {other:?}"),
        }
    }
}

#[test]
fn framing_errors_are_reported() {
    let mut b = encode_request(1, &Request::RouteList).unwrap();
    assert_eq!(decode_request(&b[..10]), Err(ProtoError::Truncated));
    assert_eq!(decode_request(&b[..16]), Err(ProtoError::Truncated));
    b[4] = 2;
    assert_eq!(decode_request(&b), Err(ProtoError::Version(2)));
    b[4] = 1;
    b[0] = b'X';
    assert_eq!(decode_request(&b), Err(ProtoError::BadMagic));
    b[0] = b'I';
    b[12..16].copy_from_slice(&((MAX_BODY as u32) + 1).to_le_bytes());
    assert_eq!(decode_request(&b), Err(ProtoError::TooLong(MAX_BODY + 1)));
    // A newer client's request kind is "unsupported", not garbage.
    let mut u = encode_request(1, &Request::RouteList).unwrap();
    u[16] = 77;
    assert_eq!(decode_request(&u), Err(ProtoError::Unsupported(77)));
    assert_eq!(ProtoError::Unsupported(77).errno(), errno::ENOSYS);
    // Trailing bytes after a valid body.
    let mut t = encode_request(1, &Request::SysctlGet { name: "a".into() }).unwrap();
    t.push(0);
    t[12] += 1;
    assert!(matches!(decode_request(&t), Err(ProtoError::Decode(_))));
}

#[test]
fn framer_cuts_a_stream_fed_byte_by_byte() {
    let reqs = every_request();
    let mut stream = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        stream.extend(encode_request(i as u32, r).unwrap());
    }
    let mut f = Framer::new();
    let mut got = Vec::new();
    for b in stream {
        assert!(f.wanted() >= 1);
        f.push(&[b]);
        while let Some(fr) = f.next_frame().unwrap() {
            got.push((fr.header.request_id, decode_request_body(&fr.body).unwrap()));
        }
    }
    assert_eq!(f.buffered(), 0);
    assert_eq!(got.len(), reqs.len());
    for (i, (id, r)) in got.into_iter().enumerate() {
        assert_eq!(id as usize, i);
        assert_eq!(r, reqs[i]);
    }
}

proptest! {
    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_request(&bytes);
        let _ = decode_server_message(&bytes);
        let _ = decode_request_body(&bytes);
        let mut f = Framer::new();
        f.push(&bytes);
        let _ = f.next_frame();
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), kind in 1u16..=3) {
        let mut b = Vec::new();
        b.extend_from_slice(b"IOPK");
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&(body.len() as u32).to_le_bytes());
        b.extend_from_slice(&body);
        if let Ok((id, req)) = decode_request(&b) {
            // Whatever decodes is valid and encodes back to the same request.
            prop_assert_eq!(id, 5);
            prop_assert!(req.validate().is_ok());
            let again = encode_request(5, &req).unwrap();
            prop_assert_eq!(decode_request(&again).unwrap().1, req);
        }
        let _ = decode_server_message(&b);
    }

    #[test]
    fn mutated_valid_requests_never_panic(idx in 0usize..21, pos in any::<usize>(), val in any::<u8>()) {
        let reqs = every_request();
        let mut b = encode_request(3, &reqs[idx % reqs.len()]).unwrap();
        let p = pos % b.len();
        b[p] = val;
        let _ = decode_request(&b);
    }
}

#[test]
fn counters_answer_is_response_eleven_with_nested_groups() {
    let r = Response::Counters(vec![
        CounterGroupWire {
            name: "ip".into(),
            counters: vec![StatEntry {
                name: "a".into(),
                value: 300,
            }],
        },
        CounterGroupWire {
            name: "arp".into(),
            counters: vec![],
        },
    ]);
    let b = encode_response(1, &r).unwrap();
    // Variant 11; two groups; "ip", one counter "a" = 300 (varint ac 02);
    // "arp", no counters.
    assert_eq!(
        &b[HEADER_LEN..],
        &[
            11, 2, 2, b'i', b'p', 1, 1, b'a', 0xac, 0x02, 3, b'a', b'r', b'p', 0
        ]
    );
}
