//! Safe helpers for writing a module in Rust against the C ABI.
//!
//! A Rust driver implements [`Driver`] (its `init`; `fini` is `Drop`) and
//! [`Interface`] for each interface it attaches, and exports itself with
//! [`crate::export_module!`]. Every function the host calls goes through a
//! trampoline here that catches panics: a panic never crosses the ABI (it
//! becomes an init error, or is logged and the call does nothing).

use core::ffi::{CStr, c_char, c_int, c_void};
use std::ffi::CString;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::abi::*;

/// The host's service table. Valid for the life of the process.
#[derive(Clone, Copy)]
pub struct Host {
    raw: &'static iopkt_host,
}

// SAFETY: the host promises its services are thread-safe and the table is
// immutable and lives as long as the process.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

/// An interface handle given by the host's `if_attach`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfHandle(*mut iopkt_if);

// SAFETY: an opaque handle the host accepts from any thread.
unsafe impl Send for IfHandle {}
unsafe impl Sync for IfHandle {}

impl IfHandle {
    pub fn as_ptr(self) -> *mut iopkt_if {
        self.0
    }
}

/// How a driver describes an interface it attaches.
pub struct IfConfig<'a> {
    /// Name prefix used when the user gave no `name=` ("en" gives "en0").
    pub name_prefix: &'a CStr,
    /// Hardware address, if the device has one.
    pub mac: Option<[u8; 6]>,
    /// Default MTU (0: 1500).
    pub mtu: u32,
    /// Largest MTU the driver carries (0: what one [`Host::alloc`] buffer
    /// holds). A driver that receives with [`Host::alloc_rx`] states its
    /// device's limit here.
    pub max_mtu: u32,
}

/// One interface of a driver: what the host calls on it.
pub trait Interface: Send + Sync + 'static {
    /// Sends frames (at most [`IOPKT_MAX_BATCH`]); may run on several threads
    /// at once. Dropping a [`Pkt`] frees it.
    fn tx(&self, pkts: Vec<Pkt>);
    /// The stack set the interface up or down.
    fn set_up(&self, _up: bool) {}
    /// The interface goes away (`ifconfig IF destroy` or shutdown): no `tx`
    /// or `set_up` runs now or later. Release what belongs to this interface
    /// (drop its [`FdWatch`]es and cancel its [`Timer`]s, then close its
    /// device) so no callback delivers on it afterwards. Dropping an
    /// `FdWatch` here is safe: the host never calls this from a worker
    /// running one of the module's callbacks.
    fn detached(&self) {}
}

/// A module instance. `Drop` is its `fini`.
pub trait Driver: Sized + Send + Sync + 'static {
    /// Starts one instance. The error is one line naming the problem and what
    /// to do; the host prefixes the module name.
    fn init(host: Host, opts: &Options) -> Result<Self, String>;
}

/// Receives readiness of a watched fd on a worker thread.
pub trait FdHandler: Send + Sync + 'static {
    fn ready(&self, fd: RawFd, events: u32);
}

/// The options a module received: `key=value` or bare flags, in order.
#[derive(Debug, Default, Clone)]
pub struct Options(pub Vec<(String, Option<String>)>);

impl Options {
    /// The value of the last `key=value`; `None` if absent or a bare flag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether `key` was given at all (as a flag or with a value).
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Reads the C array the host passes to `init`.
    ///
    /// # Safety
    /// `opts` must point to `n` valid options with NUL-terminated strings.
    pub unsafe fn from_raw(opts: *const iopkt_option, n: usize) -> Options {
        let mut out = Vec::with_capacity(n);
        if opts.is_null() {
            return Options(out);
        }
        for i in 0..n {
            // SAFETY: the caller guarantees n valid entries.
            let o = unsafe { &*opts.add(i) };
            if o.key.is_null() {
                continue;
            }
            // SAFETY: NUL-terminated strings from the host.
            let k = unsafe { CStr::from_ptr(o.key) }
                .to_string_lossy()
                .into_owned();
            let v = (!o.value.is_null()).then(|| {
                unsafe { CStr::from_ptr(o.value) }
                    .to_string_lossy()
                    .into_owned()
            });
            out.push((k, v));
        }
        Options(out)
    }
}

