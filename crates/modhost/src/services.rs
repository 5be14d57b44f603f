//! The service table (`iopkt_host`) each module instance receives, and the
//! C functions behind it. Every entry catches panics: a panic in the host
//! never unwinds into a module.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::iopkt_pkt::{PktBuf, RawPkt};
use iopkt_module_abi::{
    IOPKT_ABI_VERSION, IOPKT_LOG_DEBUG, IOPKT_LOG_ERROR, IOPKT_LOG_INFO, IOPKT_LOG_WARN,
    IOPKT_MAX_BATCH, iopkt_fd_cb, iopkt_host, iopkt_if, iopkt_if_desc, iopkt_pkt, iopkt_timer_cb,
};
use iopkt_wire::Mac;

use crate::AttachInfo;
use crate::host::{HostInner, lock};
use crate::iface::{Iface, LINK_OVERHEAD};
use crate::options::Common;
use crate::worker::{ModPtr, TimerAction};

/// Most units tried when looking for a free interface name.
const MAX_UNIT: u32 = 65_535;

/// Smallest and largest MTU an interface may have (IPv4's 68, RFC 791
/// section 3.2; the IP total length field's 65535).
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65_535;

/// Per-instance state behind `iopkt_host::ctx`. Leaked: modules may keep the
/// table for the life of the process.
pub(crate) struct ModuleCtx {
    pub host: Arc<HostInner>,
    /// "devnp-tap.so", for messages.
    pub module: String,
    /// "tap", for [`AttachInfo::driver`].
    pub driver: String,
    pub table: iopkt_host,
    state: Mutex<AttachState>,
}

// SAFETY: the table's raw pointers point to this leaked value and to
// functions; everything mutable is behind the mutex.
unsafe impl Send for ModuleCtx {}
unsafe impl Sync for ModuleCtx {}

struct AttachState {
    common: Common,
    /// Interfaces attached so far (taken by the host after init).
    attached: Vec<u32>,
    /// How many interfaces this instance attached in all.
    count: u32,
    /// The host's explanation of the last failed attach.
    error: Option<String>,
}

