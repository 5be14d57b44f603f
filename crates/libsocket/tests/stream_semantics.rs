//! The stream semantics of a TCP socket, pinned down by one C program
//! (tests/stream_semantics.c): partial reads, a full send buffer and its
//! wake-up, edge-triggered epoll, timeouts, EINTR, MSG_PEEK and
//! MSG_WAITALL, FIONREAD, half-close, resets, several processes on one
//! connection, readv/writev/recvmsg/sendmsg and sendfile. It runs once on
//! the kernel's own TCP and once on the stack through the preloaded
//! library: both must answer alike, check by check. No root needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Stack, build_c, run_limited, text};

const LIMIT: Duration = Duration::from_secs(120);

/// Every check of the program, in its order: each must say `ok NAME`, so
/// a check that silently stops running fails the test.
const CHECKS: &[&str] = &[
    "partial_read_stays_readable",
    "nonblocking_write_until_eagain_then_pollout",
    "epoll_edge_triggered",
    "blocking_bulk_with_slow_reader",
    "sndtimeo_blocked_write",
    "rcvtimeo_read",
    "peek_and_waitall",
    "fionread",
    "fork_two_writers",
    "shutdown_write_then_eof_and_epipe",
    "reset_by_peer",
    "eintr_on_blocking_read",
    "readv_writev_and_msg",
    "sendfile_into_socket",
    "close_with_unread_data_on_both_sides_does_not_hang",
    "close_with_unread_data_resets_the_peer",
    "blocked_writer_fails_when_peer_closes_with_unread_data",
    "sends_fail_once_the_closed_peer_resets",
    "many_small_messages_ping_pong",
    "dontwait_and_fionbio",
    "zero_length_calls",
    "rcvlowat",
];

/// Checks where the stack through the library with plain pairs
/// (`IOPKT_RINGS=off`) is known to differ from the kernel today; the program says `known NAME: what` for exactly the
/// described symptom (anything else still fails). On the kernel every
/// check must pass.
///
/// - close_with_unread_data_resets_the_peer: a close with received bytes
///   still unread in the application's end of the pair ends the
///   connection with a FIN, not a reset (io-pkt had already moved those
///   bytes out of the stack, so the stack sees nothing unread); the peer
///   reads end of stream instead of ECONNRESET.
/// - blocked_writer_fails_when_peer_closes_with_unread_data: the writer's
///   connection is reset, but io-pkt shuts the writer's pair only for
///   writing (the reset's error was taken by the refused send, and the
///   receive side then sees a plain end of stream), so the writer's sends
///   go on succeeding and io-pkt reads and drops the bytes.
/// - sends_fail_once_the_closed_peer_resets: after a FIN, then a reset in
///   answer to more data, nothing shuts the pair (the receive side had
///   already ended), so sends keep succeeding and their bytes vanish.
/// - rcvlowat: SO_RCVLOWAT goes to the pair, whose poll ignores it (a
///   Unix stream socket's does), so POLLIN comes with fewer bytes than
///   the mark (the kernel's TCP reports it only from the mark on).
const KNOWN_ON_PLAIN_PAIRS: &[&str] = &[
    "close_with_unread_data_resets_the_peer",
    "blocked_writer_fails_when_peer_closes_with_unread_data",
    "sends_fail_once_the_closed_peer_resets",
    "rcvlowat",
];

/// The same with shared rings (the default): io-pkt sees bytes left
/// unread in the ring when the application closes (and resets), and a
/// refused send shuts the pair both ways, so only SO_RCVLOWAT differs.
const KNOWN_WITH_RINGS: &[&str] = &["rcvlowat"];

/// Builds the program into `dir`; None (with a message) without gcc.
fn build(dir: &Path) -> Option<PathBuf> {
    build_c("stream_semantics", dir)
}

/// Asserts the run succeeded and every check said `ok`, or `known` where
/// `known` allows it; returns the known differences it reported.
fn assert_all_checks(o: &Output, known: &[&str], extra: &dyn Fn() -> String) -> Vec<String> {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.lines().any(|l| l == "ALL OK"),
        "{}\n{}",
        text(o),
        extra()
    );
    let mut differ = Vec::new();
    for name in CHECKS {
        let ok = format!("ok {name}");
        let marked = format!("known {name}: ");
        if out.lines().any(|l| l == ok) {
            continue;
        }
        match out.lines().find(|l| l.starts_with(&marked)) {
            Some(l) if known.contains(name) => differ.push(l.to_string()),
            _ => panic!("no \"ok {name}\":\n{}\n{}", text(o), extra()),
        }
    }
    // Nothing else marked as differing.
    let unlisted: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("known ") && !differ.iter().any(|d| d == l))
        .collect();
    assert!(unlisted.is_empty(), "unexpected {unlisted:?}:\n{}", text(o));
    differ
}

#[test]
fn kernel_tcp_passes_the_stream_checks() {
    let dir = common::fresh_dir("semantics-kernel");
    let Some(exe) = build(&dir) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    let t0 = Instant::now();
    let o = run_limited(&mut Command::new(&exe), LIMIT);
    eprintln!("kernel TCP: the checks took {:?}", t0.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
    assert_all_checks(&o, &[], &String::new);
}

/// Runs the checks through the library on io-pkt, `env` set; `known`:
/// the checks that may (and must) say `known`.
fn library_run(tag: &str, env: &[(&str, &str)], known: &[&str]) {
    let stack = Stack::start(tag);
    let Some(exe) = build(&stack.prefix) else {
        return;
    };
    let t0 = Instant::now();
    let mut cmd = stack.cmd(&exe);
    cmd.envs(env.iter().copied());
    let o = run_limited(&mut cmd, LIMIT);
    eprintln!(
        "the library on io-pkt ({tag}): the checks took {:?}",
        t0.elapsed()
    );
    let differ = assert_all_checks(&o, known, &|| format!("io-pkt log:\n{}", stack.log()));
    for d in &differ {
        eprintln!("known to differ from the kernel today: {d}");
    }
    // The lists stay true: a check that passes now is taken off them.
    for name in known {
        assert!(
            differ
                .iter()
                .any(|d| d.starts_with(&format!("known {name}: "))),
            "{name} now passes on the library ({tag}): take it off its list of known differences"
        );
    }
}

#[test]
fn the_library_passes_the_stream_checks() {
    library_run("semantics", &[], KNOWN_WITH_RINGS);
}

#[test]
fn the_library_with_plain_pairs_passes_the_stream_checks() {
    library_run(
        "semantics-plain",
        &[("IOPKT_RINGS", "off")],
        KNOWN_ON_PLAIN_PAIRS,
    );
}
