//! `netstat`: active sockets (no option; -a adds servers), interfaces
//! (-i), routing tables (-r), counters (-s).

use iopkt_rsrcmgr::Client;
use iopkt_rsrcmgr::ClientError;
use iopkt_rsrcmgr::proto::errno::ENOSYS;
use iopkt_rsrcmgr::proto::{
    CounterGroupWire, IfInfo, Request, Response, SocketInfoWire, StatEntry,
};
use serde::Serialize;
use std::net::SocketAddr;

use super::addr::{network, show_prefix};
use super::route;
use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;
use crate::table::Table;

pub const SYNOPSIS: &str = "netstat [-i] [-r] [-s [-p PROTOCOL]] [-a] [-n]";

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    let (mut i, mut r, mut s, mut all_sockets) = (false, false, false, false);
    let mut proto: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(usage(format!("unexpected '{a}'"), SYNOPSIS));
        };
        for (at, f) in flags.char_indices() {
            match f {
                'i' => i = true,
                'r' => r = true,
                's' => s = true,
                // `-p ip` or `-pip`: the rest of the word, else the next one.
                'p' => {
                    let rest = &flags[at + 1..];
                    let name = if rest.is_empty() {
                        args.next()
                            .ok_or_else(|| usage("-p needs a protocol name", SYNOPSIS))?
                    } else {
                        rest.to_string()
                    };
                    proto = Some(name);
                    break;
                }
                // -a adds servers (listeners, unconnected datagram
                // sockets) to the socket listing.
                'a' => all_sockets = true,
                // Addresses and ports are always shown as numbers.
                'n' => {}
                other => return Err(usage(format!("unknown option '-{other}'"), SYNOPSIS)),
            }
        }
    }
    if proto.is_some() && !s {
        return Err(usage("-p selects counters: use it with -s", SYNOPSIS));
    }
    #[derive(Serialize, Default)]
    struct All {
        #[serde(skip_serializing_if = "Option::is_none")]
        interfaces: Option<Vec<IfInfo>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        routes: Option<Vec<iopkt_rsrcmgr::proto::RouteInfo>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        counters: Option<Vec<CounterGroupWire>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sockets: Option<Vec<SocketInfoWire>>,
    }
    let mut all = All::default();
    let mut c = env.client()?;
    if !(i || r || s) {
        let mut v = match c.call(&Request::SocketList)? {
            Response::Sockets(v) => v,
            _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
        };
        if !all_sockets {
            v.retain(|x| !is_server(x));
        }
        all.sockets = Some(v);
    }
    if i {
        match c.call(&Request::ListInterfaces)? {
            Response::Interfaces(v) => all.interfaces = Some(v),
            _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
        }
    }
    if r {
        all.routes = Some(route::list(env)?);
    }
    if s {
        let mut groups = counters(&mut c)?;
        if let Some(p) = &proto {
            groups.retain(|g| &g.name == p);
            if groups.is_empty() {
                return Err(Fail::Runtime(format!(
                    "{p}: no such protocol (ip, icmp, arp, ip6, icmp6, sockets)"
                )));
            }
        }
        all.counters = Some(groups);
    }
    if env.json {
        json::print(&all)?;
        return Ok(0);
    }
    let mut parts = Vec::new();
    if let Some(v) = &all.interfaces {
        parts.push(format_interfaces(v));
    }
    if let Some(v) = &all.routes {
        parts.push(route::format_tables(v, true, true));
    }
    if let Some(v) = &all.counters {
        parts.push(format_counters(v));
    }
    if let Some(v) = &all.sockets {
        parts.push(format_sockets(v, all_sockets));
    }
    print!("{}", parts.join("\n"));
    Ok(0)
}

/// `netstat -i`: a `<Link>` line per interface, then one per address.
pub fn format_interfaces(ifs: &[IfInfo]) -> String {
    let right = [
        false, true, false, false, true, true, true, true, true, true,
    ];
    let mut t = Table::new(
        &[
            "Name", "Mtu", "Network", "Address", "Ipkts", "Ierrs", "Idrop", "Opkts", "Oerrs",
            "Odrop",
        ],
        &right,
    );
    for i in ifs {
        let s = i.stats;
        let counters = [
            s.rx_packets,
            s.rx_errors,
            s.rx_drops,
            s.tx_packets,
            s.tx_errors,
            s.tx_drops,
        ]
        .map(|n| n.to_string());
        let mut row = |net: String, addr: String| {
            let mut r = vec![i.name.clone(), i.mtu.to_string(), net, addr];
            r.extend(counters.iter().cloned());
            t.row(r);
        };
        let mac = if i.mac.0 == [0; 6] {
            String::new()
        } else {
            i.mac.to_string()
        };
        row("<Link>".into(), mac);
        for a in &i.addrs4 {
            let net = network(a.addr.into(), a.plen);
            row(show_prefix(net, a.plen), a.addr.to_string());
        }
        for a in &i.addrs6 {
            let net = network(a.addr.into(), a.plen);
            row(show_prefix(net, a.plen), a.addr.to_string());
        }
    }
    t.render()
}

