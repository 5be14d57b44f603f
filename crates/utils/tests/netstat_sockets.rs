//! `iopkt netstat [-a]`: the socket listing, against a stack in this test
//! process with real sockets opened through the resource manager.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iopkt_rsrcmgr::Server;
use iopkt_rsrcmgr::mem_host::MemHost;
use iopkt_socket::{TcpListener, TcpStream, UdpSocket};

const IOPKT: &str = env!("CARGO_BIN_EXE_iopkt");

/// The socket library's prefix is process-wide: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

struct Stack {
    dir: tempfile::TempDir,
    _server: Server,
    _host: Arc<MemHost>,
}

fn start() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(MemHost::new(0));
    MemHost::run_timers(&host);
    let (server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
    host.set_notifier(notifier);
    iopkt_socket::set_prefix(dir.path());
    Stack {
        dir,
        _server: server,
        _host: host,
    }
}

fn iopkt(prefix: &Path, args: &[&str]) -> String {
    let o = Command::new(IOPKT)
        .args(args)
        .env("SOCK", prefix)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "iopkt {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn bsd(a: SocketAddr) -> String {
    format!("{}.{}", a.ip(), a.port())
}

/// The listing's rows after the title and the header, split into words.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(2)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn has(rows: &[Vec<String>], want: &[&str]) -> bool {
    rows.iter().any(|r| r == want)
}

#[test]
fn netstat_lists_connections_and_with_a_the_servers() {
    let _g = serial();
    let s = start();
    let p = s.dir.path();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let la = l.local_addr().unwrap();
    let c = TcpStream::connect(la).unwrap();
    let (srv, peer) = l.accept().unwrap();
    let ca = c.local_addr().unwrap();
    assert_eq!(peer, ca);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ua = u.local_addr().unwrap();

    let out = iopkt(p, &["netstat", "-a"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("Active Internet connections (including servers)")
    );
    assert_eq!(
        lines
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "Proto", "Recv-Q", "Send-Q", "Local", "Address", "Foreign", "Address", "(state)"
        ])
    );
    let r = rows(&out);
    assert_eq!(r.len(), 4, "{out}");
    assert!(
        has(&r, &["tcp", "0", "0", &bsd(la), "*.*", "LISTEN"]),
        "{out}"
    );
    assert!(
        has(&r, &["tcp", "0", "0", &bsd(ca), &bsd(la), "ESTABLISHED"]),
        "{out}"
    );
    assert!(
        has(&r, &["tcp", "0", "0", &bsd(la), &bsd(ca), "ESTABLISHED"]),
        "{out}"
    );
    assert!(has(&r, &["udp", "0", "0", &bsd(ua), "*.*"]), "{out}");
    assert_eq!(out, iopkt(p, &["netstat", "-an"]));

    // Without -a, BSD leaves out the servers: the listener and the
    // unconnected UDP socket.
    let out = iopkt(p, &["netstat"]);
    assert_eq!(out.lines().next(), Some("Active Internet connections"));
    let r = rows(&out);
    assert_eq!(r.len(), 2, "{out}");
    assert!(
        r.iter()
            .all(|x| x.last().map(String::as_str) == Some("ESTABLISHED")),
        "{out}"
    );

    // A connected UDP socket is no server.
    u.connect(la).unwrap();
    let r = rows(&iopkt(p, &["netstat"]));
    assert!(has(&r, &["udp", "0", "0", &bsd(ua), &bsd(la)]), "{r:?}");

    // --json: the same sockets, addresses as "ip:port".
    let j: serde_json::Value =
        serde_json::from_str(&iopkt(p, &["--json", "netstat", "-a"])).unwrap();
    let socks = j["sockets"].as_array().expect("sockets array");
    assert_eq!(socks.len(), 4, "{j}");
    let listen = socks
        .iter()
        .find(|x| x["state"] == "LISTEN")
        .expect("listener");
    assert_eq!(listen["proto"], "tcp");
    assert_eq!(listen["local"], la.to_string());
    assert!(listen["remote"].is_null());
    assert_eq!(listen["recv_queue"], 0);
    let est: Vec<_> = socks
        .iter()
        .filter(|x| x["state"] == "ESTABLISHED")
        .collect();
    assert_eq!(est.len(), 2);
    assert!(
        est.iter()
            .any(|x| x["local"] == ca.to_string() && x["remote"] == la.to_string())
    );
    let j: serde_json::Value = serde_json::from_str(&iopkt(p, &["netstat", "--json"])).unwrap();
    assert_eq!(j["sockets"].as_array().map(Vec::len), Some(3), "{j}");
    drop((srv, u, l));
}

#[test]
fn a_connection_the_application_closed_stays_listed_in_time_wait() {
    let _g = serial();
    let s = start();
    let p = s.dir.path();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let la = l.local_addr().unwrap();
    let c = TcpStream::connect(la).unwrap();
    let (srv, _) = l.accept().unwrap();
    let ca = c.local_addr().unwrap();
    // The client closes first and its side waits in FIN-WAIT-2, then
    // TIME-WAIT, with no handle left in the application (RFC 9293 section
    // 3.6): both show.
    drop(c);
    wait_for(p, &["tcp", "0", "0", &bsd(ca), &bsd(la), "FIN_WAIT_2"]);
    drop(srv);
    wait_for(p, &["tcp", "0", "0", &bsd(ca), &bsd(la), "TIME_WAIT"]);
    drop(l);
}

/// Polls `netstat -a` (real time: the stack's timers run on a thread)
/// until a row reads `want`.
fn wait_for(p: &Path, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = String::new();
    while Instant::now() < deadline {
        out = iopkt(p, &["netstat", "-a"]);
        if has(&rows(&out), want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no row {want:?} in:\n{out}");
}
