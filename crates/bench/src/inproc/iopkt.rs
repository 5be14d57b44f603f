//! iopkt's side of the in-process benchmark: two stacks of the simulator
//! joined by one link without latency or impairment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use iopkt_sim::{LinkCfg, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::transport::SockType;

use super::{Checker, Transfer};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 5001;
/// Virtual time a whole transfer may take before it counts as stuck.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(600);

/// Moves `data` from one stack to the other with the stacks' default
/// buffer sizes; the clock runs from the first byte offered to the last
/// byte read (the handshake is not timed).
pub fn iopkt_bulk(data: &[u8]) -> Result<Transfer, String> {
    let mut sim = Sim::new(1);
    let a = sim.add_node("sender");
    let b = sim.add_node("receiver");
    let (ia, ib) = sim.connect(a, b, LinkCfg::default());
    sim.with(a, |s, c| s.add_addr4(c, ia, A, 24, false))
        .map_err(|e| format!("address: {e}"))?;
    sim.with(b, |s, c| s.add_addr4(c, ib, B, 24, false))
        .map_err(|e| format!("address: {e}"))?;
    sim.run_for(Duration::from_secs(1));

    let to = SocketAddr::new(IpAddr::V4(B), PORT);
    let listener = sim
        .with(b, |s, c| {
            let l = s.socket_open(c, false, SockType::Stream)?;
            s.socket_bind(c, l, to)?;
            s.socket_listen(c, l, 4)?;
            Ok::<_, Error>(l)
        })
        .map_err(|e| format!("listen: {e}"))?;
    let client = sim
        .with(a, |s, c| s.socket_open(c, false, SockType::Stream))
        .map_err(|e| format!("socket: {e}"))?;
    match sim.with(a, |s, c| s.socket_connect(c, client, to)) {
        Err(Error::InProgress) | Ok(()) => {}
        Err(e) => return Err(format!("connect: {e}")),
    }
    let mut server = None;
    sim.run_until(Duration::from_secs(5), |sim| {
        if server.is_none() {
            server = sim
                .with(b, |s, c| s.socket_accept(c, listener))
                .ok()
                .map(|x| x.0);
        }
        server.is_some()
    });
    let server = server.ok_or("the handshake did not complete")?;

    let mut buf = vec![0u8; 64 * 1024];
    let mut check = Checker::new(data);
    let mut sent = 0;
    let mut failure = None;
    let start = Instant::now();
    sim.run_until(VIRTUAL_LIMIT, |sim| {
        while sent < data.len() {
            let rest = data.get(sent..).unwrap_or_default();
            match sim.with(a, |s, c| s.socket_send(c, client, rest, None)) {
                Ok(0) | Err(Error::WouldBlock) => break,
                Ok(n) => sent += n,
                Err(e) => {
                    failure = Some(format!("send: {e}"));
                    return true;
                }
            }
        }
        loop {
            match sim.with(b, |s, c| s.socket_recv(c, server, &mut buf, false)) {
                Ok(r) if r.len == 0 => break,
                Ok(r) => check.take(buf.get(..r.len).unwrap_or_default()),
                Err(Error::WouldBlock) => break,
                Err(e) => {
                    failure = Some(format!("recv: {e}"));
                    return true;
                }
            }
        }
        check.done()
    });
    let elapsed = start.elapsed();
    if let Some(f) = failure {
        return Err(f);
    }
    if !check.done() {
        return Err(format!(
            "only part of the data arrived within {VIRTUAL_LIMIT:?} of virtual time"
        ));
    }
    Ok(Transfer {
        elapsed,
        intact: check.intact(),
    })
}