/// An owned packet buffer from the host; dropping it gives it back.
pub struct Pkt {
    raw: NonNull<iopkt_pkt>,
    host: Host,
}

// SAFETY: the packet is uniquely owned; the host's free is thread-safe.
unsafe impl Send for Pkt {}

impl Pkt {
    /// Takes ownership of a packet the host handed over.
    ///
    /// # Safety
    /// `raw` must be a packet of this host that the caller owns.
    pub unsafe fn from_raw(host: Host, raw: *mut iopkt_pkt) -> Option<Pkt> {
        let mut p = Pkt {
            raw: NonNull::new(raw)?,
            host,
        };
        p.clamp();
        Some(p)
    }

    /// Gives up ownership (to hand the packet to the host).
    pub fn into_raw(self) -> *mut iopkt_pkt {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    fn r(&self) -> &iopkt_pkt {
        // SAFETY: we own the descriptor.
        unsafe { self.raw.as_ref() }
    }

    /// Keeps `off + len <= cap` whatever the descriptor said.
    fn clamp(&mut self) {
        // SAFETY: we own the descriptor.
        let r = unsafe { self.raw.as_mut() };
        r.off = r.off.min(r.cap);
        r.len = r.len.min(r.cap - r.off);
    }

    pub fn len(&self) -> usize {
        self.r().len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        let r = self.r();
        // SAFETY: off + len <= cap (clamped on entry and kept by set_len).
        unsafe { std::slice::from_raw_parts(r.buf.add(r.off as usize), r.len as usize) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let r = self.r();
        // SAFETY: as in data(); &mut self.
        unsafe { std::slice::from_raw_parts_mut(r.buf.add(r.off as usize), r.len as usize) }
    }

    /// `IOPKT_PKT_F_*` bits.
    pub fn flags(&self) -> u32 {
        self.r().flags
    }

    pub fn set_flags(&mut self, flags: u32) {
        // SAFETY: we own the descriptor.
        unsafe { self.raw.as_mut() }.flags = flags;
    }

    /// `(csum_start, csum_offset)` of a frame flagged
    /// `IOPKT_PKT_F_CSUM_PARTIAL`.
    pub fn csum_partial(&self) -> Option<(u16, u16)> {
        let r = self.r();
        (r.flags & IOPKT_PKT_F_CSUM_PARTIAL != 0).then_some((r.csum_start, r.csum_offset))
    }

    /// Flags the frame's checksum partial (see `IOPKT_PKT_F_CSUM_PARTIAL`).
    pub fn set_csum_partial(&mut self, start: u16, offset: u16) {
        // SAFETY: we own the descriptor.
        let r = unsafe { self.raw.as_mut() };
        r.flags = (r.flags & !IOPKT_PKT_F_CSUM_VALID) | IOPKT_PKT_F_CSUM_PARTIAL;
        r.csum_start = start;
        r.csum_offset = offset;
    }

    /// The segment size of a frame flagged `IOPKT_PKT_F_GSO_TCPV4` or
    /// `IOPKT_PKT_F_GSO_TCPV6`.
    pub fn gso_size(&self) -> u16 {
        self.r().gso_size
    }

    /// Flags the frame a coalesced TCP segment (`flag` is
    /// `IOPKT_PKT_F_GSO_TCPV4` or `IOPKT_PKT_F_GSO_TCPV6`) of `mss`-byte
    /// segments.
    pub fn set_gso(&mut self, flag: u32, mss: u16) {
        // SAFETY: we own the descriptor.
        let r = unsafe { self.raw.as_mut() };
        let gso = IOPKT_PKT_F_GSO_TCPV4 | IOPKT_PKT_F_GSO_TCPV6;
        r.flags = (r.flags & !gso) | (flag & gso);
        r.gso_size = mss;
    }

    /// The whole room from the start of the packet to the end of the buffer
    /// (receive into it, then [`Pkt::set_len`]).
    pub fn room_mut(&mut self) -> &mut [u8] {
        let r = self.r();
        // SAFETY: off <= cap.
        unsafe {
            std::slice::from_raw_parts_mut(r.buf.add(r.off as usize), (r.cap - r.off) as usize)
        }
    }

    /// Sets the packet length, clamped to the room available.
    pub fn set_len(&mut self, len: usize) {
        // SAFETY: we own the descriptor.
        let r = unsafe { self.raw.as_mut() };
        r.len = (len.min((r.cap - r.off) as usize)) as u32;
    }
}

impl Drop for Pkt {
    fn drop(&mut self) {
        if let Some(free) = self.host.raw.pkt_free {
            // SAFETY: we own the packet and give it back once.
            unsafe { free(self.host.raw.ctx, self.raw.as_ptr()) };
        }
    }
}

/// A watched fd; dropping it stops the watch (and waits for a running
/// callback to finish, unless dropped from that callback).
pub struct FdWatch {
    host: Host,
    fd: RawFd,
    arg: *const c_void,
    release: unsafe fn(*const c_void),
}

// SAFETY: arg is an Arc of a Send + Sync handler.
unsafe impl Send for FdWatch {}
unsafe impl Sync for FdWatch {}

impl Drop for FdWatch {
    fn drop(&mut self) {
        if let Some(unwatch) = self.host.raw.fd_unwatch {
            // SAFETY: valid host; after it returns the callback no longer runs.
            unsafe { unwatch(self.host.raw.ctx, self.fd) };
        }
        // SAFETY: arg came from Arc::into_raw of the handler type `release` knows.
        unsafe { (self.release)(self.arg) };
    }
}

/// A started timer; [`Timer::cancel`] stops it if it has not run.
pub struct Timer {
    host: Host,
    id: u64,
    arg: *mut c_void,
}

// SAFETY: arg is a boxed Send closure.
unsafe impl Send for Timer {}

type TimerFn = Box<dyn FnOnce() + Send>;

impl Timer {
    /// Cancels the timer; true if it had not run yet (its closure is dropped).
    pub fn cancel(self) -> bool {
        let Some(cancel) = self.host.raw.timer_cancel else {
            return false;
        };
        // SAFETY: valid host and id.
        let was_pending = unsafe { cancel(self.host.raw.ctx, self.id) } == 1;
        if was_pending {
            // SAFETY: the callback will never run, so we own the closure.
            drop(unsafe { Box::from_raw(self.arg as *mut TimerFn) });
        }
        was_pending
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

unsafe extern "C" fn timer_tramp(arg: *mut c_void) {
    // SAFETY: arg is the Box<TimerFn> leaked in Host::timer; runs once.
    let f = unsafe { Box::from_raw(arg as *mut TimerFn) };
    let _ = catch_unwind(AssertUnwindSafe(f));
}

unsafe extern "C" fn fd_tramp<H: FdHandler>(arg: *mut c_void, fd: c_int, events: u32) {
    // SAFETY: arg is an Arc<H> kept alive by the FdWatch until unwatched.
    let h = unsafe { &*(arg as *const H) };
    let _ = catch_unwind(AssertUnwindSafe(|| h.ready(fd, events)));
}

unsafe fn release_arc<H>(arg: *const c_void) {
    // SAFETY: matches Arc::into_raw in Host::watch_fd.
    drop(unsafe { Arc::from_raw(arg as *const H) });
}

impl Host {
    /// # Safety
    /// `raw` must be the host table passed to `init` (valid for the process).
    pub unsafe fn from_raw(raw: *const iopkt_host) -> Option<Host> {
        // SAFETY: caller guarantees validity for 'static.
        let raw: &'static iopkt_host = unsafe { raw.as_ref()? };
        Some(Host { raw })
    }

    pub fn as_ptr(&self) -> *const iopkt_host {
        self.raw
    }

    /// A buffer with the standard headroom; `None` when the host has none.
    pub fn alloc(&self) -> Option<Pkt> {
        let f = self.raw.pkt_alloc?;
        // SAFETY: valid host; a new packet owned by us.
        unsafe { Pkt::from_raw(*self, f(self.raw.ctx)) }
    }

    /// A buffer with the standard headroom and room for one received frame
    /// of `ifp` at its current MTU (MTU + 18 bytes); `None` when the host
    /// has none.
    pub fn alloc_rx(&self, ifp: IfHandle) -> Option<Pkt> {
        let f = self.raw.pkt_alloc_rx?;
        // SAFETY: valid host and handle; a new packet owned by us.
        unsafe { Pkt::from_raw(*self, f(self.raw.ctx, ifp.0)) }
    }

    /// A buffer with the standard headroom and room for `size` bytes (a
    /// coalesced segment above the MTU); `None` above
    /// [`IOPKT_MAX_GSO_FRAME`] or when the host has none.
    pub fn alloc_len(&self, size: usize) -> Option<Pkt> {
        let f = self.raw.pkt_alloc_len?;
        // SAFETY: valid host; a new packet owned by us.
        unsafe { Pkt::from_raw(*self, f(self.raw.ctx, size)) }
    }

    pub fn log(&self, level: c_int, msg: &str) {
        if let (Some(f), Ok(m)) = (self.raw.log, CString::new(msg.replace('\0', " "))) {
            // SAFETY: valid host and string.
            unsafe { f(self.raw.ctx, level, m.as_ptr()) };
        }
    }

    /// Attaches an interface served by `iface`. The host keeps one reference
    /// to it until it detaches the interface.
    pub fn attach<I: Interface>(
        &self,
        cfg: &IfConfig<'_>,
        iface: Arc<I>,
    ) -> Result<IfHandle, c_int> {
        self.attach_offloading(cfg, 0, iface)
    }

    /// [`Host::attach`] for an interface whose driver takes over checksums
    /// or segmentation: `offloads` holds `IOPKT_IFCAP_*` bits.
    pub fn attach_offloading<I: Interface>(
        &self,
        cfg: &IfConfig<'_>,
        offloads: u32,
        iface: Arc<I>,
    ) -> Result<IfHandle, c_int> {
        let f = self.raw.if_attach.ok_or(-libc_enosys())?;
        let drv = Box::into_raw(Box::new(Attached { host: *self, iface })) as *mut c_void;
        let desc = iopkt_if_desc {
            name_prefix: cfg.name_prefix.as_ptr(),
            mac: cfg.mac.unwrap_or_default(),
            has_mac: cfg.mac.is_some(),
            mtu: cfg.mtu,
            ops: &OpsFor::<I>::OPS,
            drv,
            max_mtu: cfg.max_mtu,
            offloads,
        };
        let mut out: *mut iopkt_if = std::ptr::null_mut();
        // SAFETY: valid host, desc and out pointer.
        let rc = unsafe { f(self.raw.ctx, &desc, &mut out) };
        if rc != 0 || out.is_null() {
            // SAFETY: the host did not keep drv.
            drop(unsafe { Box::from_raw(drv as *mut Attached<I>) });
            return Err(if rc != 0 { rc } else { -libc_enosys() });
        }
        Ok(IfHandle(out))
    }

    /// Delivers received frames to the stack, in batches of at most
    /// [`IOPKT_MAX_BATCH`].
    pub fn input(&self, ifp: IfHandle, pkts: Vec<Pkt>) {
        let Some(f) = self.raw.input else { return };
        let raws: Vec<*mut iopkt_pkt> = pkts.into_iter().map(Pkt::into_raw).collect();
        for chunk in raws.chunks(IOPKT_MAX_BATCH as usize) {
            // SAFETY: the host takes ownership of every packet in the chunk.
            unsafe { f(self.raw.ctx, ifp.0, chunk.as_ptr(), chunk.len()) };
        }
    }

    pub fn link_state(&self, ifp: IfHandle, up: bool) {
        if let Some(f) = self.raw.link_state {
            // SAFETY: valid host and handle.
            unsafe { f(self.raw.ctx, ifp.0, up) };
        }
    }

    /// Runs `f` once on a worker after `delay`; `None` if the host refuses.
    pub fn timer(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> Option<Timer> {
        let start = self.raw.timer_start?;
        let arg = Box::into_raw(Box::new(Box::new(f) as TimerFn)) as *mut c_void;
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: valid host; timer_tramp takes the box back when it runs.
        let id = unsafe { start(self.raw.ctx, us, Some(timer_tramp), arg) };
        if id == 0 {
            // SAFETY: the host did not take the timer.
            drop(unsafe { Box::from_raw(arg as *mut TimerFn) });
            return None;
        }
        Some(Timer {
            host: *self,
            id,
            arg,
        })
    }

    /// Watches `fd` for `events` (`IOPKT_FD_*`); the watch lasts as long as
    /// the returned [`FdWatch`].
    pub fn watch_fd<H: FdHandler>(
        &self,
        fd: RawFd,
        events: u32,
        handler: Arc<H>,
    ) -> Result<FdWatch, c_int> {
        let f = self.raw.fd_watch.ok_or(-libc_enosys())?;
        let arg = Arc::into_raw(handler) as *const c_void;
        // SAFETY: valid host; the Arc stays alive until the watch is dropped.
        let rc = unsafe {
            f(
                self.raw.ctx,
                fd,
                events,
                Some(fd_tramp::<H>),
                arg as *mut c_void,
            )
        };
        if rc != 0 {
            // SAFETY: not kept by the host.
            unsafe { release_arc::<H>(arg) };
            return Err(rc);
        }
        Ok(FdWatch {
            host: *self,
            fd,
            arg,
            release: release_arc::<H>,
        })
    }
}

fn libc_enosys() -> c_int {
    38
}

/// The ops table of interfaces served by `I`.
struct OpsFor<I>(PhantomData<I>);

impl<I: Interface> OpsFor<I> {
    const OPS: iopkt_if_ops = iopkt_if_ops {
        tx: Some(tx_tramp::<I>),
        set_up: Some(set_up_tramp::<I>),
        detach: Some(detach_tramp::<I>),
    };
}

/// What the host holds as `drv` for an interface served by `I`: the
/// interface and the host whose buffers its tx frees.
struct Attached<I> {
    host: Host,
    iface: Arc<I>,
}

unsafe extern "C" fn tx_tramp<I: Interface>(
    drv: *mut c_void,
    pkts: *const *mut iopkt_pkt,
    n: usize,
) {
    // SAFETY: drv is the Box<Attached<I>> passed to if_attach, alive until detach.
    let a = unsafe { &*(drv as *const Attached<I>) };
    if pkts.is_null() {
        return;
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: the host passes n packets we now own.
        if let Some(p) = unsafe { Pkt::from_raw(a.host, *pkts.add(i)) } {
            v.push(p);
        }
    }
    if catch_unwind(AssertUnwindSafe(|| a.iface.tx(v))).is_err() {
        a.host.log(IOPKT_LOG_ERROR, "panic in tx; frames dropped");
    }
}

unsafe extern "C" fn set_up_tramp<I: Interface>(drv: *mut c_void, up: bool) {
    // SAFETY: as in tx_tramp.
    let a = unsafe { &*(drv as *const Attached<I>) };
    let _ = catch_unwind(AssertUnwindSafe(|| a.iface.set_up(up)));
}

unsafe extern "C" fn detach_tramp<I: Interface>(drv: *mut c_void) {
    // SAFETY: the host gives back its reference; it never uses drv again.
    let a = unsafe { Box::from_raw(drv as *mut Attached<I>) };
    let _ = catch_unwind(AssertUnwindSafe(|| a.iface.detached()));
    let _ = catch_unwind(AssertUnwindSafe(move || drop(a)));
}

/// `IOPKT_IFCAP_*` bits as BSD's ifconfig names them in `options=<...>`
/// ("TXCSUM,RXCSUM,TSO4"; "" for none).
pub fn offload_names(caps: u32) -> String {
    ::iopkt_pkt::offload::cap_names(caps)
}

/// Writes `msg` NUL-terminated into `errbuf`, cut to fit on a char boundary.
///
/// # Safety
/// `errbuf` must be writable for `errlen` bytes (or null).
pub unsafe fn write_err(errbuf: *mut c_char, errlen: usize, msg: &str) {
    if errbuf.is_null() || errlen == 0 {
        return;
    }
    let mut n = msg.len().min(errlen - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: n + 1 <= errlen bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), errbuf as *mut u8, n);
        *errbuf.add(n) = 0;
    }
}

/// `init` of a module whose instance type is `D`.
///
/// # Safety
/// Called only by the host, with the arguments the ABI describes.
pub unsafe extern "C" fn init_tramp<D: Driver>(
    host: *const iopkt_host,
    opts: *const iopkt_option,
    nopts: usize,
    out_instance: *mut *mut c_void,
    errbuf: *mut c_char,
    errlen: usize,
) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host table lives for the process.
        let host = unsafe { Host::from_raw(host) }.ok_or("no host table")?;
        if host.raw.abi_version != IOPKT_ABI_VERSION {
            return Err(format!(
                "host speaks module ABI {}, this module speaks {IOPKT_ABI_VERSION}",
                host.raw.abi_version
            ));
        }
        // SAFETY: the host passes nopts valid options.
        let opts = unsafe { Options::from_raw(opts, nopts) };
        D::init(host, &opts).map(|d| Box::into_raw(Box::new(d)) as *mut c_void)
    }));
    let msg = match result {
        Ok(Ok(inst)) if !out_instance.is_null() => {
            // SAFETY: out_instance is writable.
            unsafe { *out_instance = inst };
            return 0;
        }
        Ok(Ok(inst)) => {
            // SAFETY: nowhere to store it: undo.
            drop(unsafe { Box::from_raw(inst as *mut D) });
            "no place for the instance".to_string()
        }
        Ok(Err(e)) => e,
        Err(_) => "internal error (panic) during init".to_string(),
    };
    // SAFETY: the host gives errlen writable bytes.
    unsafe { write_err(errbuf, errlen, &msg) };
    -1
}

