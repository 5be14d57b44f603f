//! Unmodified programs on the stack through the preloaded library: a C
//! program (gcc), Python's socket, http.server, urllib and asyncio, curl,
//! `iopkt run`, and what a killed program leaves behind. Each test starts
//! its own io-pkt (`-d pair`, lo0 with 127.0.0.1 and ::1) on a private
//! prefix; no root needed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Background, Stack, build_c, have, run_limited, text};
use iopkt_rsrcmgr::Client;
use iopkt_rsrcmgr::proto::{Request, Response, SocketInfoWire};

const LIMIT: Duration = Duration::from_secs(60);

fn python() -> Option<&'static str> {
    if have("python3") {
        Some("python3")
    } else {
        eprintln!("skipped: python3 is not installed (scripts/test installs it)");
        None
    }
}

/// Python that fails if the kernel holds a socket on `port`: the
/// program's sockets must be the stack's (/proc/net lists the kernel's).
const NOT_KERNEL: &str = r#"
def kernel_has(port):
    for f in ("tcp", "tcp6", "udp", "udp6"):
        try:
            rows = open("/proc/net/" + f).read().splitlines()[1:]
        except OSError:
            continue
        if any(int(r.split()[1].split(":")[1], 16) == port for r in rows):
            return True
    return False
"#;

/// Runs `script` with `python3 -c` on the stack; asserts success and
/// returns its standard output.
fn py_ok(stack: &Stack, script: &str) -> String {
    let o = run_limited(stack.cmd("python3").args(["-c", script]), LIMIT);
    assert!(
        o.status.success(),
        "python failed:\n{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn c_program_tcp_udp_unix_and_options() {
    if !have("gcc") {
        eprintln!("skipped: gcc is not installed");
        return;
    }
    let stack = Stack::start("c");
    let Some(exe) = build_c("echo", &stack.prefix) else {
        return;
    };
    let o = run_limited(&mut stack.cmd(&exe), LIMIT);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("ALL OK"),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    for part in [
        "tcp fork echo ok 1048576",
        "nonblocking connect ok",
        "refused ok",
        "udp echo ok",
        "af_unix ok",
    ] {
        assert!(out.contains(part), "missing {part:?}:\n{}", text(&o));
    }
    // The unsupported option was named once on stderr.
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("setsockopt(SO_BINDTODEVICE) is not supported by the stack")
            .count(),
        1,
        "{err}"
    );
}

/// Every socket of the stack (`SocketList`), to see that a program's
/// sockets are the stack's and not the kernel's.
fn stack_sockets(prefix: &Path) -> Vec<SocketInfoWire> {
    let mut c = Client::connect(prefix).expect("control connection");
    match c.call(&Request::SocketList).expect("SocketList") {
        Response::Sockets(v) => v,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn python_tcp_echo_server_and_client_in_two_processes() {
    let Some(py) = python() else { return };
    let stack = Stack::start("pyecho");
    let server = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen()
print("port", s.getsockname()[1], flush=True)
c, a = s.accept()
assert a[0] == "127.0.0.1", a
n = 0
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d); n += len(d)
c.close()
print("served", n, flush=True)
"#;
    let mut srv = Background::spawn(stack.cmd(py).args(["-c", server]));
    let line = srv.line_with("port", LIMIT);
    let port: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("port");
    // The listener is the stack's, not the kernel's.
    let socks = stack_sockets(&stack.prefix);
    assert!(
        socks
            .iter()
            .any(|s| s.state == "LISTEN" && s.local.map(|a| a.port()) == Some(port)),
        "{socks:?}"
    );
    let client = format!(
        r#"
import socket, threading
c = socket.create_connection(("127.0.0.1", {port}), timeout=30)
data = bytes((i * 13) % 251 for i in range(300000))
t = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR)))
t.start()
got = bytearray()
while True:
    d = c.recv(65536)
    if not d: break
    got += d
t.join()
assert bytes(got) == data, (len(got), len(data))
print("echo ok", len(got))
"#
    );
    let out = py_ok(&stack, &client);
    assert!(out.contains("echo ok 300000"), "{out}");
    assert!(srv.line_with("served", LIMIT).contains("served 300000"));
}

