//! UDP calls the socket library maps Linux semantics onto, on the
//! simulated network: connect(AF_UNSPEC) dissolving an association
//! (`socket_disconnect`) and a datagram sent from a source the
//! application chose (`socket_send_from`, IP_PKTINFO / IPV6_PKTINFO).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{LinkCfg, NodeId, Sim};
use iopkt_stack::IfIndex;
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::transport::SockType;

const EN0: IfIndex = 2;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// a: 10.0.0.1 and 10.0.0.11, 2001:db8::a and 2001:db8::aa; b: 10.0.0.2,
/// 2001:db8::b; neighbours resolved.
fn pair(seed: u64) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    sim.connect(a, b, LinkCfg::default());
    for (n, v4s, v6s) in [
        (
            a,
            &["10.0.0.1", "10.0.0.11"][..],
            &["2001:db8::a", "2001:db8::aa"][..],
        ),
        (b, &["10.0.0.2"][..], &["2001:db8::b"][..]),
    ] {
        sim.with(n, |s, ctx| {
            s.set_link(ctx, EN0, true).unwrap();
            for v in v4s {
                s.add_addr4(ctx, EN0, v.parse().unwrap(), 24, true).unwrap();
            }
            for v in v6s {
                s.add_addr6(ctx, EN0, v.parse().unwrap(), 64).unwrap();
            }
        });
    }
    sim.run_for(Duration::from_secs(3));
    (sim, a, b)
}

fn udp(sim: &mut Sim, n: NodeId, v6: bool, bind: &str) -> SocketId {
    sim.with(n, |s, ctx| {
        let id = s.socket_open(ctx, v6, SockType::Datagram).unwrap();
        s.socket_bind(ctx, id, sa(bind)).unwrap();
        id
    })
}

/// The next datagram for `id` within a second: (payload, sender).
fn next(sim: &mut Sim, n: NodeId, id: SocketId) -> Option<(Vec<u8>, SocketAddr)> {
    let mut got = None;
    sim.run_until(Duration::from_secs(1), |s| {
        let mut buf = [0u8; 100];
        match s.with(n, |st, ctx| st.socket_recv(ctx, id, &mut buf, false)) {
            Ok(r) => {
                got = Some((buf[..r.len].to_vec(), r.from.unwrap()));
                true
            }
            Err(_) => false,
        }
    });
    got
}

#[test]
fn disconnect_dissolves_the_association_and_gives_the_wildcard_back() {
    let (mut sim, a, b) = pair(1);
    let srv = udp(&mut sim, b, false, "0.0.0.0:5000");
    let other = udp(&mut sim, b, false, "0.0.0.0:5001");
    let c = udp(&mut sim, a, false, "0.0.0.0:4000");
    sim.with(a, |s, ctx| s.socket_connect(ctx, c, sa("10.0.0.2:5000")))
        .unwrap();
    // connect chose the source of the route.
    let chosen = sim.stack(a).socket_local(c).unwrap();
    assert!(!chosen.ip().is_unspecified() && chosen.port() == 4000);
    // Only the peer reaches a connected socket.
    let from_other = |sim: &mut Sim| {
        sim.with(b, |s, ctx| {
            s.socket_send(ctx, other, b"other", Some(sa("10.0.0.1:4000")))
        })
        .unwrap();
    };
    from_other(&mut sim);
    assert_eq!(next(&mut sim, a, c), None);

    sim.with(a, |s, _| s.socket_disconnect(c)).unwrap();
    assert_eq!(sim.stack(a).socket_peer(c), None);
    // The address connect() filled in is the wildcard again; the port stays.
    assert_eq!(sim.stack(a).socket_local(c), Some(sa("0.0.0.0:4000")));
    assert_eq!(
        sim.with(a, |s, ctx| s.socket_send(ctx, c, b"x", None)),
        Err(Error::NotConnected)
    );
    from_other(&mut sim);
    assert_eq!(
        next(&mut sim, a, c),
        Some((b"other".to_vec(), sa("10.0.0.2:5001")))
    );
    sim.with(a, |s, ctx| {
        s.socket_send(ctx, c, b"to", Some(sa("10.0.0.2:5000")))
    })
    .unwrap();
    assert_eq!(next(&mut sim, b, srv).map(|x| x.0), Some(b"to".to_vec()));
    // Twice is harmless; an explicitly bound address stays.
    sim.with(a, |s, _| s.socket_disconnect(c)).unwrap();
    let bound = udp(&mut sim, a, false, "10.0.0.11:4001");
    sim.with(a, |s, ctx| {
        s.socket_connect(ctx, bound, sa("10.0.0.2:5000"))
    })
    .unwrap();
    sim.with(a, |s, _| s.socket_disconnect(bound)).unwrap();
    assert_eq!(sim.stack(a).socket_local(bound), Some(sa("10.0.0.11:4001")));
    // Not for TCP.
    let t = sim
        .with(a, |s, ctx| s.socket_open(ctx, false, SockType::Stream))
        .unwrap();
    assert!(matches!(
        sim.with(a, |s, _| s.socket_disconnect(t)),
        Err(Error::NotSupported(_))
    ));
}

