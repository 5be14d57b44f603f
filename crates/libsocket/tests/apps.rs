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

/// connect(AF_UNSPEC) through the C library (Python's connect() takes no
/// AF_UNSPEC address); the library's interposed connect answers.
const UNSPEC: &str = r#"
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def dissolve(s):
    sa = (ctypes.c_ubyte * 16)()  # sa_family 0: AF_UNSPEC
    if libc.connect(s.fileno(), sa, 16) != 0:
        raise OSError(ctypes.get_errno(), "connect AF_UNSPEC")
def errno_of(f):
    try:
        f(); return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
"#;

const UDP_UNSPEC_AND_DESTADDRREQ: &str = r#"
import os, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
lo = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
any_ = "::" if fam == socket.AF_INET6 else "0.0.0.0"
def udp(bind=None):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(5)
    if bind is not None:
        s.bind((bind, 0))
    return s
r, x, c = udp(lo), udp(lo), udp(any_)
# Nowhere to send: EDESTADDRREQ from send(), write() and sendmsg().
print("unconnected send", errno_of(lambda: c.send(b"x")))
print("unconnected write", errno_of(lambda: os.write(c.fileno(), b"x")))
print("unconnected sendmsg", errno_of(lambda: c.sendmsg([b"x"])))
c.connect(r.getsockname()[:2])
c.send(b"one"); print("connected", r.recv(10).decode())
print("name", c.getsockname()[0])
# Another sender is filtered out while connected...
x.sendto(b"filtered", c.getsockname()[:2])
r.sendto(b"from peer", c.getsockname()[:2])
print("got", c.recv(20).decode())
dissolve(c)
print("peer after", errno_of(c.getpeername))
print("send after", errno_of(lambda: c.send(b"x")))
print("name after", c.getsockname()[0], c.getsockname()[1] != 0)
# ...and reaches it once the association is dissolved; sendto works.
port = c.getsockname()[1]
x.sendto(b"anyone", (lo, port))
d, a = c.recvfrom(20)
print("got", d.decode(), a[:2] == x.getsockname()[:2])
c.sendto(b"two", r.getsockname()[:2]); print("sendto", r.recv(10).decode())
dissolve(c)  # again: harmless
print("twice ok")
"#;

#[test]
fn udp_connect_af_unspec_dissolves_and_send_without_peer_is_edestaddrreq() {
    if !python() {
        return;
    }
    let stack = Stack::start("unspec");
    let script = format!("{UNSPEC}{UDP_UNSPEC_AND_DESTADDRREQ}");
    for (fam, lo, any) in [("4", "127.0.0.1", "0.0.0.0"), ("6", "::1", "::")] {
        let out = py_ok(&stack, &script, &[fam]);
        let want = format!(
            "unconnected send EDESTADDRREQ\nunconnected write EDESTADDRREQ\n\
             unconnected sendmsg EDESTADDRREQ\nconnected one\nname {lo}\ngot from peer\n\
             peer after ENOTCONN\nsend after EDESTADDRREQ\nname after {any} True\n\
             got anyone True\nsendto two\ntwice ok\n"
        );
        assert_eq!(out, want, "IPv{fam}");
    }
}

/// sendmsg with IP_PKTINFO / IPV6_PKTINFO: the datagram leaves from the
/// address given, which the receiver sees as its source.
const PKTINFO_SEND: &str = r#"
import socket, struct, sys
v6 = sys.argv[1] == "6"
fam = socket.AF_INET6 if v6 else socket.AF_INET
lo, other = ("::1", sys.argv[2]) if v6 else ("127.0.0.1", "127.0.0.5")
r = socket.socket(fam, socket.SOCK_DGRAM); r.bind((lo, 0)); r.settimeout(5)
s = socket.socket(fam, socket.SOCK_DGRAM)
def info(addr):
    if v6:
        return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO,
                 socket.inet_pton(fam, addr) + struct.pack("@I", 0))]
    return [(socket.IPPROTO_IP, 8,  # IP_PKTINFO
             struct.pack("@i4s4s", 0, socket.inet_aton(addr), bytes(4)))]
dst = r.getsockname()[:2]
s.sendto(b"plain", dst)
print("plain from", r.recvfrom(10)[1][0])
s.sendmsg([b"chosen"], info(other), 0, dst)
d, a = r.recvfrom(10)
print(d.decode(), "from", a[0])
# The choice is for that datagram only.
s.sendto(b"again", dst)
print("again from", r.recvfrom(10)[1][0])
# A source that is not the stack's: that datagram does not leave.
s.sendmsg([b"bad"], info("2001:db8::99" if v6 else "192.0.2.99"), 0, dst)
s.sendto(b"after", dst)
print("next", r.recv(10).decode())
"#;

#[test]
fn sendmsg_pktinfo_chooses_the_source_address() {
    if !python() {
        return;
    }
    let stack = Stack::start("pktinfo");
    // A second IPv6 address on lo0 to choose (lo0 holds all of 127/8).
    let o = run_limited(
        std::process::Command::new(iopkt())
            .args(["ifconfig", "lo0", "inet6", "fd00:99::5/128"])
            .env("SOCK", &stack.prefix),
        LIMIT,
    );
    assert!(o.status.success(), "{}", text(&o));
    for (fam, lo, other) in [("4", "127.0.0.1", "127.0.0.5"), ("6", "::1", "fd00:99::5")] {
        let out = py_ok(&stack, PKTINFO_SEND, &[fam, other]);
        assert_eq!(
            out,
            format!("plain from {lo}\nchosen from {other}\nagain from {lo}\nnext after\n"),
            "IPv{fam}"
        );
    }
}