/// A file of `n` pseudo-random bytes.
fn payload(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256_of(path: &Path) -> String {
    let o = run_limited(Command::new("sha256sum").arg(path), LIMIT);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `python3 -m http.server` on the stack, serving a directory with a
/// 3 MB file; returns the server and its port.
fn http_server(stack: &Stack, py: &str) -> (Background, u16, std::path::PathBuf) {
    let dir = stack.prefix.join("www");
    std::fs::create_dir_all(&dir).expect("www");
    let file = dir.join("blob.bin");
    std::fs::write(&file, payload(3 * 1024 * 1024)).expect("blob");
    let mut srv = Background::spawn(
        stack
            .cmd(py)
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&dir)
            .arg("0"),
    );
    let line = srv.line_with("Serving HTTP", LIMIT);
    let port = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let socks = stack_sockets(&stack.prefix);
    assert!(
        socks
            .iter()
            .any(|s| s.state == "LISTEN" && s.local.map(|a| a.port()) == Some(port)),
        "http.server's listener is not the stack's: {socks:?}"
    );
    (srv, port, file)
}

#[test]
fn python_http_server_and_urllib_client() {
    let Some(py) = python() else { return };
    let stack = Stack::start("http");
    let (srv, port, file) = http_server(&stack, py);
    let want = sha256_of(&file);
    // Waiting in poll on its listener, the server uses no CPU.
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<&str> = after.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        get(11) + get(12)
    };
    let pid = srv.child.id();
    let t0 = ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = ticks(pid) - t0;
    assert!(used <= 5, "an idle server used {used} clock ticks in 1 s");
    let client = format!(
        r#"
import hashlib, urllib.request
h = hashlib.sha256()
n = 0
for _ in range(2):
    with urllib.request.urlopen("http://127.0.0.1:{port}/blob.bin", timeout=30) as r:
        body = r.read()
    n += len(body)
h.update(body)
print("got", n, h.hexdigest())
"#
    );
    let out = py_ok(&stack, &client);
    assert!(
        out.contains(&format!("got {} {want}", 2 * 3 * 1024 * 1024)),
        "{out} (want {want})"
    );
}

#[test]
fn curl_downloads_from_python_http_server() {
    let Some(py) = python() else { return };
    if !have("curl") {
        eprintln!("skipped: curl is not installed (scripts/test installs it)");
        return;
    }
    let stack = Stack::start("curl");
    let (_srv, port, file) = http_server(&stack, py);
    let got = stack.prefix.join("got.bin");
    let o = run_limited(
        stack
            .cmd("curl")
            .args(["-sS", "--max-time", "50", "-o"])
            .arg(&got)
            .arg(format!("http://127.0.0.1:{port}/blob.bin")),
        LIMIT,
    );
    assert!(
        o.status.success(),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    assert_eq!(sha256_of(&got), sha256_of(&file));
}

#[test]
fn asyncio_echo_server_and_client() {
    let Some(_) = python() else { return };
    let stack = Stack::start("asyncio");
    let script = r#"
import asyncio
async def handle(r, w):
    while True:
        d = await r.read(65536)
        if not d: break
        w.write(d); await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    assert not kernel_has(port)
    data = bytes(i % 256 for i in range(200000))
    async def one(k):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(data); await w.drain(); w.write_eof()
        got = await r.read()
        w.close()
        return got == data
    ok = await asyncio.gather(*(one(k) for k in range(4)))
    srv.close(); await srv.wait_closed()
    print("asyncio", ok)
asyncio.run(asyncio.wait_for(main(), 40))
"#;
    let out = py_ok(&stack, &format!("{NOT_KERNEL}{script}"));
    assert!(out.contains("asyncio [True, True, True, True]"), "{out}");
}

#[test]
fn udp_and_ipv6_from_python() {
    let Some(_) = python() else { return };
    let stack = Stack::start("pyudp");
    let script = r#"
import socket
a = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); a.bind(("::1", 0))
b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
b.sendto(b"six", a.getsockname()[:2])
d, frm = a.recvfrom(100)
assert d == b"six" and frm[0] == "::1", (d, frm)
# IP_PKTINFO (8): the datagram's destination comes as ancillary data.
p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); p.bind(("127.0.0.1", 0))
p.setsockopt(socket.IPPROTO_IP, 8, 1)
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); q.sendto(b"info", p.getsockname())
d, anc, flags, frm = p.recvmsg(100, socket.CMSG_SPACE(12))
assert d == b"info" and len(anc) == 1, (d, anc)
lvl, typ, data = anc[0]
assert (lvl, typ) == (socket.IPPROTO_IP, 8) and data[8:12] == bytes([127, 0, 0, 1]), anc
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); t.bind(("::1", 0)); t.listen()
c = socket.create_connection(("::1", t.getsockname()[1]), timeout=10)
s, peer = t.accept()
c.sendall(b"v6 tcp"); assert s.recv(100) == b"v6 tcp"
assert not kernel_has(a.getsockname()[1]) and not kernel_has(t.getsockname()[1])
print("v6 ok", peer[0])
"#;
    let out = py_ok(&stack, &format!("{NOT_KERNEL}{script}"));
    assert!(out.contains("v6 ok ::1"), "{out}");
}

