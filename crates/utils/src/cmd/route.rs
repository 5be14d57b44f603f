//! `route`: add, delete and look up routes; `route show` lists them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use iopkt_rsrcmgr::proto::{Request, Response, RouteInfo, RouteSpec, check_ifname};

use super::addr::{mask4, mask6, parse_prefix, show_prefix};
use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;
use crate::table::Table;

pub const SYNOPSIS: &str = "route [-n] add|delete|get [-inet6] DEST[/PLEN]|default GATEWAY [-ifp IF] | route show [-inet6]";

fn bad(msg: impl std::fmt::Display) -> Fail {
    usage(msg, SYNOPSIS)
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    let mut inet6 = false;
    let mut inet = false;
    let mut ifp = None;
    let mut words = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" | "-net" | "-host" => {}
            "-inet6" => inet6 = true,
            "-inet" => inet = true,
            "-ifp" => {
                let i = it.next().ok_or_else(|| bad("-ifp needs an interface"))?;
                check_ifname(&i).map_err(bad)?;
                ifp = Some(i);
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(bad(format!("unknown option '{s}'")));
            }
            _ => words.push(a),
        }
    }
    let Some((sub, rest)) = words.split_first() else {
        return Err(bad("no command given"));
    };
    match sub.as_str() {
        "show" => {
            if !rest.is_empty() {
                return Err(bad(format!("unexpected '{}'", rest[0])));
            }
            show(env, !inet6 || inet, inet6 || !inet)
        }
        "add" | "delete" | "get" => {
            let sub = sub.as_str();
            let dest = rest
                .first()
                .ok_or_else(|| bad(format!("{sub} needs a destination")))?;
            let (dest, plen) = parse_dest(dest, inet6)?;
            let gateway = match rest.get(1) {
                Some(g) if sub != "get" => {
                    let g: IpAddr = g
                        .parse()
                        .map_err(|_| bad(format!("bad gateway '{g}' (a numeric address)")))?;
                    if g.is_ipv4() != dest.is_ipv4() {
                        return Err(bad(format!(
                            "gateway {g} and destination {dest} are of different families"
                        )));
                    }
                    Some(g)
                }
                _ => None,
            };
            let extra = if sub == "get" { 1 } else { 2 };
            if let Some(x) = rest.get(extra) {
                return Err(bad(format!("unexpected '{x}'")));
            }
            if sub == "add" && gateway.is_none() && ifp.is_none() {
                return Err(bad(
                    "add needs a GATEWAY (or -ifp IF for a route onto a link)",
                ));
            }
            if sub == "get" {
                return get(env, dest);
            }
            env.no_json(sub)?;
            let spec = RouteSpec {
                dest,
                plen,
                gateway,
                ifname: ifp,
            };
            let mut c = env.client()?;
            let req = if sub == "add" {
                Request::RouteAdd(spec.clone())
            } else {
                Request::RouteDelete(spec.clone())
            };
            let r = c
                .call(&req)
                .map_err(|e| Fail::Runtime(format!("{sub} {}: {e}", show_dest(dest, plen))))?;
            let kind = if plen == full_len(dest) {
                "host"
            } else {
                "net"
            };
            let via = match (&r, gateway) {
                (_, Some(g)) => format!("gateway {g}"),
                (Response::Route(ri), None) => format!("interface {}", ri.ifname),
                _ => String::new(),
            };
            println!("{sub} {kind} {}: {via}", show_dest(dest, plen));
            Ok(0)
        }
        other => Err(bad(format!("unknown command '{other}'"))),
    }
}

fn full_len(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

/// `DEST[/PLEN]` or `default`; without a length the route is to one host.
fn parse_dest(s: &str, inet6: bool) -> Res<(IpAddr, u8)> {
    if s == "default" {
        return Ok(if inet6 {
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        });
    }
    let (a, plen) = parse_prefix(s).map_err(bad)?;
    if inet6 && a.is_ipv4() {
        return Err(bad(format!("-inet6 given but {a} is an IPv4 address")));
    }
    Ok((a, plen.unwrap_or(full_len(a))))
}

fn show_dest(a: IpAddr, plen: u8) -> String {
    if plen == 0 {
        "default".to_string()
    } else {
        show_prefix(a, plen)
    }
}

fn get(env: &Env, dest: IpAddr) -> Res<i32> {
    let mut c = env.client()?;
    let r = c
        .call(&Request::RouteGet { dest })
        .map_err(|e| Fail::Runtime(e.to_string()))?;
    let Response::Route(r) = r else {
        return Err(Fail::Runtime("unexpected answer from io-pkt".into()));
    };
    if env.json {
        json::print(&r)?;
        return Ok(0);
    }
    let mask = if r.plen == 0 {
        "default".to_string()
    } else if r.dest.is_ipv4() {
        Ipv4Addr::from(mask4(r.plen)).to_string()
    } else {
        Ipv6Addr::from(mask6(r.plen)).to_string()
    };
    println!("   route to: {dest}");
    println!(
        "destination: {}",
        if r.plen == 0 {
            "default".to_string()
        } else {
            r.dest.to_string()
        }
    );
    println!("       mask: {mask}");
    if let Some(g) = r.gateway {
        println!("    gateway: {g}");
    }
    println!("  interface: {}", r.ifname);
    println!("      flags: <{}>", flag_words(&r.flags));
    Ok(0)
}

fn flag_words(letters: &str) -> String {
    letters
        .chars()
        .filter_map(|c| match c {
            'U' => Some("UP"),
            'G' => Some("GATEWAY"),
            'H' => Some("HOST"),
            'S' => Some("STATIC"),
            'C' => Some("CONNECTED"),
            'D' => Some("DYNAMIC"),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn show(env: &Env, v4: bool, v6: bool) -> Res<i32> {
    let mut routes = list(env)?;
    routes.retain(|r| (v4 && r.dest.is_ipv4()) || (v6 && r.dest.is_ipv6()));
    if env.json {
        json::print(&routes)?;
    } else {
        print!("{}", format_tables(&routes, v4, v6));
    }
    Ok(0)
}

pub fn list(env: &Env) -> Res<Vec<RouteInfo>> {
    let mut c = env.client()?;
    match c.call(&Request::RouteList)? {
        Response::Routes(v) => Ok(v),
        _ => Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    }
}

/// The routing tables as `netstat -rn` prints them.
pub fn format_tables(routes: &[RouteInfo], v4: bool, v6: bool) -> String {
    let mut s = String::from("Routing tables\n");
    for (want, title, is4) in [(v4, "Internet", true), (v6, "Internet6", false)] {
        if !want {
            continue;
        }
        s.push_str(&format!("\n{title}:\n"));
        let mut t = Table::new(&["Destination", "Gateway", "Flags", "Netif"], &[]);
        let mut rows: Vec<&RouteInfo> = routes.iter().filter(|r| r.dest.is_ipv4() == is4).collect();
        // In address order, as netstat walks its tree (default first).
        rows.sort_by(|a, b| a.dest.cmp(&b.dest).then(a.plen.cmp(&b.plen)));
        for r in rows {
            let gw = match r.gateway {
                Some(g) => g.to_string(),
                None => format!("link#{}", r.ifindex),
            };
            t.row(vec![
                show_dest(r.dest, r.plen),
                gw,
                r.flags.clone(),
                r.ifname.clone(),
            ]);
        }
        s.push_str(&t.render());
    }
    s
}
