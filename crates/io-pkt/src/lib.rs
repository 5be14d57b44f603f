//! The `io-pkt` daemon as a library: option parsing and the runtime that
//! joins the stack, the module host and the resource manager. `main.rs` is a
//! thin shell around it.

pub mod ctx;
pub mod daemon;
pub mod options;
pub mod runtime;
