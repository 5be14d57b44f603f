//! The iopkt protocol stack, as a library without I/O.
//!
//! A [`Stack`] holds every piece of protocol state as plain values. The world
//! reaches it only through a [`Ctx`]: the clock, a random source, frame output
//! and socket wake-ups. The daemon implements `Ctx` with real clocks and
//! drivers; the simulated network (`iopkt-sim`) implements it with virtual time
//! and links, so whole stacks run deterministically inside one test.
//!
//! Layout, bottom to top:
//! - [`iface`]: interfaces, their addresses and counters;
//! - [`ethernet`]: frame demux and output;
//! - [`arp`] (RFC 826) and [`ndp`] (RFC 4861, RFC 4862);
//! - [`ipv4`], [`icmp4`], [`ipv6`], [`icmp6`], with [`reasm`] for fragments
//!   and [`route`] for longest-prefix match;
//! - [`socket`]: the stack's sockets as seen by the resource manager.
//! - [`udp`] (RFC 768): datagram sockets, with [`igmp`] (RFC 3376) telling
//!   routers of the multicast groups they join.
//! - [`counters`]: every protocol counter, grouped and described for
//!   `netstat -s`.

pub mod arp;
pub mod config;
pub mod counters;
pub mod ctx;
pub mod error;
pub mod ethernet;
pub mod group_query;
mod gso;
pub mod icmp4;
pub mod icmp6;
pub mod iface;
pub mod igmp;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod neighbor;
pub mod reasm;
pub mod route;
pub mod socket;
mod stack;
pub mod tcp;
pub mod time;
pub mod transport;
pub mod udp;

pub use config::Config;
pub use counters::CounterGroup;
pub use ctx::Ctx;
pub use error::Error;
pub use iface::{IfIndex, IfKind, Interface};
pub use stack::Stack;
pub use time::Instant;

pub use iopkt_pkt::{PktBuf, Pool};
pub use iopkt_wire::Mac;

/// Index of the loopback interface `lo0`, which every stack has from the start.
pub const LOOPBACK_IFINDEX: IfIndex = 1;