impl ModuleCtx {
    pub(crate) fn leak(
        host: Arc<HostInner>,
        module: String,
        driver: String,
        common: Common,
    ) -> &'static ModuleCtx {
        let ctx = Box::leak(Box::new(ModuleCtx {
            host,
            module,
            driver,
            table: iopkt_host {
                abi_version: IOPKT_ABI_VERSION,
                ctx: std::ptr::null_mut(),
                pkt_alloc: Some(pkt_alloc),
                pkt_free: Some(pkt_free),
                if_attach: Some(if_attach),
                input: Some(input),
                link_state: Some(link_state),
                timer_start: Some(timer_start),
                timer_cancel: Some(timer_cancel),
                fd_watch: Some(fd_watch),
                fd_unwatch: Some(fd_unwatch),
                log: Some(log),
                pkt_alloc_rx: Some(pkt_alloc_rx),
                pkt_alloc_len: Some(pkt_alloc_len),
            },
            state: Mutex::new(AttachState {
                common,
                attached: Vec::new(),
                count: 0,
                error: None,
            }),
        }));
        ctx.table.ctx = ctx as *mut ModuleCtx as *mut c_void;
        ctx
    }

    pub(crate) fn take_attached(&self) -> Vec<u32> {
        std::mem::take(&mut lock(&self.state).attached)
    }

    pub(crate) fn attach_error(&self) -> Option<String> {
        lock(&self.state).error.clone()
    }

    /// Names, registers with the stack and records one interface.
    fn attach(&'static self, desc: &iopkt_if_desc) -> Result<Arc<Iface>, (c_int, String)> {
        // SAFETY: the driver promises ops is valid until detach.
        let Some(ops) = (unsafe { desc.ops.as_ref() }) else {
            return Err((-libc::EINVAL, "attached an interface without ops".into()));
        };
        let mut st = lock(&self.state);
        let _g = lock(&self.host.attach_lock);
        let nth = st.count;
        let c = st.common.clone();
        let prefix = match (&c.name, desc.name_prefix.is_null()) {
            (Some(n), _) => n.clone(),
            (None, false) => {
                // SAFETY: NUL-terminated, checked non-null.
                let p = unsafe { CStr::from_ptr(desc.name_prefix) }
                    .to_string_lossy()
                    .into_owned();
                if p.is_empty() || p.len() > 12 {
                    "en".to_string()
                } else {
                    p
                }
            }
            (None, true) => "en".to_string(),
        };
        let sink = &self.host.sink;
        let name = match c.unit {
            Some(u) if nth == 0 => {
                let n = format!("{prefix}{u}");
                if sink.name_in_use(&n) {
                    return Err((
                        -libc::EEXIST,
                        format!("interface {n} already exists (choose another unit= or name=)"),
                    ));
                }
                n
            }
            start => {
                let from = start.map_or(0, |u| u + 1);
                (from..=MAX_UNIT)
                    .map(|u| format!("{prefix}{u}"))
                    .find(|n| !sink.name_in_use(n))
                    .ok_or_else(|| {
                        (
                            -libc::EEXIST,
                            format!("no free interface name {prefix}N (choose another name=)"),
                        )
                    })?
            }
        };
        let mac = match (c.mac, desc.has_mac) {
            // A second interface of one instance gets the next address.
            (Some(m), _) => {
                let mut b = m.0;
                b[5] = b[5].wrapping_add(nth as u8);
                Mac(b)
            }
            (None, true) if Mac(desc.mac).is_unicast() => Mac(desc.mac),
            _ => Mac::local_from_seed(random_u64()),
        };
        // A driver that never said receives into pool buffers only, so it
        // carries what one of them holds.
        let max_mtu = if desc.max_mtu == 0 {
            let room = u32::try_from(self.host.pool.data_size()).unwrap_or(u32::MAX);
            room.saturating_sub(LINK_OVERHEAD)
        } else {
            desc.max_mtu
        }
        .clamp(MIN_MTU, MAX_MTU);
        let mtu = match c.mtu {
            Some(m) if m > max_mtu => {
                return Err((
                    -libc::EINVAL,
                    format!("mtu={m}: this driver carries at most {max_mtu}"),
                ));
            }
            Some(m) => m,
            None if desc.mtu == 0 => 1500.min(max_mtu),
            None => desc.mtu.clamp(MIN_MTU, max_mtu),
        };
        let info = AttachInfo {
            name: name.clone(),
            mac,
            mtu,
            max_mtu,
            // Unknown bits are a newer driver's; segmentation without
            // checksum completion cannot work (a cut segment needs its own
            // checksum), so TSO is taken only with TXCSUM.
            offloads: sane_offloads(desc.offloads),
            driver: self.driver.clone(),
        };
        let ifindex = sink.attach(&info).map_err(|e| {
            (
                -libc::EIO,
                format!("the stack refused interface {name}: {e}"),
            )
        })?;
        let iface = Arc::new(Iface::new(
            ifindex,
            name,
            ops.tx,
            ops.set_up,
            ops.detach,
            ModPtr(desc.drv),
            c.impair,
            self.host.pick_worker(),
            Arc::downgrade(&self.host),
            random_u64(),
            mtu,
            max_mtu,
        ));
        self.host
            .ifaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ifindex, Arc::clone(&iface));
        st.count += 1;
        st.attached.push(ifindex);
        tracing::info!(module = %self.module, ifname = %info.name, mac = %mac, mtu, "interface attached");
        Ok(iface)
    }
}

/// The capability bits a driver declared, as far as they make sense
/// together: known bits only, and TSO only with TXCSUM.
fn sane_offloads(declared: u32) -> u32 {
    use ::iopkt_pkt::offload::{CAP_ALL, CAP_TSO4, CAP_TSO6, CAP_TXCSUM};
    let mut caps = declared & CAP_ALL;
    if caps & CAP_TXCSUM == 0 {
        caps &= !(CAP_TSO4 | CAP_TSO6);
    }
    caps
}

