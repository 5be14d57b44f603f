//! TCP connections per second: connect, one request, the reply, close.

use std::time::Duration;

use super::{Config, alternate, next_port, progress};
use crate::parse;
use crate::procs::{Proc, built, run};
use crate::stacks::{IoPkt, Kernel, Runner};
use crate::table::{Better, Cell, Row};

/// Threads on each side: one per core of this machine's two.
const THREADS: &str = "2";

fn rate(on: &dyn Runner, which: &str, secs: u32) -> Result<f64, String> {
    let port = next_port();
    let addr = format!("127.0.0.1:{port}");
    let mut srv = Proc::spawn(
        "connserver",
        on.cmd(built("connserver")?.as_os_str())
            .args([addr.as_str(), THREADS]),
    )?;
    srv.wait_for("listening", Duration::from_secs(15))?;
    let out = run(
        "connrate",
        on.cmd(built("connrate")?.as_os_str())
            .args([addr.as_str(), THREADS, &secs.to_string()]),
        Duration::from_secs(u64::from(secs) + 30),
    )?;
    let (rate, errors) = parse::connrate(&out)?;
    if errors > 0 {
        // Reported, not hidden: a few refused connections under load are
        // a finding, not a reason to drop the figure.
        eprintln!(
            "iopkt-bench: connrate on {which} saw errors: {}",
            out.trim()
        );
    }
    Ok(rate)
}

pub fn conn_rate(cfg: &Config) -> Row {
    progress("TCP connections per second over lo0 (connrate)");
    let (iopkt, reference) = match IoPkt::lo0("connrate") {
        Err(e) => (Cell::Failed(e), Cell::Skipped("iopkt did not start".into())),
        Ok(stack) => alternate(
            cfg.runs,
            || rate(&stack, "iopkt", cfg.secs),
            || rate(&Kernel, "the kernel", cfg.secs),
        ),
    };
    Row {
        name: "TCP connections per second: connect, request, reply, close (connrate, 2 threads)"
            .into(),
        unit: "conn/s",
        better: Better::Higher,
        iopkt,
        reference,
        reference_is: "the kernel's loopback".into(),
    }
}
