//! iperf3, unmodified, between our stack and the Linux kernel over a TAP
//! device in a namespace: 10-second TCP runs in both directions, with
//! iperf3 as client on our stack and as server on it, over a clean link
//! and over one that loses, reorders and duplicates frames, and over
//! IPv6. Each run's JSON report must show iperf3 finished without error,
//! that more moved than a broken stack could move, and that sender and
//! receiver agree on how much. Needs root; skips otherwise.

mod common;
mod kernel;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Background, run_limited, text};
use kernel::{KERNEL4, KERNEL6, KernelLink, STACK4, STACK6, can_run, need};
use serde_json::Value;

/// Seconds each run lasts.
const RUN_SECS: &str = "10";
/// Wall-clock bound of one run, set-up and result exchange included.
const LIMIT: Duration = Duration::from_secs(60);
/// Least a run on the clean link must move in its 10 seconds. Our stack
/// moves well over a gigabyte there; a stack that stalls on every window
/// or waits for retransmission timeouts moves a small fraction of this.
const PLAIN_FLOOR: u64 = 100_000_000;
/// The same with 2 % of our frames lost, 2 % reordered and 1 %
/// duplicated: tens of megabytes when loss recovery works, far less when
/// each loss costs a timeout or the connection stalls.
const IMPAIRED_FLOOR: u64 = 10_000_000;
const IMPAIRMENT: &str = "loss=2,reorder=2,dup=1";

/// Where one run's iperf3 programs run.
#[derive(Clone, Copy, Debug)]
enum Roles {
    /// The client on our stack, the server on the kernel.
    ClientOnStack,
    /// The server on our stack, the client on the kernel.
    ServerOnStack,
}

/// One run: who is where, over which family, which way the data goes.
#[derive(Clone, Copy, Debug)]
struct Run {
    roles: Roles,
    v6: bool,
    /// `-R`: the server sends.
    reverse: bool,
}

impl Run {
    /// Whether our stack is the one sending the data.
    fn stack_sends(self) -> bool {
        matches!(
            (self.roles, self.reverse),
            (Roles::ClientOnStack, false) | (Roles::ServerOnStack, true)
        )
    }

    fn label(self) -> String {
        let who = match self.roles {
            Roles::ClientOnStack => "client on our stack",
            Roles::ServerOnStack => "server on our stack",
        };
        let way = if self.stack_sends() {
            "our stack sends"
        } else {
            "the kernel sends"
        };
        let fam = if self.v6 { "IPv6" } else { "IPv4" };
        format!("{who}, {way}, {fam}")
    }
}

