//! The host proper: worker threads, the interface table, loading modules,
//! and shutdown.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ::iopkt_pkt::{PktBuf, Pool};
use iopkt_module_abi::{
    ENTRY_SYMBOL, IOPKT_ABI_VERSION, IOPKT_KIND_DRIVER, IOPKT_KIND_PROTOCOL, iopkt_fini_fn,
    iopkt_module_desc, iopkt_option,
};

use crate::iface::Iface;
use crate::options;
use crate::search;
use crate::services::ModuleCtx;
use crate::worker::{FdCb, ModPtr, TimerAction, Worker};
use crate::{LoadError, Loaded, ModuleKind, StackSink};

/// Longest error message a module may write in `init`.
const ERRBUF_LEN: usize = 512;

/// Most option names a descriptor may list (a guard against a missing NULL).
const MAX_MODULE_OPTIONS: usize = 128;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Instance {
    ctx: &'static ModuleCtx,
    fini: iopkt_fini_fn,
    instance: ModPtr,
    ifindexes: Vec<u32>,
}

pub(crate) struct HostInner {
    pub pool: Pool,
    pub sink: Arc<dyn StackSink>,
    search: Vec<PathBuf>,
    workers: Vec<Arc<Worker>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    next_worker: AtomicUsize,
    next_timer: AtomicU64,
    fd_owner: Mutex<HashMap<RawFd, usize>>,
    pub ifaces: RwLock<HashMap<u32, Arc<Iface>>>,
    instances: Mutex<Vec<Instance>>,
    /// Serialises name choice and `sink.attach` so two loads never pick the
    /// same free name.
    pub attach_lock: Mutex<()>,
    pub closing: AtomicBool,
    /// Loaded libraries are kept mapped for the life of the process: a Rust
    /// cdylib with thread-locals must never be unloaded.
    libs: Mutex<Vec<libloading::Library>>,
    /// Detached interfaces. Drivers hold raw pointers to them until their
    /// fini returns (a callback may still pass one to `input`), so they are
    /// kept for the life of the process rather than freed: one small record
    /// per interface ever detached.
    graveyard: Mutex<Vec<Arc<Iface>>>,
    /// Serialises run-time detach with shutdown, so a driver never sees
    /// `detach` of an interface while its instance's `fini` runs.
    retiring: Mutex<()>,
    /// Frames handed to `transmit` for an interface that is gone.
    tx_dropped: AtomicU64,
}

/// Loads modules and runs them. Cloning gives another handle to the same
/// host.
#[derive(Clone)]
pub struct ModHost {
    inner: Arc<HostInner>,
}

impl HostInner {
    pub(crate) fn pick_worker(&self) -> usize {
        self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len()
    }

    /// Starts a timer on `worker` (or the calling worker, or the next one).
    /// Returns its id, never 0.
    pub(crate) fn start_timer(
        &self,
        worker: Option<usize>,
        delay: Duration,
        action: TimerAction,
    ) -> Result<u64, TimerAction> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(action);
        }
        let n = self.workers.len() as u64;
        let w = worker
            .or_else(|| Worker::current_index(&self.workers))
            .unwrap_or_else(|| self.pick_worker());
        // The id says which worker holds the timer: id % n.
        let id = self.next_timer.fetch_add(1, Ordering::Relaxed) * n + w as u64;
        self.workers[w].add_timer(id, delay, action)?;
        Ok(id)
    }

    pub(crate) fn cancel_timer(&self, id: u64) -> bool {
        let n = self.workers.len() as u64;
        if id < n {
            return false;
        }
        self.workers[(id % n) as usize].cancel_timer(id)
    }

    pub(crate) fn watch(
        &self,
        fd: RawFd,
        events: u32,
        cb: FdCb,
        arg: ModPtr,
    ) -> std::io::Result<()> {
        if fd < 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        let mut owners = lock(&self.fd_owner);
        let w = match owners.get(&fd) {
            Some(w) => *w,
            None => self.pick_worker(),
        };
        self.workers[w].watch(fd, events, cb, arg)?;
        owners.insert(fd, w);
        Ok(())
    }

    pub(crate) fn unwatch(&self, fd: RawFd) -> bool {
        let Some(w) = lock(&self.fd_owner).remove(&fd) else {
            return false;
        };
        self.workers[w].unwatch(fd)
    }

    /// Takes an interface out of service: no transmit reaches its driver
    /// any more (frames for it are dropped and counted), with `tell_driver`
    /// its driver's detach runs, and the stack is told it is gone. False if
    /// the host had no such interface.
    fn retire(&self, ifindex: u32, tell_driver: bool) -> bool {
        let gone = self
            .ifaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ifindex);
        let found = gone.is_some();
        if let Some(i) = gone {
            i.kill(tell_driver);
            lock(&self.graveyard).push(i);
        }
        self.sink.detach(ifindex);
        found
    }

    pub(crate) fn count_tx_dropped(&self, n: usize) {
        self.tx_dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn iface(&self, ifindex: u32) -> Option<Arc<Iface>> {
        self.ifaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ifindex)
            .cloned()
    }
}

