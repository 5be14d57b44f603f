//! What every exported function shares: errno, turning errors into the
//! kernel's answers, and never letting a panic cross into C.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use libc::c_int;

pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = e };
}

pub fn errno() -> c_int {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

/// The errno a C caller should see for `e`. An error without one means the
/// stack could not be reached (no io-pkt at the prefix, or the connection
/// broke): ENETDOWN, after saying once what happened.
pub fn errno_of(e: &io::Error) -> c_int {
    if let Some(c) = e.raw_os_error() {
        return c;
    }
    match e.kind() {
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::InvalidData => libc::EPROTO,
        _ => {
            say_once(
                "stack",
                format!("cannot reach the stack ({e}); is io-pkt running and SOCK set?"),
            );
            libc::ENETDOWN
        }
    }
}

/// Runs one call: `Err(errno)` becomes `fail` with errno set; a panic
/// (a defect here, never the caller's) becomes EIO.
pub fn guard<T: Copy>(fail: T, f: impl FnOnce() -> Result<T, c_int>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            fail
        }
        Err(_) => {
            set_errno(libc::EIO);
            fail
        }
    }
}

/// A C return value (-1 with errno set) as a Result.
pub fn check<T: PartialOrd + Default>(v: T) -> Result<T, c_int> {
    if v < T::default() {
        Err(errno())
    } else {
        Ok(v)
    }
}

/// Distinct messages said so far (bounded: after 256 kinds, stay quiet).
static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints `iopkt: <msg>` on stderr the first time `key` comes up.
pub fn say_once(key: &str, msg: String) {
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said.iter().any(|k| k == key) || said.len() >= 256 {
        return;
    }
    said.push(key.to_string());
    drop(said);
    let line = format!("iopkt: {msg}\n");
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::syscall(libc::SYS_write, 2, line.as_ptr(), line.len()) };
}
