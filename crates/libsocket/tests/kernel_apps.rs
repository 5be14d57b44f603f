//! Applications on our stack talking to the Linux kernel over a TAP device
//! in a namespace: UDP both ways with socat (IPv4 and IPv6), multicast
//! groups reaching a program on our stack (and our IGMP/MLD reports
//! reaching the kernel's link), a thousand concurrent TCP connections, and
//! asyncio both ways. Needs root; skips otherwise.

mod common;
mod kernel;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Background, run_limited, text};
use kernel::{KERNEL4, KERNEL6, KernelLink, STACK4, STACK6, can_run, need};

const LIMIT: Duration = Duration::from_secs(60);

/// `socat ARGS` run by `cmd` (kernel or stack side) with its diagnostics
/// on standard output, so the test can wait for "listening on".
fn socat_listener(mut cmd: Command, args: &str) -> Background {
    let mut b = Background::spawn(cmd.args(["sh", "-c", &format!("exec socat -d -d {args} 2>&1")]));
    b.line_with("listening on", LIMIT);
    b
}

/// Three lines sent as three datagrams by socat run with `cmd` to `to`
/// (a socat address); returns what came back.
fn socat_lines(mut cmd: Command, to: &str) -> String {
    let script =
        format!("for i in one two three; do echo \"line $i\"; sleep 0.1; done | socat -t 1 - {to}");
    let o = run_limited(cmd.args(["sh", "-c", &script]), LIMIT);
    assert!(o.status.success(), "socat client to {to}:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const LINES: &str = "line one\nline two\nline three\n";

#[test]
fn udp_both_ways_with_socat_ipv4_and_ipv6() {
    let t = "udp_both_ways_with_socat_ipv4_and_ipv6";
    if !can_run(t) || !need(t, "socat") {
        return;
    }
    let mut link = KernelLink::start("us", "");
    let start = Instant::now();

    // The kernel's socat sends to an echoing socat on our stack.
    for (listen, to) in [
        (
            "UDP4-LISTEN:9000,bind=".to_string() + STACK4,
            format!("UDP4:{STACK4}:9000"),
        ),
        (
            format!("UDP6-LISTEN:9001,bind=[{STACK6}]"),
            format!("UDP6:[{STACK6}]:9001"),
        ),
    ] {
        let _echo = socat_listener(link.stack_cmd("env"), &format!("{listen} PIPE"));
        let back = socat_lines(link.kernel_cmd("env"), &to);
        assert_eq!(back, LINES, "echo from our stack via {to}\n{}", link.log());
    }

    // socat on our stack sends to an echoing socat on the kernel.
    for (listen, to) in [
        (
            format!("UDP4-LISTEN:9100,bind={KERNEL4}"),
            format!("UDP4:{KERNEL4}:9100"),
        ),
        (
            format!("UDP6-LISTEN:9101,bind=[{KERNEL6}]"),
            format!("UDP6:[{KERNEL6}]:9101"),
        ),
    ] {
        let _echo = socat_listener(link.kernel_cmd("env"), &format!("{listen} PIPE"));
        let back = socat_lines(link.stack_cmd("env"), &to);
        assert_eq!(back, LINES, "echo from the kernel via {to}\n{}", link.log());
    }
    eprintln!("udp socat both ways: {:?}", start.elapsed());
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
}

/// Joins a group on our stack and prints what arrives: argv 4|6, then the
/// group and the port.
const GROUP_RECEIVER: &str = r#"
import socket, struct, sys
fam, group, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    mreq = socket.inet_aton(group) + socket.inet_aton(sys.argv[4])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", port))
    idx = socket.if_nametoindex(sys.argv[4])
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", idx)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
print("joined", flush=True)
s.settimeout(20)
d, a = s.recvfrom(2000)
print("got", d.decode(), a[0], flush=True)
# Stays a member while the test queries the group.
import time; time.sleep(60)
"#;

/// Sends one datagram to a group out of a given interface, from the
/// kernel: argv 4|6, group, port, interface address (4) or name (6).
const GROUP_SENDER: &str = r#"
import socket, struct, sys
fam, group, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[4]))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                 struct.pack("@I", socket.if_nametoindex(sys.argv[4])))
s.sendto(b"hello group " + sys.argv[1].encode(), (group, port))
"#;

