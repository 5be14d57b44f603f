//! What the library cannot do on a stack socket: the call fails with the
//! errno the kernel gives for it, and stderr says so once per kind of
//! call (a program that retries must not flood its log).

use libc::{c_int, c_ulong};

use crate::entry::say_once;

/// An ioctl request the stack's sockets do not answer.
pub fn ioctl(req: c_ulong, errno: c_int) -> c_int {
    say_once(
        &format!("ioctl/{req:x}"),
        format!("ioctl 0x{req:x} on a stack socket is not supported"),
    );
    errno
}

/// Any other call or flag: `what` names it in the message.
pub fn call(what: &str, errno: c_int) -> c_int {
    say_once(
        &format!("call/{what}"),
        format!("{what} is not supported by the stack's sockets"),
    );
    errno
}