/// BSD netstat hides "sockets used by server processes" unless -a is
/// given: listeners, and sockets with no peer (unbound or unconnected
/// datagram sockets, unconnected TCP sockets in CLOSED).
fn is_server(x: &SocketInfoWire) -> bool {
    x.state == "LISTEN" || x.remote.is_none()
}

/// An address as BSD netstat prints it: `a.b.c.d.port` (`fd00::1.80` for
/// IPv6), `*` for a wildcard address or port, `*.*` for none at all.
pub fn show_endpoint(a: Option<SocketAddr>) -> String {
    let Some(a) = a else {
        return "*.*".into();
    };
    let ip = if a.ip().is_unspecified() {
        "*".to_string()
    } else {
        a.ip().to_string()
    };
    let port = if a.port() == 0 {
        "*".to_string()
    } else {
        a.port().to_string()
    };
    format!("{ip}.{port}")
}

/// The socket listing: a title, then one line per socket in the columns
/// of NetBSD's netstat.
pub fn format_sockets(v: &[SocketInfoWire], servers: bool) -> String {
    let title = if servers {
        "Active Internet connections (including servers)\n"
    } else {
        "Active Internet connections\n"
    };
    let mut t = Table::new(
        &[
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "(state)",
        ],
        &[false, true, true, false, false, false],
    );
    for x in v {
        t.row(vec![
            x.proto.clone(),
            x.recv_queue.to_string(),
            x.send_queue.to_string(),
            show_endpoint(x.local),
            show_endpoint(x.remote),
            x.state.clone(),
        ]);
    }
    format!("{title}{}", t.render())
}

/// The stack's protocol counters (request 21). A server that predates it
/// answers ENOSYS: then its older counters (request 20, named
/// `group.counter`) are grouped here instead.
fn counters(c: &mut Client) -> Res<Vec<CounterGroupWire>> {
    match c.call(&Request::Counters) {
        Ok(Response::Counters(v)) => return Ok(v),
        Ok(_) => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
        Err(ClientError::Remote(e)) if e.code == ENOSYS => {}
        Err(e) => return Err(e.into()),
    }
    match c.call(&Request::Stats)? {
        Response::Stats(v) => Ok(group_old_stats(v)),
        _ => Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    }
}

/// `interfaces.packets_received` becomes "packets received" in the group
/// "interfaces", groups in order of first appearance.
fn group_old_stats(v: Vec<StatEntry>) -> Vec<CounterGroupWire> {
    let mut groups: Vec<CounterGroupWire> = Vec::new();
    for e in v {
        let (g, k) = e.name.split_once('.').unwrap_or(("other", &e.name));
        let entry = StatEntry {
            name: k.replace('_', " "),
            value: e.value,
        };
        match groups.iter_mut().find(|x| x.name == g) {
            Some(x) => x.counters.push(entry),
            None => groups.push(CounterGroupWire {
                name: g.to_string(),
                counters: vec![entry],
            }),
        }
    }
    groups
}

/// `netstat -s` as NetBSD prints it: `proto:`, then a tab, the value and
/// the counter's description on each line.
pub fn format_counters(groups: &[CounterGroupWire]) -> String {
    let mut s = String::new();
    for g in groups {
        s.push_str(&format!("{}:\n", g.name));
        for e in &g.counters {
            s.push_str(&format!("\t{} {}\n", e.value, e.name));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_stats_are_grouped_by_their_prefix() {
        let e = |n: &str, v| StatEntry {
            name: n.into(),
            value: v,
        };
        let g = group_old_stats(vec![
            e("interfaces.packets_received", 3),
            e("routes.ipv4", 2),
            e("interfaces.bytes_sent", 9),
        ]);
        assert_eq!(
            format_counters(&g),
            "interfaces:\n\t3 packets received\n\t9 bytes sent\nroutes:\n\t2 ipv4\n"
        );
    }
}
