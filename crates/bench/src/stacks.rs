//! The stacks under test: an io-pkt serving a private prefix (its lo0 has
//! 127.0.0.1), an io-pkt on a TAP device inside a namespace of ours with
//! the kernel on the other end, and a veth pair between two namespaces of
//! ours (the kernel against itself over a link). Each is torn down on drop.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::procs::{Proc, TempDir, built, run};

/// How long io-pkt may take to create its socket.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Which stack a program runs on.
pub trait Runner {
    /// A command running `prog` on this stack.
    fn cmd(&self, prog: &OsStr) -> Command;
}

/// The kernel's own stack in the harness's namespace.
pub struct Kernel;

impl Runner for Kernel {
    fn cmd(&self, prog: &OsStr) -> Command {
        Command::new(prog)
    }
}

/// An io-pkt daemon; killed and its prefix removed on drop.
pub struct IoPkt {
    proc: Proc,
    dir: TempDir,
    /// Namespace the daemon and its programs run in, if any.
    ns: Option<String>,
    /// How long the socket took to appear after the spawn.
    pub startup: Duration,
}

impl IoPkt {
    /// io-pkt with the pair driver (a virtual cable, unused here) on a
    /// private prefix: lo0 serves 127.0.0.1.
    pub fn lo0(tag: &str) -> Result<IoPkt, String> {
        IoPkt::start(tag, None, &["-d", "pair"])
    }

    fn start(tag: &str, ns: Option<&str>, drivers: &[&str]) -> Result<IoPkt, String> {
        let dir = TempDir::new(tag)?;
        let exe = built("io-pkt")?;
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(drivers)
            .args(["-p", "tcpip"])
            .arg(format!("prefix={}", dir.0.display()));
        let sock = dir.0.join("dev/socket");
        let start = Instant::now();
        let mut proc = Proc::spawn("io-pkt", &mut cmd)?;
        while !sock.exists() {
            if !proc.is_running() {
                return Err(format!("io-pkt exited early:\n{}", proc.stderr()));
            }
            if start.elapsed() > START_LIMIT {
                return Err(format!(
                    "io-pkt did not create {} within {START_LIMIT:?}:\n{}",
                    sock.display(),
                    proc.stderr()
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let startup = start.elapsed();
        Ok(IoPkt {
            proc,
            dir,
            ns: ns.map(str::to_string),
            startup,
        })
    }

    pub fn prefix(&self) -> &PathBuf {
        &self.dir.0
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn alive(&mut self) -> bool {
        self.proc.is_running()
    }

    pub fn log(&self) -> String {
        self.proc.stderr()
    }

    /// `iopkt ARGS` against this daemon.
    pub fn iopkt(&self, args: &[&str]) -> Result<String, String> {
        run(
            "iopkt",
            Command::new(built("iopkt")?)
                .args(args)
                .env("SOCK", self.prefix()),
            Duration::from_secs(30),
        )
    }
}

impl Runner for IoPkt {
    /// `prog` with the socket library preloaded and `SOCK` naming this
    /// daemon (inside its namespace, if it has one).
    fn cmd(&self, prog: &OsStr) -> Command {
        let lib = crate::procs::bin_dir().join("libiopkt_socket.so");
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(prog);
                c
            }
            None => Command::new(prog),
        };
        c.env("LD_PRELOAD", lib).env("SOCK", self.prefix());
        c
    }
}

impl Drop for IoPkt {
    fn drop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}{n}", std::process::id() % 10_000)
}

/// A network namespace of ours (loopback up); deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns, String> {
        let name = format!("iopkt-bench-{}", unique(tag));
        run(
            "ip netns add",
            Command::new("ip").args(["netns", "add", &name]),
            Duration::from_secs(20),
        )?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NS ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        run(
            &format!("ip -n {} {}", self.name, args.join(" ")),
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            Duration::from_secs(20),
        )
    }
}

impl Runner for Netns {
    fn cmd(&self, prog: &OsStr) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(prog);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// io-pkt on a TAP device in a namespace, the kernel's end of the TAP in
/// the same namespace: `stack` is io-pkt (10.77.0.2), `kernel` the
/// namespace (10.77.0.1).
pub struct TapLink {
    // Field order is drop order: the daemon ends before its namespace goes.
    pub stack: IoPkt,
    pub kernel: Netns,
}

pub const TAP_STACK4: &str = "10.77.0.2";
pub const TAP_KERNEL4: &str = "10.77.0.1";

impl TapLink {
    pub fn start(tag: &str) -> Result<TapLink, String> {
        let kernel = Netns::new(tag)?;
        let tap = unique("bt");
        let opts = format!("dev={tap},name=en");
        let stack = IoPkt::start(tag, Some(&kernel.name), &["-d", "tap", &opts])?;
        stack.iopkt(&["ifconfig", "en0", "inet", &format!("{TAP_STACK4}/24"), "up"])?;
        kernel.ip(&["addr", "add", &format!("{TAP_KERNEL4}/24"), "dev", &tap])?;
        kernel.ip(&["link", "set", &tap, "up"])?;
        Ok(TapLink { stack, kernel })
    }
}

/// Two namespaces joined by a veth pair: `a` (10.78.0.1) and `b`
/// (10.78.0.2).
pub struct VethPair {
    pub a: Netns,
    pub b: Netns,
}

pub const VETH_A4: &str = "10.78.0.1";
pub const VETH_B4: &str = "10.78.0.2";

impl VethPair {
    pub fn start(tag: &str) -> Result<VethPair, String> {
        let a = Netns::new(tag)?;
        let b = Netns::new(tag)?;
        // Deleting a namespace deletes the veth end inside it, and with it
        // the pair.
        a.ip(&[
            "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b.name,
        ])?;
        a.ip(&["addr", "add", &format!("{VETH_A4}/24"), "dev", "va"])?;
        b.ip(&["addr", "add", &format!("{VETH_B4}/24"), "dev", "vb"])?;
        a.ip(&["link", "set", "va", "up"])?;
        b.ip(&["link", "set", "vb", "up"])?;
        Ok(VethPair { a, b })
    }
}
