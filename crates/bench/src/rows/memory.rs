//! Memory per idle TCP connection, with thousands open (both ends of each
//! connection on the stack under test).
//!
//! iopkt's cost is io-pkt's resident memory (VmRSS) plus what the kernel
//! holds for it: every application socket is a Unix socket pair. The
//! kernel's cost is its slab memory. Slab memory is read from
//! /proc/slabinfo (active objects × object size, summed over every cache)
//! where it can be read (root), else from the `Slab:` line of
//! /proc/meminfo (whole slab pages); both are system-wide, so other work on
//! the machine adds noise, which the median over runs damps.

use std::ffi::OsStr;
use std::time::Duration;

use super::startup::rss;
use super::{Config, next_port, progress};
use crate::parse;
use crate::procs::{Proc, built};
use crate::stacks::{IoPkt, Kernel, Runner};
use crate::table::{Better, Cell, Row};

/// Connections per pair of holder processes: the socket library gives
/// one process at most 4096 sockets of the stack.
const PER_PROCESS: usize = 2_500;
const HOLD_LIMIT: Duration = Duration::from_secs(180);

/// Slab bytes in use, system-wide, and where the figure came from.
fn slab() -> Result<(u64, &'static str), String> {
    if let Some(b) = std::fs::read_to_string("/proc/slabinfo")
        .ok()
        .as_deref()
        .and_then(parse::slab_bytes)
    {
        return Ok((b, "/proc/slabinfo"));
    }
    let m = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    parse::kb_field(&m, "Slab")
        .map(|b| (b, "/proc/meminfo Slab"))
        .ok_or_else(|| "no Slab line in /proc/meminfo".into())
}

/// Opens `n` idle connections on `on`; returns (user bytes of io-pkt
/// added, kernel slab bytes added), per connection.
fn per_connection(on: &dyn Runner, daemon: Option<u32>, n: usize) -> Result<(f64, f64), String> {
    let exe = built("idleconns")?;
    let rss_of = |pid: Option<u32>| pid.map(rss).transpose().map(|r| r.unwrap_or(0));
    // Settle before the baseline: the start of the daemon or the end of
    // the previous run may still be releasing memory.
    std::thread::sleep(Duration::from_millis(500));
    let (slab0, _) = slab()?;
    let rss0 = rss_of(daemon)?;
    let mut holders = Vec::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(PER_PROCESS);
        left -= k;
        let addr = format!("127.0.0.1:{}", next_port());
        let mut srv = Proc::spawn(
            "idleconns serve",
            on.cmd(exe.as_os_str())
                .args([OsStr::new("serve"), OsStr::new(&addr)])
                .arg(k.to_string()),
        )?;
        srv.wait_for("listening", Duration::from_secs(15))?;
        let mut cli = Proc::spawn(
            "idleconns connect",
            on.cmd(exe.as_os_str())
                .args([OsStr::new("connect"), OsStr::new(&addr)])
                .arg(k.to_string()),
        )?;
        cli.wait_for("connected", HOLD_LIMIT)?;
        srv.wait_for("accepted", HOLD_LIMIT)?;
        holders.push((srv, cli));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (slab1, _) = slab()?;
    let rss1 = rss_of(daemon)?;
    drop(holders);
    let per = |a: u64, b: u64| (b as f64 - a as f64) / n as f64;
    Ok((per(rss0, rss1), per(slab0, slab1)))
}

/// Descriptors kept free for everything else io-pkt holds.
const FD_SPARE: u64 = 1_000;

pub fn memory_rows(cfg: &Config) -> Vec<Row> {
    // io-pkt holds one descriptor per application socket, so two per
    // connection with both ends on it: the open-file limit (which only a
    // process allowed to raise its hard limit can lift) caps the count.
    let limit = crate::fdlimit::nofile();
    let fits = (limit.saturating_sub(FD_SPARE) / 2 / 500 * 500) as usize;
    let n = cfg.idle_conns.min(fits.max(500));
    if n < cfg.idle_conns {
        progress(&format!(
            "memory: {n} connections instead of {} (open-file limit {limit}, two per connection in io-pkt)",
            cfg.idle_conns
        ));
    }
    progress(&format!("memory per idle connection, {n} open"));
    let source = slab().map(|s| s.1).unwrap_or("slab");
    let runs = cfg.runs.clamp(1, 3);
    let (mut total, mut user, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ea, mut eb) = (None, None);
    for _ in 0..runs {
        if ea.is_none() {
            // A fresh daemon each run: memory freed by an earlier run
            // would be reused and hide the cost.
            let r = IoPkt::lo0("memory").and_then(|mut s| {
                let r = per_connection(&s, Some(s.pid()), n)?;
                if !s.alive() {
                    return Err(format!("io-pkt died:\n{}", s.log()));
                }
                Ok(r)
            });
            match r {
                Ok((u, k)) => {
                    user.push(u / 1024.0);
                    total.push((u + k) / 1024.0);
                }
                Err(e) => ea = Some(e),
            }
        }
        if eb.is_none() {
            match per_connection(&Kernel, None, n) {
                Ok((_, k)) => kernel.push(k / 1024.0),
                Err(e) => eb = Some(e),
            }
        }
    }
    let cell = |v: Vec<f64>, e: &Option<String>| match e {
        Some(e) => Cell::Failed(e.clone()),
        None => Cell::Measured(v),
    };
    vec![
        Row {
            name: format!(
                "memory per idle connection (both ends), {n} open: io-pkt RSS + kernel slab ({source})"
            ),
            unit: "KiB",
            better: Better::Lower,
            iopkt: cell(total, &ea),
            reference: cell(kernel, &eb),
            reference_is: format!("the kernel's loopback, slab ({source})"),
        },
        Row {
            name: "… of which io-pkt's own RSS".into(),
            unit: "KiB",
            better: Better::Lower,
            iopkt: cell(user, &ea),
            reference: Cell::None,
            reference_is: "—".into(),
        },
    ]
}
