//! Applications on more than one stack at once, and the UDP calls whose
//! answers Linux programs rely on: two io-pkt side by side (each program
//! reaches the one its SOCK names, and each lists only its own sockets),
//! connect(AF_UNSPEC) and send() without a destination on UDP sockets,
//! and IP_PKTINFO / IPV6_PKTINFO choosing a datagram's source. Each test
//! starts its own io-pkt (`-d pair`, lo0 with 127.0.0.1 and ::1); no root
//! needed.

mod common;

use std::time::{Duration, Instant};

use common::{Background, Stack, have, iopkt, run_limited, text};

const LIMIT: Duration = Duration::from_secs(60);

fn python() -> bool {
    if have("python3") {
        true
    } else {
        eprintln!("skipped: python3 is not installed (scripts/test installs it)");
        false
    }
}

/// Runs `script` on `stack` and returns its standard output; fails the
/// test if it fails.
fn py_ok(stack: &Stack, script: &str, args: &[&str]) -> String {
    let o = run_limited(stack.cmd("python3").args(["-c", script]).args(args), LIMIT);
    assert!(
        o.status.success(),
        "python failed:\n{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `iopkt netstat -an` on the stack named by SOCK.
fn netstat(stack: &Stack) -> String {
    let o = run_limited(
        std::process::Command::new(iopkt())
            .args(["netstat", "-an"])
            .env("SOCK", &stack.prefix),
        LIMIT,
    );
    assert!(o.status.success(), "netstat:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A TCP echo server and a UDP socket on 127.0.0.1 with the given ports;
/// says "ready" and serves until killed.
const SERVER: &str = r#"
import socket, sys, threading
tcp, udp = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket(); l.bind(("127.0.0.1", tcp)); l.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", udp))
print("ready", flush=True)
while True:
    c, _ = l.accept()
    c.sendall(c.recv(100).upper()); c.close()
"#;

/// Connects to 127.0.0.1:port: prints the reply, or the errno's name.
const CLIENT: &str = r#"
import errno, socket, sys
c = socket.socket()
try:
    c.connect(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print("error", errno.errorcode[e.errno]); sys.exit(0)
c.sendall(b"hello " + sys.argv[2].encode())
print("reply", c.recv(100).decode())
"#;

#[test]
fn two_stacks_side_by_side_each_program_reaches_its_own() {
    if !python() {
        return;
    }
    let a = Stack::start("sideA");
    let b = Stack::start("sideB");
    let start = Instant::now();
    // Servers on different ports: A on 7001/7002, B on 7003/7004. Nothing
    // of one stack exists on the other.
    let mut sa = Background::spawn(a.cmd("python3").args(["-c", SERVER, "7001", "7002"]));
    sa.line_with("ready", LIMIT);
    let mut sb = Background::spawn(b.cmd("python3").args(["-c", SERVER, "7003", "7004"]));
    sb.line_with("ready", LIMIT);

    assert_eq!(py_ok(&a, CLIENT, &["7001", "a"]).trim(), "reply HELLO A");
    assert_eq!(py_ok(&b, CLIENT, &["7003", "b"]).trim(), "reply HELLO B");
    // The other stack has nothing on those ports: refused.
    assert_eq!(
        py_ok(&b, CLIENT, &["7001", "x"]).trim(),
        "error ECONNREFUSED"
    );
    assert_eq!(
        py_ok(&a, CLIENT, &["7003", "x"]).trim(),
        "error ECONNREFUSED"
    );

    // Each listing has its own sockets and none of the other's.
    let (na, nb) = (netstat(&a), netstat(&b));
    for (out, mine, theirs) in [
        (&na, ["7001", "7002"], ["7003", "7004"]),
        (&nb, ["7003", "7004"], ["7001", "7002"]),
    ] {
        for p in mine {
            assert!(
                out.contains(&format!("127.0.0.1.{p} ")),
                "{p} missing:\n{out}"
            );
        }
        for p in theirs {
            assert!(!out.contains(&format!(".{p} ")), "{p} listed:\n{out}");
        }
    }
    assert!(na.contains("LISTEN") && nb.contains("LISTEN"));
    eprintln!("two stacks: {:?}", start.elapsed());
}
