//! A stack held in memory behind a [`StackHost`]: a real [`Stack`] with a
//! real clock and no drivers (frames sent out of an Ethernet interface are
//! counted and dropped). Tests of the server, of the utility and of client
//! libraries run a [`crate::Server`] over it inside the test process.

use std::sync::{Mutex, MutexGuard, OnceLock};

use iopkt_stack::socket::SocketId;
use iopkt_stack::{Config, Ctx, IfIndex, IfKind, Instant, Mac, PktBuf, Pool, Stack};

use crate::proto::ModuleKindWire;
use crate::server::{Notifier, StackHost};

/// The context of a [`MemHost`]'s stack.
pub struct MemCtx {
    start: std::time::Instant,
    rng: u64,
    /// Frames the stack sent out of non-loopback interfaces.
    pub transmitted: u64,
    ready: Vec<SocketId>,
}

impl Ctx for MemCtx {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64)
    }
    fn random_u64(&mut self) -> u64 {
        // SplitMix64: tests want variety, not secrecy.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn transmit(&mut self, _ifindex: IfIndex, _frame: PktBuf) {
        self.transmitted += 1;
    }
    fn socket_ready(&mut self, sock: SocketId) {
        if !self.ready.contains(&sock) {
            self.ready.push(sock);
        }
    }
}

/// A stack in a mutex, as the daemon holds one.
pub struct MemHost {
    inner: Mutex<(Stack, MemCtx)>,
    notifier: OnceLock<Notifier>,
    instance: u32,
}

impl MemHost {
    /// A fresh stack (`lo0` with 127.0.0.1/8 and ::1) answering as instance
    /// `instance`.
    pub fn new(instance: u32) -> MemHost {
        let mut ctx = MemCtx {
            start: std::time::Instant::now(),
            rng: 0x1234_5678,
            transmitted: 0,
            ready: Vec::new(),
        };
        let stack = Stack::new(&mut ctx, Pool::standard(), Config::default());
        MemHost {
            inner: Mutex::new((stack, ctx)),
            notifier: OnceLock::new(),
            instance,
        }
    }

    /// Runs the stack's timers from a thread of its own, every few
    /// milliseconds, for as long as `host` lives (as the daemon's loop
    /// does): retransmissions and delayed acknowledgements need it.
    pub fn run_timers(host: &std::sync::Arc<MemHost>) {
        let weak = std::sync::Arc::downgrade(host);
        let _ = std::thread::Builder::new()
            .name("memhost-timers".into())
            .spawn(move || {
                while let Some(h) = weak.upgrade() {
                    h.with_stack(|_, _| ());
                    drop(h);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
    }

    /// Where socket wake-ups go (the server's notifier).
    pub fn set_notifier(&self, n: Notifier) {
        let _ = self.notifier.set(n);
    }

    fn lock(&self) -> MutexGuard<'_, (Stack, MemCtx)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an Ethernet interface with carrier, as a driver attaching would.
    pub fn add_ethernet(
        &self,
        name: &str,
        mac: Mac,
        mtu: u32,
    ) -> Result<IfIndex, iopkt_stack::Error> {
        self.with_stack(|s, c| {
            let i = s.add_interface(name, IfKind::Ethernet, mac, mtu)?;
            s.set_link(c, i, true)?;
            Ok(i)
        })
    }

    /// Hands `frame` (a whole Ethernet frame) to the stack as if the driver
    /// of `ifname` had received it, so tests can make counters move.
    pub fn receive(&self, ifname: &str, frame: &[u8]) -> Result<(), iopkt_stack::Error> {
        self.with_stack(|s, c| {
            let i = s
                .iface_by_name(ifname)
                .map(|i| i.index)
                .ok_or_else(|| iopkt_stack::Error::NoSuchInterface(ifname.to_string()))?;
            s.input(c, i, [PktBuf::from_slice(frame)]);
            Ok(())
        })
    }
}

impl StackHost for MemHost {
    type Ctx = MemCtx;

    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, &mut MemCtx) -> R) -> R {
        let mut g = self.lock();
        let (stack, ctx) = &mut *g;
        stack.poll(ctx);
        let r = f(stack, ctx);
        // Frames a socket call sent to ourselves wait on lo0: deliver them
        // now (bounded: the loopback could keep answering itself).
        for _ in 0..64 {
            match stack.next_deadline() {
                Some(d) if d <= ctx.now() => stack.poll(ctx),
                _ => break,
            }
        }
        let ready = std::mem::take(&mut ctx.ready);
        drop(g);
        if let Some(n) = self.notifier.get() {
            for s in ready {
                n.socket_ready(s);
            }
        }
        r
    }

    fn mount(
        &self,
        _kind: ModuleKindWire,
        module: &str,
        _options: &str,
    ) -> Result<Vec<String>, String> {
        Err(format!(
            "cannot load {module}: this in-memory stack has no module loader"
        ))
    }

    fn destroy(&self, ifname: &str) -> Result<(), String> {
        self.with_stack(|s, _| {
            let i = s
                .iface_by_name(ifname)
                .map(|i| i.index)
                .ok_or_else(|| format!("no such interface: {ifname}"))?;
            s.remove_interface(i).map_err(|e| e.to_string())
        })
    }

    fn instance(&self) -> u32 {
        self.instance
    }
}