/// `fini` of a module whose instance type is `D`: drops the instance.
///
/// # Safety
/// `instance` must come from [`init_tramp::<D>`] and be finished once.
pub unsafe extern "C" fn fini_tramp<D: Driver>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in init_tramp.
    let d = unsafe { Box::from_raw(instance as *mut D) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(d)));
}

/// A module descriptor in a `static` (it holds raw pointers to static data).
#[repr(transparent)]
pub struct StaticDesc(pub iopkt_module_desc);
// SAFETY: every pointer in it points to immutable static data.
unsafe impl Sync for StaticDesc {}

/// A NULL-terminated static array of option names.
#[repr(transparent)]
pub struct StaticNames<const N: usize>(pub [*const c_char; N]);
// SAFETY: pointers to immutable static strings.
unsafe impl<const N: usize> Sync for StaticNames<N> {}

/// Exports `iopkt_module_entry` for a Rust module:
///
/// ```ignore
/// iopkt_module_abi::export_module! {
///     kind: iopkt_module_abi::IOPKT_KIND_DRIVER,
///     name: "pair",
///     description: "two interfaces joined by a virtual cable",
///     options: [],
///     instance: Pair,
/// }
/// ```
#[macro_export]
macro_rules! export_module {
    (kind: $kind:expr, name: $name:literal, description: $desc:literal, options: [$($opt:literal),* $(,)?], instance: $ty:ty $(,)?) => {
        /// The module's entry point (see include/iopkt/module.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn iopkt_module_entry() -> *const $crate::abi::iopkt_module_desc {
            const NAMES: &[&str] = &[$($opt),*];
            const NOPTS: usize = NAMES.len() + 1;
            static OPTIONS: $crate::driver::StaticNames<NOPTS> = $crate::driver::StaticNames([
                $(concat!($opt, "\0").as_ptr().cast(),)*
                ::core::ptr::null(),
            ]);
            static DESC: $crate::driver::StaticDesc = $crate::driver::StaticDesc($crate::abi::iopkt_module_desc {
                abi_version: $crate::abi::IOPKT_ABI_VERSION,
                kind: $kind,
                name: concat!($name, "\0").as_ptr().cast(),
                description: concat!($desc, "\0").as_ptr().cast(),
                options: OPTIONS.0.as_ptr(),
                init: Some($crate::driver::init_tramp::<$ty>),
                fini: Some($crate::driver::fini_tramp::<$ty>),
            });
            &DESC.0
        }
    };
}
