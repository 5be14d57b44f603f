//! What io-pkt itself holds for application sockets (`Stats`:
//! sockets.buffered_bytes_max_client): nothing for TCP connections, whose
//! bytes pass straight between the socket pair and the stack's buffers,
//! even when every buffer on the way is full; for datagrams that wait for
//! room, no more than the client's share.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{open_tcp, open_udp};
use iopkt_rsrcmgr::mem_host::MemHost;
use iopkt_rsrcmgr::proto::*;
use iopkt_rsrcmgr::{Client, Server};

const CONNECTIONS: usize = 24;
/// Datagram sockets whose receiver never reads.
const DGRAM_SOCKETS: usize = 24;
const DGRAM_LEN: usize = 8000;

fn held_max(c: &mut Client) -> u64 {
    match c.call(&Request::Stats).unwrap() {
        Response::Stats(v) => v
            .iter()
            .find(|e| e.name == "sockets.buffered_bytes_max_client")
            .map(|e| e.value)
            .expect("the stat is listed"),
        r => panic!("{r:?}"),
    }
}

fn set_small_buffers(c: &mut Client, fd: &OwnedFd) {
    for opt in [SockOptWire::RecvBuf(16384), SockOptWire::SendBuf(16384)] {
        c.call_with_fd(&Request::SetOpt { opt }, Some(fd.as_fd()))
            .unwrap();
    }
}

fn start(limit: Option<usize>) -> (tempfile::TempDir, Server, Client) {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(MemHost::new(0));
    MemHost::run_timers(&host);
    let (server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
    host.set_notifier(notifier);
    if let Some(l) = limit {
        server.set_buffer_limit_per_client(l);
    }
    let c = Client::connect(dir.path()).unwrap();
    (dir, server, c)
}

/// Opens CONNECTIONS connections (both ends made by one control
/// connection), writes into each until nothing more is taken for a
/// while, and returns the largest client's holdings.
fn fill_streams() -> u64 {
    let (_dir, _server, mut c) = start(None);
    let l = open_tcp(&mut c);
    c.call_with_fd(
        &Request::Bind {
            addr: "127.0.0.1:0".parse().unwrap(),
        },
        Some(l.as_fd()),
    )
    .unwrap();
    let la = match c.call_with_fd(&Request::GetName, Some(l.as_fd())).unwrap() {
        (Response::Addr(Some(a)), _) => a,
        r => panic!("{r:?}"),
    };
    c.call_with_fd(&Request::Listen { backlog: 64 }, Some(l.as_fd()))
        .unwrap();
    let mut clients = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..CONNECTIONS {
        let s = open_tcp(&mut c);
        set_small_buffers(&mut c, &s);
        let _ = c.call_with_fd(&Request::Connect { addr: la }, Some(s.as_fd()));
        assert!(matches!(
            c.call_with_fd(&Request::ConnectWait, Some(s.as_fd())),
            Ok((Response::Ok, None))
        ));
        // The listener's notification byte, then Accept.
        let deadline = Instant::now() + Duration::from_secs(5);
        let a = loop {
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&l, &mut b);
            match c.call_with_fd(&Request::Accept, Some(l.as_fd())) {
                Ok((Response::SocketFd { .. }, Some(fd))) => break fd,
                _ => {
                    assert!(Instant::now() < deadline, "no connection to accept");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        set_small_buffers(&mut c, &a);
        rustix::io::ioctl_fionbio(&s, true).unwrap();
        clients.push(s);
        accepted.push(a);
    }
    // Write until a whole pass, after a pause, takes nothing.
    let chunk = vec![0x5au8; 65536];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut took = 0;
        for s in &clients {
            while let Ok(n) = rustix::io::write(s, &chunk) {
                took += n;
            }
        }
        if took == 0 {
            std::thread::sleep(Duration::from_millis(300));
            let again: usize = clients
                .iter()
                .map(|s| rustix::io::write(s, &chunk).unwrap_or(0))
                .sum();
            if again == 0 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the connections never filled");
    }
    let held = held_max(&mut c);
    drop(accepted);
    drop(clients);
    held
}

fn local_name(c: &mut Client, fd: &OwnedFd) -> std::net::SocketAddr {
    match c.call_with_fd(&Request::GetName, Some(fd.as_fd())).unwrap() {
        (Response::Addr(Some(a)), _) => a,
        r => panic!("{r:?}"),
    }
}

/// Sends datagrams to DGRAM_SOCKETS sockets that never read until their
/// pairs are full and io-pkt holds what it may, and returns the largest
/// client's holdings.
fn fill_datagrams(limit: Option<usize>) -> u64 {
    let (_dir, _server, mut c) = start(limit);
    let sender = open_udp(&mut c, false);
    c.call_with_fd(
        &Request::Bind {
            addr: "127.0.0.1:0".parse().unwrap(),
        },
        Some(sender.as_fd()),
    )
    .unwrap();
    let mut receivers = Vec::new();
    for _ in 0..DGRAM_SOCKETS {
        let r = open_udp(&mut c, false);
        c.call_with_fd(
            &Request::Bind {
                addr: "127.0.0.1:0".parse().unwrap(),
            },
            Some(r.as_fd()),
        )
        .unwrap();
        let a = local_name(&mut c, &r);
        receivers.push((r, a));
    }
    rustix::io::ioctl_fionbio(&sender, true).unwrap();
    // Each receiver's pair takes a few datagrams, the stack's receive
    // queue some more; sending many more than both hold leaves io-pkt a
    // datagram per socket to keep or drop.
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..128 {
        for (_, a) in &receivers {
            let mut msg = DgramHeader {
                addr: Some(*a),
                ..DgramHeader::default()
            }
            .encode()
            .to_vec();
            msg.extend_from_slice(&[0x5a; DGRAM_LEN]);
            while rustix::net::send(&sender, &msg, rustix::net::SendFlags::empty()).is_err() {
                assert!(Instant::now() < deadline, "the sender never drained");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    // Let io-pkt pass on what it can.
    let mut held = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = held_max(&mut c);
        if now == held && now > 0 {
            break;
        }
        held = now;
    }
    drop(receivers);
    held
}

#[test]
fn io_pkt_holds_nothing_for_tcp_connections_even_when_every_buffer_is_full() {
    assert_eq!(
        fill_streams(),
        0,
        "stream bytes pass straight between the pair and the stack's buffers"
    );
}

#[test]
fn what_io_pkt_holds_for_one_client_stays_within_its_share() {
    // Unbounded (the default limit is far above), io-pkt holds more than
    // the small limit below allows: the test can tell the difference.
    let free = fill_datagrams(None);
    let limit = 8 * 1024;
    assert!(
        free > limit as u64,
        "without a tight limit io-pkt held only {free} bytes (limit {limit})"
    );
    let limited = fill_datagrams(Some(limit));
    assert!(
        limited <= limit as u64,
        "held {limited} bytes, more than the share {limit}"
    );
    assert!(
        limited > 0,
        "the limited run held nothing: nothing was tested"
    );
}
