//! Requests answered from the stack's tables in one visit: listings and
//! configuration changes. Sockets, `mount` and `destroy` are handled by the
//! server loop, which owns the connection state they touch.

use std::net::IpAddr;

use iopkt_stack::config::SYSCTLS;
use iopkt_stack::iface::{Addr6State, IfAddr6};
use iopkt_stack::neighbor::NeighborInfo;
use iopkt_stack::route::{Route, RouteAddr, RouteFlags};
use iopkt_stack::{Ctx, IfIndex, IfKind, Instant, Interface, Stack};

use crate::proto::errno::{self, errno_of};
use crate::proto::{
    Addr4Info, Addr6Info, Addr6StateWire, AddrOp, CounterGroupWire, IfInfo, IfKindWire,
    IfStatsWire, MacWire, NeighborEntry, Request, Response, RouteInfo, RouteSpec, StatEntry,
    SysctlEntry, ifflags,
};

fn err(e: iopkt_stack::Error) -> Response {
    Response::error(errno_of(&e), e.to_string())
}

fn no_such_interface(name: &str) -> Response {
    Response::error(
        errno::ENXIO,
        format!("no such interface: {name} (list them with ifconfig -a)"),
    )
}

fn ifindex_of(stack: &Stack, name: &str) -> Result<IfIndex, Response> {
    stack
        .iface_by_name(name)
        .map(|i| i.index)
        .ok_or_else(|| no_such_interface(name))
}

/// Answers a request that needs nothing but the stack. Returns `None` for
/// requests this function does not handle.
pub(crate) fn handle_stack_request(
    stack: &mut Stack,
    ctx: &mut impl Ctx,
    req: &Request,
) -> Option<Response> {
    let now = ctx.now();
    Some(match req {
        Request::ListInterfaces => {
            Response::Interfaces(stack.interfaces().map(|i| iface_info(i, now)).collect())
        }
        Request::SetAddr4 {
            ifname,
            addr,
            plen,
            op,
        } => {
            let index = match ifindex_of(stack, ifname) {
                Ok(i) => i,
                Err(r) => return Some(r),
            };
            let r = match op {
                AddrOp::Set => stack.add_addr4(ctx, index, *addr, *plen, false),
                AddrOp::Alias => stack.add_addr4(ctx, index, *addr, *plen, true),
                AddrOp::Delete => stack.del_addr4(index, *addr),
            };
            r.map_or_else(err, |()| Response::Ok)
        }
        Request::SetAddr6 {
            ifname,
            addr,
            plen,
            op,
        } => {
            let index = match ifindex_of(stack, ifname) {
                Ok(i) => i,
                Err(r) => return Some(r),
            };
            let r = match op {
                AddrOp::Set | AddrOp::Alias => stack.add_addr6(ctx, index, *addr, *plen),
                AddrOp::Delete => stack.del_addr6(index, *addr),
            };
            r.map_or_else(err, |()| Response::Ok)
        }
        Request::SetUp { ifname, up } => match ifindex_of(stack, ifname) {
            Ok(i) => stack
                .set_up(ctx, i, *up)
                .map_or_else(err, |()| Response::Ok),
            Err(r) => r,
        },
        Request::SetMtu { ifname, mtu } => match ifindex_of(stack, ifname) {
            Ok(i) => stack.set_mtu(i, *mtu).map_or_else(err, |()| Response::Ok),
            Err(r) => r,
        },
        Request::RouteAdd(spec) => route_add(stack, spec).unwrap_or_else(|r| r),
        Request::RouteDelete(spec) => route_delete(stack, spec, now),
        Request::RouteGet { dest } => {
            let found = match dest {
                IpAddr::V4(a) => stack.routes4.lookup(*a).map(|r| route_info(stack, r, now)),
                IpAddr::V6(a) => stack.routes6.lookup(*a).map(|r| route_info(stack, r, now)),
            };
            match found {
                Some(r) => Response::Route(r),
                None => Response::error(errno::ESRCH, format!("route to {dest}: not in table")),
            }
        }
        Request::RouteList => {
            let mut v: Vec<RouteInfo> = stack
                .routes4
                .iter()
                .map(|r| route_info(stack, r, now))
                .collect();
            v.extend(stack.routes6.iter().map(|r| route_info(stack, r, now)));
            Response::Routes(v)
        }
        Request::ArpList => Response::Neighbors(
            stack
                .arp_entries()
                .iter()
                .map(|n| neighbor_entry(stack, n))
                .collect(),
        ),
        Request::ArpDelete { addr } => {
            if stack.arp_delete(*addr) {
                Response::Ok
            } else {
                Response::error(errno::ENOENT, format!("{addr}: no ARP entry"))
            }
        }
        Request::NdpList => Response::Neighbors(
            stack
                .nd_entries()
                .iter()
                .map(|n| neighbor_entry(stack, n))
                .collect(),
        ),
        Request::SysctlList => Response::Sysctls(
            SYSCTLS
                .iter()
                .filter_map(|(name, desc)| {
                    Some(SysctlEntry {
                        name: name.to_string(),
                        value: stack.config.get(name)?,
                        description: desc.to_string(),
                    })
                })
                .collect(),
        ),
        Request::SysctlGet { name } => match sysctl_entry(stack, name) {
            Some(e) => Response::Sysctl(e),
            None => unknown_sysctl(name),
        },
        Request::SysctlSet { name, value } => {
            let Some(old) = sysctl_entry(stack, name) else {
                return Some(unknown_sysctl(name));
            };
            // The stack's own change hooks (e.g. resizing tables) belong to
            // the stack; here the value is range-checked and stored.
            match stack.config.set(name, *value) {
                Ok(()) => Response::Sysctl(old),
                Err(e) => err(e),
            }
        }
        Request::Stats => Response::Stats(stats(stack)),
        Request::Counters => Response::Counters(counters(stack)),
        _ => return None,
    })
}

