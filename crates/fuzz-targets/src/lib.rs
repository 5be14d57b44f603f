//! One entry function per fuzz target of `fuzz/` (TESTING.md section 3:
//! every parser that sees outside data). Each takes arbitrary bytes and
//! panics only on a bug: a crash of the code under test, or a broken
//! invariant it checks. The targets are thin wrappers, and this crate's
//! tests run every function over the committed corpora and over generated
//! inputs, so the harness is checked without cargo-fuzz.

pub mod daemon_options;
pub mod reassembly;
pub mod seeds;
pub mod shm_ring;
pub mod tcp_segments;
pub mod virtio_net_hdr;

pub use daemon_options::daemon_options;
pub use iopkt_modhost::fuzz::driver_options;
pub use iopkt_rsrcmgr::fuzz::{control_request, control_server};
pub use iopkt_sim::fuzz::stack_input;
pub use reassembly::reassembly;
pub use shm_ring::shm_ring;
pub use tcp_segments::tcp_segments;
pub use virtio_net_hdr::virtio_net_hdr;

/// A fuzz target: its name (the `fuzz/fuzz_targets/NAME.rs` file and the
/// `fuzz/corpus/NAME/` folder) and its entry function.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "stack_input",
        run: stack_input,
    },
    Target {
        name: "daemon_options",
        run: daemon_options,
    },
    Target {
        name: "driver_options",
        run: driver_options,
    },
    Target {
        name: "control_request",
        run: control_request,
    },
    Target {
        name: "control_server",
        run: control_server,
    },
    Target {
        name: "reassembly",
        run: reassembly,
    },
    Target {
        name: "tcp_segments",
        run: tcp_segments,
    },
    Target {
        name: "virtio_net_hdr",
        run: virtio_net_hdr,
    },
    Target {
        name: "shm_ring",
        run: shm_ring,
    },
];