/// A number in iperf3's report, by path.
fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// Runs iperf3 once and checks its report, which it returns.
fn iperf(link: &mut KernelLink, run: Run, floor: u64) -> Value {
    let label = run.label();
    let server_addr = match (run.roles, run.v6) {
        (Roles::ClientOnStack, false) => KERNEL4,
        (Roles::ClientOnStack, true) => KERNEL6,
        (Roles::ServerOnStack, false) => STACK4,
        (Roles::ServerOnStack, true) => STACK6,
    };
    let (mut server_cmd, mut client_cmd) = match run.roles {
        Roles::ClientOnStack => (link.kernel_cmd("iperf3"), link.stack_cmd("iperf3")),
        Roles::ServerOnStack => (link.stack_cmd("iperf3"), link.kernel_cmd("iperf3")),
    };
    // One test, then the server exits; --forceflush so that the line
    // saying it listens reaches the pipe at once.
    let mut server =
        Background::spawn(server_cmd.args(["-s", "-1", "-B", server_addr, "--forceflush"]));
    server.line_with("Server listening", Duration::from_secs(30));

    client_cmd.args(["-c", server_addr, "-t", RUN_SECS, "-J"]);
    if run.reverse {
        client_cmd.arg("-R");
    }
    let out = run_limited(&mut client_cmd, LIMIT);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{label}: iperf3's report is not JSON ({e}):\n{}\nio-pkt log:\n{}",
            text(&out),
            link.log()
        )
    });
    assert!(
        out.status.success() && report.get("error").is_none(),
        "{label}: iperf3 client failed:\n{}\nio-pkt log:\n{}",
        text(&out),
        link.log()
    );

    // The server ends by itself after its one test, successfully.
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = server.child.try_wait() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{label}: the iperf3 server did not exit after the test"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut server_out = String::new();
    let _ = server.stdout.read_to_string(&mut server_out);
    assert!(
        status.success(),
        "{label}: iperf3 server failed ({status}):\n{server_out}"
    );

    // The report holds both ends' counts: the client's own, and the
    // server's, which it sent over the control connection at the end.
    let sent = num(&report, &["end", "sum_sent", "bytes"]).unwrap_or(0.0) as u64;
    let received = num(&report, &["end", "sum_received", "bytes"]).unwrap_or(0.0) as u64;
    let secs = num(&report, &["end", "sum_received", "seconds"]).unwrap_or(0.0);
    let mbps = if secs > 0.0 {
        received as f64 / secs / 1e6
    } else {
        0.0
    };
    eprintln!(
        "iperf3 {label}: sent {sent} B, received {received} B in {secs:.1} s: {mbps:.1} MB/s"
    );
    assert!(
        received > floor,
        "{label}: only {received} bytes arrived in {RUN_SECS} s (at least {floor} expected)\n{}",
        text(&out)
    );
    // What was still in flight or queued when the test ended is counted
    // as sent and not as received; nothing may arrive that was not sent.
    let slack = (sent / 10).max(4 << 20);
    assert!(
        received <= sent && sent - received <= slack,
        "{label}: sender counted {sent} bytes, receiver {received}"
    );

    if let Roles::ClientOnStack = run.roles {
        // iperf3 on our stack asked for no option the library lacks.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("not supported") && !err.contains("getsockopt"),
            "{label}: iperf3 on our stack complained:\n{err}"
        );
    }
    if run.stack_sends() && matches!(run.roles, Roles::ClientOnStack) {
        // The sender's figures iperf3 took from TCP_INFO on our stack.
        let stream = &report["end"]["streams"][0]["sender"];
        let cwnd = num(stream, &["max_snd_cwnd"]).unwrap_or(0.0);
        let rtt = num(stream, &["mean_rtt"]).unwrap_or(0.0);
        assert!(
            (1448.0..1e9).contains(&cwnd),
            "{label}: TCP_INFO congestion window {cwnd}"
        );
        assert!(
            rtt > 0.0 && rtt < 1e6,
            "{label}: TCP_INFO round-trip time {rtt} us"
        );
    }
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
    report
}

#[test]
fn iperf3_on_our_stack_against_the_kernels_server_both_ways() {
    let t = "iperf3_on_our_stack_against_the_kernels_server_both_ways";
    if !can_run(t) || !need(t, "iperf3") {
        return;
    }
    let mut link = KernelLink::start("ipc", "");
    for reverse in [false, true] {
        let run = Run {
            roles: Roles::ClientOnStack,
            v6: false,
            reverse,
        };
        iperf(&mut link, run, PLAIN_FLOOR);
    }
}

#[test]
fn the_kernels_iperf3_against_a_server_on_our_stack_both_ways() {
    let t = "the_kernels_iperf3_against_a_server_on_our_stack_both_ways";
    if !can_run(t) || !need(t, "iperf3") {
        return;
    }
    let mut link = KernelLink::start("ips", "");
    for reverse in [false, true] {
        let run = Run {
            roles: Roles::ServerOnStack,
            v6: false,
            reverse,
        };
        iperf(&mut link, run, PLAIN_FLOOR);
    }
}

#[test]
fn iperf3_over_an_impaired_tap_both_ways() {
    let t = "iperf3_over_an_impaired_tap_both_ways";
    if !can_run(t) || !need(t, "iperf3") {
        return;
    }
    let mut link = KernelLink::start("ipi", IMPAIRMENT);
    for reverse in [false, true] {
        let run = Run {
            roles: Roles::ClientOnStack,
            v6: false,
            reverse,
        };
        let report = iperf(&mut link, run, IMPAIRED_FLOOR);
        if !reverse {
            // The link lost some of what our stack sent: the
            // retransmissions it counted reached iperf3 through TCP_INFO.
            let retrans = num(&report, &["end", "sum_sent", "retransmits"]).unwrap_or(0.0);
            assert!(
                retrans > 0.0,
                "no retransmissions reported over a lossy link"
            );
        }
    }
}

#[test]
fn iperf3_over_ipv6() {
    let t = "iperf3_over_ipv6";
    if !can_run(t) || !need(t, "iperf3") {
        return;
    }
    let mut link = KernelLink::start("ip6", "");
    let run = Run {
        roles: Roles::ClientOnStack,
        v6: true,
        reverse: false,
    };
    iperf(&mut link, run, PLAIN_FLOOR);
}
