//! Bulk TCP between unmodified programs on our stack and the Linux kernel
//! over a TAP device in a namespace: 100 MB with curl and python's
//! http.server both ways, sha256 compared. Needs root; skips otherwise.

mod common;
mod kernel;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Background, run_limited, text};
use kernel::{KERNEL4, KernelLink, STACK4, can_run, need};

const LIMIT: Duration = Duration::from_secs(180);

/// A file of `mb` MiB of pseudo-random bytes (not compressible, not
/// repeating on any short period) in `dir`, and its sha256.
fn payload(dir: &Path, mb: usize) -> (std::path::PathBuf, String) {
    let path = dir.join("payload.bin");
    let mut data = vec![0u8; mb << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        // xorshift64: fast and enough to defeat any accidental pattern.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    std::fs::write(&path, &data).expect("write payload");
    let sum = sha256(&path);
    (path, sum)
}

fn sha256(path: &Path) -> String {
    let o = run_limited(Command::new("sha256sum").arg(path), LIMIT);
    assert!(o.status.success(), "sha256sum:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// python3 -m http.server serving `dir` on `addr`:`port`, started by
/// `cmd`; returns once it listens.
fn http_server(mut cmd: Command, dir: &Path, addr: &str, port: u16) -> Background {
    let mut srv = Background::spawn(
        cmd.args(["python3", "-u", "-m", "http.server", "-b", addr])
            .arg(port.to_string())
            .arg("-d")
            .arg(dir),
    );
    srv.line_with("Serving HTTP", Duration::from_secs(30));
    srv
}

/// curl of http://addr:port/payload.bin into `out`, run by `cmd`.
fn curl(mut cmd: Command, addr: &str, port: u16, out: &Path) {
    let o = run_limited(
        cmd.args(["curl", "-sS", "--fail", "--max-time", "170", "-o"])
            .arg(out)
            .arg(format!("http://{addr}:{port}/payload.bin")),
        LIMIT,
    );
    assert!(o.status.success(), "curl failed:\n{}", text(&o));
}

fn download_both_ways(tag: &str, driver_opts: &str, mb: usize) {
    let mut link = KernelLink::start(tag, driver_opts);
    let dir = link.prefix.join("www");
    std::fs::create_dir_all(&dir).expect("www dir");
    let (_, want) = payload(&dir, mb);

    // The kernel's curl downloads from http.server on our stack.
    let got = link.prefix.join("from-stack.bin");
    {
        let _srv = http_server(link.stack_cmd("env"), &dir, STACK4, 8080);
        curl(link.kernel_cmd("env"), STACK4, 8080, &got);
    }
    assert_eq!(sha256(&got), want, "download from our stack corrupted");
    std::fs::remove_file(&got).expect("remove");

    // curl on our stack downloads from the kernel's http.server.
    let got = link.prefix.join("from-kernel.bin");
    {
        let _srv = http_server(link.kernel_cmd("env"), &dir, KERNEL4, 8081);
        curl(link.stack_cmd("env"), KERNEL4, 8081, &got);
    }
    assert_eq!(sha256(&got), want, "download by our stack corrupted");
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
}

#[test]
fn curl_100_mb_both_ways_over_tap() {
    let t = "curl_100_mb_both_ways_over_tap";
    if !can_run(t) || !need(t, "curl") || !need(t, "python3") {
        return;
    }
    download_both_ways("cb", "", 100);
}

#[test]
fn curl_100_mb_both_ways_over_an_impaired_tap() {
    let t = "curl_100_mb_both_ways_over_an_impaired_tap";
    if !can_run(t) || !need(t, "curl") || !need(t, "python3") {
        return;
    }
    download_both_ways("ci", "loss=2,reorder=2,dup=1", 100);
}