/// Watches the TAP from the kernel's side for our membership reports:
/// prints "report" when a version 3 report (IGMP type 0x22, or ICMPv6 143
/// after the hop-by-hop header) names the group with the wanted record
/// type; with "query" it first sends a general query (IGMPv3 to
/// 224.0.0.1, or MLDv2 to ff02::1 from the link-local address) and then
/// looks for a current-state record (MODE_IS_EXCLUDE, 2).
/// argv: 4|6, tap, group, join|query.
const REPORT_WATCHER: &str = r#"
import socket, struct, sys, time
fam, tap, group, mode = sys.argv[1:5]
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
raw.bind((tap, 0))
raw.settimeout(1)
want = 4 if mode == "join" else 2
g = socket.inet_pton(socket.AF_INET if fam == "4" else socket.AF_INET6, group)
print("watching", flush=True)
sent = None
if mode == "query":
    if fam == "4":
        q = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        q.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[5]))
        q.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        q.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x94\x04\x00\x00")
        # Max Resp Code 20: answers within 2 s (RFC 3376 section 4.1.1).
        body = bytearray(struct.pack("!BBH4sBBH", 0x11, 20, 0, b"\0\0\0\0", 2, 125, 0))
        s = sum(struct.unpack("!6H", bytes(body)))
        s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
        body[2:4] = struct.pack("!H", ~s & 0xffff)
        q.sendto(bytes(body), ("224.0.0.1", 0))
    else:
        q = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        idx = socket.if_nametoindex(tap)
        q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, struct.pack("@I", idx))
        q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        q.setsockopt(socket.IPPROTO_IPV6, 54, b"\x00\x00\x05\x02\x00\x00\x01\x00")
        # Maximum Response Code 2000 ms (RFC 3810 section 5.1.3).
        body = struct.pack("!BBHHH16sBBH", 130, 0, 0, 2000, 0, b"\0" * 16, 2, 125, 0)
        q.sendto(body, ("ff02::1", 0, 0, idx))
    sent = time.monotonic()
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        f = raw.recv(4096)
    except socket.timeout:
        continue
    et = struct.unpack("!H", f[12:14])[0]
    if fam == "4" and et == 0x0800 and f[23] == 2:
        m = f[14 + (f[14] & 15) * 4:]
        if m[0] != 0x22:
            continue
        recs, off = struct.unpack("!H", m[6:8])[0], 8
    elif fam == "6" and et == 0x86dd and f[20] == 0:
        m = f[54 + (f[55] + 1) * 8:]
        if f[54] != 58 or m[0] != 143:
            continue
        recs, off = struct.unpack("!H", m[6:8])[0], 8
    else:
        continue
    for _ in range(recs):
        rtype, aux, nsrc = m[off], m[off + 1], struct.unpack("!H", m[off + 2:off + 4])[0]
        glen = 4 if fam == "4" else 16
        if rtype == want and m[off + 4:off + 4 + glen] == g:
            late = "" if sent is None else " after %.2f" % (time.monotonic() - sent)
            print("report" + late, flush=True)
            sys.exit(0)
        off += 4 + glen + nsrc * glen + aux * 4
print("no report", flush=True)
"#;

fn py(cmd: &mut Command, script: &str, args: &[&str]) -> Background {
    Background::spawn(cmd.args(["python3", "-u", "-c", script]).args(args))
}

