//! The benchmark harness of iopkt: every figure measured side by side with
//! a reference (the Linux kernel, smoltcp) in the same run, because this
//! machine is shared and absolute figures drift; the ratio is what counts.
//!
//! The `iopkt-bench` binary runs the rows and prints the table; the other
//! binaries are the small programs it runs on either stack (they use
//! `std::net` only, so the preloaded socket library moves them onto iopkt).

pub mod fdlimit;
pub mod inproc;
pub mod machine;
pub mod parse;
pub mod procs;
pub mod rows;
pub mod stacks;
pub mod stats;
pub mod table;
