//! Error codes carried in [`super::WireError`]. The numbers are Linux's errno
//! values, written out here because the protocol fixes them whatever the
//! platform of a client.

use iopkt_stack::Error;

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const ENXIO: i32 = 6;
pub const EBADF: i32 = 9;
pub const EACCES: i32 = 13;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EINVAL: i32 = 22;
pub const EMFILE: i32 = 24;
pub const ENOSYS: i32 = 38;
pub const EPROTO: i32 = 71;
pub const ENOPROTOOPT: i32 = 92;
pub const EBADMSG: i32 = 74;
pub const EMSGSIZE: i32 = 90;
pub const EPROTONOSUPPORT: i32 = 93;
pub const EADDRINUSE: i32 = 98;
pub const EADDRNOTAVAIL: i32 = 99;
pub const ENETUNREACH: i32 = 101;
pub const ENOBUFS: i32 = 105;
pub const EHOSTUNREACH: i32 = 113;
pub const EAGAIN: i32 = 11;
pub const EPIPE: i32 = 32;
pub const EOPNOTSUPP: i32 = 95;
pub const ECONNABORTED: i32 = 103;
pub const ECONNRESET: i32 = 104;
pub const EISCONN: i32 = 106;
pub const ENOTCONN: i32 = 107;
pub const ETIMEDOUT: i32 = 110;
pub const ECONNREFUSED: i32 = 111;
pub const EALREADY: i32 = 114;
pub const EINPROGRESS: i32 = 115;

/// The errno that best describes a stack error.
pub fn errno_of(e: &Error) -> i32 {
    match e {
        // BSD ifconfig reports an unknown interface as ENXIO ("Device not
        // configured").
        Error::NoSuchInterface(_) => ENXIO,
        Error::Exists(_) => EEXIST,
        Error::NotFound(_) => ENOENT,
        Error::Invalid(_) => EINVAL,
        Error::NetUnreachable => ENETUNREACH,
        Error::HostUnreachable => EHOSTUNREACH,
        Error::MessageTooLarge => EMSGSIZE,
        Error::NoBuffers => ENOBUFS,
        Error::BadSocket => EBADF,
        Error::AddrNotAvailable => EADDRNOTAVAIL,
        Error::AddrInUse => EADDRINUSE,
        Error::WouldBlock => EAGAIN,
        Error::InProgress => EINPROGRESS,
        Error::Already => EALREADY,
        Error::NotConnected => ENOTCONN,
        Error::IsConnected => EISCONN,
        Error::ConnRefused => ECONNREFUSED,
        Error::ConnReset => ECONNRESET,
        Error::ConnAborted => ECONNABORTED,
        Error::TimedOut => ETIMEDOUT,
        Error::BrokenPipe => EPIPE,
        Error::NotSupported(_) => EOPNOTSUPP,
        Error::PermissionDenied => EACCES,
    }
}

/// A short name for a code, for messages and documentation.
pub fn errno_name(code: i32) -> &'static str {
    match code {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        ENXIO => "ENXIO",
        EBADF => "EBADF",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EINVAL => "EINVAL",
        EMFILE => "EMFILE",
        ENOSYS => "ENOSYS",
        EPROTO => "EPROTO",
        EBADMSG => "EBADMSG",
        EMSGSIZE => "EMSGSIZE",
        EPROTONOSUPPORT => "EPROTONOSUPPORT",
        EADDRINUSE => "EADDRINUSE",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        ENETUNREACH => "ENETUNREACH",
        ENOBUFS => "ENOBUFS",
        EHOSTUNREACH => "EHOSTUNREACH",
        _ => "E?",
    }
}
