//! The module ABI of io-pkt (ARCHITECTURE.md, principle 5).
//!
//! [`abi`] holds the `#[repr(C)]` types and C function-pointer types both
//! sides use; `include/iopkt/module.h` is generated from it. [`driver`] is a
//! thin safe layer for writing modules in Rust on top of the same ABI, with
//! [`export_module!`] to export the entry symbol.

pub mod abi;
pub mod driver;
mod layout;
pub mod virtio_net;

pub use abi::*;

/// The name of the symbol every module exports: a C function taking no
/// arguments and returning `*const iopkt_module_desc`.
pub const ENTRY_SYMBOL: &str = "iopkt_module_entry";
