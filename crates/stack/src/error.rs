//! Errors the stack reports to its callers (the resource manager turns them
//! into errno values and messages).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No interface with that name or index.
    NoSuchInterface(String),
    /// The address is already configured, or the route already exists.
    Exists(String),
    /// The address or route to remove is not there.
    NotFound(String),
    /// An argument the stack cannot accept (a bad prefix length, MTU...).
    Invalid(String),
    /// No route to the destination network.
    NetUnreachable,
    /// The next hop did not answer address resolution.
    HostUnreachable,
    /// A message larger than the path allows and not fragmentable.
    MessageTooLarge,
    /// A bounded table or queue is full.
    NoBuffers,
    /// The socket does not exist or was closed.
    BadSocket,
    /// The address is not one of this stack's.
    AddrNotAvailable,
    /// Address or port already in use.
    AddrInUse,
    /// Nothing to read, or no room to write, on a non-blocking call.
    WouldBlock,
    /// A connection attempt started and completes later (readiness says when).
    InProgress,
    /// A connection attempt is already under way.
    Already,
    /// The socket is not connected.
    NotConnected,
    /// The socket is already connected.
    IsConnected,
    /// The peer refused the connection (RST, or ICMP port unreachable).
    ConnRefused,
    /// The peer reset the connection.
    ConnReset,
    /// The connection was aborted locally (listener closed, queue overflow).
    ConnAborted,
    /// The connection timed out (retransmissions, keepalive).
    TimedOut,
    /// Writing after shutdown or after the peer closed (EPIPE).
    BrokenPipe,
    /// The operation does not apply to this kind of socket.
    NotSupported(String),
    /// Not allowed without a socket option asking for it (EACCES: a
    /// broadcast without SO_BROADCAST).
    PermissionDenied,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchInterface(n) => write!(f, "no such interface: {n}"),
            Error::Exists(w) => write!(f, "{w} already exists"),
            Error::NotFound(w) => write!(f, "{w} not found"),
            Error::Invalid(w) => write!(f, "invalid argument: {w}"),
            Error::NetUnreachable => f.write_str("network is unreachable"),
            Error::HostUnreachable => f.write_str("no route to host"),
            Error::MessageTooLarge => f.write_str("message too long"),
            Error::NoBuffers => f.write_str("no buffer space available"),
            Error::BadSocket => f.write_str("bad socket"),
            Error::AddrNotAvailable => f.write_str("cannot assign requested address"),
            Error::AddrInUse => f.write_str("address already in use"),
            Error::WouldBlock => f.write_str("resource temporarily unavailable"),
            Error::InProgress => f.write_str("operation now in progress"),
            Error::Already => f.write_str("operation already in progress"),
            Error::NotConnected => f.write_str("transport endpoint is not connected"),
            Error::IsConnected => f.write_str("transport endpoint is already connected"),
            Error::ConnRefused => f.write_str("connection refused"),
            Error::ConnReset => f.write_str("connection reset by peer"),
            Error::ConnAborted => f.write_str("software caused connection abort"),
            Error::TimedOut => f.write_str("connection timed out"),
            Error::BrokenPipe => f.write_str("broken pipe"),
            Error::NotSupported(w) => write!(f, "operation not supported: {w}"),
            Error::PermissionDenied => f.write_str("permission denied"),
        }
    }
}

impl std::error::Error for Error {}
