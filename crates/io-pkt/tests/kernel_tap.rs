//! The Linux kernel as a peer over a TAP device inside a namespace the test
//! makes: the kernel pings our stack (IPv4 and IPv6, with and without
//! fragments), our stack pings the kernel, a second TAP interface is mounted
//! into the running stack, and the listings show what happened.

mod common;

use std::time::Duration;

use common::*;

fn kernel_ping(ns: &Netns, args: &[&str]) -> String {
    let o = run_limited(ns.cmd("ping").args(args), Duration::from_secs(60));
    assert!(
        o.status.success(),
        "kernel ping {args:?} failed:\n{}",
        text(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn kernel_and_stack_ping_each_other_over_tap() {
    if skip_unless_root("kernel_and_stack_ping_each_other_over_tap") || !have("ping") {
        return;
    }
    let ns = Netns::new("k");
    let tap = unique("xt");
    let prefix = Daemon::fresh_prefix("k");
    let p = prefix.to_str().expect("utf-8 path");
    let d = Daemon::start(
        Some(&ns),
        &prefix,
        &[
            "-d",
            "tap",
            &format!("dev={tap},name=en"),
            "-p",
            "tcpip",
            &format!("prefix={p}"),
        ],
    );
    iopkt_ok(
        &d.prefix,
        &["ifconfig", "en0", "inet", "10.77.0.2/24", "up"],
    );
    iopkt_ok(&d.prefix, &["ifconfig", "en0", "inet6", "fd00:77::2/64"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", &tap]);
    ns.ip(&["addr", "add", "fd00:77::1/64", "dev", &tap, "nodad"]);
    ns.ip(&["link", "set", &tap, "up"]);

    // Our address finishes duplicate address detection within a few seconds.
    let start = std::time::Instant::now();
    loop {
        let out = iopkt_ok(&d.prefix, &["ifconfig", "en0"]);
        if out.contains("fd00:77::2") && !out.contains("tentative") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "fd00:77::2 stays tentative:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    kernel_ping(&ns, &["-c", "3", "-W", "2", "10.77.0.2"]);
    kernel_ping(&ns, &["-c", "2", "-W", "2", "-s", "3000", "10.77.0.2"]);
    kernel_ping(&ns, &["-6", "-c", "3", "-W", "2", "fd00:77::2"]);
    kernel_ping(
        &ns,
        &["-6", "-c", "2", "-W", "2", "-s", "3000", "fd00:77::2"],
    );

    let out = iopkt_ok(&d.prefix, &["ping", "-c", "3", "10.77.0.1"]);
    assert_eq!(ping_counts(&out), Some((3, 3)), "{out}");
    let out = iopkt_ok(&d.prefix, &["ping", "-6", "-c", "3", "fd00:77::1"]);
    assert_eq!(ping_counts(&out), Some((3, 3)), "{out}");
    let out = iopkt_ok(&d.prefix, &["ping", "-c", "2", "-s", "3000", "10.77.0.1"]);
    assert_eq!(ping_counts(&out), Some((2, 2)), "{out}");
    let out = iopkt_ok(&d.prefix, &["ping", "-c", "2", "-s", "3000", "fd00:77::1"]);
    assert_eq!(ping_counts(&out), Some((2, 2)), "{out}");

    // The listings show the neighbours, the routes and growing counters.
    let arp = iopkt_ok(&d.prefix, &["arp", "-an"]);
    assert!(
        arp.contains("(10.77.0.1)") && arp.contains("on en0"),
        "{arp}"
    );
    let ndp = iopkt_ok(&d.prefix, &["ndp", "-an"]);
    assert!(ndp.contains("fd00:77::1"), "{ndp}");
    let routes = iopkt_ok(&d.prefix, &["netstat", "-rn"]);
    assert!(
        routes.contains("10.77.0.0/24") || routes.contains("10.77.0/24"),
        "{routes}"
    );
    assert!(routes.contains("fd00:77::/64"), "{routes}");
    let before = iopkt_ok(&d.prefix, &["netstat", "-i", "--json"]);
    kernel_ping(&ns, &["-c", "2", "-W", "2", "10.77.0.2"]);
    let after = iopkt_ok(&d.prefix, &["netstat", "-i", "--json"]);
    assert_ne!(before, after, "counters did not move");
    let ni = iopkt_ok(&d.prefix, &["netstat", "-i"]);
    assert!(ni.contains("en0") && ni.contains("lo0"), "{ni}");
}

#[test]
fn mount_adds_a_second_tap_interface_at_run_time() {
    if skip_unless_root("mount_adds_a_second_tap_interface_at_run_time") || !have("ping") {
        return;
    }
    let ns = Netns::new("m");
    let (tap0, tap1) = (unique("xa"), unique("ya"));
    let prefix = Daemon::fresh_prefix("m");
    let p = prefix.to_str().expect("utf-8 path");
    let d = Daemon::start(
        Some(&ns),
        &prefix,
        &[
            "-d",
            "tap",
            &format!("dev={tap0},name=en"),
            "-p",
            "tcpip",
            &format!("prefix={p}"),
        ],
    );
    let out = iopkt_ok(
        &d.prefix,
        &[
            "mount",
            "-T",
            "io-pkt",
            "-o",
            &format!("dev={tap1},name=en"),
            "devnp-tap.so",
        ],
    );
    assert!(out.contains("en1"), "{out}");
    let all = iopkt_ok(&d.prefix, &["ifconfig", "-a"]);
    assert!(all.contains("en0:") && all.contains("en1:"), "{all}");
    iopkt_ok(
        &d.prefix,
        &["ifconfig", "en1", "inet", "10.78.0.2/24", "up"],
    );
    ns.ip(&["addr", "add", "10.78.0.1/24", "dev", &tap1]);
    ns.ip(&["link", "set", &tap1, "up"]);
    kernel_ping(&ns, &["-c", "3", "-W", "2", "10.78.0.2"]);
    // The wrong instance is refused by name.
    let o = iopkt_run(
        &d.prefix,
        &["mount", "-T", "io-pkt7", "-o", "dev=zz0", "devnp-tap.so"],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("io-pkt7"),
        "{}",
        text(&o)
    );
}
