//! TCP and UDP sockets of an iopkt stack, with the methods of `std::net`.
//!
//! Each socket is a real descriptor in this process: the application's end
//! of a Unix socket pair whose other end io-pkt serves (docs/protocol.md).
//! Reading, writing and `poll`/`epoll` work on it natively; control calls
//! (bind, connect, options, names) go to the stack over a per-process
//! connection to `<prefix>/dev/socket`, the prefix named by `$SOCK` (or the
//! default one) unless [`set_prefix`] chose another.

mod ctl;
mod tcp;
mod udp;

pub use ctl::set_prefix;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
