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
pub use iopkt_rsrcmgr::proto::TcpInfoWire as TcpInfo;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// The protocol underneath the types above, for callers that manage raw
/// descriptors themselves (the preloaded socket library,
/// `libiopkt_socket.so`): the same per-process control connection (opened
/// again in a forked child), the requests and the datagram header.
pub mod raw {
    pub use crate::ctl::{
        addr, after_fork, before_fork, call, call_alone, call_ok, call_timeout, getopt, open,
        setopt, take_error, to_io,
    };
    pub use iopkt_rsrcmgr::proto::{
        DGRAM_HEADER_LEN, DGRAM_TRUNCATED, DgramHeader, MAX_DGRAM_PAYLOAD, Request, Response,
        RingRef, SockOptNameWire, SockOptWire, TcpInfoWire,
    };
}
