//! `ifconfig IF destroy` on driver interfaces while io-pkt runs, MTU limits
//! the drivers state, and `ifconfig IF up/down` reaching the driver.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `iopkt ARGS` must fail, saying every part of `needles` on stderr.
fn iopkt_refused(prefix: &std::path::Path, args: &[&str], needles: &[&str]) {
    let o = iopkt_run(prefix, args);
    assert!(
        !o.status.success(),
        "iopkt {args:?} should fail:\n{}",
        text(&o)
    );
    let err = stderr_of(&o);
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from iopkt {args:?}:\n{err}");
    }
}

/// Interface names `ifconfig -a` lists (each block starts at column 0).
fn listed(prefix: &std::path::Path) -> Vec<String> {
    iopkt_ok(prefix, &["ifconfig", "-a"])
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']) && !l.is_empty())
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .collect()
}

#[test]
fn driver_interfaces_are_destroyed_at_run_time() {
    let prefix = Daemon::fresh_prefix("ds");
    let p = prefix.to_str().expect("utf-8 path");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let local = port.local_addr().expect("address");
    drop(port);
    let mut d = Daemon::start(
        None,
        &prefix,
        &[
            "-d",
            "pair",
            "-d",
            "udp",
            &format!("local={local},remote=127.0.0.1:9,name=ud"),
            "-p",
            "tcpip",
            &format!("prefix={p}"),
        ],
    );
    assert_eq!(listed(&d.prefix), ["lo0", "pair0", "pair1", "ud0"]);

    // MTUs: up to what the driver carries, no further.
    iopkt_ok(&d.prefix, &["ifconfig", "pair0", "mtu", "9000"]);
    iopkt_ok(&d.prefix, &["ifconfig", "ud0", "mtu", "9000"]);
    iopkt_refused(
        &d.prefix,
        &["ifconfig", "ud0", "mtu", "65500"],
        &["mtu 65500", "ud0", "at most 65489"],
    );
    assert!(iopkt_ok(&d.prefix, &["ifconfig", "ud0"]).contains("mtu 9000"));

    iopkt_ok(&d.prefix, &["ifconfig", "pair0", "destroy"]);
    assert_eq!(listed(&d.prefix), ["lo0", "pair1", "ud0"]);
    iopkt_refused(
        &d.prefix,
        &["ifconfig", "pair0", "destroy"],
        &["no such interface", "pair0"],
    );
    iopkt_refused(
        &d.prefix,
        &["ifconfig", "lo0", "destroy"],
        &["lo0 cannot be destroyed"],
    );
    iopkt_refused(
        &d.prefix,
        &["ifconfig", "nosuch7", "destroy"],
        &["no such interface", "nosuch7"],
    );

    // The udp driver closes its socket: the port is free again.
    iopkt_ok(&d.prefix, &["ifconfig", "ud0", "destroy"]);
    std::net::UdpSocket::bind(local).expect("the udp driver released its port");

    // The survivor still works and the daemon keeps serving.
    iopkt_ok(
        &d.prefix,
        &["ifconfig", "pair1", "inet", "10.79.0.1/24", "up"],
    );
    assert!(iopkt_ok(&d.prefix, &["ifconfig", "pair1"]).contains("10.79.0.1"));
    assert_eq!(listed(&d.prefix), ["lo0", "pair1"]);
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
}

#[test]
fn tap_interface_is_destroyed_and_carries_jumbo_frames() {
    if skip_unless_root("tap_interface_is_destroyed_and_carries_jumbo_frames") || !have("ping") {
        return;
    }
    let ns = Netns::new("dt");
    let tap = unique("jt");
    let prefix = Daemon::fresh_prefix("dt");
    let p = prefix.to_str().expect("utf-8 path");
    let mut d = Daemon::start(
        Some(&ns),
        &prefix,
        &[
            "-v",
            "-d",
            "tap",
            &format!("dev={tap},name=en,mtu=9000"),
            "-d",
            "pair",
            "-p",
            "tcpip",
            &format!("prefix={p}"),
        ],
    );
    ns.ip(&["link", "set", &tap, "mtu", "9000", "up"]);
    ns.ip(&["addr", "add", "10.78.0.1/24", "dev", &tap]);
    iopkt_ok(
        &d.prefix,
        &["ifconfig", "en0", "inet", "10.78.0.2/24", "up"],
    );

    // Up and down reach the driver (it logs them at debug level).
    iopkt_ok(&d.prefix, &["ifconfig", "en0", "down"]);
    iopkt_ok(&d.prefix, &["ifconfig", "en0", "up"]);
    let log = d.log_text();
    assert!(
        log.contains(&format!("interface of {tap} set down")),
        "the driver heard of down:\n{log}"
    );
    assert!(
        log.contains(&format!("interface of {tap} set up")),
        "the driver heard of up:\n{log}"
    );

    // The kernel pings with 8028-byte datagrams that may not be fragmented:
    // the 8042-byte frames must be received whole, and the replies fit
    // our MTU of 9000 too.
    let o = run_limited(
        ns.cmd("ping")
            .args(["-c", "2", "-W", "2", "-M", "do", "-s", "8000", "10.78.0.2"]),
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(ping_counts(&out), Some((2, 2)), "{}", text(&o));

    iopkt_ok(&d.prefix, &["ifconfig", "en0", "destroy"]);
    assert_eq!(listed(&d.prefix), ["lo0", "pair0", "pair1"]);
    let o = run_limited(
        std::process::Command::new("ip").args(["-n", &ns.name, "link", "show", &tap]),
        Duration::from_secs(20),
    );
    assert!(
        !o.status.success(),
        "the Linux TAP device {tap} is gone after destroy:\n{}",
        text(&o)
    );
    iopkt_ok(&d.prefix, &["ifconfig", "pair0", "destroy"]);
    assert_eq!(listed(&d.prefix), ["lo0", "pair1"]);
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
}
