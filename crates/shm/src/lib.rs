//! The shared-memory data path of TCP sockets (docs/protocol.md, "Shared
//! rings").
//!
//! A TCP socket's bytes do not have to cross the kernel twice on their way
//! between an application and io-pkt: each client connection of io-pkt
//! owns an *arena*, a sealed memfd both processes map, holding one *slot*
//! per socket: two single-producer single-consumer byte rings
//! (application → stack, stack → application) and a header of counters and
//! flags. The socket's pair stays its descriptor (poll, select, epoll,
//! fork, close, SCM_RIGHTS all work on it as before) but carries only
//! wake-up bytes, written only when the other side said it sleeps.
//!
//! This crate holds what both sides must agree on: the layout
//! ([`layout`]), mapping an arena ([`arena`]), the lock the application
//! side takes so that threads and forked processes sharing a socket stay
//! one producer and one consumer ([`lock`]), and the two sides' operations
//! on a slot ([`app`] for the library, [`stack`] for io-pkt). It makes no
//! system call besides creating, mapping and trimming arenas: which wake-up
//! byte to write or read, the operations *say*; the callers do it.
//!
//! Trust: the library trusts io-pkt; io-pkt trusts nothing in the arena,
//! which the application may scribble on at will. Every counter io-pkt
//! reads from it is checked ([`stack::Corrupt`]), so a broken or hostile
//! application can only hurt its own sockets.

pub mod app;
pub mod arena;
pub mod layout;
pub mod lock;
pub mod stack;

mod copy;

pub use arena::{Arena, SlotPtr};
pub use layout::{RING_SIZE, SLOTS_PER_ARENA};
