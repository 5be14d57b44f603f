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
        }
    }
}

impl std::error::Error for Error {}
