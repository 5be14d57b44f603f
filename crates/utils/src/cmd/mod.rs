//! The commands, each in its own file.

mod addr;
mod arp;
mod ifconfig;
mod mount;
mod netstat;
mod nicinfo;
mod ping;
mod route;
mod run;
mod sysctl;

use crate::env::Env;
use crate::fail::{Fail, Res};

type Run = fn(&Env, Vec<String>) -> Res<i32>;

/// Every command with its synopsis.
const COMMANDS: &[(&str, Run, &str)] = &[
    ("ifconfig", ifconfig::run, ifconfig::SYNOPSIS),
    ("route", route::run, route::SYNOPSIS),
    ("netstat", netstat::run, netstat::SYNOPSIS),
    ("arp", arp::run_arp, arp::ARP_SYNOPSIS),
    ("ndp", arp::run_ndp, arp::NDP_SYNOPSIS),
    ("sysctl", sysctl::run, sysctl::SYNOPSIS),
    ("nicinfo", nicinfo::run, nicinfo::SYNOPSIS),
    ("mount", mount::run, mount::SYNOPSIS),
    ("ping", ping::run, ping::SYNOPSIS),
    ("run", run::run, run::SYNOPSIS),
];

pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(n, _, _)| *n == name)
}

pub fn names() -> String {
    COMMANDS
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn overview() -> String {
    let mut s = String::from(
        "usage: iopkt [--sock PREFIX] COMMAND [ARGS...]   (or a link named after COMMAND)\n\
         The stack is the one at PREFIX/dev/socket: --sock PREFIX, else $SOCK, else the default prefix.\n\
         Listings take --json.\n\n",
    );
    for (_, _, syn) in COMMANDS {
        s.push_str("  ");
        s.push_str(syn);
        s.push('\n');
    }
    s
}

pub fn dispatch(name: &str, env: &Env, args: Vec<String>) -> Res<i32> {
    let Some((_, run, syn)) = COMMANDS.iter().find(|(n, _, _)| *n == name) else {
        return Err(Fail::Usage(format!("unknown command '{name}'")));
    };
    // After `--` the words are another program's (`iopkt run -- cmd -h`).
    if args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "--help")
    {
        println!("usage: {syn}");
        return Ok(0);
    }
    run(env, args)
}
