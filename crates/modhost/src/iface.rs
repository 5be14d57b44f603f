//! One interface a driver attached: the driver's ops, and the egress
//! impairments (`loss=`, `delay=`, `reorder=`, `dup=`, `corrupt=`) applied to
//! every frame on its way to the driver's `tx`.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ::iopkt_pkt::PktBuf;
use iopkt_impair::{Impairment, corrupt_frame};
use iopkt_module_abi::{IOPKT_MAX_BATCH, iopkt_detach_fn, iopkt_pkt, iopkt_set_up_fn, iopkt_tx_fn};

use crate::host::HostInner;
use crate::worker::{ModPtr, TimerAction};

/// Bytes of link header a received frame may carry beyond the MTU: the
/// Ethernet header (14) and one 802.1Q tag (4).
pub(crate) const LINK_OVERHEAD: u32 = 18;

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
    /// Largest MTU the driver carries.
    pub max_mtu: u32,
    /// The MTU the stack uses now; receive buffers from `pkt_alloc_rx` hold
    /// one frame of it.
    mtu: AtomicU32,
    rng: AtomicU64,
    delayed: AtomicUsize,
    /// `input` calls between their liveness check and the sink's return;
    /// detach waits for them so nothing reaches the stack for this index
    /// once detach returns.
    inputs: AtomicUsize,
    /// False once detached; held for reading around every `tx` and `set_up`
    /// so detach waits for calls in flight.
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
        mtu: u32,
        max_mtu: u32,
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
            max_mtu,
            mtu: AtomicU32::new(mtu),
            rng: AtomicU64::new(seed),
            delayed: AtomicUsize::new(0),
            inputs: AtomicUsize::new(0),
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

    pub(crate) fn mtu(&self) -> u32 {
        self.mtu.load(Ordering::Relaxed)
    }

    pub(crate) fn set_mtu(&self, mtu: u32) {
        self.mtu.store(mtu, Ordering::Relaxed);
    }

    /// Runs `deliver` unless the interface is detached; detach waits for a
    /// delivery that passed the check.
    pub(crate) fn deliver_input(&self, deliver: impl FnOnce()) {
        // SeqCst pairs with the count read in `kill`: either kill sees this
        // call counted, or this call sees the interface dead.
        self.inputs.fetch_add(1, Ordering::SeqCst);
        if self.is_alive() {
            deliver();
        }
        self.inputs.fetch_sub(1, Ordering::SeqCst);
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
                // Damage happens on the wire, after the device computed
                // the checksum: complete it first, or a driver that
                // completes it would cover the damage. A large TCP
                // segment then goes as one frame with one checksum (the
                // receiver drops all of it, as it would the segments it
                // stood for).
                f.finish_checksum();
                f.clear_offload();
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
            if let Some(h) = self.host.upgrade() {
                h.count_tx_dropped(frames.len());
            }
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

    /// Marks the interface gone and waits for `tx` and `set_up` calls in
    /// flight; with `tell_driver`, then calls the driver's detach; last,
    /// waits for `input` calls in flight. The driver's detach runs without
    /// the liveness lock held: it may wait (in `fd_unwatch`) for a callback
    /// that is itself checking liveness in `input`. False if already dead.
    pub(crate) fn kill(&self, tell_driver: bool) -> bool {
        {
            let mut alive = self.alive.write().unwrap_or_else(|e| e.into_inner());
            if !*alive {
                return false;
            }
            *alive = false;
        }
        if let (true, Some(f)) = (tell_driver, self.detach) {
            // SAFETY: the last use of drv; no tx or set_up is running.
            unsafe { f(self.drv.0) };
        }
        // An input that passed its check is handing frames to the stack,
        // which needs no lock this thread holds; it finishes shortly.
        while self.inputs.load(Ordering::SeqCst) != 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }
}
