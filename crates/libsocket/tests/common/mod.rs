//! Shared pieces of the socket library's tests: the built binaries, an
//! io-pkt on a private prefix (lo0 has 127.0.0.1 and ::1), and programs
//! run with the library preloaded, each with a time limit and killed
//! after it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// target/release (or debug): where cargo put this test's binary, one
/// level up from `deps`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

fn built(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --release)",
        p.display()
    );
    p
}

pub fn library() -> PathBuf {
    built("libiopkt_socket.so")
}

pub fn iopkt() -> PathBuf {
    built("iopkt")
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

pub fn fresh_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("iopkt-lib-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("temp dir");
    p
}

/// An io-pkt serving `prefix`, killed and its prefix removed on drop.
pub struct Stack {
    child: Child,
    pub prefix: PathBuf,
}

impl Stack {
    pub fn start(tag: &str) -> Stack {
        let prefix = fresh_dir(tag);
        let log = std::fs::File::create(prefix.join("io-pkt.log")).expect("log");
        let child = Command::new(built("io-pkt"))
            .args(["-d", "pair", "-p", "tcpip"])
            .arg(format!("prefix={}", prefix.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn io-pkt");
        let mut s = Stack { child, prefix };
        let sock = s.prefix.join("dev/socket");
        let start = Instant::now();
        while !sock.exists() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("io-pkt exited early ({st}):\n{}", s.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "io-pkt did not start:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("io-pkt.log")).unwrap_or_default()
    }

    /// `prog` with the library preloaded and this stack named by SOCK.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(prog);
        c.env("LD_PRELOAD", library()).env("SOCK", &self.prefix);
        c
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Runs to completion within `limit`; killed and reported if it takes
/// longer.
/// Builds the C program `tests/NAME.c` into `dir/NAME` (gcc -O2, every
/// warning an error); None, saying so, when gcc is not installed.
pub fn build_c(name: &str, dir: &Path) -> Option<PathBuf> {
    if !have("gcc") {
        eprintln!("skipped: gcc is not installed");
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/{name}.c"));
    let exe = dir.join(name);
    let o = run_limited(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&exe)
            .arg(&src),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "gcc:\n{}", text(&o));
    Some(exe)
}

pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes on threads so a chatty program cannot block.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            let stderr = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
            panic!("{cmd:?} took longer than {limit:?} and was killed ({st}); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: to.join().unwrap_or_default(),
        stderr: te.join().unwrap_or_default(),
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A long-running program (a server), killed on drop.
pub struct Background {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Background { child, stdout }
    }

    /// The next line of output containing `needle`, waiting at most
    /// `limit` (the program is killed if it says nothing in time).
    pub fn line_with(&mut self, needle: &str, limit: Duration) -> String {
        let pid = self.child.id();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // A watchdog: kill the program if the line does not come in time,
        // which ends the blocking read below.
        let dog = std::thread::spawn(move || {
            if rx.recv_timeout(limit).is_err() {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
        let mut line = String::new();
        let found = loop {
            line.clear();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break None,
                Ok(_) if line.contains(needle) => break Some(line.clone()),
                Ok(_) => {}
            }
        };
        let _ = tx.send(());
        let _ = dog.join();
        found.unwrap_or_else(|| panic!("no line with {needle:?} within {limit:?}"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