fn unknown_sysctl(name: &str) -> Response {
    Response::error(
        errno::ENOENT,
        format!("unknown sysctl name {name} (list them with sysctl -a)"),
    )
}

fn sysctl_entry(stack: &Stack, name: &str) -> Option<SysctlEntry> {
    let value = stack.config.get(name)?;
    let description = SYSCTLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    Some(SysctlEntry {
        name: name.to_string(),
        value,
        description,
    })
}

fn secs_left(t: Option<Instant>, now: Instant) -> Option<u64> {
    t.map(|t| t.saturating_since(now).as_secs())
}

fn iface_info(i: &Interface, now: Instant) -> IfInfo {
    let mut flags = 0;
    if i.up {
        flags |= ifflags::UP;
    }
    if i.is_running() {
        flags |= ifflags::RUNNING;
    }
    match i.kind {
        IfKind::Loopback => flags |= ifflags::LOOPBACK | ifflags::MULTICAST,
        IfKind::Ethernet => {
            flags |= ifflags::BROADCAST | ifflags::SIMPLEX | ifflags::MULTICAST;
        }
    }
    let s = i.stats;
    IfInfo {
        index: i.index,
        name: i.name.clone(),
        kind: match i.kind {
            IfKind::Loopback => IfKindWire::Loopback,
            IfKind::Ethernet => IfKindWire::Ethernet,
        },
        flags,
        mac: MacWire(i.mac.0),
        mtu: i.mtu,
        up: i.up,
        link_up: i.link_up,
        addrs4: i
            .addrs4
            .iter()
            .map(|a| Addr4Info {
                addr: a.addr,
                plen: a.plen,
                broadcast: if i.kind == IfKind::Loopback {
                    None
                } else {
                    a.broadcast()
                },
            })
            .collect(),
        addrs6: i.addrs6.iter().map(|a| addr6_info(a, now)).collect(),
        stats: IfStatsWire {
            rx_packets: s.rx_packets,
            rx_bytes: s.rx_bytes,
            rx_errors: s.rx_errors,
            rx_drops: s.rx_drops,
            rx_multicast: s.rx_multicast,
            tx_packets: s.tx_packets,
            tx_bytes: s.tx_bytes,
            tx_errors: s.tx_errors,
            tx_drops: s.tx_drops,
        },
    }
}

