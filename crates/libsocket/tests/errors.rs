//! Error paths and the less common calls through the preloaded library,
//! as the kernel answers them: a reset connection (ECONNRESET once, then
//! end of stream; EPIPE and SIGPIPE on writing), a non-blocking connect
//! whose descriptor turns writable only when the attempt ends (poll and
//! epoll), a refused one (POLLERR|POLLHUP, SO_ERROR), ioctl on the stack's
//! sockets, sendfile and splice. The exact errno checks are a C program
//! (tests/errors.c, one part per run); Python sends a large file with
//! sendfile over TCP. Each test starts its own io-pkt; no root needed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Background, Stack, build_c, have, run_limited, text};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs one part of tests/errors.c (built into the stack's prefix) on a
/// fresh stack; returns its stderr. None without gcc.
fn part(name: &str) -> Option<String> {
    if !have("gcc") {
        eprintln!("skipped: gcc is not installed");
        return None;
    }
    let stack = Stack::start(name);
    let exe = build_c("errors", &stack.prefix)?;
    // A scratch file for the parts that want one.
    let scratch = stack.prefix.join("scratch");
    let o = run_limited(stack.cmd(&exe).arg(name).arg(&scratch), LIMIT);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(&format!("{name} ok")),
        "{}\nio-pkt log:\n{}",
        text(&o),
        stack.log()
    );
    Some(String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_reset_is_econnreset_once_then_end_of_stream_and_writes_get_epipe() {
    part("reset");
}

#[test]
fn a_connecting_descriptor_turns_writable_only_when_established() {
    part("pending");
}

#[test]
fn a_refused_connect_polls_as_error_and_hangup_and_so_error_says_why() {
    part("refused");
}

#[test]
fn ioctl_answers_from_the_stack_and_refuses_the_rest_once() {
    let Some(err) = part("ioctl") else {
        return;
    };
    // SIOCGSTAMP was tried three times and named once.
    assert_eq!(
        err.matches("iopkt: ioctl 0x8906 on a stack socket is not supported")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("iopkt: ioctl 0x8922 on a stack socket is not supported"));
}

#[test]
fn sendfile_and_splice_onto_udp_make_one_datagram() {
    let Some(err) = part("sendfile") else {
        return;
    };
    assert!(
        err.contains("splice from a UDP socket is not supported"),
        "{err}"
    );
}

/// TCP sendfile is the kernel's own, onto the socket pair: a 24 MiB file
/// goes through Python's socket.sendfile (os.sendfile underneath) and
/// arrives whole.
#[test]
fn tcp_sendfile_of_a_large_file_arrives_intact() {
    if !have("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let stack = Stack::start("tcpsendfile");
    let file = stack.prefix.join("big.bin");
    let mut data = Vec::with_capacity(24 << 20);
    let mut x: u32 = 12345;
    while data.len() < 24 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&file, &data).expect("write the file");
    let server = r#"
import hashlib, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("port", s.getsockname()[1], flush=True)
c, _ = s.accept()
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    h.update(d); n += len(d)
print("got", n, h.hexdigest(), flush=True)
"#;
    let mut srv = Background::spawn(stack.cmd("python3").args(["-c", server]));
    let line = srv.line_with("port", LIMIT);
    let port: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("port");
    let client = format!(
        r#"
import os, socket
c = socket.create_connection(("127.0.0.1", {port}))
with open({file:?}, "rb") as f:
    sent = c.sendfile(f)
# socket.sendfile falls back to send() silently: make sure the kernel's
# sendfile itself works on the descriptor.
with open({file:?}, "rb") as f:
    assert os.sendfile(c.fileno(), f.fileno(), 0, 4096) == 4096
c.close()
print("sent", sent)
"#,
        file = file.display().to_string()
    );
    let o = run_limited(stack.cmd("python3").args(["-c", &client]), LIMIT);
    assert!(o.status.success(), "{}\n{}", text(&o), stack.log());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("sent {}", data.len())),
        "{}",
        text(&o)
    );
    let got = srv.line_with("got", LIMIT);
    let mut all = data.clone();
    all.extend_from_slice(&data[..4096]);
    let want = sha256_hex(&all);
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        vec!["got", &all.len().to_string(), &want],
        "{got}"
    );
}

/// SHA-256 of `data` by the system's sha256sum.
fn sha256_hex(data: &[u8]) -> String {
    let dir = common::fresh_dir("sha");
    let p = dir.join("d");
    std::fs::write(&p, data).expect("write");
    let o = Command::new("sha256sum")
        .arg(&p)
        .output()
        .expect("sha256sum");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