#[test]
fn iopkt_run_preloads_and_names_the_stack() {
    let Some(py) = python() else { return };
    let stack = Stack::start("run");
    let script = r#"
import os, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("preload", os.environ["LD_PRELOAD"].split(":")[0].endswith("libiopkt_socket.so"), "port", s.getsockname()[1], "json", "--json" in os.sys.argv)
"#;
    // `--json` after `--` belongs to the program, not to iopkt.
    let o = run_limited(
        Command::new(common::iopkt())
            .arg("run")
            .arg("--sock")
            .arg(&stack.prefix)
            .args(["--", py, "-c", script, "--json"])
            .env_remove("LD_PRELOAD")
            .env_remove("SOCK"),
        LIMIT,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("preload True"),
        "{}",
        text(&o)
    );
    assert!(out.contains("json True"), "{}", text(&o));
    let o = run_limited(Command::new(common::iopkt()).args(["run", "--"]), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// The peer of the killed program: a listener the victim connects to 15
/// times, and 15 connections to the victim's first listener. Once the
/// victim is gone it reports how many of its 30 connections saw the end
/// of stream (closing each as it does).
const KILL_PEER: &str = r#"
import selectors, socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print("peer", l.getsockname()[1], flush=True)
target = int(sys.stdin.readline())
conns = [socket.create_connection(("127.0.0.1", target)) for _ in range(15)]
conns += [l.accept()[0] for _ in range(15)]
print("connected", len(conns), flush=True)
sel = selectors.DefaultSelector()
for c in conns:
    sel.register(c, selectors.EVENT_READ)
eof, deadline = 0, time.monotonic() + 30
while eof < len(conns) and time.monotonic() < deadline:
    for k, _ in sel.select(timeout=1):
        if k.fileobj.recv(100) == b"":
            sel.unregister(k.fileobj); k.fileobj.close(); eof += 1
print("eof", eof, flush=True)
"#;

/// The victim: 100 sockets of the stack: 30 listeners (20 IPv4, 10
/// IPv6), 40 UDP sockets (25 IPv4, 15 IPv6), 15 connections to the peer
/// and 15 accepted from it on its first listener.
const KILL_VICTIM: &str = r#"
import socket, sys, time
peer = int(sys.argv[1])
ls = []
for k in range(30):
    v6 = k >= 20
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    s.bind(("::1" if v6 else "127.0.0.1", 0)); s.listen(64); ls.append(s)
print("listening", ls[0].getsockname()[1], flush=True)
us = []
for k in range(40):
    v6 = k >= 25
    u = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("::1" if v6 else "127.0.0.1", 0)); us.append(u)
out = [socket.create_connection(("127.0.0.1", peer)) for _ in range(15)]
inc = [ls[0].accept()[0] for _ in range(15)]
held = ls + us + out + inc
print("ready", len(held), "tcp", *[s.getsockname()[1] for s in ls + out],
      "udp", *[u.getsockname()[1] for u in us], flush=True)
time.sleep(120)
"#;

#[test]
fn a_killed_program_leaves_no_socket() {
    let Some(py) = python() else { return };
    let stack = Stack::start("kill");
    let mut peer = {
        let mut c = stack.cmd(py);
        c.args(["-c", KILL_PEER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("peer");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        (Background { child, stdout }, stdin)
    };
    let peer_port = peer.0.line_with("peer", LIMIT);
    let peer_port = peer_port
        .split_whitespace()
        .nth(1)
        .expect("port")
        .to_string();
    let mut victim = Background::spawn(stack.cmd(py).args(["-c", KILL_VICTIM, &peer_port]));
    let first = victim.line_with("listening", LIMIT);
    let first = first.split_whitespace().nth(1).expect("port").to_string();
    std::io::Write::write_all(&mut peer.1, format!("{first}\n").as_bytes()).expect("to peer");
    let line = victim.line_with("ready", LIMIT);
    assert!(
        peer.0
            .line_with("connected", LIMIT)
            .contains("connected 30")
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"100"), "{line}");
    let at = |w: &str| words.iter().position(|x| *x == w).expect(w);
    let port = |x: &&str| x.parse::<u16>().expect("port");
    let tcp: Vec<u16> = words[at("tcp") + 1..at("udp")].iter().map(port).collect();
    let udp: Vec<u16> = words[at("udp") + 1..].iter().map(port).collect();
    assert_eq!((tcp.len(), udp.len()), (45, 40), "{line}");
    let victims = |s: &SocketInfoWire| {
        let p = s.local.map_or(0, |a| a.port());
        if s.proto.starts_with("udp") {
            udp.contains(&p)
        } else {
            s.proto.starts_with("tcp") && tcp.contains(&p)
        }
    };
    let before = stack_sockets(&stack.prefix)
        .into_iter()
        .filter(|s| victims(s))
        .count();
    assert_eq!(before, 100, "every socket of the program is the stack's");

    victim.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = victim.child.wait();
    // Within a second every one of them is gone, except the connections
    // it closed first, which wait in TIME_WAIT (RFC 9293 section 3.6)
    // once the peer, seeing the end of stream, closed too.
    let (left, took) = loop {
        let left: Vec<_> = stack_sockets(&stack.prefix)
            .into_iter()
            .filter(|s| victims(s) && s.state != "TIME_WAIT")
            .collect();
        if left.is_empty() || killed.elapsed() > Duration::from_secs(1) {
            break (left, killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        left.is_empty(),
        "after {:?} still there: {left:?}",
        killed.elapsed()
    );
    assert!(peer.0.line_with("eof", LIMIT).contains("eof 30"));
    // `iopkt netstat -a` agrees: none of the listeners or UDP sockets.
    let o = run_limited(
        Command::new(common::iopkt())
            .args(["netstat", "-an"])
            .env("SOCK", &stack.prefix),
        LIMIT,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for row in out.lines().skip(2) {
        let w: Vec<&str> = row.split_whitespace().collect();
        let p = w
            .get(3)
            .and_then(|a| a.rsplit('.').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let theirs = if w.first().is_some_and(|p| p.starts_with("udp")) {
            udp.contains(&p)
        } else {
            tcp.contains(&p)
        };
        assert!(
            !theirs || w.last() == Some(&"TIME_WAIT"),
            "left behind: {row}\n{out}"
        );
    }
    eprintln!("100 sockets gone in {took:?}");
}

/// A fork while another thread is in the middle of a control call: the
/// child must still reach the stack (its own control connection, the
/// lock not inherited held).
#[test]
fn fork_while_another_thread_talks_to_the_stack() {
    let Some(_) = python() else { return };
    let stack = Stack::start("fork");
    let script = r#"
import os, signal, socket, threading
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
stop = False
def busy():
    while not stop:
        l.getsockname()
t = threading.Thread(target=busy); t.start()
bad = 0
for i in range(30):
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a child stuck on an inherited lock ends itself
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
        os._exit(0 if u.getsockname()[1] and l.getsockname() == l.getsockname() else 1)
    _, st = os.waitpid(pid, 0)
    bad += st != 0
stop = True; t.join()
print("forks bad", bad)
"#;
    let out = py_ok(&stack, script);
    assert!(out.contains("forks bad 0"), "{out}");
}

/// Sockets passed across exec stay the stack's in the new program: the
/// library recognises them when it loads.
#[test]
fn sockets_inherited_across_exec() {
    let Some(_) = python() else { return };
    let stack = Stack::start("exec");
    let script = r#"
import os, socket, subprocess, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
child = r'''
import socket, sys
l = socket.socket(fileno=int(sys.argv[1])); u = socket.socket(fileno=int(sys.argv[2]))
assert l.family == socket.AF_INET and l.type == socket.SOCK_STREAM, (l.family, l.type)
assert u.type == socket.SOCK_DGRAM, u.type
c, a = l.accept()
d = c.recv(100)
m, frm = u.recvfrom(100)
print("child got", d.decode(), m.decode(), frm[0], flush=True)
'''
p = subprocess.Popen([sys.executable, "-c", child, str(l.fileno()), str(u.fileno())],
                     pass_fds=(l.fileno(), u.fileno()))
c = socket.create_connection(l.getsockname(), timeout=10); c.sendall(b"stream")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"dgram", u.getsockname())
sys.exit(p.wait(timeout=30))
"#;
    let out = py_ok(&stack, script);
    assert!(out.contains("child got stream dgram 127.0.0.1"), "{out}");
}

/// A program whose address space is too small for io-pkt's shared arena
/// (ulimit -v) still gets working TCP sockets: plain ones, said once.
#[test]
fn sockets_stay_plain_where_the_shared_arena_cannot_be_mapped() {
    let Some(py) = python() else {
        return;
    };
    let stack = Stack::start("no-arena");
    let script = "import socket\n\
        s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
        c=socket.socket(); c.connect(s.getsockname()); a,_=s.accept()\n\
        c.sendall(b'x'*100000); n=0\n\
        while n<100000: n+=len(a.recv(65536))\n\
        print('moved', n)\n";
    let o = run_limited(
        stack
            .cmd("sh")
            .arg("-c")
            .arg(format!("ulimit -v 1500000; exec {py} -c \"$0\""))
            .arg(script),
        LIMIT,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("moved 100000"),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("sockets stay plain").count(), 1, "{err}");
}
