//! Helpers the simulator's TCP test files share: addresses, a test
//! pattern, and moving a byte stream through a connection.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;

pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("test address"), port)
}

/// Bytes that differ by position and by `salt`, so a misplaced or
/// repeated piece shows.
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 251) as u8) ^ salt)
        .collect()
}

/// Reads what socket `id` of node `n` has into `into`: `Ok(true)` at end
/// of stream, `Ok(false)` when nothing more is there now.
pub fn recv_all(sim: &mut Sim, n: NodeId, id: SocketId, into: &mut Vec<u8>) -> Result<bool, Error> {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sim.with(n, |s, c| s.socket_recv(c, id, &mut buf, false)) {
            Ok(i) if i.len == 0 => return Ok(true),
            Ok(i) => into.extend_from_slice(&buf[..i.len]),
            Err(Error::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Sends `data` from (tx, ts) to (rx, rs) as fast as the connection
/// takes it; returns what arrived within `limit`.
pub fn pump(
    sim: &mut Sim,
    (tx, ts): (NodeId, SocketId),
    (rx, rs): (NodeId, SocketId),
    data: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    sim.run_until(limit, |s| {
        while sent < data.len() {
            match s.with(tx, |st, c| st.socket_send(c, ts, &data[sent..], None)) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        recv_all(s, rx, rs, &mut got).expect("recv");
        got.len() >= data.len()
    });
    got
}
