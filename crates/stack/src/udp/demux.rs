//! UDP port demux: which socket a datagram is for, and who may bind where.
//!
//! Sockets are found through the port table (`UdpState::ports`), so input
//! looks only at the sockets of one port. Among them the most specific
//! match wins, as in Linux's scoring: a connected socket whose peer is the
//! sender beats one bound to the destination address, which beats a
//! wildcard bind; an IPv4 socket beats a dual-stack IPv6 one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ctx::Ctx;
use crate::socket::SocketId;
use crate::stack::Stack;

use super::{EPHEMERAL_FIRST, EPHEMERAL_LAST, UdpSocket, canon, v4_of};

/// The addresses a bound socket receives on, per family: `Some(unspecified)`
/// for all of them, `None` for none of that family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

pub(crate) fn reach(s: &UdpSocket) -> Reach {
    match s.local_ip {
        IpAddr::V4(a) => Reach {
            v4: Some(a),
            v6: None,
        },
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => Reach {
                v4: Some(m),
                v6: None,
            },
            // RFC 3493 section 5.3: an IPv6 wildcard socket also gets IPv4
            // traffic as v4-mapped addresses unless IPV6_V6ONLY.
            None if a.is_unspecified() => Reach {
                v4: (!s.opts.v6only).then_some(Ipv4Addr::UNSPECIFIED),
                v6: Some(a),
            },
            None => Reach {
                v4: None,
                v6: Some(a),
            },
        },
    }
}

fn overlap4(a: Option<Ipv4Addr>, b: Option<Ipv4Addr>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x.is_unspecified() || y.is_unspecified() || x == y)
}

fn overlap6(a: Option<Ipv6Addr>, b: Option<Ipv6Addr>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x.is_unspecified() || y.is_unspecified() || x == y)
}

/// Where a datagram is going, for the demux.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// Sender, in its own family (IPv4 for IPv4 datagrams).
    pub from: SocketAddr,
    /// Destination, in the datagram's family.
    pub to: SocketAddr,
}

/// How well socket `s` matches a datagram, `None` for not at all.
fn score(s: &UdpSocket, t: &Target) -> Option<u32> {
    let r = reach(s);
    let mut score = 0;
    match t.to.ip() {
        IpAddr::V4(d) => {
            let l = r.v4?;
            if !l.is_unspecified() {
                if l != d {
                    return None;
                }
                score += 4;
            }
            if !s.v6 {
                score += 1;
            }
        }
        IpAddr::V6(d) => {
            if !s.v6 {
                return None;
            }
            let l = r.v6?;
            if !l.is_unspecified() {
                if l != d {
                    return None;
                }
                score += 4;
            }
        }
    }
    if let Some(p) = s.peer {
        if canon(p) != canon(t.from) {
            return None;
        }
        score += 8;
    }
    Some(score)
}

/// A stable hash of the 4-tuple, to spread SO_REUSEPORT groups (the same
/// flow always reaches the same socket).
fn flow_hash(t: &Target) -> u64 {
    let mut h = DefaultHasher::new();
    t.from.hash(&mut h);
    t.to.hash(&mut h);
    h.finish()
}

impl Stack {
    /// Whether binding socket `id` to `ip`:`port` clashes with a socket
    /// already there: their addresses overlap and they did not both ask to
    /// share with SO_REUSEADDR or SO_REUSEPORT.
    pub(crate) fn udp_bind_conflict(&self, id: SocketId, ip: IpAddr, port: u16) -> bool {
        let Ok(me) = self.udp_sock(id) else {
            return true;
        };
        let mine = reach(&UdpSocket {
            local_ip: ip,
            ..UdpSocket::new(me.v6)
        });
        let mine = Reach {
            v4: if me.v6 && me.opts.v6only {
                None
            } else {
                mine.v4
            },
            ..mine
        };
        let Some(list) = self.udp.ports.get(&port) else {
            return false;
        };
        list.iter().filter(|o| **o != id).any(|o| {
            let Ok(other) = self.udp_sock(*o) else {
                return false;
            };
            let theirs = reach(other);
            let overlaps = overlap4(mine.v4, theirs.v4) || overlap6(mine.v6, theirs.v6);
            let shared = (me.opts.reuse_port && other.opts.reuse_port)
                || (me.opts.reuse_addr && other.opts.reuse_addr);
            overlaps && !shared
        })
    }

    /// An unused ephemeral port: RFC 6056 section 3.3.1 (algorithm 1), a
    /// random start then a walk. A port is taken only if no socket at all
    /// holds it, so ephemeral ports are never shared.
    pub(crate) fn udp_pick_port(&self, ctx: &mut impl Ctx) -> Option<u16> {
        let n = (EPHEMERAL_LAST - EPHEMERAL_FIRST) as u64 + 1;
        let start = ctx.random_below(n);
        (0..n)
            .map(|i| EPHEMERAL_FIRST + ((start + i) % n) as u16)
            .find(|p| !self.udp.ports.contains_key(p))
    }

    /// The socket a unicast datagram is for, if any.
    pub(crate) fn udp_lookup(&self, t: &Target) -> Option<SocketId> {
        let list = self.udp.ports.get(&t.to.port())?;
        let mut best: Option<u32> = None;
        let mut tied: Vec<SocketId> = Vec::new();
        for id in list {
            let Ok(s) = self.udp_sock(*id) else {
                continue;
            };
            let Some(sc) = score(s, t) else {
                continue;
            };
            match best {
                Some(b) if sc < b => {}
                Some(b) if sc == b => tied.push(*id),
                _ => {
                    best = Some(sc);
                    tied.clear();
                    tied.push(*id);
                }
            }
        }
        let all_reuseport = tied.len() > 1
            && tied
                .iter()
                .all(|i| self.udp_sock(*i).is_ok_and(|s| s.opts.reuse_port));
        if all_reuseport {
            let k = (flow_hash(t) % tied.len() as u64) as usize;
            return tied.get(k).copied();
        }
        // Sockets sharing an address through SO_REUSEADDR: the one bound
        // last takes unicast (BSD's behaviour).
        tied.last().copied()
    }

    /// Every socket a broadcast or multicast datagram matches by address
    /// and peer (group membership is checked by the caller).
    pub(crate) fn udp_lookup_all(&self, t: &Target) -> Vec<SocketId> {
        let Some(list) = self.udp.ports.get(&t.to.port()) else {
            return Vec::new();
        };
        list.iter()
            .copied()
            .filter(|id| self.udp_sock(*id).is_ok_and(|s| score(s, t).is_some()))
            .collect()
    }

    /// The connected socket that sent `local` → `remote`, for ICMP errors.
    pub(crate) fn udp_lookup_connected(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketId> {
        let list = self.udp.ports.get(&local.port())?;
        list.iter().copied().find(|id| {
            self.udp_sock(*id).is_ok_and(|s| {
                let addr_ok = match v4_of(s.local_ip) {
                    Some(a) => a.is_unspecified() || IpAddr::V4(a) == canon(local).ip(),
                    None => s.local_ip.is_unspecified() || s.local_ip == local.ip(),
                };
                addr_ok && s.peer.is_some_and(|p| canon(p) == canon(remote))
            })
        })
    }
}
