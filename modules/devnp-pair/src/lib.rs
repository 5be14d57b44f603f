//! devnp-pair: two interfaces of one stack joined by a virtual cable. A
//! frame sent on one is received on the other.
//!
//! Delivery is deferred: `tx` only queues the frame on the far end and
//! signals that end's eventfd; the far end's fd callback, on a worker,
//! hands the queue to the stack. `tx` never calls `input` itself, so the
//! stack is never re-entered from its own transmit path. Each end's queue
//! is bounded; a full queue drops, as a real NIC ring would.
//!
//! Destroying one interface (`ifconfig pair0 destroy`) cuts the cable at
//! its end: its queue is emptied and closed and its eventfd unwatched. The
//! other interface stays, without a peer: the driver reports its carrier
//! down, and what is still sent on it is dropped (and counted), as frames
//! sent into an unplugged cable are lost.
//!
//! The driver never allocates: a frame crosses in the very buffer the stack
//! sent, so it carries any MTU up to 65535.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use iopkt_module_abi::driver::{
    Driver, FdHandler, FdWatch, Host, IfConfig, IfHandle, Interface, Options, Pkt,
};
use iopkt_module_abi::{
    IOPKT_FD_READ, IOPKT_KIND_DRIVER, IOPKT_LOG_INFO, IOPKT_LOG_WARN, IOPKT_MAX_BATCH,
};

/// Frames waiting at one end of the cable.
const QUEUE_LIMIT: usize = 4096;

/// The largest IP MTU; frames move without copies, so nothing smaller binds.
const MAX_MTU: u32 = 65_535;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving half of one end: frames sent from the other end wait here.
struct End {
    host: Host,
    queue: Mutex<VecDeque<Pkt>>,
    wake: OwnedFd,
    ifp: OnceLock<IfHandle>,
    /// False once this end's interface is destroyed: nothing is queued.
    open: AtomicBool,
    /// Frames sent to this end after it was destroyed.
    lost: AtomicU64,
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
            open: AtomicBool::new(true),
            lost: AtomicU64::new(0),
        })
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: 8-byte write to our eventfd; a saturated counter still wakes.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Queues frames sent from the other end; false if this end is gone.
    fn push(&self, pkts: Vec<Pkt>) -> bool {
        let mut dropped = 0;
        {
            let mut q = lock(&self.queue);
            // Checked under the queue lock: `close` empties the queue under
            // it, so nothing is queued after that.
            if !self.open.load(Ordering::Relaxed) {
                let n = pkts.len() as u64;
                drop(q);
                drop(pkts);
                if self.lost.fetch_add(n, Ordering::Relaxed) == 0 {
                    self.host.log(
                        IOPKT_LOG_INFO,
                        "the other end of the cable was destroyed: frames sent to it are dropped",
                    );
                }
                return false;
            }
            for p in pkts {
                if q.len() < QUEUE_LIMIT {
                    q.push_back(p);
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            self.host.log(
                IOPKT_LOG_WARN,
                &format!("cable queue full: {dropped} frames dropped"),
            );
        }
        true
    }

    /// This end's interface is destroyed: refuse and free what waits.
    fn close(&self) {
        let waiting: VecDeque<Pkt> = {
            let mut q = lock(&self.queue);
            self.open.store(false, Ordering::Relaxed);
            std::mem::take(&mut *q)
        };
        drop(waiting);
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
                let mut q = lock(&self.queue);
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

/// One interface of the pair: receives at `rx`, sends to `peer`.
struct Port {
    rx: Arc<End>,
    peer: Arc<End>,
    /// The watch on `rx`'s eventfd; dropped when the interface goes.
    watch: Mutex<Option<FdWatch>>,
}

impl Port {
    /// Stops delivery on this interface: after the watch is dropped no
    /// callback runs for it; then its queue is emptied and closed.
    fn shut(&self) {
        let w = lock(&self.watch).take();
        drop(w);
        self.rx.close();
    }
}

impl Interface for Port {
    fn tx(&self, pkts: Vec<Pkt>) {
        if self.peer.push(pkts) {
            self.peer.signal();
        }
    }

    fn detached(&self) {
        self.shut();
        // The other interface has lost its cable: no carrier. (The host
        // ignores this while shutting down.)
        if let Some(ifp) = self.peer.ifp.get().copied() {
            self.rx.host.link_state(ifp, false);
        }
    }
}

struct Pair {
    ports: Vec<Arc<Port>>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The host detaches both interfaces before fini; after a failed init
        // it does not, so stop the callbacks here in any case.
        for p in &self.ports {
            p.shut();
        }
    }
}

impl Driver for Pair {
    fn init(host: Host, _opts: &Options) -> Result<Pair, String> {
        let ends = [Arc::new(End::new(host)?), Arc::new(End::new(host)?)];
        let cfg = IfConfig {
            name_prefix: c"pair",
            mac: None,
            mtu: 1500,
            max_mtu: MAX_MTU,
        };
        // Dropped (shutting down the watches) if init fails part way.
        let mut pair = Pair { ports: Vec::new() };
        // Interface i receives at end i and sends to end 1 - i.
        for i in 0..2 {
            let port = Arc::new(Port {
                rx: Arc::clone(&ends[i]),
                peer: Arc::clone(&ends[1 - i]),
                watch: Mutex::new(None),
            });
            pair.ports.push(Arc::clone(&port));
            let ifp = host.attach(&cfg, port).map_err(|rc| {
                format!("cannot attach interface {} of the pair (error {rc})", i + 1)
            })?;
            let _ = ends[i].ifp.set(ifp);
        }
        for (port, end) in pair.ports.iter().zip(&ends) {
            let w = host
                .watch_fd(end.wake.as_raw_fd(), IOPKT_FD_READ, Arc::clone(end))
                .map_err(|rc| format!("cannot watch the cable's eventfd (error {rc})"))?;
            *lock(&port.watch) = Some(w);
        }
        Ok(pair)
    }
}

iopkt_module_abi::export_module! {
    kind: IOPKT_KIND_DRIVER,
    name: "pair",
    description: "two interfaces of this stack joined by a virtual cable",
    options: [],
    instance: Pair,
}