/// A random u64 for MACs and impairment seeds (std's per-process random
/// hash keys, mixed with a counter).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// # Safety
/// `ctx` must be the `ctx` of a table made by [`ModuleCtx::leak`].
unsafe fn me(ctx: *mut c_void) -> Option<&'static ModuleCtx> {
    // SAFETY: leaked, so 'static.
    unsafe { (ctx as *const ModuleCtx).as_ref() }
}

/// Runs `f`, turning a panic into `default`.
fn guard<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("panic in a host service called by a module");
        default
    })
}

unsafe extern "C" fn pkt_alloc(ctx: *mut c_void) -> *mut iopkt_pkt {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per the ABI.
        let Some(m) = (unsafe { me(ctx) }) else {
            return std::ptr::null_mut();
        };
        m.host.pool.alloc().into_raw().cast()
    })
}

unsafe extern "C" fn pkt_alloc_rx(ctx: *mut c_void, ifp: *mut iopkt_if) -> *mut iopkt_pkt {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per the ABI.
        let (Some(m), Some(iface)) = (unsafe { me(ctx) }, unsafe { iface_of(ifp) }) else {
            return std::ptr::null_mut();
        };
        // Pool buffers when the MTU fits them (the common case, reused);
        // above that a buffer of its own per frame, paid only by interfaces
        // configured with a large MTU.
        let frame = (iface.mtu() + LINK_OVERHEAD) as usize;
        m.host.pool.alloc_for(frame).into_raw().cast()
    })
}

unsafe extern "C" fn pkt_alloc_len(ctx: *mut c_void, size: usize) -> *mut iopkt_pkt {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per the ABI.
        let Some(m) = (unsafe { me(ctx) }) else {
            return std::ptr::null_mut();
        };
        if size > ::iopkt_pkt::offload::MAX_GSO_FRAME {
            return std::ptr::null_mut();
        }
        m.host.pool.alloc_for(size).into_raw().cast()
    })
}

unsafe extern "C" fn pkt_free(_ctx: *mut c_void, pkt: *mut iopkt_pkt) {
    guard((), || {
        if !pkt.is_null() {
            // SAFETY: the module gives back a buffer the host handed out.
            drop(unsafe { PktBuf::from_raw(pkt.cast::<RawPkt>()) });
        }
    })
}

unsafe extern "C" fn if_attach(
    ctx: *mut c_void,
    desc: *const iopkt_if_desc,
    out_if: *mut *mut iopkt_if,
) -> c_int {
    guard(-libc::EIO, || {
        // SAFETY: per the ABI.
        let (Some(m), Some(desc)) = (unsafe { me(ctx) }, unsafe { desc.as_ref() }) else {
            return -libc::EINVAL;
        };
        if out_if.is_null() {
            return -libc::EINVAL;
        }
        match m.attach(desc) {
            Ok(iface) => {
                // SAFETY: out_if is writable; the map keeps the Iface alive
                // and the host never frees it while modules run.
                unsafe { *out_if = Arc::as_ptr(&iface) as *mut iopkt_if };
                0
            }
            Err((rc, msg)) => {
                tracing::warn!(module = %m.module, "{msg}");
                lock(&m.state).error = Some(msg);
                rc
            }
        }
    })
}

/// # Safety
/// `ifp` must be a handle given by `if_attach`.
unsafe fn iface_of<'a>(ifp: *mut iopkt_if) -> Option<&'a Iface> {
    // SAFETY: handles are pointers to Ifaces the host keeps alive.
    unsafe { (ifp as *const Iface).as_ref() }
}

