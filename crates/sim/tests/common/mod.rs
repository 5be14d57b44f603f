//! Helpers the simulator's TCP test files share: addresses, a test
//! pattern, and moving a byte stream through a connection.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iopkt_sim::{LinkCfg, NodeId, Sim};
use iopkt_stack::error::Error;
use iopkt_stack::socket::SocketId;
use iopkt_stack::{IfIndex, PktBuf};
use iopkt_wire::checksum;

pub const A4: &str = "10.0.0.1";
pub const B4: &str = "10.0.0.2";
pub const A6: &str = "fd00::1";
pub const B6: &str = "fd00::2";

/// Two hosts, `a` and `b`, on one cable.
pub struct Net {
    pub sim: Sim,
    pub a: NodeId,
    pub b: NodeId,
    pub ia: IfIndex,
    pub ib: IfIndex,
}

/// Two hosts on a cable with `latency`, addresses in both families
/// (A4/A6 and B4/B6), ready to use.
pub fn net_with(seed: u64, latency: Duration) -> Net {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a");
    let b = sim.add_node("b");
    let (ia, ib) = sim.connect(
        a,
        b,
        LinkCfg {
            latency,
            ..LinkCfg::default()
        },
    );
    for (n, i, v4, v6) in [(a, ia, A4, A6), (b, ib, B4, B6)] {
        sim.with(n, |s, c| {
            s.add_addr4(c, i, v4.parse().unwrap(), 24, false).unwrap();
            s.add_addr6(c, i, v6.parse().unwrap(), 64).unwrap();
        });
    }
    // Duplicate address detection must finish before IPv6 can be used.
    sim.run_for(Duration::from_secs(3));
    Net { sim, a, b, ia, ib }
}

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

/// Rewrites an Ethernet + IPv4 + TCP frame's flags, sequence number and
/// payload, fixing the lengths and checksums.
pub fn forge_v4(frame: &[u8], flags: u8, seq: u32, payload: &[u8]) -> PktBuf {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let l4 = 14 + ihl;
    let thl = usize::from(frame[l4 + 12] >> 4) * 4;
    let mut f = frame[..l4 + thl].to_vec();
    f.extend_from_slice(payload);
    f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    f[l4 + 13] = flags;
    seal_v4(&mut f)
}

/// Sets an Ethernet + IPv4 + TCP frame's IPv4 total length and both
/// checksums after its bytes were rewritten, and makes it a packet.
pub fn seal_v4(f: &mut [u8]) -> PktBuf {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let l4 = 14 + ihl;
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    let src: [u8; 4] = f[26..30].try_into().unwrap();
    let dst: [u8; 4] = f[30..34].try_into().unwrap();
    let p = checksum::pseudo_v4(src.into(), dst.into(), 6, (f.len() - l4) as u16);
    let c = checksum::finish(checksum::sum(p, &f[l4..]));
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    PktBuf::from_slice(f)
}
