//! The socket library against a real stack in memory, served by the
//! resource manager over a real Unix socket in a temporary directory.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use iopkt_rsrcmgr::mem_host::MemHost;
use iopkt_rsrcmgr::proto::{Request, Response};
use iopkt_rsrcmgr::{Client, ClientError, Server, StackHost};
use iopkt_socket::{TcpListener, TcpStream, UdpSocket};

struct Stack {
    dir: tempfile::TempDir,
    _server: Server,
    host: Arc<MemHost>,
}

fn start() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(MemHost::new(0));
    MemHost::run_timers(&host);
    let (server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
    host.set_notifier(notifier);
    Stack {
        dir,
        _server: server,
        host,
    }
}

fn shared_stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(start)
}

fn shared_path() -> &'static Path {
    shared_stack().dir.path()
}

/// The stack every test of this process shares.
fn shared() -> &'static Path {
    let p = shared_path();
    iopkt_socket::set_prefix(p);
    p
}

fn list(prefix: &Path) -> Vec<iopkt_rsrcmgr::proto::SocketInfoWire> {
    let mut c = Client::connect(prefix).unwrap();
    match c.call(&Request::SocketList).unwrap() {
        Response::Sockets(v) => v,
        r => panic!("{r:?}"),
    }
}

fn udp_echo(local: &str) {
    shared();
    let a = UdpSocket::bind(local).unwrap();
    let b = UdpSocket::bind(local).unwrap();
    let aa = a.local_addr().unwrap();
    let ba = b.local_addr().unwrap();
    assert_ne!(aa.port(), 0);
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..20u8 {
        let msg = vec![i; 100 + usize::from(i) * 50];
        assert_eq!(a.send_to(&msg, ba).unwrap(), msg.len());
        let mut buf = [0u8; 2000];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(from, aa);
        assert_eq!(&buf[..n], &msg[..]);
        b.send_to(&buf[..n], from).unwrap();
        let (n2, from2) = a.recv_from(&mut buf).unwrap();
        assert_eq!(from2, ba);
        assert_eq!(&buf[..n2], &msg[..]);
    }
    // Connected sockets: send/recv without addresses.
    a.connect(ba).unwrap();
    assert_eq!(a.peer_addr().unwrap(), ba);
    a.send(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"hello"[..], aa));
}

#[test]
fn udp_echo_v4() {
    udp_echo("127.0.0.1:0");
}

#[test]
fn udp_echo_v6() {
    udp_echo("[::1]:0");
}

#[test]
fn udp_nonblocking_recv_would_block_and_poll_sees_data() {
    shared();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    let e = b.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    a.send_to(b"x", b.local_addr().unwrap()).unwrap();
    let mut p = libc::pollfd {
        fd: b.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(n, 1);
    assert_eq!(b.recv(&mut buf).unwrap(), 1);
}

#[test]
fn bind_errors_carry_the_stacks_errno() {
    shared();
    let e = UdpSocket::bind("10.9.9.9:0").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e}");
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = UdpSocket::bind(a.local_addr().unwrap()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE), "{e}");
}

#[test]
fn closing_the_descriptor_removes_the_stack_socket() {
    let prefix = shared();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = a.local_addr().unwrap();
    let has = |addr: SocketAddr| list(prefix).iter().any(|s| s.local == Some(addr));
    assert!(has(addr));
    // A duplicate keeps it open; the last copy closing ends it.
    let dup = a.try_clone().unwrap();
    drop(a);
    std::thread::sleep(Duration::from_millis(50));
    assert!(has(addr), "a copy of the descriptor still holds the socket");
    drop(dup);
    let deadline = Instant::now() + Duration::from_secs(1);
    while has(addr) {
        assert!(Instant::now() < deadline, "socket still listed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a: enough to catch lost, doubled or reordered bytes.
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn tcp_echo(local: &str) {
    shared();
    let l = TcpListener::bind(local).unwrap();
    let la = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
        }
        peer
    });
    let mut c = TcpStream::connect(la).unwrap();
    assert_eq!(c.peer_addr().unwrap(), la);
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(server.join().unwrap(), c.local_addr().unwrap());
}

