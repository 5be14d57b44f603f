//! Which descriptors of this process are the stack's sockets.
//!
//! A fixed table indexed by descriptor, one atomic byte each, so every
//! call (read, write, close...) can ask "is this ours?" without a lock and
//! without allocating. Descriptors at or beyond [`MAX_FDS`] are never
//! handed out as stack sockets (`socket` answers EMFILE for them).

use std::sync::atomic::{AtomicU8, Ordering};

/// How many descriptors the table covers.
pub const MAX_FDS: usize = 65_536;

const OURS: u8 = 1;
const DGRAM: u8 = 2;
const V6: u8 = 4;
const LISTENING: u8 = 8;
/// A non-blocking connect whose outcome nobody has asked for yet.
const CONNECTING: u8 = 16;
/// The stack was asked once for the error that ended this TCP
/// connection (see tcp_end.rs).
const END_CHECKED: u8 = 32;
/// A UDP socket this process connected: send() without an address has a
/// destination. Only a hint that saves asking the stack (another holder
/// of the socket may connect it, so its absence proves nothing).
const PEER: u8 = 64;

static TABLE: [AtomicU8; MAX_FDS] = [const { AtomicU8::new(0) }; MAX_FDS];

/// What the table knows about one of our descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(u8);

impl Kind {
    pub fn new(v6: bool, dgram: bool) -> Kind {
        let mut k = OURS;
        if v6 {
            k |= V6;
        }
        if dgram {
            k |= DGRAM;
        }
        Kind(k)
    }
    pub fn dgram(self) -> bool {
        self.0 & DGRAM != 0
    }
    pub fn v6(self) -> bool {
        self.0 & V6 != 0
    }
    pub fn listening(self) -> bool {
        self.0 & LISTENING != 0
    }
    pub fn connecting(self) -> bool {
        self.0 & CONNECTING != 0
    }
    pub fn has_peer(self) -> bool {
        self.0 & PEER != 0
    }
}

fn slot(fd: libc::c_int) -> Option<&'static AtomicU8> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

/// Our socket behind `fd`, if it is one.
pub fn get(fd: libc::c_int) -> Option<Kind> {
    let v = slot(fd)?.load(Ordering::Acquire);
    (v & OURS != 0).then_some(Kind(v))
}

/// Records `fd` as ours; false if it is beyond the table.
pub fn set(fd: libc::c_int, kind: Kind) -> bool {
    match slot(fd) {
        Some(s) => {
            crate::rings::clear(fd);
            s.store(kind.0, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Forgets `fd` (closed, or replaced by a descriptor that is not ours).
pub fn clear(fd: libc::c_int) {
    if let Some(s) = slot(fd) {
        s.store(0, Ordering::Release);
    }
    crate::rings::clear(fd);
}

/// `to` now refers to what `from` refers to (dup, dup2, F_DUPFD).
pub fn copy(from: Option<Kind>, to: libc::c_int) {
    match from {
        Some(k) => {
            set(to, k);
        }
        None => clear(to),
    }
}

pub fn mark_listening(fd: libc::c_int) {
    if let Some(s) = slot(fd) {
        s.fetch_or(LISTENING, Ordering::AcqRel);
    }
}

pub fn set_connecting(fd: libc::c_int, on: bool) {
    if let Some(s) = slot(fd) {
        if on {
            s.fetch_or(CONNECTING, Ordering::AcqRel);
        } else {
            s.fetch_and(!CONNECTING, Ordering::AcqRel);
        }
    }
}

/// Takes the right to ask how the connection ended: true for exactly one
/// caller per socket.
pub fn take_end_check(fd: libc::c_int) -> bool {
    slot(fd).is_some_and(|s| {
        let v = s.fetch_or(END_CHECKED, Ordering::AcqRel);
        v & OURS != 0 && v & END_CHECKED == 0
    })
}

pub fn set_peer(fd: libc::c_int, on: bool) {
    if let Some(s) = slot(fd) {
        if on {
            s.fetch_or(PEER, Ordering::AcqRel);
        } else {
            s.fetch_and(!PEER, Ordering::AcqRel);
        }
    }
}