unsafe extern "C" fn input(
    ctx: *mut c_void,
    ifp: *mut iopkt_if,
    pkts: *const *mut iopkt_pkt,
    n: usize,
) {
    guard((), || {
        if pkts.is_null() {
            return;
        }
        // SAFETY: the host takes ownership of each non-null packet.
        let bufs: Vec<PktBuf> = (0..n)
            .filter_map(|i| {
                let p = unsafe { *pkts.add(i) };
                (!p.is_null()).then(|| unsafe { PktBuf::from_raw(p.cast::<RawPkt>()) })
            })
            .collect();
        // SAFETY: per the ABI.
        let (Some(m), Some(iface)) = (unsafe { me(ctx) }, unsafe { iface_of(ifp) }) else {
            return;
        };
        if m.host.closing.load(Ordering::Relaxed) {
            return;
        }
        iface.deliver_input(|| {
            let mut bufs = bufs;
            while bufs.len() > IOPKT_MAX_BATCH as usize {
                let rest = bufs.split_off(IOPKT_MAX_BATCH as usize);
                m.host.sink.input(iface.ifindex, bufs);
                bufs = rest;
            }
            if !bufs.is_empty() {
                m.host.sink.input(iface.ifindex, bufs);
            }
        });
    })
}

unsafe extern "C" fn link_state(ctx: *mut c_void, ifp: *mut iopkt_if, up: bool) {
    guard((), || {
        // SAFETY: per the ABI.
        if let (Some(m), Some(iface)) = (unsafe { me(ctx) }, unsafe { iface_of(ifp) })
            && iface.is_alive()
            && !m.host.closing.load(Ordering::Relaxed)
        {
            m.host.sink.link_state(iface.ifindex, up);
        }
    })
}

unsafe extern "C" fn timer_start(
    ctx: *mut c_void,
    delay_us: u64,
    cb: iopkt_timer_cb,
    arg: *mut c_void,
) -> u64 {
    guard(0, || {
        // SAFETY: per the ABI.
        let (Some(m), Some(cb)) = (unsafe { me(ctx) }, cb) else {
            return 0;
        };
        let action = TimerAction::Module {
            cb,
            arg: ModPtr(arg),
        };
        m.host
            .start_timer(None, Duration::from_micros(delay_us), action)
            .unwrap_or(0)
    })
}

unsafe extern "C" fn timer_cancel(ctx: *mut c_void, id: u64) -> c_int {
    guard(0, || {
        // SAFETY: per the ABI.
        let Some(m) = (unsafe { me(ctx) }) else {
            return 0;
        };
        c_int::from(m.host.cancel_timer(id))
    })
}

unsafe extern "C" fn fd_watch(
    ctx: *mut c_void,
    fd: c_int,
    events: u32,
    cb: iopkt_fd_cb,
    arg: *mut c_void,
) -> c_int {
    guard(-libc::EIO, || {
        // SAFETY: per the ABI.
        let (Some(m), Some(cb)) = (unsafe { me(ctx) }, cb) else {
            return -libc::EINVAL;
        };
        match m.host.watch(fd, events, cb, ModPtr(arg)) {
            Ok(()) => 0,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    })
}

unsafe extern "C" fn fd_unwatch(ctx: *mut c_void, fd: c_int) -> c_int {
    guard(-libc::EIO, || {
        // SAFETY: per the ABI.
        let Some(m) = (unsafe { me(ctx) }) else {
            return -libc::EINVAL;
        };
        if m.host.unwatch(fd) { 0 } else { -libc::ENOENT }
    })
}

unsafe extern "C" fn log(ctx: *mut c_void, level: c_int, msg: *const c_char) {
    guard((), || {
        // SAFETY: per the ABI.
        let Some(m) = (unsafe { me(ctx) }) else {
            return;
        };
        if msg.is_null() {
            return;
        }
        // SAFETY: NUL-terminated message.
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
        let module = m.module.as_str();
        match level {
            IOPKT_LOG_ERROR => tracing::error!(module, "{text}"),
            IOPKT_LOG_WARN => tracing::warn!(module, "{text}"),
            IOPKT_LOG_INFO => tracing::info!(module, "{text}"),
            IOPKT_LOG_DEBUG => tracing::debug!(module, "{text}"),
            _ => tracing::trace!(module, "{text}"),
        }
    })
}
