//! TCP bulk between two stacks in one process, no I/O: iopkt on the
//! simulated link against smoltcp on its own kind of loopback.

use super::{Config, alternate, progress};
use crate::inproc::{Transfer, iopkt_bulk, payload, smoltcp_bulk};
use crate::table::{Better, Row};

fn gbits(t: Result<Transfer, String>, bytes: usize) -> Result<f64, String> {
    let t = t?;
    if !t.intact {
        return Err("the bytes that arrived differ from those sent".into());
    }
    Ok(t.gbits(bytes))
}

pub fn inproc_bulk(cfg: &Config) -> Row {
    progress("TCP bulk between two stacks in one process (iopkt-sim, smoltcp)");
    let data = payload(cfg.inproc_bytes);
    let n = data.len();
    let (iopkt, reference) = alternate(
        cfg.runs,
        || gbits(iopkt_bulk(&data), n),
        || gbits(smoltcp_bulk(&data), n),
    );
    Row {
        name: format!(
            "TCP bulk between two stacks in one process, no I/O, {} MB, MTU 1500",
            n >> 20
        ),
        unit: "Gbit/s",
        better: Better::Higher,
        iopkt,
        reference,
        reference_is: "smoltcp 0.13, two sockets over a loopback device, same harness".into(),
    }
}
