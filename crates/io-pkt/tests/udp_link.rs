//! Two io-pkt processes joined by the `udp` driver over loopback (no
//! privileges needed for the link itself), and the same with a driver
//! written in C.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Two UDP ports on 127.0.0.1 that were free a moment ago.
fn ports() -> (u16, u16) {
    let probe = || {
        std::net::UdpSocket::bind(("127.0.0.1", 0))
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("probe a free port")
    };
    let a = probe();
    let mut b = probe();
    while b == a {
        b = probe();
    }
    (a, b)
}

struct Pair {
    a: Daemon,
    b: Daemon,
}

/// Two stacks A (10.99.0.1, fd00:99::1) and B (10.99.0.2, fd00:99::2) joined
/// by `driver` with point-to-point options; `extra_a` is added to A's
/// driver options.
fn pair(driver: &str, extra_a: &str) -> Pair {
    let (pa, pb) = ports();
    let (xa, xb) = (Daemon::fresh_prefix("ua"), Daemon::fresh_prefix("ub"));
    let start = |prefix: &Path, local: u16, remote: u16, extra: &str| {
        let mut opts = format!("local=127.0.0.1:{local},remote=127.0.0.1:{remote},name=en");
        if !extra.is_empty() {
            opts.push(',');
            opts.push_str(extra);
        }
        let pfx = format!("prefix={}", prefix.display());
        Daemon::start(None, prefix, &["-d", driver, &opts, "-p", "tcpip", &pfx])
    };
    let a = start(&xa, pa, pb, extra_a);
    let b = start(&xb, pb, pa, "");
    for (d, n) in [(&a, 1), (&b, 2)] {
        iopkt_ok(
            &d.prefix,
            &["ifconfig", "en0", "inet", &format!("10.99.0.{n}/24"), "up"],
        );
        iopkt_ok(
            &d.prefix,
            &["ifconfig", "en0", "inet6", &format!("fd00:99::{n}/64")],
        );
    }
    // Wait for IPv6 duplicate address detection to finish on both sides.
    let start = std::time::Instant::now();
    while [&a, &b]
        .iter()
        .any(|d| iopkt_ok(&d.prefix, &["ifconfig", "en0"]).contains("tentative"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "addresses stay tentative"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Pair { a, b }
}

fn assert_pings(p: &Pair) {
    for (from, to) in [
        (&p.a, "10.99.0.2"),
        (&p.b, "10.99.0.1"),
        (&p.a, "fd00:99::2"),
        (&p.b, "fd00:99::1"),
    ] {
        let out = iopkt_ok(&from.prefix, &["ping", "-c", "3", "-i", "0.2", to]);
        assert_eq!(ping_counts(&out), Some((3, 3)), "ping {to}:\n{out}");
    }
    let out = iopkt_ok(&p.a.prefix, &["ping", "-c", "2", "-s", "4000", "10.99.0.2"]);
    assert_eq!(ping_counts(&out), Some((2, 2)), "fragmented ping:\n{out}");
    let out = iopkt_ok(
        &p.b.prefix,
        &["ping", "-c", "2", "-s", "4000", "fd00:99::1"],
    );
    assert_eq!(ping_counts(&out), Some((2, 2)), "fragmented ping6:\n{out}");
}

#[test]
fn two_stacks_ping_over_the_udp_driver() {
    let p = pair("udp", "");
    assert_pings(&p);
    let arp = iopkt_ok(&p.a.prefix, &["arp", "-an"]);
    assert!(arp.contains("(10.99.0.2)"), "{arp}");
    let ndp = iopkt_ok(&p.a.prefix, &["ndp", "-an"]);
    assert!(ndp.contains("fd00:99::2"), "{ndp}");
}

#[test]
fn a_fifth_lost_with_loss_20_and_the_stacks_stay_healthy() {
    let p = pair("udp", "loss=20");
    // Resolve the neighbour first so the count measures the link alone.
    let _ = iopkt_run(&p.a.prefix, &["ping", "-c", "3", "-i", "0.2", "10.99.0.2"]);
    let o = iopkt_run(
        &p.a.prefix,
        &["ping", "-c", "50", "-i", "0.05", "10.99.0.2"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let (tx, rx) = ping_counts(&out).unwrap_or_else(|| panic!("no summary:\n{}", text(&o)));
    assert_eq!(tx, 50);
    let lost = tx - rx;
    // Binomial(50, 0.2): mean 10, standard deviation 2.8; this window is
    // beyond five deviations on the low side and four on the high side.
    assert!(
        (1..=22).contains(&lost),
        "lost {lost} of 50 with loss=20:\n{out}"
    );
    // Both stacks still answer their clients and carry traffic.
    let out = iopkt_ok(
        &p.b.prefix,
        &["ping", "-c", "10", "-i", "0.05", "10.99.0.1"],
    );
    let (_, rx) = ping_counts(&out).expect("summary");
    assert!(rx >= 1, "{out}");
    iopkt_ok(&p.a.prefix, &["netstat", "-i"]);
}

/// Compiles the C test driver against the committed header.
fn build_c_driver() -> Option<PathBuf> {
    if !have("gcc") {
        eprintln!("skipped: gcc is not installed");
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out_dir = std::env::temp_dir().join(format!("iopkt-cdrv-{}", unique("c")));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let so = out_dir.join("devnp-cudp.so");
    let o = run_limited(
        Command::new("gcc")
            .args([
                "-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", "-O2", "-I",
            ])
            .arg(root.join("include"))
            .arg("-o")
            .arg(&so)
            .arg(root.join("tests/c-driver/devnp-cudp.c")),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "gcc failed:\n{}", text(&o));
    Some(so)
}

#[test]
fn a_driver_written_in_c_carries_the_traffic() {
    let Some(so) = build_c_driver() else { return };
    let p = pair(so.to_str().expect("utf-8 path"), "");
    assert_pings(&p);
    let _ = std::fs::remove_dir_all(so.parent().expect("dir"));
}