#[test]
fn tcp_echo_v4() {
    tcp_echo("127.0.0.1:0");
}

#[test]
fn tcp_echo_v6() {
    tcp_echo("[::1]:0");
}

#[test]
fn tcp_one_megabyte_arrives_whole() {
    shared();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let la = l.local_addr().unwrap();
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let want = checksum(&data);
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        (got.len(), checksum(&got))
    });
    let mut c = TcpStream::connect(la).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (len, sum) = receiver.join().unwrap();
    assert_eq!(len, data.len());
    assert_eq!(sum, want);
}

#[test]
fn nonblocking_accept_would_block_then_poll_sees_the_connection() {
    shared();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let e = l.accept().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let mut p = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(n, 1, "the listener turns readable");
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(peer, _c.local_addr().unwrap());
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    shared();
    let e = TcpStream::connect("127.0.0.1:9").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
}

#[test]
fn a_descriptor_that_is_not_a_socket_of_this_stack_is_refused() {
    let prefix = shared();
    let mut c = Client::connect(prefix).unwrap();
    // No descriptor at all.
    match c.call_with_fd(&Request::GetName, None) {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, libc::EBADF),
        r => panic!("{r:?}"),
    }
    // Some other socket of this process.
    let (x, _y) = UnixStream::pair().unwrap();
    match c.call_with_fd(&Request::GetName, Some(x.as_fd())) {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, libc::EBADF),
        r => panic!("{r:?}"),
    }
    // A socket of another stack.
    let other = start();
    let mut oc = Client::connect(other.dir.path()).unwrap();
    let (_, fd) = oc
        .call_with_fd(
            &Request::SocketOpen {
                v6: false,
                stream: false,
            },
            None,
        )
        .unwrap();
    let fd = fd.expect("a descriptor comes with SocketFd");
    match c.call_with_fd(
        &Request::Bind {
            addr: "127.0.0.1:0".parse().unwrap(),
        },
        Some(fd.as_fd()),
    ) {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, libc::EBADF),
        r => panic!("{r:?}"),
    }
    // The connection still works after all this.
    assert!(matches!(
        c.call(&Request::SocketList),
        Ok(Response::Sockets(_))
    ));
}

#[test]
fn malformed_datagrams_from_the_application_are_dropped() {
    shared();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Bypass the library: a message shorter than the header, one with an
    // unknown family, and an empty one.
    let raw = a.as_fd();
    let mut odd = [0u8; 48];
    odd[0] = 9;
    for m in [&b"short"[..], &odd[..]] {
        rustix::net::send(raw, m, rustix::net::SendFlags::empty()).unwrap();
    }
    a.send_to(b"fine", b.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"fine");
}

