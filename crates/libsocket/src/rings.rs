//! Which of this process's TCP descriptors have shared rings, and the
//! arenas mapped for them (docs/protocol.md, "Shared rings").
//!
//! A table indexed by descriptor, as `fdtable`, holds each ring socket's
//! arena (an index into this process's few mapped arenas), slot and
//! generation packed in one atomic word, so every read and write finds its
//! ring without a lock. Arenas stay mapped for the life of the process: a
//! descriptor, a dup or a forked child may use one at any time, and
//! there are few (one per connection to io-pkt this process or its
//! parents made).
//!
//! `IOPKT_RINGS=off` in the environment keeps a program's new sockets
//! plain (bytes on the pair itself): for programs that hand their sockets
//! to code that reads them without this library, such as the C library's
//! own stdio (`fdopen`), or to a program started without it.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use client::raw::{self, Request, Response};
use iopkt_rsrcmgr::proto::RingRef;
use iopkt_shm::Arena;
use iopkt_shm::app::AppEnd;
use libc::c_int;

use crate::fdtable::MAX_FDS;

/// Arenas one process maps at most.
const MAX_ARENAS: usize = 64;

static TABLE: [AtomicU64; MAX_FDS] = [const { AtomicU64::new(0) }; MAX_FDS];
static ARENAS: [AtomicPtr<Arena>; MAX_ARENAS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_ARENAS];
/// Each mapped arena's id (its memfd's inode), beside `ARENAS`.
static IDS: [AtomicU64; MAX_ARENAS] = [const { AtomicU64::new(0) }; MAX_ARENAS];
/// Serializes mapping a new arena (rare).
static MAPPING: Mutex<()> = Mutex::new(());

/// Set once an arena could not be mapped (an address-space limit, say):
/// the process's later sockets are plain.
static UNAVAILABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether new TCP sockets ask for rings.
pub fn wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *WANTED.get_or_init(|| {
        !matches!(
            std::env::var("IOPKT_RINGS").as_deref(),
            Ok("off" | "0" | "no")
        )
    });
    on && !UNAVAILABLE.load(Ordering::Relaxed)
}

// Entry: arena index + 1 (8 bits) | slot (24 bits) | generation (32 bits);
// 0 means no ring.
fn pack(arena: usize, slot: u32, generation: u32) -> u64 {
    ((arena as u64 + 1) << 56) | (u64::from(slot & 0xff_ffff) << 32) | u64::from(generation)
}

fn slot_of(fd: c_int) -> Option<&'static AtomicU64> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

/// The ring of descriptor `fd`, if it has one.
pub fn get(fd: c_int) -> Option<AppEnd> {
    let v = slot_of(fd)?.load(Ordering::Acquire);
    if v == 0 {
        return None;
    }
    let arena = ((v >> 56) as usize).checked_sub(1)?;
    let p = ARENAS.get(arena)?.load(Ordering::Acquire);
    // SAFETY: arenas are never unmapped once published (see the module's
    // text).
    let a = unsafe { p.as_ref() }?;
    let slot = a.slot(((v >> 32) & 0xff_ffff) as u32)?;
    Some(AppEnd::new(slot, v as u32))
}

/// Forgets `fd`'s ring (closed, or replaced).
pub fn clear(fd: c_int) {
    if let Some(s) = slot_of(fd) {
        s.store(0, Ordering::Release);
    }
}

/// `to` now refers to what `from` refers to (dup, dup2, F_DUPFD).
pub fn copy(from: c_int, to: c_int) {
    let v = slot_of(from).map_or(0, |s| s.load(Ordering::Acquire));
    if let Some(s) = slot_of(to) {
        s.store(v, Ordering::Release);
    }
}

/// The index of the mapped arena `id`, if mapped.
fn find(id: u64) -> Option<usize> {
    (0..MAX_ARENAS).find(|&i| {
        IDS.get(i).is_some_and(|x| x.load(Ordering::Acquire) == id)
            && ARENAS
                .get(i)
                .is_some_and(|p| !p.load(Ordering::Acquire).is_null())
    })
}

/// Maps the arena io-pkt sent (`memfd`) as `id`, unless it is already.
fn map(id: u64, memfd: BorrowedFd<'_>) -> Result<usize, c_int> {
    let _g = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = find(id) {
        return Ok(i);
    }
    let free = (0..MAX_ARENAS)
        .find(|&i| {
            ARENAS
                .get(i)
                .is_some_and(|p| p.load(Ordering::Acquire).is_null())
        })
        .ok_or(libc::EMFILE)?;
    let arena = Arena::open(memfd).map_err(|e| {
        crate::entry::say_once(
            "rings/map",
            format!("cannot map io-pkt's shared arena ({e}): sockets stay plain"),
        );
        UNAVAILABLE.store(true, Ordering::Relaxed);
        e.raw_os_error().unwrap_or(libc::EPROTO)
    })?;
    let p = Box::into_raw(Box::new(arena));
    if let Some(x) = IDS.get(free) {
        x.store(id, Ordering::Release);
    }
    if let Some(a) = ARENAS.get(free) {
        a.store(p, Ordering::Release);
    }
    Ok(free)
}

/// Records that `fd` uses `ring`, mapping its arena first if needed
/// (asking io-pkt for it).
pub fn attach(fd: c_int, ring: RingRef) -> Result<(), c_int> {
    let arena = match find(ring.arena) {
        Some(i) => i,
        None => {
            let (r, memfd) = ring_of(fd)?;
            if r.arena != ring.arena {
                return Err(libc::EPROTO);
            }
            map(r.arena, memfd.as_fd())?
        }
    };
    let s = slot_of(fd).ok_or(libc::EMFILE)?;
    s.store(pack(arena, ring.slot, ring.generation), Ordering::Release);
    Ok(())
}

/// The ring of socket `fd` and its arena's memfd, from io-pkt.
fn ring_of(fd: c_int) -> Result<(RingRef, std::os::fd::OwnedFd), c_int> {
    // SAFETY: the caller's open descriptor, for the call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    match raw::call(&Request::RingOf, Some(b)) {
        Ok((Response::RingArena { ring }, Some(memfd))) => Ok((ring, memfd)),
        Ok(_) => Err(libc::EPROTO),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EPROTO)),
    }
}

/// A TCP socket this program inherited (exec): if it has a ring, maps
/// its arena and records it. Errors are not reported: a socket without a
/// ring is a plain one.
pub fn adopt_inherited(fd: c_int) {
    if let Ok((ring, memfd)) = ring_of(fd)
        && let Ok(arena) = map(ring.arena, memfd.as_fd())
        && let Some(s) = slot_of(fd)
    {
        s.store(pack(arena, ring.slot, ring.generation), Ordering::Release);
    }
}
