//! The benchmarks, one function per row of the table. Every measurement
//! alternates iopkt and its reference, run after run, so drift on this
//! shared machine touches both alike.

mod conns;
mod inproc;
mod memory;
mod net;
mod startup;

pub use conns::conn_rate;
pub use inproc::inproc_bulk;
pub use memory::memory_rows;
pub use net::{copies, lo0_bulk, lo0_pingpong, lo0_udp, tap_bulk};
pub use startup::startup_rows;

use std::sync::atomic::{AtomicU16, Ordering};

use crate::table::Cell;

/// How much to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runs of each measurement (the median is reported).
    pub runs: usize,
    /// Seconds each timed run lasts (iperf3 -t, sockperf -t, connrate).
    pub secs: u32,
    /// Idle connections held for the memory row.
    pub idle_conns: usize,
    /// Bytes moved by the in-process row.
    pub inproc_bytes: usize,
    /// Whether namespaces and TAP devices can be made here.
    pub root: bool,
}

impl Config {
    pub fn full() -> Config {
        Config {
            runs: 5,
            secs: 5,
            idle_conns: 10_000,
            inproc_bytes: 16 << 20,
            root: crate::procs::is_root(),
        }
    }

    /// One short run of each: shows the harness works, measures nothing
    /// worth keeping.
    pub fn quick() -> Config {
        Config {
            runs: 1,
            secs: 1,
            idle_conns: 1_000,
            inproc_bytes: 2 << 20,
            root: crate::procs::is_root(),
        }
    }
}

static PORT: AtomicU16 = AtomicU16::new(0);

/// A port not used before in this run (TIME_WAIT of an earlier run cannot
/// get in the way), below the kernel's ephemeral range.
pub(crate) fn next_port() -> u16 {
    let _ = PORT.compare_exchange(
        0,
        15_000 + (std::process::id() % 100) as u16 * 100,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    PORT.fetch_add(1, Ordering::Relaxed)
}

/// `runs` samples of each side, alternating; a side stops at its first
/// error, which becomes its cell.
pub(crate) fn alternate(
    runs: usize,
    mut a: impl FnMut() -> Result<f64, String>,
    mut b: impl FnMut() -> Result<f64, String>,
) -> (Cell, Cell) {
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    let (mut ea, mut eb) = (None, None);
    for _ in 0..runs {
        if ea.is_none() {
            match a() {
                Ok(x) => va.push(x),
                Err(e) => ea = Some(e),
            }
        }
        if eb.is_none() {
            match b() {
                Ok(x) => vb.push(x),
                Err(e) => eb = Some(e),
            }
        }
    }
    let cell = |v: Vec<f64>, e: Option<String>| match e {
        Some(e) => Cell::Failed(e),
        None => Cell::Measured(v),
    };
    (cell(va, ea), cell(vb, eb))
}

/// Says what is going on, on standard error, as it happens.
pub(crate) fn progress(what: &str) {
    eprintln!("iopkt-bench: {what}");
}

/// Whether `tool` is installed; the reason to skip a row if not.
pub(crate) fn need_tool(tool: &str) -> Result<(), Cell> {
    if crate::procs::have(tool) {
        Ok(())
    } else {
        Err(Cell::Skipped(format!(
            "{tool} is not installed (scripts/bench installs it as root)"
        )))
    }
}
