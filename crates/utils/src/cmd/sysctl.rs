//! `sysctl`: the stack's tunables under their NetBSD names.

use iopkt_rsrcmgr::proto::{Request, Response, SysctlEntry};

use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;

pub const SYNOPSIS: &str = "sysctl [-a] [-n] | sysctl [-n] NAME... | sysctl -w NAME=VALUE...";

fn bad(msg: impl std::fmt::Display) -> Fail {
    usage(msg, SYNOPSIS)
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    let mut write = false;
    let mut value_only = false;
    let mut names = Vec::new();
    for a in args {
        match a.as_str() {
            "-a" | "-A" => {}
            "-w" => write = true,
            "-n" => value_only = true,
            s if s.starts_with('-') => return Err(bad(format!("unknown option '{s}'"))),
            _ => names.push(a),
        }
    }
    let mut c = env.client()?;
    if write {
        env.no_json("sysctl -w")?;
        if names.is_empty() {
            return Err(bad("-w needs NAME=VALUE"));
        }
        let mut sets = Vec::new();
        for n in &names {
            let (name, v) = n
                .split_once('=')
                .ok_or_else(|| bad(format!("'{n}' is not NAME=VALUE")))?;
            let value: i64 = v
                .trim()
                .parse()
                .map_err(|_| bad(format!("bad value '{v}' for {name} (a number)")))?;
            sets.push((name.trim().to_string(), value));
        }
        for (name, value) in sets {
            let old = match c.call(&Request::SysctlSet {
                name: name.clone(),
                value,
            })? {
                Response::Sysctl(e) => e.value,
                _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
            };
            println!("{name}: {old} -> {value}");
        }
        return Ok(0);
    }
    let all = match c.call(&Request::SysctlList)? {
        Response::Sysctls(v) => v,
        _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    };
    let chosen: Vec<SysctlEntry> = if names.is_empty() {
        all
    } else {
        let mut out = Vec::new();
        for n in &names {
            // A name or the prefix of a subtree (`sysctl net.inet6`).
            let sub = format!("{n}.");
            let hits: Vec<&SysctlEntry> = all
                .iter()
                .filter(|e| e.name == *n || e.name.starts_with(&sub))
                .collect();
            if hits.is_empty() {
                return Err(Fail::Runtime(format!(
                    "unknown name {n} (list them with sysctl -a)"
                )));
            }
            out.extend(hits.into_iter().cloned());
        }
        out
    };
    if env.json {
        json::print(&chosen)?;
    } else {
        for e in &chosen {
            if value_only {
                println!("{}", e.value);
            } else {
                println!("{} = {}", e.name, e.value);
            }
        }
    }
    Ok(0)
}
