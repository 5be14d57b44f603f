//! `TcpStream::tcp_info` (TCP_INFO) against a stack in memory served by
//! the resource manager: the connection's state through its life, its MSS
//! and byte counters; and the protocol's refusals around it.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use iopkt_rsrcmgr::Server;
use iopkt_rsrcmgr::mem_host::MemHost;
use iopkt_rsrcmgr::proto::{SockOptNameWire, SockOptWire};
use iopkt_socket::raw;
use iopkt_socket::{TcpListener, TcpStream, UdpSocket};

/// Linux's numbers for the states seen here.
const ESTABLISHED: u8 = 1;
const FIN_WAIT2: u8 = 5;
const CLOSE_WAIT: u8 = 8;

#[test]
fn tcp_info_follows_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(MemHost::new(0));
    MemHost::run_timers(&host);
    let (_server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
    host.set_notifier(notifier);
    iopkt_socket::set_prefix(dir.path());

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    let data = vec![0x5au8; 100_000];
    c.write_all(&data).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).unwrap();
    // An answer after the data: by then all of it is acknowledged.
    s.write_all(b"k").unwrap();
    let mut k = [0u8; 1];
    c.read_exact(&mut k).unwrap();

    let ci = c.tcp_info().unwrap();
    assert_eq!(ci.state, ESTABLISHED);
    assert!(ci.snd_mss >= 536 && ci.rcv_mss >= 536, "{ci:?}");
    assert_eq!(ci.bytes_acked, data.len() as u64, "{ci:?}");
    assert_eq!(ci.unacked, 0, "{ci:?}");
    assert!(ci.snd_cwnd >= ci.snd_mss, "{ci:?}");
    assert!(ci.rto_us >= 200_000, "{ci:?}");
    assert!(ci.timestamps && ci.sack && ci.wscale, "{ci:?}");
    let si = s.tcp_info().unwrap();
    assert_eq!(si.bytes_received, data.len() as u64, "{si:?}");
    assert_eq!(si.snd_wscale, ci.rcv_wscale);
    assert!(si.rcv_wnd > 0, "{si:?}");

    // Our FIN acknowledged, theirs not yet sent: FIN-WAIT-2 and CLOSE-WAIT.
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(s.tcp_info().unwrap().state, CLOSE_WAIT);
    let mut st = 0;
    for _ in 0..100 {
        st = c.tcp_info().unwrap().state;
        if st == FIN_WAIT2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(st, FIN_WAIT2);

    // Read only; and not an option of UDP sockets.
    let e = raw::setopt(
        c.as_fd(),
        SockOptWire::TcpInfo(iopkt_socket::TcpInfo::closed()),
    )
    .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = raw::getopt(u.as_fd(), SockOptNameWire::TcpInfo).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}");
}
