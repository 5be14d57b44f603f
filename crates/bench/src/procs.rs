//! Programs the harness starts: each one has a time limit and is killed
//! (and reaped) when its guard goes away, on every exit path.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the release binaries are: beside this program.
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// A built binary or library beside this program, or why it is missing.
pub fn built(name: &str) -> Result<PathBuf, String> {
    let p = bin_dir().join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: build with `cargo build --release --workspace` (scripts/bench does)",
            p.display()
        ))
    }
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

type Shared = Arc<Mutex<String>>;

fn drain(from: impl Read + Send + 'static, into: Shared) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(from);
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            if let Ok(mut s) = into.lock() {
                // Keep the last megabyte at most: a chatty program must not
                // grow the harness without bound.
                if s.len() > 1 << 20 {
                    s.clear();
                }
                s.push_str(&line);
            }
            line.clear();
        }
    })
}

/// A running program whose output is collected; killed on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    out: Shared,
    err: Shared,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Proc, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let out = Shared::default();
        let err = Shared::default();
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(drain(o, out.clone()));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(drain(e, err.clone()));
        }
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            out,
            err,
            readers,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn stdout(&self) -> String {
        self.out.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until the program's output (either stream) has a line
    /// containing `needle`;
    /// an error if it exits or stays silent for `limit`.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let out = self.stdout() + &self.stderr();
            if let Some(l) = out.lines().find(|l| l.contains(needle)) {
                return Ok(l.to_string());
            }
            if let Some(st) = self.exited() {
                return Err(format!(
                    "{} exited ({st}) before saying {needle:?}:\n{}{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                ));
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "{} did not say {needle:?} within {limit:?}:\n{}{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the program to end by itself within `limit` (killed
    /// otherwise); its status and output.
    pub fn finish(mut self, limit: Duration) -> Result<Finished, String> {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.exited() {
                break st;
            }
            if start.elapsed() > limit {
                self.kill();
                return Err(format!(
                    "{} took longer than {limit:?} and was killed:\n{}{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        })
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// SIGTERM, then SIGKILL if it has not ended within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(c) = self.child.as_ref() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let start = Instant::now();
        while self.exited().is_none() && start.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a program ended.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The output if it succeeded; its error output otherwise.
    pub fn ok(self, what: &str) -> Result<String, String> {
        if self.status.success() {
            Ok(self.stdout)
        } else {
            Err(format!(
                "{what} failed ({}):\n{}{}",
                self.status, self.stdout, self.stderr
            ))
        }
    }
}

/// Runs a program to its end within `limit`; its output when it succeeds.
pub fn run(what: &str, cmd: &mut Command, limit: Duration) -> Result<String, String> {
    Proc::spawn(what, cmd)?.finish(limit)?.ok(what)
}

/// A fresh private directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("iopkt-bench-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
