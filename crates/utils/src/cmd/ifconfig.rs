//! `ifconfig`: show interfaces, or change one (NetBSD syntax and output).

use std::net::IpAddr;

use iopkt_rsrcmgr::proto::{
    Addr6Info, Addr6StateWire, AddrOp, IfInfo, IfKindWire, Request, Response, ifflags,
};

use super::addr::{mask_to_plen, parse_prefix};
use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;

pub const SYNOPSIS: &str = "ifconfig [-a] [IF [create|destroy] [inet ADDR/PLEN | inet6 ADDR/PLEN] [alias|-alias|delete] [up|down] [mtu N]]";

fn bad(msg: impl std::fmt::Display) -> Fail {
    usage(msg, SYNOPSIS)
}

/// One change, in the order given on the command line.
#[derive(Debug)]
enum Action {
    Addr {
        addr: IpAddr,
        plen: Option<u8>,
        op: AddrOp,
    },
    Up(bool),
    Mtu(u32),
    Destroy,
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    let mut it = args.into_iter().peekable();
    while it.peek().is_some_and(|a| a == "-a") {
        it.next();
    }
    if let Some(a) = it.peek()
        && a.starts_with('-')
    {
        return Err(bad(format!("unknown option '{a}'")));
    }
    let Some(ifname) = it.next() else {
        return show(env, None);
    };
    let words: Vec<String> = it.collect();
    if words.is_empty() {
        return show(env, Some(&ifname));
    }
    env.no_json("changing an interface")?;
    let actions = parse_actions(&words)?;
    let mut c = env.client()?;
    for a in actions {
        let req = match a {
            Action::Addr { addr, plen, op } => match addr {
                IpAddr::V4(addr) => {
                    let plen = match (plen, op) {
                        (Some(p), _) => p,
                        (None, AddrOp::Delete) => 32,
                        (None, _) => {
                            return Err(bad(format!(
                                "give the prefix length of {addr} (e.g. {addr}/24)"
                            )));
                        }
                    };
                    Request::SetAddr4 {
                        ifname: ifname.clone(),
                        addr,
                        plen,
                        op,
                    }
                }
                IpAddr::V6(addr) => Request::SetAddr6 {
                    ifname: ifname.clone(),
                    addr,
                    // The BSD default prefix length for inet6.
                    plen: plen.unwrap_or(64),
                    op,
                },
            },
            Action::Up(up) => Request::SetUp {
                ifname: ifname.clone(),
                up,
            },
            Action::Mtu(mtu) => Request::SetMtu {
                ifname: ifname.clone(),
                mtu,
            },
            Action::Destroy => Request::DestroyInterface {
                ifname: ifname.clone(),
            },
        };
        c.call(&req).map_err(|e| {
            let m = e.to_string();
            // Name the interface unless the stack's message already does.
            Fail::Runtime(if m.contains(ifname.as_str()) {
                m
            } else {
                format!("{ifname}: {m}")
            })
        })?;
    }
    Ok(0)
}