#[test]
fn multicast_groups_reach_a_program_on_our_stack() {
    let t = "multicast_groups_reach_a_program_on_our_stack";
    if !can_run(t) || !need(t, "python3") {
        return;
    }
    let mut link = KernelLink::start("mc", "");
    let start = Instant::now();
    let tap = link.tap.clone();
    for (fam, group, port, ours, theirs) in [
        ("4", "239.1.2.3", "5000", STACK4, KERNEL4),
        ("6", "ff15::1:2:3", "5001", "en0", tap.as_str()),
    ] {
        // The kernel's side of the link sees our state-change report.
        let mut watch = py(
            &mut link.kernel_cmd("env"),
            REPORT_WATCHER,
            &[fam, &tap, group, "join"],
        );
        watch.line_with("watching", LIMIT);
        let mut rx = py(
            &mut link.stack_cmd("env"),
            GROUP_RECEIVER,
            &[fam, group, port, ours],
        );
        rx.line_with("joined", LIMIT);
        let seen = watch.line_with("report", LIMIT);
        assert!(seen.starts_with("report"), "{seen}");

        // The kernel sends to the group out of the TAP; our member gets it.
        let o = run_limited(
            link.kernel_cmd("python3")
                .args(["-c", GROUP_SENDER, fam, group, port, theirs]),
            LIMIT,
        );
        assert!(o.status.success(), "sender:\n{}", text(&o));
        let got = rx.line_with("got", LIMIT);
        let want_from = if fam == "4" { KERNEL4 } else { KERNEL6 };
        assert_eq!(
            got.trim(),
            format!("got hello group {fam} {want_from}"),
            "{}",
            link.log()
        );

        // A general query from the link is answered with a current-state
        // report naming the group, within the query's maximum response
        // time (2 s; RFC 3376 section 5.2, RFC 3810 section 6.2).
        let mut q = py(
            &mut link.kernel_cmd("env"),
            REPORT_WATCHER,
            &[fam, &tap, group, "query", theirs],
        );
        q.line_with("watching", LIMIT);
        let seen = q.line_with("report", LIMIT);
        let after: f64 = seen
            .split_whitespace()
            .nth(2)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no answer to the query ({seen:?}); our counters:\n{}",
                    link.iopkt(&["netstat", "-s"])
                )
            });
        assert!(after <= 2.5, "answered after {after} s: {seen}");
        drop(rx);
    }
    eprintln!("multicast v4 and v6: {:?}", start.elapsed());
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
}

/// A selectors echo server on our stack: answers each request line with
/// "re:" and the line, counts the connections open at once, and ends when
/// `n` were served and all closed.
const MANY_SERVER: &str = r#"
import resource, selectors, socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
sel = selectors.DefaultSelector()
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port)); l.listen(4096); l.setblocking(False)
sel.register(l, selectors.EVENT_READ)
print("listening", flush=True)
open_ = peak = served = 0
while served < n or open_ > 0:
    ev = sel.select(timeout=20)
    if not ev:
        print("stalled served", served, "open", open_, flush=True); sys.exit(1)
    for key, _ in ev:
        if key.fileobj is l:
            while True:
                try:
                    c, _ = l.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, bytearray())
                open_ += 1; peak = max(peak, open_)
            continue
        c, buf = key.fileobj, key.data
        try:
            d = c.recv(4096)
        except BlockingIOError:
            continue
        if not d:
            sel.unregister(c); c.close(); open_ -= 1
            continue
        buf += d
        if buf.endswith(b"\n"):
            c.sendall(b"re:" + bytes(buf)); served += 1; buf.clear()
print("served", served, "peak", peak, flush=True)
"#;

/// The kernel's client: `n` connections at once, each sends a request
/// and reads its reply; all stay open until every reply is in.
const MANY_CLIENT: &str = r#"
import resource, selectors, socket, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
sel = selectors.DefaultSelector()
socks = []
for i in range(n):
    s = socket.socket(); s.setblocking(False)
    s.connect_ex((addr, port))
    socks.append(s)
    sel.register(s, selectors.EVENT_WRITE, [i, bytearray()])
