//! Sending a datagram from a source the application chose for it:
//! sendmsg(2) with IP_PKTINFO (`ipi_spec_dst`, `ipi_ifindex`) or
//! IPV6_PKTINFO (`ipi6_addr`, `ipi6_ifindex`) ancillary data, as Linux
//! (ip(7), ipv6(7)) and RFC 3542 section 6.1 describe. The address must be
//! one of the stack's; the interface, when given, is where an IPv6
//! datagram or an IPv4 multicast leaves (an IPv4 unicast follows its
//! route from that source).

use std::net::{IpAddr, SocketAddr};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::iface::IfIndex;
use crate::socket::SocketId;
use crate::stack::Stack;

use super::v4_of;

impl Stack {
    /// sendmsg(2) on a UDP socket with packet information: `src` (None or
    /// unspecified: the stack chooses) and `ifindex` (0: by route).
    pub fn socket_send_from(
        &mut self,
        ctx: &mut impl Ctx,
        id: SocketId,
        data: &[u8],
        dst: Option<SocketAddr>,
        src: Option<IpAddr>,
        ifindex: IfIndex,
    ) -> Result<usize, Error> {
        let s = self.udp_sock(id)?;
        let (v6, saved_ip, saved_if, peer) = (s.v6, s.local_ip, s.opts.mcast_if, s.peer);
        let src = src.filter(|a| !a.is_unspecified());
        if let Some(a) = src {
            let ours = match (v4_of(a), a) {
                (Some(a4), _) => self.is_local4(a4),
                (None, IpAddr::V6(a6)) => a6.is_loopback() || self.local_iface6(&a6).is_some(),
                (None, IpAddr::V4(_)) => false,
            };
            // Linux answers EINVAL for a source that is not the host's.
            if !ours || (a.is_ipv6() && v4_of(a).is_none() && !v6) {
                return Err(Error::Invalid(format!(
                    "source address {a} is not one of the stack's"
                )));
            }
        }
        if ifindex != 0 && self.iface(ifindex).is_none() {
            return Err(Error::NoSuchInterface(format!("#{ifindex}")));
        }
        // The interface of an IPv6 destination is its scope: the route's
        // choice of outgoing interface honours it.
        let dst = match (dst.or(peer), ifindex) {
            (Some(SocketAddr::V6(mut d)), i) if i != 0 && v4_of(IpAddr::V6(*d.ip())).is_none() => {
                d.set_scope_id(i);
                Some(SocketAddr::V6(d))
            }
            (d, _) => d,
        };
        let src = match (v6, src) {
            (true, Some(IpAddr::V4(a))) => Some(IpAddr::V6(a.to_ipv6_mapped())),
            (_, a) => a,
        };
        // For this one datagram the socket acts as if bound to the source
        // and with IP_MULTICAST_IF set to the interface; both come back
        // after, whatever the outcome.
        {
            let s = self.udp_sock_mut(id)?;
            if let Some(a) = src {
                s.local_ip = a;
            }
            if ifindex != 0 {
                s.opts.mcast_if = ifindex;
            }
        }
        let r = self.udp_send(ctx, id, data, dst);
        if let Ok(s) = self.udp_sock_mut(id) {
            s.local_ip = saved_ip;
            s.opts.mcast_if = saved_if;
        }
        r
    }
}
