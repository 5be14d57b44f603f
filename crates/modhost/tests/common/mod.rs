//! Shared by the module host's integration tests: a sink that records what
//! drivers deliver, the driver modules built by cargo, and test frames.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use iopkt_modhost::{AttachInfo, ModHost, StackSink};
use iopkt_pkt::{PktBuf, Pool};

/// One received frame and when it came.
type Arrival = (Instant, Vec<u8>);

/// A stack stand-in that records interfaces and received frames.
#[derive(Default)]
pub struct Recorder {
    pub attached: Mutex<Vec<(u32, AttachInfo)>>,
    pub detached: Mutex<Vec<u32>>,
    pub reserved: Mutex<Vec<String>>,
    frames: Mutex<HashMap<u32, Vec<Arrival>>>,
    arrived: Condvar,
    next: AtomicU32,
    pub links: Mutex<Vec<(u32, bool)>>,
    pub max_batch: AtomicU32,
    pub input_threads: Mutex<Vec<std::thread::ThreadId>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            next: AtomicU32::new(1),
            ..Default::default()
        })
    }

    pub fn info(&self, ifindex: u32) -> AttachInfo {
        let a = self.attached.lock().unwrap();
        a.iter()
            .find(|(i, _)| *i == ifindex)
            .map(|(_, info)| info.clone())
            .expect("attached")
    }

    /// Frames received on `ifindex` so far.
    pub fn frames(&self, ifindex: u32) -> Vec<Vec<u8>> {
        let f = self.frames.lock().unwrap();
        f.get(&ifindex)
            .map(|v| v.iter().map(|(_, b)| b.clone()).collect())
            .unwrap_or_default()
    }

    pub fn frames_timed(&self, ifindex: u32) -> Vec<(Instant, Vec<u8>)> {
        self.frames
            .lock()
            .unwrap()
            .get(&ifindex)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (bounded) until `ifindex` has received at least `n` frames.
    pub fn wait_for(&self, ifindex: u32, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + limit;
        let mut f = self.frames.lock().unwrap();
        while f.get(&ifindex).map_or(0, Vec::len) < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            f = self.arrived.wait_timeout(f, left).unwrap().0;
        }
        drop(f);
        self.frames(ifindex)
    }

    /// Waits until no frame arrived on `ifindex` for `quiet` (at most `limit`).
    pub fn wait_quiet(&self, ifindex: u32, quiet: Duration, limit: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + limit;
        let mut last = usize::MAX;
        while Instant::now() < end {
            let n = self.frames(ifindex).len();
            if n == last {
                break;
            }
            last = n;
            std::thread::sleep(quiet);
        }
        self.frames(ifindex)
    }
}

impl StackSink for Recorder {
    fn name_in_use(&self, name: &str) -> bool {
        self.reserved.lock().unwrap().iter().any(|n| n == name)
            || self
                .attached
                .lock()
                .unwrap()
                .iter()
                .any(|(_, i)| i.name == name)
    }

    fn attach(&self, info: &AttachInfo) -> Result<u32, String> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        self.attached.lock().unwrap().push((i, info.clone()));
        Ok(i)
    }

    fn input(&self, ifindex: u32, frames: Vec<PktBuf>) {
        assert!(frames.len() <= 256, "batch of {} frames", frames.len());
        self.max_batch
            .fetch_max(frames.len() as u32, Ordering::Relaxed);
        self.input_threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        let now = Instant::now();
        let mut f = self.frames.lock().unwrap();
        let v = f.entry(ifindex).or_default();
        for p in frames {
            v.push((now, p.data().to_vec()));
        }
        self.arrived.notify_all();
    }

    fn link_state(&self, ifindex: u32, up: bool) {
        self.links.lock().unwrap().push((ifindex, up));
    }

    fn detach(&self, ifindex: u32) {
        self.detached.lock().unwrap().push(ifindex);
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The directory holding the driver modules cargo builds (target/debug or
/// target/release, next to this test's own deps/ directory), building them
/// first.
pub fn drivers_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "devnp-pair",
            "-p",
            "devnp-udp",
            "-p",
            "devnp-tap",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd
            .output()
            .expect("run cargo build for the driver modules");
        assert!(
            out.status.success(),
            "building the driver modules failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for d in ["pair", "udp", "tap"] {
            let so = profile_dir.join(format!("libdevnp_{d}.so"));
            assert!(so.is_file(), "{} missing after cargo build", so.display());
        }
        profile_dir
    })
    .clone()
}

pub fn host_with(sink: &Arc<Recorder>, threads: usize, search: Vec<PathBuf>) -> ModHost {
    let s: Arc<dyn StackSink> = sink.clone();
    ModHost::new(Pool::standard(), threads, s, search).unwrap()
}

pub fn host(sink: &Arc<Recorder>) -> ModHost {
    host_with(sink, 2, vec![drivers_dir()])
}

/// A test Ethernet frame: locally administered MACs, the local
/// experimental EtherType 0x88b5, then `seq` and a pattern.
pub fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5];
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len.max(18) {
        f.push((f.len() as u32 ^ seq) as u8);
    }
    f
}

pub fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[14], f[15], f[16], f[17]])
}

pub fn bufs(frames: &[Vec<u8>]) -> Vec<PktBuf> {
    frames.iter().map(|f| PktBuf::from_slice(f)).collect()
}

/// A UDP port on 127.0.0.1 free right now.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory (removed by the caller's guard).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "iopkt-modhost-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles C source into a shared object with gcc; `None` if gcc is missing.
pub fn gcc_shared(src: &Path, out: &Path) -> Option<()> {
    let include = workspace_root().join("include");
    let r = Command::new("gcc")
        .args([
            "-shared",
            "-fPIC",
            "-O1",
            "-Wall",
            "-Werror",
            "-std=c11",
            "-D_GNU_SOURCE",
            "-I",
        ])
        .arg(&include)
        .arg("-o")
        .arg(out)
        .arg(src)
        .output();
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running gcc: {e}"),
        Ok(o) => {
            assert!(
                o.status.success(),
                "gcc failed on {}:\n{}",
                src.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            Some(())
        }
    }
}

/// Compares frame lists without printing kilobytes of bytes on failure.
#[track_caller]
pub fn assert_same_frames(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} frames arrived, {} expected",
        got.len(),
        want.len()
    );
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!(
            "{what}: frame {i} differs (got {} bytes, seq {}; want {} bytes, seq {})",
            got[i].len(),
            if got[i].len() >= 18 {
                seq_of(&got[i])
            } else {
                u32::MAX
            },
            want[i].len(),
            seq_of(&want[i])
        );
    }
}

/// Sends `frames` out of `from` in bursts of `burst`, waiting for each burst
/// to arrive on `to` (UDP on loopback drops what overflows a socket buffer,
/// so a test that checks every byte paces itself).
pub fn send_paced(
    host: &ModHost,
    sink: &Recorder,
    from: u32,
    to: u32,
    frames: &[Vec<u8>],
    burst: usize,
) -> Vec<Vec<u8>> {
    let base = sink.frames(to).len();
    for (k, chunk) in frames.chunks(burst).enumerate() {
        host.transmit(from, bufs(chunk));
        sink.wait_for(
            to,
            base + (k * burst + chunk.len()),
            Duration::from_secs(10),
        );
    }
    sink.frames(to).split_off(base)
}
