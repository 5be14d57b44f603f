//! `nicinfo [IF]`: driver-level facts and counters, a block per interface
//! (QNX's layout).

use iopkt_rsrcmgr::proto::{IfInfo, IfKindWire, Request, Response};

use crate::env::Env;
use crate::fail::{Fail, Res, usage};
use crate::json;

pub const SYNOPSIS: &str = "nicinfo [IF]";

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    if args.len() > 1 || args.first().is_some_and(|a| a.starts_with('-')) {
        return Err(usage(format!("unexpected '{}'", args.join(" ")), SYNOPSIS));
    }
    let mut c = env.client()?;
    let Response::Interfaces(mut ifs) = c.call(&Request::ListInterfaces)? else {
        return Err(Fail::Runtime("unexpected answer from io-pkt".into()));
    };
    if let Some(n) = args.first() {
        ifs.retain(|i| i.name == *n);
        if ifs.is_empty() {
            return Err(Fail::Runtime(format!(
                "{n}: no such interface (list them with ifconfig -a)"
            )));
        }
    }
    if env.json {
        json::print(&ifs)?;
    } else {
        let blocks: Vec<String> = ifs.iter().map(format_nic).collect();
        print!("{}", blocks.join("\n"));
    }
    Ok(0)
}

fn line(s: &mut String, label: &str, value: impl std::fmt::Display) {
    let dots = 44usize.saturating_sub(label.len() + 2);
    s.push_str(&format!("  {label} {} {value}\n", ".".repeat(dots)));
}

pub fn format_nic(i: &IfInfo) -> String {
    let mut s = format!("{}:\n", i.name);
    let kind = match i.kind {
        IfKindWire::Loopback => "Software loopback",
        IfKindWire::Ethernet => "Ethernet",
    };
    s.push_str(&format!("  {kind}\n\n"));
    let link = if i.link_up { "UP" } else { "DOWN" };
    line(&mut s, "Link is", link);
    line(&mut s, "Interface is", if i.up { "UP" } else { "DOWN" });
    line(&mut s, "Physical Node ID", i.mac);
    line(&mut s, "Maximum Transmittable data Unit", i.mtu);
    s.push('\n');
    let st = i.stats;
    line(&mut s, "Packets Transmitted OK", st.tx_packets);
    line(&mut s, "Bytes Transmitted OK", st.tx_bytes);
    line(&mut s, "Transmit Errors", st.tx_errors);
    line(&mut s, "Transmit Drops", st.tx_drops);
    s.push('\n');
    line(&mut s, "Packets Received OK", st.rx_packets);
    line(&mut s, "Bytes Received OK", st.rx_bytes);
    line(&mut s, "Multicast Packets Received", st.rx_multicast);
    line(&mut s, "Receive Errors", st.rx_errors);
    line(&mut s, "Receive Drops", st.rx_drops);
    s
}
