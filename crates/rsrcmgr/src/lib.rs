//! The iopkt resource manager.
//!
//! - [`proto`]: the message protocol over `<prefix>/dev/socket`, shared by
//!   the server and every client (docs/protocol.md writes it down);
//! - [`server`]: the runtime the daemon embeds ([`Server::start`] with a
//!   [`StackHost`]);
//! - [`client`]: a blocking client, used by the `iopkt` utility and the
//!   socket libraries (it passes socket descriptors with SCM_RIGHTS);
//! - [`prefix`]: where the socket of a stack is ([`default_prefix`]);
//! - [`mem_host`]: a stack in memory behind a [`StackHost`], for tests of
//!   anything that talks to the resource manager;
//! - [`fuzz`]: entry points for fuzzing what the server does with a
//!   client's bytes.

pub mod client;
pub mod fuzz;
pub mod mem_host;
pub mod prefix;
pub mod proto;
pub mod server;

pub use client::{Client, ClientError};
pub use prefix::{client_prefix, default_prefix, socket_path};
pub use server::{Notifier, Server, StackHost, StartError};
