//! `netstat -a`'s view of the stack: connections the application already
//! closed stay listed until TCP lets go of them (TIME-WAIT, RFC 9293
//! section 3.6).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{LinkCfg, NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::SockType;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("test address"), port)
}

fn state(sim: &Sim, n: NodeId, id: SocketId) -> Option<State> {
    sim.stack(n).tcp.state(id)
}

#[test]
fn closed_connections_stay_in_the_full_listing_until_time_wait_ends() {
    let mut sim = Sim::new(11);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let (ia, ib) = sim.connect(a, b, LinkCfg::default());
    sim.with(a, |s, c| {
        s.add_addr4(c, ia, "10.0.0.1".parse().unwrap(), 24, false)
    })
    .unwrap();
    sim.with(b, |s, c| {
        s.add_addr4(c, ib, "10.0.0.2".parse().unwrap(), 24, false)
    })
    .unwrap();
    let at = sa("10.0.0.2", 80);
    let l = sim
        .with(b, |s, c| s.socket_open(c, false, SockType::Stream))
        .unwrap();
    sim.with(b, |s, c| s.socket_bind(c, l, at)).unwrap();
    sim.with(b, |s, c| s.socket_listen(c, l, 4)).unwrap();
    let c = sim
        .with(a, |s, cx| s.socket_open(cx, false, SockType::Stream))
        .unwrap();
    assert_eq!(
        sim.with(a, |s, cx| s.socket_connect(cx, c, at)),
        Err(Error::InProgress)
    );
    let mut server = None;
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        if server.is_none() {
            server = s
                .with(b, |st, cx| st.socket_accept(cx, l))
                .ok()
                .map(|x| x.0);
        }
        server.is_some() && state(s, a, c) == Some(State::Established)
    }));
    let server = server.unwrap();

    // While the application holds it, both listings show it once.
    let all = sim.stack(a).socket_list_all();
    assert_eq!(all, sim.stack(a).socket_list());
    assert_eq!(all.iter().filter(|i| i.id == c).count(), 1);

    // The active closer ends in TIME-WAIT with no handle left.
    sim.with(a, |s, cx| s.socket_close(cx, c));
    assert!(sim.run_until(Duration::from_secs(2), |s| state(s, a, c)
        == Some(State::FinWait2)));
    sim.with(b, |s, cx| s.socket_close(cx, server));
    assert!(sim.run_until(Duration::from_secs(2), |s| state(s, a, c)
        == Some(State::TimeWait)));
    assert!(sim.stack(a).socket_list().iter().all(|i| i.id != c));
    let all = sim.stack(a).socket_list_all();
    let shown: Vec<_> = all.iter().filter(|i| i.id == c).collect();
    assert_eq!(shown.len(), 1, "{all:?}");
    assert_eq!(shown[0].state, "TIME_WAIT");
    assert_eq!(shown[0].proto, "tcp");
    assert_eq!(shown[0].remote, Some(at));
    assert_eq!(
        shown[0].local.map(|x| x.ip()),
        Some("10.0.0.1".parse().unwrap())
    );

    // The listener on b is still there, and listed once.
    let on_b = sim.stack(b).socket_list_all();
    assert_eq!(
        on_b.iter()
            .filter(|i| i.id == l && i.state == "LISTEN")
            .count(),
        1
    );

    // After 2 MSL the connection is gone from every listing.
    assert!(sim.run_until(Duration::from_secs(120), |s| state(s, a, c).is_none()));
    assert!(sim.stack(a).socket_list_all().iter().all(|i| i.id != c));
}