done, bad = 0, 0
deadline = time.monotonic() + 25
while done < n and time.monotonic() < deadline:
    for key, ev in sel.select(timeout=1):
        s, (i, buf) = key.fileobj, key.data
        if ev & selectors.EVENT_WRITE:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                print("connect", i, "failed", err, flush=True); sys.exit(1)
            s.send(b"req %d\n" % i)
            sel.modify(s, selectors.EVENT_READ, key.data)
            continue
        d = s.recv(100)
        buf += d
        if not d or buf.endswith(b"\n"):
            bad += bytes(buf) != b"re:req %d\n" % i
            done += 1
            sel.unregister(s)
print("completed", done, "bad", bad, "open", sum(s.fileno() >= 0 for s in socks), flush=True)
for s in socks:
    s.close()
"#;

#[test]
fn a_thousand_concurrent_connections_to_a_server_on_our_stack() {
    let t = "a_thousand_concurrent_connections_to_a_server_on_our_stack";
    if !can_run(t) || !need(t, "python3") {
        return;
    }
    let mut link = KernelLink::start("k1", "");
    let start = Instant::now();
    let mut srv = py(
        &mut link.stack_cmd("env"),
        MANY_SERVER,
        &[STACK4, "7000", "1000"],
    );
    srv.line_with("listening", LIMIT);
    let o = run_limited(
        link.kernel_cmd("python3")
            .args(["-c", MANY_CLIENT, STACK4, "7000", "1000"]),
        LIMIT,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("completed 1000 bad 0 open 1000"),
        "{}\nio-pkt log:\n{}",
        text(&o),
        link.log()
    );
    // The server had all thousand open at once, and saw every one close.
    let fin = srv.line_with("served", LIMIT);
    assert_eq!(fin.trim(), "served 1000 peak 1000", "{}", link.log());
    let took = start.elapsed();
    eprintln!("1000 concurrent connections: {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
}

/// asyncio: "server ADDR PORT" echoes; "client ADDR PORT" opens four
/// connections, each sends 200 000 bytes and half-closes, and checks the
/// echo.
const ASYNCIO: &str = r#"
import asyncio, sys
role, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def handle(r, w):
    while True:
        d = await r.read(65536)
        if not d: break
        w.write(d); await w.drain()
    w.close()
async def server():
    srv = await asyncio.start_server(handle, addr, port)
    print("listening", flush=True)
    async with srv:
        await srv.serve_forever()
async def client():
    data = bytes((i * 7) % 256 for i in range(200000))
    async def one(k):
        r, w = await asyncio.open_connection(addr, port)
        w.write(data); await w.drain(); w.write_eof()
        got = await r.read()
        w.close()
        return got == data
    ok = await asyncio.gather(*(one(k) for k in range(4)))
    print("asyncio", ok, flush=True)
asyncio.run(asyncio.wait_for(server() if role == "server" else client(), 40))
"#;

#[test]
fn asyncio_echo_between_our_stack_and_the_kernel() {
    let t = "asyncio_echo_between_our_stack_and_the_kernel";
    if !can_run(t) || !need(t, "python3") {
        return;
    }
    let mut link = KernelLink::start("ai", "");
    let start = Instant::now();
    for (server_on_stack, addr) in [(true, STACK4), (false, KERNEL4), (true, STACK6)] {
        let (mut srv_cmd, mut cli_cmd) = if server_on_stack {
            (link.stack_cmd("env"), link.kernel_cmd("env"))
        } else {
            (link.kernel_cmd("env"), link.stack_cmd("env"))
        };
        let mut srv = py(&mut srv_cmd, ASYNCIO, &["server", addr, "7100"]);
        srv.line_with("listening", LIMIT);
        let o = run_limited(
            cli_cmd.args(["python3", "-c", ASYNCIO, "client", addr, "7100"]),
            LIMIT,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("asyncio [True, True, True, True]"),
            "server on our stack: {server_on_stack}, {addr}\n{}\nio-pkt log:\n{}",
            text(&o),
            link.log()
        );
    }
    eprintln!("asyncio both ways: {:?}", start.elapsed());
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
}
