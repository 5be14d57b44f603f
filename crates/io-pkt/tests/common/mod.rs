//! Shared pieces of the daemon's integration tests: finding the built
//! binaries, starting and stopping io-pkt, network namespaces that remove
//! themselves, and running commands with a time limit.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The directory holding io-pkt, iopkt and the driver modules.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_io-pkt"))
        .parent()
        .expect("binary directory")
        .to_path_buf()
}

pub fn io_pkt() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_io-pkt"))
}

/// The `iopkt` utility, built by `cargo build` of the workspace.
pub fn iopkt() -> PathBuf {
    let p = bin_dir().join("iopkt");
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --release)",
        p.display()
    );
    p
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (returns true) when not root, saying so.
pub fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("skipped {test}: needs root (TAP devices and network namespaces)");
        return true;
    }
    false
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this test process and call: tests run in parallel
/// and interface names have at most 15 characters.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}{n}", std::process::id() % 10_000)
}

/// Runs a command to completion within `limit`, killing it after.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    }
    child.wait_with_output().expect("collect output")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `iopkt ARGS` against the stack at `prefix`; panics with the output unless
/// it succeeds.
pub fn iopkt_ok(prefix: &Path, args: &[&str]) -> String {
    let o = iopkt_run(prefix, args);
    assert!(o.status.success(), "iopkt {args:?} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn iopkt_run(prefix: &Path, args: &[&str]) -> Output {
    run_limited(
        Command::new(iopkt()).args(args).env("SOCK", prefix),
        Duration::from_secs(60),
    )
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("iopkt-{}", unique(tag));
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let o = run_limited(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            Duration::from_secs(20),
        );
        assert!(
            o.status.success(),
            "ip -n {} {args:?}:\n{}",
            self.name,
            text(&o)
        );
    }

    /// A command inside the namespace.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
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

/// A running io-pkt, stopped with SIGTERM on drop.
pub struct Daemon {
    pub child: Child,
    pub prefix: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// A fresh prefix directory under the system temp dir.
    pub fn fresh_prefix(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("iopkt-test-{}", unique(tag)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("prefix dir");
        p
    }

    /// Starts io-pkt with `args` (which must include `-p tcpip prefix=...`
    /// naming `prefix`), optionally inside namespace `ns`, and waits for its
    /// socket.
    pub fn start(ns: Option<&Netns>, prefix: &Path, args: &[&str]) -> Daemon {
        let log = prefix.join("io-pkt.log");
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = match ns {
            Some(ns) => ns.cmd(io_pkt()),
            None => Command::new(io_pkt()),
        };
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .spawn()
            .expect("spawn io-pkt");
        let mut d = Daemon {
            child,
            prefix: prefix.to_path_buf(),
            log,
        };
        let sock = prefix.join("dev/socket");
        let start = Instant::now();
        while !sock.exists() {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("io-pkt exited early ({st}):\n{}", d.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "io-pkt did not serve {} within 20 s:\n{}",
                sock.display(),
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (at most 10 s, then SIGKILL); returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Parses "N packets transmitted, M received" from ping output.
pub fn ping_counts(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let tx = nums.next()?.parse().ok()?;
    let rx = nums.next()?.parse().ok()?;
    Some((tx, rx))
}
