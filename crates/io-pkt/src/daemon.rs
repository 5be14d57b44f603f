//! Start-up, the wait for a signal, and shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use iopkt_modhost::{AttachInfo, ModHost, ModuleKind, StackSink};
use iopkt_pkt::{PktBuf, Pool};
use iopkt_rsrcmgr::proto::ModuleKindWire;
use iopkt_rsrcmgr::server::{Notifier, Server, StackHost};
use iopkt_stack::socket::SocketId;
use iopkt_stack::{Config, IfIndex, IfKind};

use crate::ctx::DaemonCtx;
use crate::options::{Options, USAGE};
use crate::runtime::{OutputSinks, Runtime};

const HELP: &str = "\
Options:
  -d DRIVER [OPTS]    load driver module devnp-DRIVER.so (or a path)
  -p PROTOCOL [OPTS]  load protocol module lsm-PROTOCOL.so; -p tcpip sets the
                      built-in stack's options: prefix=PATH, forward, forward6,
                      fastforward, somaxconn=N
  -i N                instance number (accepts mount -T io-pktN)
  -t N                layer-2 worker threads (default: one per CPU)
  -v                  verbose (repeat for more)
Driver options every driver takes: name=PREFIX unit=N mtu=N mac=MAC
  loss=PCT delay=MS reorder=PCT dup=PCT corrupt=PCT
Modules are searched in $IOPKT_MODULE_PATH, next to io-pkt, and in ../lib/iopkt.
The resource manager serves PREFIX/dev/socket; SIGTERM or SIGINT stops io-pkt.";

/// Runs the daemon; returns the exit status (0 ok, 1 runtime failure, 2 usage).
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("io-pkt: {e}");
            eprintln!("{USAGE}");
            return 2;
        }
    };
    if opts.help {
        println!("{USAGE}\n{HELP}");
        return 0;
    }
    init_logging(opts.verbose);
    // SIGTERM and SIGINT are taken synchronously by the main thread; block
    // them before any thread starts so every thread inherits the mask.
    let signals = block_signals();

    match start_and_serve(&opts, &signals) {
        Ok(()) => 0,
        Err(Failure { msg, usage }) => {
            eprintln!("io-pkt: {msg}");
            if usage { 2 } else { 1 }
        }
    }
}

struct Failure {
    msg: String,
    usage: bool,
}

