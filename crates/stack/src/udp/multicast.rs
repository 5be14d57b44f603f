//! Multicast group membership of UDP sockets (IP_ADD_MEMBERSHIP,
//! IPV6_JOIN_GROUP): each socket keeps its own list; the stack counts
//! memberships per interface and group, and tells routers when the first
//! socket joins or the last leaves (IGMPv3, RFC 3376; MLDv2, RFC 3810).

use std::net::IpAddr;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::iface::{IfIndex, IfKind};
use crate::socket::SocketId;
use crate::stack::Stack;

use super::{MAX_MEMBERSHIPS, v4_of};

impl Stack {
    /// The interface a membership is on: the one given, or the one the
    /// routes send the group to.
    fn udp_group_iface(&self, g: IpAddr, ifindex: IfIndex) -> Result<IfIndex, Error> {
        if ifindex != 0 {
            return match self.iface(ifindex) {
                Some(_) => Ok(ifindex),
                None => Err(Error::NoSuchInterface(format!("#{ifindex}"))),
            };
        }
        match g {
            IpAddr::V4(g) => Ok(self.ipv4_path(g, None)?.ifindex),
            IpAddr::V6(g) => Ok(self.ipv6_route_for(&g, None)?.0),
        }
    }

    /// The group as the wire knows it (v4-mapped groups are IPv4 groups),
    /// checked to be a multicast address the socket's family can join.
    fn udp_group(&self, id: SocketId, g: IpAddr) -> Result<IpAddr, Error> {
        let s = self.udp_sock(id)?;
        let g = match v4_of(g) {
            Some(a) => IpAddr::V4(a),
            None => g,
        };
        if !g.is_multicast() {
            return Err(Error::Invalid(format!("{g} is not a multicast group")));
        }
        if g.is_ipv6() && !s.v6 {
            return Err(Error::Invalid("IPv6 group on an IPv4 socket".into()));
        }
        Ok(g)
    }

    pub(crate) fn udp_join(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        g: IpAddr,
        ifindex: IfIndex,
    ) -> Result<(), Error> {
        let g = self.udp_group(id, g)?;
        let ifx = self.udp_group_iface(g, ifindex)?;
        let s = self.udp_sock_mut(id)?;
        if s.groups.contains(&(g, ifx)) {
            return Err(Error::AddrInUse);
        }
        if s.groups.len() >= MAX_MEMBERSHIPS {
            return Err(Error::NoBuffers);
        }
        s.groups.push((g, ifx));
        let first = match g {
            IpAddr::V4(a) => {
                let n = self.udp.groups4.entry((ifx, a)).or_insert(0);
                *n += 1;
                *n == 1
            }
            IpAddr::V6(a) => {
                let n = self.udp.groups6.entry((ifx, a)).or_insert(0);
                *n += 1;
                *n == 1
            }
        };
        if first {
            self.udp_group_report(ctx, ifx, g, true);
        }
        Ok(())
    }

    pub(crate) fn udp_leave(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        g: IpAddr,
        ifindex: IfIndex,
    ) -> Result<(), Error> {
        let g = self.udp_group(id, g)?;
        let s = self.udp_sock_mut(id)?;
        // Interface 0 leaves the membership of that group on any interface.
        let Some(pos) = s
            .groups
            .iter()
            .position(|(x, i)| *x == g && (ifindex == 0 || *i == ifindex))
        else {
            return Err(Error::AddrNotAvailable);
        };
        let (_, ifx) = s.groups.remove(pos);
        let last = match g {
            IpAddr::V4(a) => release(&mut self.udp.groups4, (ifx, a)),
            IpAddr::V6(a) => release(&mut self.udp.groups6, (ifx, a)),
        };
        if last {
            self.udp_group_report(ctx, ifx, g, false);
        }
        Ok(())
    }

    /// Tells the link's routers that the host joined or left `g`. Nothing
    /// is said on lo0, nor for groups that are never reported (the
    /// all-nodes groups, RFC 3376 section 5 and RFC 3810 section 6).
    fn udp_group_report(&mut self, ctx: &mut impl Ctx, ifx: IfIndex, g: IpAddr, join: bool) {
        if self.iface(ifx).is_none_or(|i| i.kind == IfKind::Loopback) {
            return;
        }
        match g {
            IpAddr::V4(a) => self.igmp_change(ctx, ifx, a, join),
            IpAddr::V6(a) => {
                if a.segments()[0] & 0xff0f == 0xff01 || a.segments()[0] & 0xff0f == 0xff00 {
                    return; // interface-local and reserved scopes stay here
                }
                if a == std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1) {
                    return;
                }
                let record = if join {
                    crate::ipv6::MLD_CHANGE_TO_EXCLUDE
                } else {
                    crate::ipv6::MLD_CHANGE_TO_INCLUDE
                };
                self.mld_report(ctx, ifx, &[a], record);
            }
        }
    }
}

/// Drops one reference to `k`; true when it was the last.
fn release<K: std::hash::Hash + Eq>(m: &mut std::collections::HashMap<K, u32>, k: K) -> bool {
    match m.get_mut(&k) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => {
            m.remove(&k);
            true
        }
        None => false,
    }
}
