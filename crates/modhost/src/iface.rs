//! One interface a driver attached: the driver's ops, and the egress
//! impairments (`loss=`, `delay=`, `reorder=`, `dup=`, `corrupt=`) applied to
//! every frame on its way to the driver's `tx`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ::iopkt_pkt::PktBuf;
use iopkt_impair::{Impairment, corrupt_frame};
use iopkt_module_abi::{IOPKT_MAX_BATCH, iopkt_detach_fn, iopkt_pkt, iopkt_set_up_fn, iopkt_tx_fn};

use crate::host::HostInner;
use crate::worker::{ModPtr, TimerAction};

/// Most frames of one interface held back by `delay=`/`reorder=` at once;
/// beyond it frames are dropped as a full queue would drop them.
pub(crate) const MAX_DELAYED: usize = 16_384;

pub(crate) struct Iface {
    pub ifindex: u32,
    pub name: String,
    pub tx: iopkt_tx_fn,
    pub set_up: iopkt_set_up_fn,
    pub detach: iopkt_detach_fn,
    pub drv: ModPtr,
    pub impair: Impairment,
    /// The worker that runs this interface's delayed frames: one worker
    /// keeps frames with equal delays in order.
    pub worker: usize,
    pub host: Weak<HostInner>,
    rng: AtomicU64,
    delayed: AtomicUsize,
    /// False once detached; held for reading around every call into the
    /// driver so detach waits for calls in flight.
    alive: RwLock<bool>,
}

impl Iface {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ifindex: u32,
        name: String,
        tx: iopkt_tx_fn,
        set_up: iopkt_set_up_fn,
        detach: iopkt_detach_fn,
        drv: ModPtr,
        impair: Impairment,
        worker: usize,
        host: Weak<HostInner>,
        seed: u64,
    ) -> Iface {
        Iface {
            ifindex,
            name,
            tx,
            set_up,
            detach,
            drv,
            impair,
            worker,
            host,
            rng: AtomicU64::new(seed),
            delayed: AtomicUsize::new(0),
            alive: RwLock::new(true),
        }
    }

    /// splitmix64 over an atomic counter: lock-free and good enough for
    /// drawing frame fates.
    fn next_rand(&self) -> u64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn is_alive(&self) -> bool {
        *self.alive.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends frames out, through the impairments.
    pub(crate) fn send(self: &Arc<Self>, frames: Vec<PktBuf>) {
        if self.impair.is_none() {
            return self.driver_tx(frames);
        }
        let mut now = Vec::with_capacity(frames.len());
        for mut f in frames {
            let fate = self.impair.fate(&mut || self.next_rand());
            if fate.copies.is_empty() {
                continue;
            }
            // The duplicate is taken before corruption: one copy damaged.
            let mut bufs: Vec<PktBuf> = (1..fate.copies.len()).map(|_| f.duplicate()).collect();
            if let Some(r) = fate.corrupt {
                corrupt_frame(f.data_mut(), r);
            }
            bufs.insert(0, f);
            for (p, d) in bufs.into_iter().zip(fate.copies) {
                if d.is_zero() {
                    now.push(p);
                } else {
                    self.delay(p, d);
                }
            }
        }
        self.driver_tx(now);
    }

    fn delay(self: &Arc<Self>, p: PktBuf, d: Duration) {
        if self.delayed.fetch_add(1, Ordering::Relaxed) >= MAX_DELAYED {
            self.delayed.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let Some(host) = self.host.upgrade() else {
            self.delayed.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        let me = Arc::clone(self);
        let action = TimerAction::Host(Box::new(move || {
            me.delayed.fetch_sub(1, Ordering::Relaxed);
            me.driver_tx(vec![p]);
        }));
        if let Err(a) = host.start_timer(Some(self.worker), d, action) {
            drop(a);
            self.delayed.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Hands frames to the driver, in batches of at most 256.
    pub(crate) fn driver_tx(&self, frames: Vec<PktBuf>) {
        if frames.is_empty() {
            return;
        }
        let alive = self.alive.read().unwrap_or_else(|e| e.into_inner());
        let (true, Some(tx)) = (*alive, self.tx) else {
            return;
        };
        let raws: Vec<*mut iopkt_pkt> = frames
            .into_iter()
            .map(|p| p.into_raw().cast::<iopkt_pkt>())
            .collect();
        for chunk in raws.chunks(IOPKT_MAX_BATCH as usize) {
            // SAFETY: the driver takes ownership of every packet in the chunk;
            // drv is alive while `alive` is true.
            unsafe { tx(self.drv.0, chunk.as_ptr(), chunk.len()) };
        }
    }

    pub(crate) fn set_up(&self, up: bool) {
        let alive = self.alive.read().unwrap_or_else(|e| e.into_inner());
        if let (true, Some(f)) = (*alive, self.set_up) {
            // SAFETY: drv is alive while `alive` is true.
            unsafe { f(self.drv.0, up) };
        }
    }

    /// Marks the interface gone; waits for calls into the driver in flight.
    /// With `tell_driver`, calls the driver's detach.
    pub(crate) fn kill(&self, tell_driver: bool) {
        let mut alive = self.alive.write().unwrap_or_else(|e| e.into_inner());
        if !*alive {
            return;
        }
        *alive = false;
        if let (true, Some(f)) = (tell_driver, self.detach) {
            // SAFETY: the last use of drv.
            unsafe { f(self.drv.0) };
        }
    }
}