fn addr6_info(a: &IfAddr6, now: Instant) -> Addr6Info {
    Addr6Info {
        addr: a.addr,
        plen: a.plen,
        state: match a.state {
            Addr6State::Tentative => Addr6StateWire::Tentative,
            Addr6State::Preferred => Addr6StateWire::Preferred,
            Addr6State::Deprecated => Addr6StateWire::Deprecated,
            Addr6State::Duplicated => Addr6StateWire::Duplicated,
        },
        autoconf: a.autoconf,
        valid_secs: secs_left(a.valid_until, now),
        preferred_secs: secs_left(a.preferred_until, now),
    }
}

fn ifname_of(stack: &Stack, index: IfIndex) -> String {
    stack
        .iface(index)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| format!("#{index}"))
}

fn route_info<A: RouteAddr + Into<IpAddr>>(stack: &Stack, r: &Route<A>, now: Instant) -> RouteInfo {
    RouteInfo {
        dest: r.dest.into(),
        plen: r.plen,
        gateway: r.gateway.map(Into::into),
        ifindex: r.ifindex,
        ifname: ifname_of(stack, r.ifindex),
        flags: r.flag_letters(),
        expires_secs: secs_left(r.expires, now),
    }
}

fn neighbor_entry(stack: &Stack, n: &NeighborInfo) -> NeighborEntry {
    NeighborEntry {
        ip: n.ip,
        mac: n.mac.map(|m| MacWire(m.0)),
        ifindex: n.ifindex,
        ifname: ifname_of(stack, n.ifindex),
        state: n.state.to_string(),
        expires_secs: n.expires.map(|d| d.as_secs()),
        is_router: n.is_router,
    }
}

/// The interface a route without `-ifp` goes through: the one whose
/// connected subnet holds the gateway.
fn gateway_ifindex(stack: &Stack, gw: IpAddr) -> Result<IfIndex, Response> {
    let direct = match gw {
        IpAddr::V4(g) => stack
            .routes4
            .lookup(g)
            .filter(|r| r.flags.contains(RouteFlags::CONNECTED))
            .map(|r| r.ifindex),
        IpAddr::V6(g) => stack
            .routes6
            .lookup(g)
            .filter(|r| r.flags.contains(RouteFlags::CONNECTED))
            .map(|r| r.ifindex),
    };
    direct.ok_or_else(|| {
        Response::error(
            errno::ENETUNREACH,
            format!("gateway {gw} is not on a directly connected network (name the interface with -ifp IF)"),
        )
    })
}

fn route_add(stack: &mut Stack, spec: &RouteSpec) -> Result<Response, Response> {
    let ifindex = match (&spec.ifname, spec.gateway) {
        (Some(n), _) => ifindex_of(stack, n)?,
        (None, Some(g)) => gateway_ifindex(stack, g)?,
        (None, None) => {
            return Err(Response::error(
                errno::EINVAL,
                "a route needs a gateway or an interface (-ifp IF)",
            ));
        }
    };
    let now = Instant::ZERO;
    let info = match (spec.dest, spec.gateway) {
        (IpAddr::V4(d), g) => {
            let gateway = match g {
                Some(IpAddr::V4(g)) => Some(g),
                None => None,
                Some(IpAddr::V6(_)) => return Err(family_mismatch()),
            };
            let r = Route {
                dest: d,
                plen: spec.plen,
                gateway,
                ifindex,
                flags: RouteFlags::STATIC,
                expires: None,
            };
            let stored = stack.routes4.add(r).map_err(err)?;
            route_info(stack, &stored, now)
        }
        (IpAddr::V6(d), g) => {
            let gateway = match g {
                Some(IpAddr::V6(g)) => Some(g),
                None => None,
                Some(IpAddr::V4(_)) => return Err(family_mismatch()),
            };
            let r = Route {
                dest: d,
                plen: spec.plen,
                gateway,
                ifindex,
                flags: RouteFlags::STATIC,
                expires: None,
            };
            let stored = stack.routes6.add(r).map_err(err)?;
            route_info(stack, &stored, now)
        }
    };
    Ok(Response::Route(info))
}

