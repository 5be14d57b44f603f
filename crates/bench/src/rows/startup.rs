//! Start-up time and idle memory of io-pkt.

use super::{Config, progress};
use crate::parse;
use crate::stacks::IoPkt;
use crate::table::{Better, Cell, Row};

/// VmRSS of a process, in bytes.
pub(crate) fn rss(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    parse::kb_field(&s, "VmRSS").ok_or_else(|| format!("no VmRSS for {pid}"))
}

/// Time from spawning io-pkt until its socket exists, and its resident
/// memory once it has settled (nothing configured, no clients).
pub fn startup_rows(cfg: &Config) -> Vec<Row> {
    progress("io-pkt start-up time and idle RSS");
    let mut times = Vec::new();
    let mut rsss = Vec::new();
    let mut failed = None;
    for _ in 0..cfg.runs.max(3) {
        match IoPkt::lo0("startup") {
            Ok(s) => {
                times.push(s.startup.as_secs_f64() * 1e3);
                std::thread::sleep(std::time::Duration::from_millis(300));
                match rss(s.pid()) {
                    Ok(r) => rsss.push(r as f64 / 1024.0 / 1024.0),
                    Err(e) => failed = Some(e),
                }
            }
            Err(e) => failed = Some(e),
        }
        if failed.is_some() {
            break;
        }
    }
    let cell = |v: Vec<f64>| match &failed {
        Some(e) => Cell::Failed(e.clone()),
        None => Cell::Measured(v),
    };
    vec![
        Row {
            name: "start-up: spawn until PREFIX/dev/socket exists".into(),
            unit: "ms",
            better: Better::Lower,
            iopkt: cell(times),
            reference: Cell::None,
            reference_is: "—".into(),
        },
        Row {
            name: "memory: io-pkt idle RSS (lo0 and the pair driver)".into(),
            unit: "MiB",
            better: Better::Lower,
            iopkt: cell(rsss),
            reference: Cell::None,
            reference_is: "—".into(),
        },
    ]
}
