//! `-p tcpip somaxconn=N` reaches the stack: the listen backlog cap reads
//! back as `kern.ipc.somaxconn`, and `sysctl -w` changes it while running.

mod common;

use common::*;

#[test]
fn somaxconn_on_the_command_line_is_the_stacks_listen_cap() {
    let prefix = Daemon::fresh_prefix("smc");
    let word = format!("prefix={},somaxconn=128", prefix.display());
    let mut d = Daemon::start(None, &prefix, &["-p", "tcpip", &word]);
    let line = |p: &std::path::Path| iopkt_ok(p, &["sysctl", "kern.ipc.somaxconn"]);
    let out = line(&prefix);
    assert!(
        out.contains("kern.ipc.somaxconn") && out.contains("128") && !out.contains("4096"),
        "{out}"
    );
    // The buffer sysctls are listed with the rest.
    let all = iopkt_ok(&prefix, &["sysctl", "-a"]);
    for name in [
        "net.inet.tcp.recvspace",
        "net.inet.tcp.sendspace",
        "net.inet.tcp.recvbuf_auto",
        "net.inet.tcp.sendbuf_auto",
        "net.inet.tcp.recvbuf_max",
        "net.inet.tcp.sendbuf_max",
        "net.inet.tcp.mem_max",
        "kern.ipc.somaxconn",
    ] {
        assert!(all.contains(name), "{name} missing from sysctl -a:\n{all}");
    }
    if is_root() {
        iopkt_ok(&prefix, &["sysctl", "-w", "kern.ipc.somaxconn=64"]);
        let out = line(&prefix);
        assert!(out.contains("64") && !out.contains("128"), "{out}");
    }
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
}
