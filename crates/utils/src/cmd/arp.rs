//! `arp -an`, `arp -d ADDR` and `ndp -an`: the neighbour caches.

use std::net::Ipv4Addr;

use iopkt_rsrcmgr::proto::{NeighborEntry, Request, Response};

use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;
use crate::table::Table;

pub const ARP_SYNOPSIS: &str = "arp -an | arp -d ADDR";
pub const NDP_SYNOPSIS: &str = "ndp -an";

/// Accepts `-a`, `-n`, `-an`, `-na` and nothing else.
fn only_an(args: &[String], synopsis: &str) -> Res<bool> {
    let mut all = false;
    for a in args {
        let Some(f) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(usage(format!("unexpected '{a}'"), synopsis));
        };
        for c in f.chars() {
            match c {
                'a' => all = true,
                'n' => {}
                o => return Err(usage(format!("unknown option '-{o}'"), synopsis)),
            }
        }
    }
    Ok(all)
}

fn neighbors(env: &Env, req: Request) -> Res<Vec<NeighborEntry>> {
    let mut c = env.client()?;
    match c.call(&req)? {
        Response::Neighbors(v) => Ok(v),
        _ => Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    }
}

pub fn run_arp(env: &Env, args: Vec<String>) -> Res<i32> {
    if args.first().is_some_and(|a| a == "-d") {
        env.no_json("arp -d")?;
        let [_, addr] = args.as_slice() else {
            return Err(usage("-d takes one address", ARP_SYNOPSIS));
        };
        let a: Ipv4Addr = addr
            .parse()
            .map_err(|_| usage(format!("bad address '{addr}'"), ARP_SYNOPSIS))?;
        let mut c = env.client()?;
        c.call(&Request::ArpDelete { addr: a })?;
        println!("{a} ({a}) deleted");
        return Ok(0);
    }
    if !only_an(&args, ARP_SYNOPSIS)? {
        return Err(usage("give -a to list the cache", ARP_SYNOPSIS));
    }
    let v = neighbors(env, Request::ArpList)?;
    if env.json {
        json::print(&v)?;
        return Ok(0);
    }
    print!("{}", format_arp(&v));
    Ok(0)
}

/// `? (10.77.0.1) at 02:00:00:00:00:01 on en0 expires in 1187 seconds`.
pub fn format_arp(v: &[NeighborEntry]) -> String {
    let mut s = String::new();
    for n in v {
        let mac = n
            .mac
            .map_or_else(|| "(incomplete)".to_string(), |m| m.to_string());
        s.push_str(&format!("? ({}) at {mac} on {}", n.ip, n.ifname));
        if n.state == "permanent" {
            s.push_str(" permanent");
        } else if let Some(e) = n.expires_secs {
            s.push_str(&format!(" expires in {e} seconds"));
        }
        s.push('\n');
    }
    s
}

pub fn run_ndp(env: &Env, args: Vec<String>) -> Res<i32> {
    if !only_an(&args, NDP_SYNOPSIS)? {
        return Err(usage("give -a to list the cache", NDP_SYNOPSIS));
    }
    let v = neighbors(env, Request::NdpList)?;
    if env.json {
        json::print(&v)?;
        return Ok(0);
    }
    print!("{}", format_ndp(&v));
    Ok(0)
}

/// NetBSD's one-letter neighbour states.
fn state_letter(s: &str) -> &'static str {
    match s {
        "incomplete" => "I",
        "reachable" => "R",
        "stale" => "S",
        "delay" => "D",
        "probe" => "P",
        "permanent" => "R",
        _ => "?",
    }
}

/// `1h2m3s` as NetBSD's ndp prints remaining time.
fn duration_words(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

pub fn format_ndp(v: &[NeighborEntry]) -> String {
    let mut t = Table::new(
        &[
            "Neighbor",
            "Linklayer-Address",
            "Netif",
            "Expire",
            "State",
            "Flags",
        ],
        &[],
    );
    for n in v {
        let ip = match n.ip {
            std::net::IpAddr::V6(a) if a.is_unicast_link_local() => format!("{a}%{}", n.ifname),
            a => a.to_string(),
        };
        let expire = if n.state == "permanent" {
            "permanent".to_string()
        } else {
            n.expires_secs
                .map_or_else(|| "-".to_string(), duration_words)
        };
        t.row(vec![
            ip,
            n.mac
                .map_or_else(|| "(incomplete)".to_string(), |m| m.to_string()),
            n.ifname.clone(),
            expire,
            state_letter(&n.state).to_string(),
            if n.is_router {
                "R".into()
            } else {
                String::new()
            },
        ]);
    }
    t.render()
}
