//! Creating, mapping and trimming an arena.
//!
//! io-pkt creates an arena per client connection and seals its size
//! (F_SEAL_SHRINK | F_SEAL_GROW): an application holding the memfd could
//! otherwise shrink it and make io-pkt's next access to a ring fault.
//! Pages exist only once touched; when a socket closes, io-pkt punches
//! its rings out of the file, so the memory goes back at once.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::copy::RingData;
use crate::layout::{
    ARENA_SIZE, ArenaHeader, MAGIC, RING_SIZE, SLOT_HEADER_SIZE, SLOTS_PER_ARENA, SlotHeader,
    VERSION, header_offset, rings_offset,
};

/// One mapping of an arena, unmapped when dropped.
pub struct Arena {
    base: NonNull<u8>,
}

// SAFETY: the mapping is plain shared memory; everything in it is reached
// through atomics or raw copies (see `copy`).
unsafe impl Send for Arena {}
unsafe impl Sync for Arena {}

fn map(fd: BorrowedFd<'_>) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of a file we were given; nothing
    // else lives at the address the kernel picks.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            ARENA_SIZE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    }?;
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave a null mapping"))
}

impl Arena {
    /// A new arena and its memfd (to hand to the application).
    pub fn create() -> io::Result<(Arena, OwnedFd)> {
        let fd = rustix::fs::memfd_create(
            "iopkt-sockets",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, ARENA_SIZE as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let base = map(fd.as_fd())?;
        let a = Arena { base };
        // SAFETY: the first page is ours to fill before anyone else sees
        // the arena.
        unsafe {
            a.base.cast::<ArenaHeader>().as_ptr().write(ArenaHeader {
                magic: MAGIC,
                version: VERSION,
                slots: SLOTS_PER_ARENA,
                ring_size: RING_SIZE as u32,
                slot_header_size: SLOT_HEADER_SIZE as u32,
            });
        }
        Ok((a, fd))
    }

    /// Maps an arena io-pkt handed over, after checking it is one of this
    /// layout.
    pub fn open(fd: BorrowedFd<'_>) -> io::Result<Arena> {
        let st = rustix::fs::fstat(fd)?;
        if usize::try_from(st.st_size).ok() != Some(ARENA_SIZE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared arena has the wrong size",
            ));
        }
        let a = Arena { base: map(fd)? };
        // SAFETY: the mapping covers at least the header page.
        let h = unsafe { a.base.cast::<ArenaHeader>().as_ptr().read_volatile() };
        if h.magic != MAGIC
            || h.version != VERSION
            || h.slots != SLOTS_PER_ARENA
            || h.ring_size as usize != RING_SIZE
            || h.slot_header_size as usize != SLOT_HEADER_SIZE
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared arena is of another layout (io-pkt and the library differ)",
            ));
        }
        Ok(a)
    }

    /// Slot `i`, if there is one.
    pub fn slot(&self, i: u32) -> Option<SlotPtr> {
        if i >= SLOTS_PER_ARENA {
            return None;
        }
        // SAFETY: both offsets lie within the mapping for i < SLOTS.
        unsafe {
            let h = self
                .base
                .as_ptr()
                .add(header_offset(i))
                .cast::<SlotHeader>();
            let rings = self.base.as_ptr().add(rings_offset(i));
            Some(SlotPtr {
                header: NonNull::new_unchecked(h),
                tx: RingData { base: rings },
                rx: RingData {
                    base: rings.add(RING_SIZE),
                },
            })
        }
    }

    /// Gives slot `i`'s ring pages back to the system (they read as zeros
    /// afterwards). Needs the arena's memfd.
    pub fn trim(&self, fd: BorrowedFd<'_>, i: u32) -> io::Result<()> {
        if i >= SLOTS_PER_ARENA {
            return Ok(());
        }
        rustix::fs::fallocate(
            fd,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            rings_offset(i) as u64,
            2 * RING_SIZE as u64,
        )?;
        Ok(())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of that size; every SlotPtr into it is
        // the owner's to have dropped first.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), ARENA_SIZE) };
    }
}

/// One slot of a mapped arena. Valid while that mapping lives: the owner
/// of the [`Arena`] keeps it alive as long as it uses the slot.
#[derive(Clone, Copy)]
pub struct SlotPtr {
    header: NonNull<SlotHeader>,
    pub(crate) tx: RingData,
    pub(crate) rx: RingData,
}

// SAFETY: as for `Arena`.
unsafe impl Send for SlotPtr {}
unsafe impl Sync for SlotPtr {}

impl SlotPtr {
    pub fn header(&self) -> &SlotHeader {
        // SAFETY: a header of a live mapping; all its fields are atomics.
        unsafe { self.header.as_ref() }
    }
}