fn cstr_lossy(p: *const c_char) -> Option<String> {
    // SAFETY: the module promises NUL-terminated static strings.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The option names a descriptor lists.
fn module_options(desc: &iopkt_module_desc) -> Vec<String> {
    let mut out = Vec::new();
    if desc.options.is_null() {
        return out;
    }
    for i in 0..MAX_MODULE_OPTIONS {
        // SAFETY: a NULL-terminated array of static strings.
        let p = unsafe { *desc.options.add(i) };
        match cstr_lossy(p) {
            Some(s) => out.push(s),
            None => break,
        }
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl ModHost {
    /// Starts `threads` worker threads (at least one).
    pub fn new(
        pool: Pool,
        threads: usize,
        sink: Arc<dyn StackSink>,
        search: Vec<PathBuf>,
    ) -> std::io::Result<ModHost> {
        let workers = (0..threads.max(1))
            .map(|_| Worker::new().map(Arc::new))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut joins = Vec::new();
        for (i, w) in workers.iter().enumerate() {
            let w = Arc::clone(w);
            joins.push(
                std::thread::Builder::new()
                    .name(format!("iopkt-l2-{i}"))
                    .spawn(move || w.run())?,
            );
        }
        Ok(ModHost {
            inner: Arc::new(HostInner {
                pool,
                sink,
                search,
                workers,
                joins: Mutex::new(joins),
                next_worker: AtomicUsize::new(0),
                next_timer: AtomicU64::new(1),
                fd_owner: Mutex::new(HashMap::new()),
                ifaces: RwLock::new(HashMap::new()),
                instances: Mutex::new(Vec::new()),
                attach_lock: Mutex::new(()),
                closing: AtomicBool::new(false),
                libs: Mutex::new(Vec::new()),
                graveyard: Mutex::new(Vec::new()),
                retiring: Mutex::new(()),
                tx_dropped: AtomicU64::new(0),
            }),
        })
    }

    /// The directories searched for modules.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.inner.search
    }

    /// Loads `name_or_path` ("tap", "devnp-tap.so", "libdevnp_tap.so" or a
    /// path) and starts one instance with the option word `options`
    /// ("dev=x,name=en,loss=5").
    pub fn load(
        &self,
        kind: ModuleKind,
        name_or_path: &str,
        options: &str,
    ) -> Result<Loaded, LoadError> {
        let path = search::find(kind, name_or_path, &self.inner.search)?;
        let file = file_name(&path);
        let words = options::split(options).map_err(|msg| LoadError::BadOption {
            module: file.clone(),
            msg,
        })?;

        // SAFETY: loading a module runs its initialisers; modules are trusted
        // code the administrator chose to load.
        let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| LoadError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        type Entry = unsafe extern "C" fn() -> *const iopkt_module_desc;
        let sym = format!("{ENTRY_SYMBOL}\0");
        // SAFETY: the symbol's type is fixed by the ABI.
        let entry: Entry = match unsafe { lib.get::<Entry>(sym.as_bytes()) } {
            Ok(f) => *f,
            Err(_) => {
                return Err(LoadError::NotAModule {
                    path,
                    why: format!("no symbol {ENTRY_SYMBOL}"),
                });
            }
        };
        // SAFETY: calling the module's entry point.
        let desc_ptr = unsafe { entry() };
        // SAFETY: the descriptor is static data of the module.
        let Some(desc) = (unsafe { desc_ptr.as_ref() }) else {
            return Err(LoadError::NotAModule {
                path,
                why: format!("{ENTRY_SYMBOL} returned no descriptor"),
            });
        };
        if desc.abi_version != IOPKT_ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                file,
                found: desc.abi_version,
                expected: IOPKT_ABI_VERSION,
            });
        }
        let want = match kind {
            ModuleKind::Driver => IOPKT_KIND_DRIVER,
            ModuleKind::Protocol => IOPKT_KIND_PROTOCOL,
        };
        if desc.kind != want {
            return Err(LoadError::WrongKind {
                file,
                wanted: kind,
                found: desc.kind,
            });
        }
        let Some(init) = desc.init else {
            return Err(LoadError::NotAModule {
                path,
                why: "its descriptor has no init".into(),
            });
        };
        let short = cstr_lossy(desc.name).unwrap_or_else(|| file.clone());
        let module = match kind {
            ModuleKind::Driver => format!("devnp-{short}.so"),
            ModuleKind::Protocol => format!("lsm-{short}.so"),
        };
        let known = module_options(desc);
        let (common, module_opts) =
            options::classify(words, &known).map_err(|msg| LoadError::BadOption {
                module: module.clone(),
                msg,
            })?;

        let ctx = ModuleCtx::leak(Arc::clone(&self.inner), module.clone(), short, common);
        let cstrings: Vec<(CString, Option<CString>)> = module_opts
            .iter()
            .map(|(k, v)| {
                let c = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
                (c(k), v.as_deref().map(c))
            })
            .collect();
        let copts: Vec<iopkt_option> = cstrings
            .iter()
            .map(|(k, v)| iopkt_option {
                key: k.as_ptr(),
                value: v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
            })
            .collect();
        let mut errbuf = [0 as c_char; ERRBUF_LEN];
        let mut instance: *mut c_void = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the host table lives
        // for the process.
        let rc = unsafe {
            init(
                &ctx.table,
                copts.as_ptr(),
                copts.len(),
                &mut instance,
                errbuf.as_mut_ptr(),
                errbuf.len(),
            )
        };
        errbuf[ERRBUF_LEN - 1] = 0;
        let attached = ctx.take_attached();
        if rc != 0 {
            for ifindex in &attached {
                self.inner.retire(*ifindex, false);
            }
            // SAFETY: NUL-terminated above.
            let said = unsafe { CStr::from_ptr(errbuf.as_ptr()) }
                .to_string_lossy()
                .trim()
                .to_string();
            let msg = match (ctx.attach_error(), said.is_empty()) {
                (Some(e), _) => e,
                (None, false) => said,
                (None, true) => format!("failed to start (error {rc}, no message)"),
            };
            lock(&self.inner.libs).push(lib);
            return Err(LoadError::Init { module, msg });
        }
        lock(&self.inner.libs).push(lib);
        lock(&self.inner.instances).push(Instance {
            ctx,
            fini: desc.fini,
            instance: ModPtr(instance),
            ifindexes: attached.clone(),
        });
        tracing::info!(module = %module, path = %path.display(), "module loaded");
        Ok(Loaded {
            module,
            path,
            ifindexes: attached,
        })
    }

    /// Sends frames out of an interface: through its impairments to its
    /// driver's tx. Thread-safe; never calls the sink.
    pub fn transmit(&self, ifindex: u32, frames: Vec<PktBuf>) {
        if self.inner.closing.load(Ordering::Relaxed) {
            return;
        }
        match self.inner.iface(ifindex) {
            Some(i) => i.send(frames),
            None => self.inner.count_tx_dropped(frames.len()),
        }
    }

    /// Frames given to [`ModHost::transmit`] for interfaces that were gone
    /// (detached, or never attached), dropped.
    pub fn tx_dropped(&self) -> u64 {
        self.inner.tx_dropped.load(Ordering::Relaxed)
    }

    /// Tells the driver the stack set the interface up or down.
    pub fn set_up(&self, ifindex: u32, up: bool) {
        if let Some(i) = self.inner.iface(ifindex) {
            i.set_up(up);
        }
    }

    /// The largest MTU the interface's driver carries; `None` if the host
    /// has no such interface.
    pub fn max_mtu(&self, ifindex: u32) -> Option<u32> {
        self.inner.iface(ifindex).map(|i| i.max_mtu)
    }

    /// Records the MTU the stack now uses on an interface, so receive
    /// buffers hold a frame of it. Refuses (with the line to show) an MTU
    /// above what the driver carries.
    pub fn set_mtu(&self, ifindex: u32, mtu: u32) -> Result<(), String> {
        let i = self
            .inner
            .iface(ifindex)
            .ok_or_else(|| format!("interface #{ifindex} has no driver"))?;
        if mtu > i.max_mtu {
            return Err(format!(
                "mtu {mtu}: the driver of {} carries at most {}",
                i.name, i.max_mtu
            ));
        }
        i.set_mtu(mtu);
        Ok(())
    }

    /// Detaches one interface at run time (`ifconfig IF destroy`). From the
    /// first moment, frames transmitted to it are dropped and counted
    /// ([`ModHost::tx_dropped`]); then, once no `tx` or `set_up` for it is
    /// running, the driver's `detach` runs on this thread, which releases
    /// the interface's device and stops its callbacks; then calls of
    /// `input` for it still in flight finish; then the sink's
    /// [`StackSink::detach`] is called. When this returns, nothing for
    /// `ifindex` reaches the sink any more.
    ///
    /// The module stays loaded even when it has no interface left (modules
    /// are never unloaded); its `fini` runs at shutdown.
    ///
    /// Must not be called from inside a sink callback, with the stack's lock
    /// held, or on a worker thread: the driver's detach waits for its
    /// callbacks, which may be waiting for those. A worker thread is refused.
    pub fn detach(&self, ifindex: u32) -> Result<(), String> {
        if Worker::current_index(&self.inner.workers).is_some() {
            return Err("interfaces cannot be detached from a layer-2 worker thread".into());
        }
        let _g = lock(&self.inner.retiring);
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err("the module host is shutting down".into());
        }
        let name = self
            .ifname(ifindex)
            .ok_or_else(|| format!("interface #{ifindex} has no driver"))?;
        if !self.inner.retire(ifindex, true) {
            return Err(format!("interface #{ifindex} has no driver"));
        }
        let mut instances = lock(&self.inner.instances);
        for inst in instances.iter_mut() {
            inst.ifindexes.retain(|i| *i != ifindex);
            // Interfaces attached after init are listed in the context;
            // move them here so shutdown does not retire this one again.
            let later = inst.ctx.take_attached();
            inst.ifindexes
                .extend(later.into_iter().filter(|i| *i != ifindex));
        }
        drop(instances);
        tracing::info!(ifname = %name, "interface detached");
        Ok(())
    }

    /// The name the host gave an interface.
    pub fn ifname(&self, ifindex: u32) -> Option<String> {
        self.inner.iface(ifindex).map(|i| i.name.clone())
    }

    /// Detaches every interface, finishes every module instance (newest
    /// first), then stops the workers. Libraries stay mapped.
    pub fn shutdown(&self) {
        let _g = lock(&self.inner.retiring);
        if self.inner.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        let instances = std::mem::take(&mut *lock(&self.inner.instances));
        for inst in instances.into_iter().rev() {
            // Interfaces attached during init, then any attached later.
            for ifindex in inst
                .ifindexes
                .iter()
                .copied()
                .chain(inst.ctx.take_attached())
            {
                self.inner.retire(ifindex, true);
            }
            if let Some(fini) = inst.fini {
                // SAFETY: the instance init gave us, finished once.
                unsafe { fini(inst.instance.0) };
            }
            tracing::info!(module = %inst.ctx.module, "module stopped");
        }
        for w in &self.inner.workers {
            w.stop();
        }
        for j in std::mem::take(&mut *lock(&self.inner.joins)) {
            let _ = j.join();
        }
        for w in &self.inner.workers {
            w.clear_timers();
        }
    }
}
