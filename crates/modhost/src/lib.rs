//! The module host: loads driver and protocol modules through the C ABI of
//! `iopkt-module-abi` (ARCHITECTURE.md, principle 5), gives them the host's
//! services (buffers, input, timers, fd watches, logging) and runs their
//! callbacks on layer-2 worker threads.
//!
//! The daemon owns one [`ModHost`] and implements [`StackSink`] to receive
//! what drivers deliver. Threads that call the sink:
//! - [`StackSink::name_in_use`] and [`StackSink::attach`]: the thread calling
//!   [`ModHost::load`] (a driver attaches while it initialises), or a worker
//!   if a driver attaches an interface later;
//! - [`StackSink::input`] and [`StackSink::link_state`]: worker threads (fd
//!   and timer callbacks), or a driver's own threads; never from inside
//!   [`ModHost::transmit`];
//! - [`StackSink::detach`]: the thread calling `load` when an init fails after
//!   attaching, the thread calling [`ModHost::detach`], and the thread
//!   calling [`ModHost::shutdown`].

mod error;
pub mod fuzz;
mod host;
mod iface;
mod options;
mod search;
mod services;
mod worker;

use std::path::PathBuf;

pub use error::LoadError;
pub use host::ModHost;
pub use search::default_search_path;

/// An interface a driver attached, as the stack should create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInfo {
    /// Final name, e.g. "en0".
    pub name: String,
    pub mac: iopkt_wire::Mac,
    pub mtu: u32,
    /// The largest MTU the driver carries; `ifconfig IF mtu N` above it must
    /// be refused.
    pub max_mtu: u32,
    /// What the driver does about checksums and segmentation
    /// (`iopkt_pkt::offload::CAP_*`, the ABI's `IOPKT_IFCAP_*`); the stack
    /// relies on them only through `Stack::set_offloads`.
    pub offloads: u32,
    /// The driver's short name ("tap").
    pub driver: String,
}

/// What the host tells the stack.
pub trait StackSink: Send + Sync + 'static {
    fn name_in_use(&self, name: &str) -> bool;
    /// A driver attached an interface; returns the stack's interface index.
    fn attach(&self, info: &AttachInfo) -> Result<u32, String>;
    /// Frames received on an interface (at most 256); called from worker
    /// threads.
    fn input(&self, ifindex: u32, frames: Vec<iopkt_pkt::PktBuf>);
    fn link_state(&self, ifindex: u32, up: bool);
    /// The interface is gone (its driver failed to start, it was detached,
    /// or the host is shutting down); transmit to it is dropped from now on
    /// and no more input comes for it.
    fn detach(&self, _ifindex: u32) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    Driver,
    Protocol,
}

/// A module instance that started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The module's name as messages show it ("devnp-tap.so").
    pub module: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Interfaces it attached while starting, in order.
    pub ifindexes: Vec<u32>,
}

/// For the daemon's `-t` default: one worker per CPU.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
