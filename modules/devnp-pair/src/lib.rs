//! devnp-pair: two interfaces of one stack joined by a virtual cable. A
//! frame sent on one is received on the other.
//!
//! Delivery is deferred: `tx` only queues the frame on the far end and
//! signals that end's eventfd; the far end's fd callback, on a worker,
//! hands the queue to the stack. `tx` never calls `input` itself, so the
//! stack is never re-entered from its own transmit path. Each end's queue
//! is bounded; a full queue drops, as a real NIC ring would.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};

use iopkt_module_abi::driver::{
    Driver, FdHandler, FdWatch, Host, IfConfig, IfHandle, Interface, Options, Pkt,
};
use iopkt_module_abi::{IOPKT_FD_READ, IOPKT_KIND_DRIVER, IOPKT_LOG_WARN, IOPKT_MAX_BATCH};

/// Frames waiting at one end of the cable.
const QUEUE_LIMIT: usize = 4096;

/// The receiving half of one end: frames sent from the other end wait here.
struct End {
    host: Host,
    queue: Mutex<VecDeque<Pkt>>,
    wake: OwnedFd,
    ifp: OnceLock<IfHandle>,
}

impl End {
    fn new(host: Host) -> Result<End, String> {
        // SAFETY: plain syscall; the fd is owned right away.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(format!(
                "cannot create an eventfd: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(End {
            host,
            queue: Mutex::new(VecDeque::new()),
            // SAFETY: fd is a new descriptor we own.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
            ifp: OnceLock::new(),
        })
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: 8-byte write to our eventfd; a saturated counter still wakes.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

impl FdHandler for End {
    fn ready(&self, fd: RawFd, _events: u32) {
        let mut count = 0u64;
        // SAFETY: 8-byte read from our eventfd (non-blocking).
        unsafe { libc::read(fd, (&mut count as *mut u64).cast(), 8) };
        let Some(ifp) = self.ifp.get().copied() else {
            return;
        };
        loop {
            let batch: Vec<Pkt> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = q.len().min(IOPKT_MAX_BATCH as usize);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            self.host.input(ifp, batch);
        }
    }
}

/// The sending half of one interface: its frames go to the peer end.
struct Wire {
    peer: Arc<End>,
}

impl Interface for Wire {
    fn tx(&self, pkts: Vec<Pkt>) {
        let mut dropped = 0;
        {
            let mut q = self.peer.queue.lock().unwrap_or_else(|e| e.into_inner());
            for p in pkts {
                if q.len() < QUEUE_LIMIT {
                    q.push_back(p);
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            self.peer.host.log(
                IOPKT_LOG_WARN,
                &format!("cable queue full: {dropped} frames dropped"),
            );
        }
        self.peer.signal();
    }
}

struct Pair {
    // Dropped first: unwatching guarantees no callback still uses the ends.
    _watches: Vec<FdWatch>,
    _ends: [Arc<End>; 2],
}

impl Driver for Pair {
    fn init(host: Host, _opts: &Options) -> Result<Pair, String> {
        let ends = [Arc::new(End::new(host)?), Arc::new(End::new(host)?)];
        let cfg = IfConfig {
            name_prefix: c"pair",
            mac: None,
            mtu: 1500,
        };
        // Interface i receives at end i and sends to end 1 - i.
        for i in 0..2 {
            let wire = Arc::new(Wire {
                peer: Arc::clone(&ends[1 - i]),
            });
            let ifp = host.attach(&cfg, wire).map_err(|rc| {
                format!("cannot attach interface {} of the pair (error {rc})", i + 1)
            })?;
            let _ = ends[i].ifp.set(ifp);
        }
        let mut watches = Vec::new();
        for e in &ends {
            let w = host
                .watch_fd(e.wake.as_raw_fd(), IOPKT_FD_READ, Arc::clone(e))
                .map_err(|rc| format!("cannot watch the cable's eventfd (error {rc})"))?;
            watches.push(w);
        }
        Ok(Pair {
            _watches: watches,
            _ends: ends,
        })
    }
}

iopkt_module_abi::export_module! {
    kind: IOPKT_KIND_DRIVER,
    name: "pair",
    description: "two interfaces of this stack joined by a virtual cable",
    options: [],
    instance: Pair,
}
