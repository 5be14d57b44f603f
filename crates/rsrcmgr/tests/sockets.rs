//! Application sockets through the server, at the protocol level: socket
//! pairs, descriptor passing, the datagram header, and what a client may
//! get wrong.

mod common;

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{open_tcp, open_udp};
use iopkt_rsrcmgr::mem_host::MemHost;
use iopkt_rsrcmgr::proto::*;
use iopkt_rsrcmgr::{Client, ClientError, Server};

struct Fixture {
    dir: tempfile::TempDir,
    _server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(MemHost::new(0));
        MemHost::run_timers(&host);
        let (server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
        host.set_notifier(notifier);
        Fixture {
            dir,
            _server: server,
        }
    }
    fn client(&self) -> Client {
        Client::connect(self.dir.path()).unwrap()
    }
}

fn errno(r: Result<(Response, Option<OwnedFd>), ClientError>) -> i32 {
    match r {
        Err(ClientError::Remote(e)) => e.code,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

fn bind(c: &mut Client, fd: &OwnedFd, addr: &str) -> SocketAddr {
    let addr: SocketAddr = addr.parse().unwrap();
    c.call_with_fd(&Request::Bind { addr }, Some(fd.as_fd()))
        .unwrap();
    match c.call_with_fd(&Request::GetName, Some(fd.as_fd())).unwrap() {
        (Response::Addr(Some(a)), None) => a,
        r => panic!("{r:?}"),
    }
}

fn sock_type(fd: &OwnedFd) -> rustix::net::SocketType {
    rustix::net::sockopt::socket_type(fd).unwrap()
}

fn list(c: &mut Client) -> Vec<SocketInfoWire> {
    match c.call(&Request::SocketList).unwrap() {
        Response::Sockets(v) => v,
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_udp_socket_is_a_seqpacket_descriptor_carrying_framed_datagrams() {
    let f = Fixture::new();
    let mut c = f.client();
    let a = open_udp(&mut c, false);
    let b = open_udp(&mut c, false);
    assert_eq!(sock_type(&a), rustix::net::SocketType::SEQPACKET);
    let aa = bind(&mut c, &a, "127.0.0.1:0");
    let ba = bind(&mut c, &b, "127.0.0.1:0");
    // Listed as the stack sees them.
    let l = list(&mut c);
    assert!(l.iter().any(|s| s.proto == "udp" && s.local == Some(aa)));
    // Send from a to b by writing a header and a payload on a's descriptor.
    let mut msg = DgramHeader {
        addr: Some(ba),
        ..DgramHeader::default()
    }
    .encode()
    .to_vec();
    msg.extend_from_slice(b"datagram one");
    rustix::net::send(&a, &msg, rustix::net::SendFlags::empty()).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut p = libc::pollfd {
        fd: b.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1);
    let (n, _) = rustix::net::recv(&b, &mut buf, rustix::net::RecvFlags::empty()).unwrap();
    let h = DgramHeader::decode(&buf[..n]).unwrap();
    assert_eq!(h.addr, Some(aa));
    assert_eq!(h.errno, 0);
    assert_eq!(&buf[DGRAM_HEADER_LEN..n], b"datagram one");
}

#[test]
fn stack_errors_come_back_as_errno_and_the_connection_goes_on() {
    let f = Fixture::new();
    let mut c = f.client();
    let a = open_udp(&mut c, false);
    // listen(2) on a datagram socket: the stack's NotSupported.
    assert_eq!(
        errno(c.call_with_fd(&Request::Listen { backlog: 1 }, Some(a.as_fd()))),
        errno::EOPNOTSUPP
    );
    // An address the stack does not have.
    assert_eq!(
        errno(c.call_with_fd(
            &Request::Bind {
                addr: "192.0.2.1:5".parse().unwrap()
            },
            Some(a.as_fd())
        )),
        errno::EADDRNOTAVAIL
    );
    // SO_TYPE is answered; SO_ERROR empty.
    assert!(matches!(
        c.call_with_fd(
            &Request::GetOpt {
                name: SockOptNameWire::Type
            },
            Some(a.as_fd())
        ),
        Ok((Response::Opt(SockOptWire::Type(2)), None))
    ));
    assert!(matches!(
        c.call_with_fd(
            &Request::GetOpt {
                name: SockOptNameWire::Error
            },
            Some(a.as_fd())
        ),
        Ok((Response::Opt(SockOptWire::Error(0)), None))
    ));
    // Not connected.
    assert_eq!(
        errno(c.call_with_fd(&Request::GetPeer, Some(a.as_fd()))),
        errno::ENOTCONN
    );
    assert!(matches!(
        c.call(&Request::SocketList),
        Ok(Response::Sockets(_))
    ));
}

#[test]
fn malformed_socket_requests_are_refused() {
    let f = Fixture::new();
    let mut c = f.client();
    let a = open_udp(&mut c, true);
    // No descriptor with a request that needs one.
    assert_eq!(errno(c.call_with_fd(&Request::GetName, None)), errno::EBADF);
    // A descriptor that is not one of the stack's sockets.
    let (x, _y) = UnixStream::pair().unwrap();
    assert_eq!(
        errno(c.call_with_fd(&Request::GetName, Some(x.as_fd()))),
        errno::EBADF
    );
    // A pipe, not a socket at all.
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        errno(c.call_with_fd(&Request::GetName, Some(r.as_fd()))),
        errno::EBADF
    );
    // Out-of-range fields.
    assert_eq!(
        errno(c.call_with_fd(&Request::Shutdown { how: 9 }, Some(a.as_fd()))),
        errno::EINVAL
    );
    assert_eq!(
        errno(c.call_with_fd(
            &Request::SetOpt {
                opt: SockOptWire::Error(3)
            },
            Some(a.as_fd())
        )),
        errno::EINVAL
    );
    // A descriptor attached to a request that takes none is closed by the
    // server, not kept: the socket still closes when we close ours.
    let before = list(&mut c).len();
    c.call_with_fd(&Request::SocketList, Some(a.as_fd()))
        .unwrap();
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(1);
    while list(&mut c).len() >= before {
        assert!(
            Instant::now() < deadline,
            "the socket outlived its descriptor"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn another_connection_may_use_a_socket_whose_descriptor_it_holds() {
    let f = Fixture::new();
    let mut c1 = f.client();
    let mut c2 = f.client();
    let a = open_udp(&mut c1, false);
    let addr = bind(&mut c1, &a, "127.0.0.1:0");
    // The first connection goes away; the socket stays with its descriptor.
    drop(c1);
    match c2.call_with_fd(&Request::GetName, Some(a.as_fd())).unwrap() {
        (Response::Addr(Some(x)), _) => assert_eq!(x, addr),
        r => panic!("{r:?}"),
    }
}

fn wait_readable(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 5000) == 1 }
}

#[test]
fn tcp_connect_over_lo0_is_done_in_the_call_and_accept_follows_a_notification_byte() {
    let f = Fixture::new();
    let mut c = f.client();
    let l = open_tcp(&mut c);
    assert_eq!(sock_type(&l), rustix::net::SocketType::STREAM);
    let la = bind(&mut c, &l, "127.0.0.1:0");
    c.call_with_fd(&Request::Listen { backlog: 4 }, Some(l.as_fd()))
        .unwrap();
    let s = open_tcp(&mut c);
    // The handshake over lo0 runs inside the call: Connect answers Ok, not
    // EINPROGRESS (a connect still under way is in the tests of
    // crates/libsocket: a full backlog, a refused port).
    assert!(matches!(
        c.call_with_fd(&Request::Connect { addr: la }, Some(s.as_fd())),
        Ok((Response::Ok, None))
    ));
    // Asking for the outcome anyway gets it at once.
    assert!(matches!(
        c.call_with_fd(&Request::ConnectWait, Some(s.as_fd())),
        Ok((Response::Ok, None))
    ));
    // The listener's descriptor turns readable with one byte.
    assert!(wait_readable(&l));
    let mut b = [0u8; 4];
    assert_eq!(rustix::io::read(&l, &mut b).unwrap(), 1);
    let (peer, a) = match c.call_with_fd(&Request::Accept, Some(l.as_fd())).unwrap() {
        (Response::SocketFd { peer: Some(p) }, Some(fd)) => (p, fd),
        r => panic!("{r:?}"),
    };
    let sa = match c.call_with_fd(&Request::GetName, Some(s.as_fd())).unwrap() {
        (Response::Addr(Some(x)), _) => x,
        r => panic!("{r:?}"),
    };
    assert_eq!(peer, sa);
    // No second connection: Accept says EAGAIN.
    assert_eq!(
        errno(c.call_with_fd(&Request::Accept, Some(l.as_fd()))),
        errno::EAGAIN
    );
    // Bytes flow both ways on the descriptors themselves.
    rustix::io::write(&s, b"abc").unwrap();
    assert!(wait_readable(&a));
    assert_eq!(rustix::io::read(&a, &mut b).unwrap(), 3);
    assert_eq!(&b[..3], b"abc");
    // The table shows the three sockets with their states.
    let l = list(&mut c);
    let states: Vec<&str> = l.iter().map(|s| s.state.as_str()).collect();
    assert!(states.contains(&"LISTEN"), "{states:?}");
    assert_eq!(
        states.iter().filter(|s| **s == "ESTABLISHED").count(),
        2,
        "{states:?}"
    );
}

#[test]
fn a_refused_connection_is_reported_by_connect_wait_then_once_by_so_error() {
    let f = Fixture::new();
    let mut c = f.client();
    let s = open_tcp(&mut c);
    let _ = c.call_with_fd(
        &Request::Connect {
            addr: "127.0.0.1:1".parse().unwrap(),
        },
        Some(s.as_fd()),
    );
    assert_eq!(
        errno(c.call_with_fd(&Request::ConnectWait, Some(s.as_fd()))),
        errno::ECONNREFUSED
    );
    let so_error = |c: &mut Client| match c
        .call_with_fd(
            &Request::GetOpt {
                name: SockOptNameWire::Error,
            },
            Some(s.as_fd()),
        )
        .unwrap()
    {
        (Response::Opt(SockOptWire::Error(e)), _) => e,
        r => panic!("{r:?}"),
    };
    assert_eq!(so_error(&mut c), errno::ECONNREFUSED);
    assert_eq!(so_error(&mut c), 0, "reading SO_ERROR clears it");
}

#[test]
fn a_connection_may_hold_at_most_its_share_of_sockets() {
    use iopkt_rsrcmgr::server::MAX_APP_SOCKETS_PER_CLIENT;
    // Both ends of every pair live in this process: make room.
    let want = (2 * MAX_APP_SOCKETS_PER_CLIENT + 512) as u64;
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(lim.maximum.map_or(want, |m| m.min(want)));
        rustix::process::setrlimit(rustix::process::Resource::Nofile, lim).unwrap();
    }
    assert!(
        lim.current.is_none_or(|c| c >= want),
        "this test needs {want} descriptors (ulimit -n)"
    );
    let f = Fixture::new();
    let mut c = f.client();
    let mut held: Vec<OwnedFd> = (0..MAX_APP_SOCKETS_PER_CLIENT)
        .map(|_| open_udp(&mut c, false))
        .collect();
    assert_eq!(
        errno(c.call_with_fd(
            &Request::SocketOpen {
                v6: false,
                stream: false
            },
            None
        )),
        errno::EMFILE
    );
    // Another connection has its own share.
    let mut c2 = f.client();
    drop(open_udp(&mut c2, false));
    // Closing one makes room again, once the server has seen it go.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match c.call_with_fd(
            &Request::SocketOpen {
                v6: false,
                stream: false,
            },
            None,
        ) {
            Ok((_, Some(fd))) => {
                held.push(fd);
                break;
            }
            Err(ClientError::Remote(e)) if e.code == errno::EMFILE => {
                assert!(Instant::now() < deadline, "no room after a close");
                std::thread::sleep(Duration::from_millis(10));
            }
            r => panic!("{r:?}"),
        }
    }
}

/// Connects a new client socket to the listener `l` (at `la`) and
/// returns (client end, accepted end).
fn connected_pair(c: &mut Client, l: &OwnedFd, la: SocketAddr) -> (OwnedFd, OwnedFd) {
    let s = open_tcp(c);
    assert!(matches!(
        c.call_with_fd(&Request::Connect { addr: la }, Some(s.as_fd())),
        Ok((Response::Ok, None))
    ));
    assert!(wait_readable(l));
    let mut b = [0u8; 1];
    assert_eq!(rustix::io::read(l, &mut b).unwrap(), 1);
    match c.call_with_fd(&Request::Accept, Some(l.as_fd())).unwrap() {
        (Response::SocketFd { peer: Some(_) }, Some(a)) => (s, a),
        r => panic!("{r:?}"),
    }
}

#[test]
fn bytes_written_just_before_a_shutdown_arrive_and_then_end_of_stream() {
    // The application's last bytes and its end of stream may reach
    // io-pkt's end of the pair together, announced by one readiness event:
    // reading the bytes must not end the reading before the end of stream
    // shows (a short read is no sign of it).
    let f = Fixture::new();
    let mut c = f.client();
    let l = open_tcp(&mut c);
    let la = bind(&mut c, &l, "127.0.0.1:0");
    c.call_with_fd(&Request::Listen { backlog: 8 }, Some(l.as_fd()))
        .unwrap();
    for round in 0..40 {
        let (s, a) = connected_pair(&mut c, &l, la);
        let msg = vec![round as u8; 1000 + round * 37];
        assert_eq!(rustix::io::write(&s, &msg).unwrap(), msg.len());
        rustix::net::shutdown(&s, rustix::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            assert!(
                wait_readable(&a),
                "round {round}: no end of stream after {} bytes",
                got.len()
            );
            match rustix::io::read(&a, &mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, msg, "round {round}");
    }
}