#[test]
fn send_from_uses_the_chosen_source_for_that_datagram_only() {
    let (mut sim, a, b) = pair(2);
    for (v6, bind_b, dst, mine) in [
        (
            false,
            "0.0.0.0:6000",
            "10.0.0.2:6000",
            ["10.0.0.1", "10.0.0.11"],
        ),
        (
            true,
            "[::]:6001",
            "[2001:db8::b]:6001",
            ["2001:db8::a", "2001:db8::aa"],
        ),
    ] {
        let srv = udp(&mut sim, b, v6, bind_b);
        let c = udp(&mut sim, a, v6, if v6 { "[::]:0" } else { "0.0.0.0:0" });
        // The stack's own choice first; then the other address, chosen.
        sim.with(a, |s, ctx| s.socket_send(ctx, c, b"usual", Some(sa(dst))))
            .unwrap();
        let (_, from2) = next(&mut sim, b, srv).expect("datagram");
        let usual = from2.ip();
        let chosen: IpAddr = mine
            .iter()
            .map(|m| m.parse().unwrap())
            .find(|m| *m != usual)
            .unwrap();
        sim.with(a, |s, ctx| {
            s.socket_send_from(ctx, c, b"chosen", Some(sa(dst)), Some(chosen), 0)
        })
        .unwrap();
        let (d, from) = next(&mut sim, b, srv).expect("datagram");
        assert_eq!((d.as_slice(), from.ip()), (&b"chosen"[..], chosen));
        // For that datagram only.
        sim.with(a, |s, ctx| s.socket_send(ctx, c, b"usual", Some(sa(dst))))
            .unwrap();
        assert_eq!(next(&mut sim, b, srv).map(|x| x.1.ip()), Some(usual));
        // Same port both times; the socket stays a wildcard one.
        assert_eq!(from.port(), from2.port());
        assert!(sim.stack(a).socket_local(c).unwrap().ip().is_unspecified());
        // With an interface: it must exist; an unspecified source leaves
        // the choice to the stack.
        assert!(matches!(
            sim.with(a, |s, ctx| s.socket_send_from(
                ctx,
                c,
                b"x",
                Some(sa(dst)),
                None,
                99
            )),
            Err(Error::NoSuchInterface(_))
        ));
        let unspec = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        sim.with(a, |s, ctx| {
            s.socket_send_from(ctx, c, b"any", Some(sa(dst)), Some(unspec), EN0)
        })
        .unwrap();
        assert_eq!(next(&mut sim, b, srv).map(|x| x.1.ip()), Some(usual));
    }
    // A source that is not the stack's is refused.
    let c = udp(&mut sim, a, false, "0.0.0.0:0");
    assert!(matches!(
        sim.with(a, |s, ctx| s.socket_send_from(
            ctx,
            c,
            b"x",
            Some(sa("10.0.0.2:6000")),
            Some("10.0.0.99".parse().unwrap()),
            0
        )),
        Err(Error::Invalid(_))
    ));
    // An IPv6 source on an IPv4 socket too.
    assert!(matches!(
        sim.with(a, |s, ctx| s.socket_send_from(
            ctx,
            c,
            b"x",
            Some(sa("10.0.0.2:6000")),
            Some("2001:db8::a".parse().unwrap()),
            0
        )),
        Err(Error::Invalid(_))
    ));
}
