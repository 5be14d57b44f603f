//! `netstat`: interfaces (-i), routing tables (-r), counters (-s).

use std::collections::BTreeMap;

use iopkt_rsrcmgr::proto::{IfInfo, Request, Response, StatEntry};
use serde::Serialize;

use super::addr::{network, show_prefix};
use super::route;
use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;
use crate::table::Table;

pub const SYNOPSIS: &str = "netstat [-i] [-r] [-s] [-a] [-n]";

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    let (mut i, mut r, mut s) = (false, false, false);
    for a in &args {
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(usage(format!("unexpected '{a}'"), SYNOPSIS));
        };
        for f in flags.chars() {
            match f {
                'i' => i = true,
                'r' => r = true,
                's' => s = true,
                // Addresses are always shown as numbers; -a selects servers
                // in the socket listing.
                'a' | 'n' => {}
                other => return Err(usage(format!("unknown option '-{other}'"), SYNOPSIS)),
            }
        }
    }
    if !(i || r || s) {
        return Err(Fail::Runtime(
            "listing sockets is not available in this version of io-pkt: use -i, -r or -s".into(),
        ));
    }
    #[derive(Serialize, Default)]
    struct All {
        #[serde(skip_serializing_if = "Option::is_none")]
        interfaces: Option<Vec<IfInfo>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        routes: Option<Vec<iopkt_rsrcmgr::proto::RouteInfo>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stats: Option<Vec<StatEntry>>,
    }
    let mut all = All::default();
    let mut c = env.client()?;
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
        match c.call(&Request::Stats)? {
            Response::Stats(v) => all.stats = Some(v),
            _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
        }
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
    if let Some(v) = &all.stats {
        parts.push(format_stats(v));
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

/// `netstat -s`: counters grouped by the part of their name before the dot.
fn format_stats(v: &[StatEntry]) -> String {
    let mut groups: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    let mut order = Vec::new();
    for e in v {
        let (g, k) = e.name.split_once('.').unwrap_or(("other", &e.name));
        if !groups.contains_key(g) {
            order.push(g);
        }
        groups.entry(g).or_default().push((k, e.value));
    }
    let mut s = String::new();
    for g in order {
        s.push_str(&format!("{g}:\n"));
        for (k, n) in groups.get(g).map(Vec::as_slice).unwrap_or_default() {
            s.push_str(&format!("\t{n} {}\n", k.replace('_', " ")));
        }
    }
    s
}
