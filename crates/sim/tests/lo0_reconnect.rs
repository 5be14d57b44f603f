//! Connections from a stack to itself over lo0, the server closing first
//! (as an HTTP/1.0 server does): the server's side of each finished
//! connection stays in TIME-WAIT (RFC 9293 section 3.6). A new connection
//! whose ephemeral port made the same 4-tuple would have its SYN answered
//! with an ACK from that TIME-WAIT, reset, and retried only after the
//! initial retransmission timeout (RFC 6298: 1 s). The stack knows both
//! sides, so it never picks such a port: every connection is established
//! at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_sim::Sim;
use iopkt_stack::error::Error;
use iopkt_stack::tcp::State;
use iopkt_stack::transport::SockType;

/// Enough connections that random ports would collide with the TIME-WAIT
/// ones dozens of times (n²/2 over the 28,232 ephemeral ports).
const CONNECTIONS: usize = 1500;

#[test]
fn reconnecting_to_ourselves_never_waits_for_a_syn_retransmission() {
    let mut sim = Sim::new(7);
    let n = sim.add_node("n");
    let at = SocketAddr::new("127.0.0.1".parse::<IpAddr>().unwrap(), 80);
    let l = sim
        .with(n, |s, c| s.socket_open(c, false, SockType::Stream))
        .unwrap();
    sim.with(n, |s, c| s.socket_bind(c, l, at)).unwrap();
    sim.with(n, |s, c| s.socket_listen(c, l, 16)).unwrap();
    for i in 0..CONNECTIONS {
        let c = sim
            .with(n, |s, cx| s.socket_open(cx, false, SockType::Stream))
            .unwrap();
        let r = sim.with(n, |s, cx| s.socket_connect(cx, c, at));
        assert!(matches!(r, Ok(()) | Err(Error::InProgress)), "{r:?}");
        // Far below the 1 s a retransmitted SYN would take.
        let mut server = None;
        let up = sim.run_until(Duration::from_millis(100), |s| {
            if server.is_none() {
                server = s.with(n, |st, cx| st.socket_accept(cx, l)).ok();
            }
            server.is_some() && s.stack(n).tcp.state(c) == Some(State::Established)
        });
        let port = sim.stack(n).socket_local(c).map(|a| a.port());
        assert!(
            up,
            "connection {i} (from port {port:?}) was not established at once"
        );
        let (srv, _) = server.unwrap();
        // The server closes first and keeps the TIME-WAIT; then the client.
        sim.with(n, |s, cx| s.socket_close(cx, srv));
        sim.run_for(Duration::from_millis(1));
        sim.with(n, |s, cx| s.socket_close(cx, c));
        sim.run_for(Duration::from_millis(1));
    }
    // The TIME-WAITs really were there to collide with.
    assert!(
        sim.stack(n).tcp.count_in(State::TimeWait) >= CONNECTIONS,
        "{} in TIME-WAIT",
        sim.stack(n).tcp.count_in(State::TimeWait)
    );
}