fn parse_actions(words: &[String]) -> Res<Vec<Action>> {
    let mut out = Vec::new();
    let mut i = 0;
    // The address being built: (family keyword given, address, plen).
    let mut pending: Option<(IpAddr, Option<u8>, AddrOp)> = None;
    let flush = |p: &mut Option<(IpAddr, Option<u8>, AddrOp)>, out: &mut Vec<Action>| {
        if let Some((addr, plen, op)) = p.take() {
            out.push(Action::Addr { addr, plen, op });
        }
    };
    while let Some(w) = words.get(i) {
        i += 1;
        let mut value = |what: &str| -> Res<&String> {
            let v = words
                .get(i)
                .ok_or_else(|| bad(format!("'{what}' needs a value")))?;
            i += 1;
            Ok(v)
        };
        match w.as_str() {
            "inet" | "inet6" => {
                flush(&mut pending, &mut out);
                let v = value(w)?;
                let (addr, plen) = parse_prefix(v).map_err(bad)?;
                if (w == "inet") != addr.is_ipv4() {
                    return Err(bad(format!("'{v}' is not an {w} address")));
                }
                pending = Some((addr, plen, AddrOp::Set));
            }
            "alias" | "-alias" | "delete" => {
                let op = if w == "alias" {
                    AddrOp::Alias
                } else {
                    AddrOp::Delete
                };
                match pending.as_mut() {
                    Some(p) => p.2 = op,
                    None => return Err(bad(format!("'{w}' needs an address before it"))),
                }
            }
            "netmask" | "prefixlen" => {
                let v = value(w)?;
                let plen = if w == "netmask" {
                    v.parse().ok().and_then(mask_to_plen)
                } else {
                    v.parse().ok()
                };
                match (pending.as_mut(), plen) {
                    (Some(p), Some(n)) => p.1 = Some(n),
                    (None, _) => return Err(bad(format!("'{w}' needs an address before it"))),
                    (_, None) => return Err(bad(format!("bad {w} '{v}'"))),
                }
            }
            "up" | "down" => {
                flush(&mut pending, &mut out);
                out.push(Action::Up(w == "up"));
            }
            "mtu" => {
                flush(&mut pending, &mut out);
                let v = value("mtu")?;
                let n = v
                    .parse()
                    .map_err(|_| bad(format!("bad mtu '{v}' (a number of bytes)")))?;
                out.push(Action::Mtu(n));
            }
            "destroy" => {
                flush(&mut pending, &mut out);
                out.push(Action::Destroy);
            }
            "create" => {
                return Err(Fail::Runtime(
                    "creating interfaces is not supported yet: interfaces come from drivers (iopkt mount -T io-pkt devnp-NAME.so)".into(),
                ));
            }
            other => {
                // A bare address means inet or inet6 by its form, as in BSD.
                match parse_prefix(other) {
                    Ok((addr, plen)) => {
                        flush(&mut pending, &mut out);
                        pending = Some((addr, plen, AddrOp::Set));
                    }
                    Err(_) => return Err(bad(format!("unknown keyword '{other}'"))),
                }
            }
        }
    }
    flush(&mut pending, &mut out);
    Ok(out)
}

fn show(env: &Env, only: Option<&str>) -> Res<i32> {
    let mut c = env.client()?;
    let Response::Interfaces(mut ifs) = c.call(&Request::ListInterfaces)? else {
        return Err(Fail::Runtime("unexpected answer from io-pkt".into()));
    };
    if let Some(n) = only {
        ifs.retain(|i| i.name == n);
        if ifs.is_empty() {
            return Err(Fail::Runtime(format!(
                "{n}: no such interface (list them with ifconfig -a)"
            )));
        }
    }
    if env.json {
        json::print(&ifs)?;
    } else {
        for i in &ifs {
            print!("{}", format_iface(i));
        }
    }
    Ok(0)
}

/// `NAME<flag,...>` as BSD prints flag words.
pub fn flag_words(flags: u32) -> String {
    let names: Vec<&str> = ifflags::NAMES
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("flags=0x{flags:x}<{}>", names.join(","))
}

fn addr6_words(a: &Addr6Info) -> String {
    let mut s = String::new();
    match a.state {
        Addr6StateWire::Tentative => s.push_str(" tentative"),
        Addr6StateWire::Duplicated => s.push_str(" duplicated"),
        Addr6StateWire::Deprecated => s.push_str(" deprecated"),
        Addr6StateWire::Preferred => {}
    }
    if a.autoconf {
        s.push_str(" autoconf");
    }
    if a.valid_secs.is_some() || a.preferred_secs.is_some() {
        let life = |v: Option<u64>| v.map_or("infty".to_string(), |n| n.to_string());
        s.push_str(&format!(
            " pltime {} vltime {}",
            life(a.preferred_secs),
            life(a.valid_secs)
        ));
    }
    s
}

/// One interface as `ifconfig -a` shows it.
pub fn format_iface(i: &IfInfo) -> String {
    let mut s = format!("{}: {} mtu {}\n", i.name, flag_words(i.flags), i.mtu);
    if i.kind == IfKindWire::Ethernet {
        s.push_str(&format!("\taddress: {}\n", i.mac));
        s.push_str(if i.link_up {
            "\tstatus: active\n"
        } else {
            "\tstatus: no carrier\n"
        });
    }
    for a in &i.addrs4 {
        s.push_str(&format!("\tinet {}/{}", a.addr, a.plen));
        if let Some(b) = a.broadcast {
            s.push_str(&format!(" broadcast {b}"));
        }
        s.push('\n');
    }
    for a in &i.addrs6 {
        let scope = if a.addr.is_unicast_link_local() {
            format!("%{}", i.name)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "\tinet6 {}{scope}/{}{}\n",
            a.addr,
            a.plen,
            addr6_words(a)
        ));
    }
    s
}