fn family_mismatch() -> Response {
    Response::error(
        errno::EINVAL,
        "gateway and destination are of different address families",
    )
}

fn route_delete(stack: &mut Stack, spec: &RouteSpec, now: Instant) -> Response {
    let not_in_table = || {
        Response::error(
            errno::ESRCH,
            format!("route to {}/{}: not in table", spec.dest, spec.plen),
        )
    };
    let removed = match spec.dest {
        IpAddr::V4(d) => {
            let gw = match spec.gateway {
                Some(IpAddr::V4(g)) => Some(g),
                None => None,
                Some(IpAddr::V6(_)) => return family_mismatch(),
            };
            stack
                .routes4
                .delete(d, spec.plen, gw)
                .map(|r| route_info(stack, &r, now))
        }
        IpAddr::V6(d) => {
            let gw = match spec.gateway {
                Some(IpAddr::V6(g)) => Some(g),
                None => None,
                Some(IpAddr::V4(_)) => return family_mismatch(),
            };
            stack
                .routes6
                .delete(d, spec.plen, gw)
                .map(|r| route_info(stack, &r, now))
        }
    };
    match removed {
        Ok(r) => Response::Route(r),
        Err(iopkt_stack::Error::NotFound(_)) => not_in_table(),
        Err(e) => err(e),
    }
}

/// The stack's protocol counters (`netstat -s`), as the stack groups and
/// describes them.
fn counters(stack: &Stack) -> Vec<CounterGroupWire> {
    stack
        .counters()
        .into_iter()
        .map(|g| CounterGroupWire {
            name: g.name.to_string(),
            counters: g
                .counters
                .into_iter()
                .map(|(d, value)| StatEntry {
                    name: d.to_string(),
                    value,
                })
                .collect(),
        })
        .collect()
}

/// Interface totals and table sizes (request 20, kept for clients that
/// predate request 21).
fn stats(stack: &Stack) -> Vec<StatEntry> {
    let mut t = IfStatsWire::default();
    for i in stack.interfaces() {
        let s = i.stats;
        t.rx_packets += s.rx_packets;
        t.rx_bytes += s.rx_bytes;
        t.rx_errors += s.rx_errors;
        t.rx_drops += s.rx_drops;
        t.rx_multicast += s.rx_multicast;
        t.tx_packets += s.tx_packets;
        t.tx_bytes += s.tx_bytes;
        t.tx_errors += s.tx_errors;
        t.tx_drops += s.tx_drops;
    }
    let e = |name: &str, value: u64| StatEntry {
        name: name.to_string(),
        value,
    };
    vec![
        e("interfaces.packets_received", t.rx_packets),
        e("interfaces.bytes_received", t.rx_bytes),
        e("interfaces.input_errors", t.rx_errors),
        e("interfaces.input_drops", t.rx_drops),
        e("interfaces.multicasts_received", t.rx_multicast),
        e("interfaces.packets_sent", t.tx_packets),
        e("interfaces.bytes_sent", t.tx_bytes),
        e("interfaces.output_errors", t.tx_errors),
        e("interfaces.output_drops", t.tx_drops),
        e("routes.ipv4", stack.routes4.len() as u64),
        e("routes.ipv6", stack.routes6.len() as u64),
        e("neighbors.arp", stack.arp_entries().len() as u64),
        e("neighbors.nd", stack.nd_entries().len() as u64),
    ]
}
