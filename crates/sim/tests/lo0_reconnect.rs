//! Connections from a stack to itself over lo0, the server closing first
//! (as an HTTP/1.0 server does): the server's side of each finished
//! connection stays in TIME-WAIT (RFC 9293 section 3.6), and the client's
//! ephemeral ports soon make the same 4-tuples again. A SYN for such a
//! tuple reopens the connection from TIME-WAIT (RFC 1122 section
//! 4.2.2.13, RFC 6191) instead of being answered with an ACK, reset, and
//! retried only after the initial retransmission timeout (RFC 6298: 1 s).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::SockType;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("test address"), port)
}

fn listener(sim: &mut Sim, n: NodeId, at: SocketAddr) -> SocketId {
    let l = sim
        .with(n, |s, c| s.socket_open(c, false, SockType::Stream))
        .unwrap();
    sim.with(n, |s, c| s.socket_bind(c, l, at)).unwrap();
    sim.with(n, |s, c| s.socket_listen(c, l, 16)).unwrap();
    l
}

/// Connects `c` to `at` and accepts it on `l`; whether both ends were up
/// within 100 ms (far below the 1 s a retransmitted SYN would take).
fn connect_at_once(
    sim: &mut Sim,
    n: NodeId,
    l: SocketId,
    c: SocketId,
    at: SocketAddr,
) -> Option<SocketId> {
    let r = sim.with(n, |s, cx| s.socket_connect(cx, c, at));
    assert!(matches!(r, Ok(()) | Err(Error::InProgress)), "{r:?}");
    let mut server = None;
    let up = sim.run_until(Duration::from_millis(100), |s| {
        if server.is_none() {
            server = s.with(n, |st, cx| st.socket_accept(cx, l)).ok();
        }
        server.is_some() && s.stack(n).tcp.state(c) == Some(State::Established)
    });
    server.filter(|_| up).map(|(id, _)| id)
}

/// The server closes first (its side stays in TIME-WAIT), then the client.
fn close_server_first(sim: &mut Sim, n: NodeId, srv: SocketId, c: SocketId) {
    sim.with(n, |s, cx| s.socket_close(cx, srv));
    sim.run_for(Duration::from_millis(1));
    sim.with(n, |s, cx| s.socket_close(cx, c));
    sim.run_for(Duration::from_millis(1));
}

#[test]
fn a_syn_for_a_tuple_in_time_wait_reopens_it_at_once() {
    let mut sim = Sim::new(5);
    let n = sim.add_node("n");
    let at = sa("127.0.0.1", 80);
    let l = listener(&mut sim, n, at);
    for round in 0..3 {
        // The same client port every time: the same 4-tuple.
        let c = sim
            .with(n, |s, cx| s.socket_open(cx, false, SockType::Stream))
            .unwrap();
        sim.with(n, |s, cx| s.socket_bind(cx, c, sa("127.0.0.1", 40_000)))
            .unwrap();
        let srv = connect_at_once(&mut sim, n, l, c, at);
        assert!(srv.is_some(), "round {round}: not established at once");
        // Data flows on the new incarnation.
        let srv = srv.unwrap();
        sim.with(n, |s, cx| s.socket_send(cx, c, b"hello", None))
            .unwrap();
        sim.run_for(Duration::from_millis(1));
        let mut b = [0u8; 8];
        let got = sim.with(n, |s, cx| s.socket_recv(cx, srv, &mut b, false));
        assert_eq!(got.map(|r| r.len), Ok(5), "round {round}");
        close_server_first(&mut sim, n, srv, c);
        assert_eq!(sim.stack(n).tcp.count_in(State::TimeWait), 1);
    }
}

/// Enough connections that random ports meet the TIME-WAIT ones dozens of
/// times (n²/2 over the 28,232 ephemeral ports).
const CONNECTIONS: usize = 1500;

#[test]
fn reconnecting_to_ourselves_never_waits_for_a_syn_retransmission() {
    let mut sim = Sim::new(7);
    let n = sim.add_node("n");
    let at = sa("127.0.0.1", 80);
    let l = listener(&mut sim, n, at);
    for i in 0..CONNECTIONS {
        let c = sim
            .with(n, |s, cx| s.socket_open(cx, false, SockType::Stream))
            .unwrap();
        let srv = connect_at_once(&mut sim, n, l, c, at);
        let port = sim.stack(n).socket_local(c).map(|a| a.port());
        assert!(
            srv.is_some(),
            "connection {i} (from port {port:?}) was not established at once"
        );
        close_server_first(&mut sim, n, srv.unwrap(), c);
    }
    // Each connection left one TIME-WAIT, except those reopened.
    let tw = sim.stack(n).tcp.count_in(State::TimeWait);
    assert!(
        tw > CONNECTIONS * 9 / 10 && tw <= CONNECTIONS,
        "{tw} in TIME-WAIT"
    );
}