#[test]
fn connect_timeout_gives_up_in_time() {
    // An Ethernet segment where nobody answers ARP: the SYN never leaves.
    shared();
    let stack = shared_stack();
    let i = stack
        .host
        .add_ethernet("en0", iopkt_stack::Mac([2, 0, 0, 0, 0, 1]), 1500)
        .unwrap();
    stack
        .host
        .with_stack(|s, c| {
            s.set_up(c, i, true)?;
            s.add_addr4(c, i, "198.51.100.1".parse().unwrap(), 24, false)
        })
        .unwrap();
    let addr: SocketAddr = "198.51.100.77:80".parse().unwrap();
    let t0 = Instant::now();
    let e = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// Run by `a_killed_client_leaves_no_socket` in a child process.
#[test]
fn child_holder() {
    let Ok(prefix) = std::env::var("IOPKT_TEST_CHILD_PREFIX") else {
        return;
    };
    iopkt_socket::set_prefix(PathBuf::from(prefix));
    // 60 UDP sockets, a listener, and 20 connections to it (40 sockets).
    let udp: Vec<UdpSocket> = (0..60)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut tcp = Vec::new();
    for _ in 0..20 {
        tcp.push(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        tcp.push(l.accept().unwrap().0);
    }
    let ready = std::env::var("IOPKT_TEST_CHILD_READY").unwrap();
    std::fs::write(ready, format!("{}", udp.len() + tcp.len() + 1)).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_client_leaves_no_socket() {
    let stack = start();
    let ready = stack.dir.path().join("child-ready");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_holder", "--exact", "--nocapture", "--test-threads=1"])
        .env("IOPKT_TEST_CHILD_PREFIX", stack.dir.path())
        .env("IOPKT_TEST_CHILD_READY", &ready)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(child.try_wait().unwrap().is_none(), "child ended early");
        assert!(Instant::now() < deadline, "child not ready in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = list(stack.dir.path());
    assert_eq!(before.len(), 101, "{before:#?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Every socket of the dead process is closed: gone, or a TCP
    // connection finishing its close in the background (RFC 9293 3.6).
    let closing = [
        "FIN_WAIT_1",
        "FIN_WAIT_2",
        "CLOSING",
        "TIME_WAIT",
        "LAST_ACK",
        "CLOSED",
    ];
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left: Vec<_> = list(stack.dir.path())
            .into_iter()
            .filter(|s| !(s.proto.starts_with("tcp") && closing.contains(&s.state.as_str())))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} sockets left after a second: {left:#?}",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_large_datagram_arrives_whole_and_a_short_buffer_truncates() {
    shared();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    a.send_to(&big, b.local_addr().unwrap()).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(n, big.len());
    assert_eq!(checksum(&buf[..n]), checksum(&big));
    // As with the kernel, a short buffer gets the start of the datagram and
    // the rest is dropped; peeking leaves it queued.
    a.send_to(b"0123456789", b.local_addr().unwrap()).unwrap();
    let mut small = [0u8; 4];
    assert_eq!(b.peek(&mut small).unwrap(), 4);
    assert_eq!(b.recv(&mut small).unwrap(), 4);
    assert_eq!(&small, b"0123");
    a.send_to(b"next", b.local_addr().unwrap()).unwrap();
    assert_eq!(b.recv(&mut small).unwrap(), 4);
    assert_eq!(&small, b"next");
}

#[test]
fn a_descriptor_inherited_by_another_process_reaches_the_socket() {
    let prefix = shared();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = a.local_addr().unwrap();
    // Hand a duplicate without close-on-exec to a child process, which asks
    // for the socket's name on its own control connection.
    let dup = rustix::io::fcntl_dupfd_cloexec(&a, 100).unwrap();
    rustix::io::fcntl_setfd(&dup, rustix::io::FdFlags::empty()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_name", "--exact", "--nocapture", "--test-threads=1"])
        .env("IOPKT_TEST_CHILD_PREFIX", prefix)
        .env("IOPKT_TEST_CHILD_FD", dup.as_raw_fd().to_string())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("NAME {addr}")), "{text}");
}

/// Run by `a_descriptor_inherited_by_another_process_reaches_the_socket`.
#[test]
fn child_name() {
    let (Ok(prefix), Ok(fd)) = (
        std::env::var("IOPKT_TEST_CHILD_PREFIX"),
        std::env::var("IOPKT_TEST_CHILD_FD"),
    ) else {
        return;
    };
    iopkt_socket::set_prefix(PathBuf::from(prefix));
    let fd: i32 = fd.parse().unwrap();
    // SAFETY: the parent passed this descriptor to us to own.
    let s = unsafe { <UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    println!("NAME {}", s.local_addr().unwrap());
}

#[test]
fn options_read_back_what_was_set() {
    shared();
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_ttl(7).unwrap();
    assert_eq!(u.ttl().unwrap(), 7);
    u.set_broadcast(true).unwrap();
    assert!(u.broadcast().unwrap());
    assert_eq!(
        u.set_ttl(300).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    assert!(u.take_error().unwrap().is_none());
    let l = TcpListener::bind("[::1]:0").unwrap();
    l.set_ttl(9).unwrap();
    assert_eq!(l.ttl().unwrap(), 9);
}

#[test]
fn a_reset_ends_the_stream_and_so_error_says_so() {
    shared();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    // SO_LINGER with a zero time: closing resets the connection (RFC 9293
    // 3.10.4, ABORT).
    c.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
    drop(c);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read(&mut buf).unwrap(),
        0,
        "a reset reads as end of stream"
    );
    let e = s.take_error().unwrap().expect("SO_ERROR is set");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}");
}
