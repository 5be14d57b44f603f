//! The Linux kernel as the peer of programs running on our stack: a network
//! namespace the test makes, io-pkt inside it attached to a TAP device, the
//! kernel's side of that TAP addressed in the same namespace. Programs run
//! either on our stack (library preloaded, `SOCK` naming this io-pkt) or on
//! the kernel (plain), always inside the namespace, so no traffic leaves it.
//! Everything is removed on drop, on every exit path including a failed
//! assertion.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::{bin_dir, fresh_dir, have, iopkt, library, run_limited, text};

/// Our stack's addresses on the TAP link.
pub const STACK4: &str = "10.77.0.2";
pub const STACK6: &str = "fd00:77::2";
/// The kernel's addresses on the same link.
pub const KERNEL4: &str = "10.77.0.1";
pub const KERNEL6: &str = "fd00:77::1";

/// Whether the kernel tests can run here: root, and `ip` installed.
/// Prints why not when they cannot.
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped {test}: needs root (network namespaces and TAP devices)");
        return false;
    }
    if !have("ip") {
        eprintln!("skipped {test}: iproute2 is not installed");
        return false;
    }
    true
}

/// Whether `tool` is installed; says so when it is not.
pub fn need(test: &str, tool: &str) -> bool {
    if have(tool) {
        true
    } else {
        eprintln!("skipped {test}: {tool} is not installed (scripts/test installs it)");
        false
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}{n}", std::process::id() % 10_000)
}

/// A namespace holding io-pkt on a TAP device and the kernel's end of it.
pub struct KernelLink {
    pub ns: String,
    pub tap: String,
    pub prefix: PathBuf,
    daemon: Option<Child>,
}

impl KernelLink {
    /// Makes the namespace and starts io-pkt on a TAP device in it;
    /// `driver_opts` are extra TAP driver options (impairments such as
    /// `loss=2,reorder=2,dup=1`, or empty). Returns when both sides have
    /// their IPv4 and IPv6 addresses usable.
    pub fn start(tag: &str, driver_opts: &str) -> KernelLink {
        let ns = format!("iopkt-{}", unique(tag));
        let tap = unique("kt");
        let st = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {ns} failed");
        let mut link = KernelLink {
            ns,
            tap,
            prefix: fresh_dir(tag),
            daemon: None,
        };
        link.ip(&["link", "set", "lo", "up"]);

        let mut dopts = format!("dev={},name=en", link.tap);
        if !driver_opts.is_empty() {
            dopts.push(',');
            dopts.push_str(driver_opts);
        }
        let log = std::fs::File::create(link.prefix.join("io-pkt.log")).expect("log file");
        let child = link
            .kernel_cmd(bin_dir().join("io-pkt"))
            .args(["-d", "tap", &dopts, "-p", "tcpip"])
            .arg(format!("prefix={}", link.prefix.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn io-pkt");
        link.daemon = Some(child);
        let sock = link.prefix.join("dev/socket");
        let start = Instant::now();
        while !sock.exists() {
            if let Some(Ok(Some(st))) = link.daemon.as_mut().map(Child::try_wait) {
                panic!("io-pkt exited early ({st}):\n{}", link.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "io-pkt did not start:\n{}",
                link.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        link.iopkt(&["ifconfig", "en0", "inet", &format!("{STACK4}/24"), "up"]);
        link.iopkt(&["ifconfig", "en0", "inet6", &format!("{STACK6}/64")]);
        let tap = link.tap.clone();
        link.ip(&["addr", "add", &format!("{KERNEL4}/24"), "dev", &tap]);
        link.ip(&[
            "addr",
            "add",
            &format!("{KERNEL6}/64"),
            "dev",
            &tap,
            "nodad",
        ]);
        link.ip(&["link", "set", &tap, "up"]);

        // Our IPv6 address is usable once duplicate address detection ends.
        let start = Instant::now();
        loop {
            let out = link.iopkt(&["ifconfig", "en0"]);
            if out.contains(STACK6) && !out.contains("tentative") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{STACK6} stays tentative:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        link
    }

    /// `ip -n NS ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let o = run_limited(
            Command::new("ip").arg("-n").arg(&self.ns).args(args),
            Duration::from_secs(20),
        );
        assert!(
            o.status.success(),
            "ip -n {} {args:?}:\n{}",
            self.ns,
            text(&o)
        );
    }

    /// `prog` on the kernel's stack, inside the namespace.
    pub fn kernel_cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(prog);
        c
    }

    /// `prog` on our stack: inside the namespace too (so a socket the
    /// library wrongly left to the kernel still cannot leave it), with the
    /// library preloaded and `SOCK` naming this io-pkt.
    pub fn stack_cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "env"])
            .arg(format!("LD_PRELOAD={}", library().display()))
            .arg(format!("SOCK={}", self.prefix.display()))
            .arg(prog);
        c
    }

    /// `iopkt ARGS` against this io-pkt, which must succeed; its output.
    pub fn iopkt(&self, args: &[&str]) -> String {
        let o = run_limited(
            Command::new(iopkt()).args(args).env("SOCK", &self.prefix),
            Duration::from_secs(30),
        );
        assert!(
            o.status.success(),
            "iopkt {args:?} failed:\n{}\nio-pkt log:\n{}",
            text(&o),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A counter of the kernel's end of the TAP device
    /// (`/sys/class/net/TAP/statistics/NAME`: `tx_packets` are the frames
    /// the kernel handed to io-pkt, `rx_packets` those it took from it).
    pub fn tap_stat(&self, name: &str) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/{name}", self.tap);
        let o = run_limited(self.kernel_cmd("cat").arg(&path), Duration::from_secs(20));
        assert!(o.status.success(), "cat {path}:\n{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("io-pkt.log")).unwrap_or_default()
    }

    /// Whether io-pkt is still running (a test ends by checking that
    /// nothing it did brought the stack down).
    pub fn daemon_alive(&mut self) -> bool {
        matches!(self.daemon.as_mut().map(Child::try_wait), Some(Ok(None)))
    }
}

impl Drop for KernelLink {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Deleting the namespace ends whatever still runs in it only when
        // its last process exits; the programs tests start are their own
        // children and are killed by the Background/run_limited guards.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}
