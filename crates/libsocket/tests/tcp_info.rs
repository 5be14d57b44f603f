//! getsockopt(IPPROTO_TCP, TCP_INFO) through the preloaded library, read
//! by Python as Linux's `struct tcp_info`: the state as Linux numbers it,
//! a measured round-trip time, the MSS, the counters, truncation to the
//! caller's length, and the refusals Linux gives. An io-pkt of its own
//! (`-d pair`, lo0); no root needed.

mod common;

use std::time::Duration;

use common::{Stack, have, run_limited, text};

const SCRIPT: &str = r#"
import errno, socket, struct, threading

def info(s, n=104):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, n)

def u32(b, off):
    return struct.unpack_from("=I", b, off)[0]

def u64(b, off):
    return struct.unpack_from("=Q", b, off)[0]

ESTABLISHED, CLOSE, CLOSE_WAIT, LISTEN = 1, 7, 8, 10

l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
assert info(l)[0] == LISTEN, info(l)[0]

c = socket.create_connection(l.getsockname())
a, _ = l.accept()
data = bytes(range(256)) * 4096  # 1 MiB
got = 0
def drain():
    global got
    while got < len(data):
        chunk = a.recv(65536)
        assert chunk, "early end of stream"
        got += len(chunk)
reader = threading.Thread(target=drain)
reader.start()
c.sendall(data)
reader.join()
assert got == len(data), got
# One round trip more, so that every byte sent is acknowledged.
a.sendall(b"k")
assert c.recv(1) == b"k"

b = info(c)
assert len(b) == 104, len(b)
state, retransmits, options = b[0], b[2], b[5]
rto, snd_mss, rcv_mss = u32(b, 8), u32(b, 16), u32(b, 20)
rtt, rttvar = u32(b, 68), u32(b, 72)
ssthresh, cwnd, advmss = u32(b, 76), u32(b, 80), u32(b, 84)
total_retrans = u32(b, 100)
assert state == ESTABLISHED, state
assert retransmits == 0 and total_retrans == 0, (retransmits, total_retrans)
# Timestamps, SACK and window scaling are negotiated between our stacks.
assert options & 7 == 7, options
assert 536 <= snd_mss <= 65495, snd_mss
assert 536 <= rcv_mss <= 65495 and advmss == rcv_mss, (rcv_mss, advmss)
# A sample was taken (loopback: well under a second), and the RTO is at
# least the stack's 200 ms floor.
assert 0 < rtt < 1_000_000, rtt
assert rttvar < 1_000_000, rttvar
assert rto >= 200_000 and rto >= rtt, rto
# In segments, as Linux: a window of at least one, a threshold unset (no
# loss on loopback) or a count of segments.
assert 1 <= cwnd < 1_000_000, cwnd
assert ssthresh == 0x7FFFFFFF or 2 <= ssthresh < 1_000_000, ssthresh

# The whole structure: the byte counters of both ends.
full = info(c, 512)
assert len(full) == 248, len(full)
assert u64(full, 120) == len(data), ("bytes_acked", u64(full, 120))
assert u64(info(a, 512), 128) == len(data), ("bytes_received", u64(info(a, 512), 128))
# A short buffer gets the first bytes, as Linux copies them.
assert info(c, 8) == b[:8]

# setsockopt of TCP_INFO, and TCP_INFO of a UDP socket: ENOPROTOOPT.
for s, what in ((c, "set"), (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), "udp")):
    try:
        if what == "set":
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, b"\0" * 104)
        else:
            info(s)
        raise SystemExit("TCP_INFO " + what + " did not fail")
    except OSError as e:
        assert e.errno == errno.ENOPROTOOPT, (what, e)

# The peer closes: our end is in CLOSE-WAIT.
a.close()
assert c.recv(1) == b""
assert info(c)[0] == CLOSE_WAIT, info(c)[0]

# A socket that never connected is CLOSE.
assert info(socket.socket())[0] == CLOSE

# IPv6 too.
l6 = socket.socket(socket.AF_INET6)
l6.bind(("::1", 0))
l6.listen(1)
c6 = socket.create_connection(l6.getsockname()[:2])
a6, _ = l6.accept()
c6.sendall(b"x" * 1000)
assert a6.recv(1000)
a6.sendall(b"y")
assert c6.recv(1) == b"y"
b6 = info(c6)
assert b6[0] == ESTABLISHED and 0 < u32(b6, 68) < 1_000_000, (b6[0], u32(b6, 68))
print("TCP_INFO OK", snd_mss, rtt, cwnd)
"#;

#[test]
fn python_reads_tcp_info_as_linux_lays_it_out() {
    if !have("python3") {
        eprintln!("skipped: python3 is not installed (scripts/test installs it)");
        return;
    }
    let stack = Stack::start("tcpinfo");
    let o = run_limited(
        stack.cmd("python3").args(["-c", SCRIPT]),
        Duration::from_secs(60),
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("TCP_INFO OK"),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
}

/// TCP_CONGESTION, which iperf3 reads next to TCP_INFO: Linux copies the
/// name from a 16-byte NUL-padded field, so a 16-byte buffer comes back
/// full and terminated, and a shorter one holds the name's start.
#[test]
fn tcp_congestion_reads_as_a_nul_padded_name() {
    if !have("python3") {
        eprintln!("skipped: python3 is not installed (scripts/test installs it)");
        return;
    }
    let stack = Stack::start("tcpcc");
    let script = r#"
import socket
s = socket.socket()
cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
assert len(cc) == 16 and cc.rstrip(b"\0") == b"cubic", cc
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"newreno")
cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
assert cc.rstrip(b"\0") == b"newreno" and cc[7:] == bytes(9), cc
assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 3) == b"new"
print("CC OK")
"#;
    let o = run_limited(
        stack.cmd("python3").args(["-c", script]),
        Duration::from_secs(60),
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("CC OK"),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
}