fn runtime_failure(msg: impl Into<String>) -> Failure {
    Failure {
        msg: msg.into(),
        usage: false,
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn stack_config(opts: &Options) -> Config {
    Config {
        forwarding4: opts.tcpip.forward,
        forwarding6: opts.tcpip.forward6,
        // The listen backlog cap (kern.ipc.somaxconn while running).
        somaxconn: opts
            .tcpip
            .somaxconn
            .unwrap_or(iopkt_stack::tcp::listen::SOMAXCONN),
        ..Config::default()
    }
}

fn start_and_serve(opts: &Options, signals: &libc::sigset_t) -> Result<(), Failure> {
    let prefix: PathBuf = opts
        .tcpip
        .prefix
        .clone()
        .unwrap_or_else(iopkt_rsrcmgr::default_prefix);
    // Refuse early, before a driver grabs a device, if another stack serves
    // this prefix.
    check_prefix_free(&prefix)?;

    let pool = Pool::standard();
    let rt = Runtime::new(pool.clone(), stack_config(opts), opts.instance);
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sink = Arc::new(Sink(rt.clone()));
    let modhost = ModHost::new(pool, threads, sink, iopkt_modhost::default_search_path())
        .map_err(|e| runtime_failure(format!("cannot start layer-2 threads: {e}")))?;
    let timer_rt = rt.clone();
    let timer = std::thread::Builder::new()
        .name("stack-timers".into())
        .spawn(move || timer_rt.run_timers())
        .map_err(|e| runtime_failure(format!("cannot start the timer thread: {e}")))?;

    let result = (|| {
        for p in &opts.protocols {
            modhost
                .load(ModuleKind::Protocol, &p.name, &p.options)
                .map_err(|e| Failure {
                    usage: e.is_usage(),
                    msg: e.to_string(),
                })?;
        }
        for d in &opts.drivers {
            let loaded = modhost
                .load(ModuleKind::Driver, &d.name, &d.options)
                .map_err(|e| Failure {
                    usage: e.is_usage(),
                    msg: e.to_string(),
                })?;
            tracing::info!("loaded {}", loaded.module);
        }
        let host = Arc::new(Host {
            rt: rt.clone(),
            modhost: modhost.clone(),
            seen_settings: std::sync::Mutex::new(None),
        });
        let (server, notifier) =
            Server::start(&prefix, host).map_err(|e| runtime_failure(e.to_string()))?;
        rt.set_sinks(Box::new(Sinks {
            modhost: modhost.clone(),
            notifier,
        }));
        tracing::info!("serving {}", prefix.join("dev/socket").display());
        let sig = wait_for_signal(signals);
        tracing::info!("signal {sig}: shutting down");
        server.shutdown();
        Ok(())
    })();

    modhost.shutdown();
    rt.stop_timers();
    let _ = timer.join();
    result
}

/// Refuses a prefix whose socket answers: another stack serves it. Checked
/// before any driver opens a device, so a second stack takes nothing from
/// the first.
fn check_prefix_free(prefix: &std::path::Path) -> Result<(), Failure> {
    let sock = prefix.join("dev/socket");
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        return Err(runtime_failure(format!(
            "another io-pkt already serves {} (stop it or choose another prefix=)",
            sock.display()
        )));
    }
    Ok(())
}

/// Frames and events from the module host into the stack.
struct Sink(Arc<Runtime>);

impl StackSink for Sink {
    fn name_in_use(&self, name: &str) -> bool {
        self.0.with_stack(|s, _| s.iface_by_name(name).is_some())
    }

    fn attach(&self, info: &AttachInfo) -> Result<u32, String> {
        self.0.with_stack(|s, c: &mut DaemonCtx| {
            let idx = s
                .add_interface(&info.name, IfKind::Ethernet, info.mac, info.mtu)
                .map_err(|e| e.to_string())?;
            // `ifconfig IF mtu N` above what the driver carries is refused.
            let _ = s.set_max_mtu(idx, info.max_mtu);
            // What the driver does about checksums and segmentation.
            let _ = s.set_offloads(idx, info.offloads);
            // Drivers report carrier changes; until then assume the cable is in.
            let _ = s.set_link(c, idx, true);
            Ok(idx)
        })
    }

    fn input(&self, ifindex: u32, frames: Vec<PktBuf>) {
        self.0.input(ifindex, frames);
    }

    fn link_state(&self, ifindex: u32, up: bool) {
        self.0.with_stack(|s, c| {
            let _ = s.set_link(c, ifindex, up);
        });
    }
}

/// Where the stack's output goes once it has left the stack context.
struct Sinks {
    modhost: ModHost,
    notifier: Notifier,
}

impl OutputSinks for Sinks {
    fn transmit(&self, ifindex: IfIndex, frames: Vec<PktBuf>) {
        self.modhost.transmit(ifindex, frames);
    }

    fn socket_ready(&self, sock: SocketId) {
        self.notifier.socket_ready(sock);
    }
}

/// What the resource manager may do with the running stack.
struct Host {
    rt: Arc<Runtime>,
    modhost: ModHost,
    /// The interfaces' admin states and MTUs as of a stack generation
    /// (`Stack::link_settings_generation`), what drivers were last told.
    seen_settings: std::sync::Mutex<Option<(u64, LinkSettings)>>,
}

type LinkSettings = Vec<(IfIndex, bool, u32)>;

impl StackHost for Host {
    type Ctx = DaemonCtx;

    /// Runs `f` on the stack, then tells drivers what it changed in their
    /// interfaces (admin state and MTU), after the stack's lock is released:
    /// a driver's `set_up` may take its own locks or do I/O.
    fn with_stack<R>(&self, f: impl FnOnce(&mut iopkt_stack::Stack, &mut DaemonCtx) -> R) -> R {
        let (r, changes) = self.rt.with_stack(|s, c| {
            // The snapshot is retaken only when the stack's generation
            // moved, so a socket call (the data path) costs two counter
            // reads here, not two walks over the interfaces.
            let mut seen = self.seen_settings.lock().unwrap_or_else(|e| e.into_inner());
            let before_gen = s.link_settings_generation();
            if seen.as_ref().is_none_or(|(g, _)| *g != before_gen) {
                // Changed outside this host's calls (a driver attached):
                // not this call's doing, so only remembered.
                *seen = Some((before_gen, link_settings(s)));
            }
            let r = f(s, c);
            let after = s.link_settings_generation();
            let mut changes = Vec::new();
            if after != before_gen {
                let now = link_settings(s);
                if let Some((_, before)) = seen.as_ref() {
                    changes = setting_changes(before, &now);
                }
                *seen = Some((after, now));
            }
            (r, changes)
        });
        for ch in changes {
            match ch {
                Change::Up(ifindex, up) => self.modhost.set_up(ifindex, up),
                Change::Mtu(ifindex, mtu) => {
                    // The stack already refused more than the driver carries.
                    if let Err(e) = self.modhost.set_mtu(ifindex, mtu) {
                        tracing::warn!("{e}");
                    }
                }
            }
        }
        r
    }

    fn mount(
        &self,
        kind: ModuleKindWire,
        module: &str,
        options: &str,
    ) -> Result<Vec<String>, String> {
        let kind = match kind {
            ModuleKindWire::Driver => ModuleKind::Driver,
            ModuleKindWire::Protocol => ModuleKind::Protocol,
            // A bare name or a path: a protocol module if its file says so.
            ModuleKindWire::Any => {
                let base = module.rsplit('/').next().unwrap_or(module);
                if base.starts_with("lsm-") || base.starts_with("liblsm_") {
                    ModuleKind::Protocol
                } else {
                    ModuleKind::Driver
                }
            }
        };
        let loaded = self
            .modhost
            .load(kind, module, options)
            .map_err(|e| e.to_string())?;
        Ok(self.rt.with_stack(|s, _| {
            loaded
                .ifindexes
                .iter()
                .filter_map(|i| s.iface(*i).map(|i| i.name.clone()))
                .collect()
        }))
    }

    /// Detaches the driver first, then removes the stack's interface: once
    /// `ModHost::detach` returns no input for the index reaches the stack,
    /// so the stack never sees frames for an interface it removed (and
    /// indexes are never reused, so a late frame could not be misread
    /// anyway). Until the removal, output to the interface is dropped and
    /// counted by the module host.
    fn destroy(&self, ifname: &str) -> Result<(), String> {
        let found = self
            .rt
            .with_stack(|s, _| s.iface_by_name(ifname).map(|i| (i.index, i.kind)));
        let ifindex = match found {
            None => {
                return Err(format!(
                    "no such interface: {ifname} (list them with ifconfig -a)"
                ));
            }
            Some((_, IfKind::Loopback)) => {
                return Err(format!(
                    "{ifname} is the loopback interface and cannot be destroyed"
                ));
            }
            Some((i, _)) => i,
        };
        self.modhost
            .detach(ifindex)
            .map_err(|e| format!("cannot destroy {ifname}: {e}"))?;
        self.rt
            .with_stack(|s, _| s.remove_interface(ifindex))
            .map_err(|e| format!("cannot destroy {ifname}: {e}"))?;
        tracing::info!("interface {ifname} destroyed");
        Ok(())
    }

    fn instance(&self) -> u32 {
        self.rt.instance
    }
}

/// What a driver hears of an interface's settings: admin state and MTU.
fn link_settings(s: &iopkt_stack::Stack) -> LinkSettings {
    let mut v: Vec<_> = s
        .interfaces()
        .filter(|i| i.kind != IfKind::Loopback)
        .map(|i| (i.index, i.up, i.mtu))
        .collect();
    v.sort_unstable_by_key(|e| e.0);
    v
}

enum Change {
    Up(IfIndex, bool),
    Mtu(IfIndex, u32),
}

/// What changed between two snapshots (each in index order), for
/// interfaces in both (one added or removed in between is the driver's own
/// doing).
fn setting_changes(before: &[(IfIndex, bool, u32)], after: &[(IfIndex, bool, u32)]) -> Vec<Change> {
    let mut out = Vec::new();
    for &(i, up, mtu) in after {
        let Ok(k) = before.binary_search_by_key(&i, |b| b.0) else {
            continue;
        };
        let (_, up0, mtu0) = before[k];
        if up != up0 {
            out.push(Change::Up(i, up));
        }
        if mtu != mtu0 {
            out.push(Change::Mtu(i, mtu));
        }
    }
    out
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // Writes to a closed client socket must be errors, not a signal.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    loop {
        // SAFETY: `set` holds the signals blocked at start-up.
        let r = unsafe { libc::sigwait(set, &mut sig) };
        if r == 0 {
            return sig;
        }
    }
}
