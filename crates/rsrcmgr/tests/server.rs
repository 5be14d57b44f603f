//! The server over a real Unix socket, with a stack in memory behind it.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use iopkt_rsrcmgr::mem_host::{MemCtx, MemHost};
use iopkt_rsrcmgr::proto::*;
use iopkt_rsrcmgr::server::{MAX_SOCKETS_PER_CLIENT, PERMISSION_DENIED};
use iopkt_rsrcmgr::{Client, ClientError, Notifier, Server, StackHost, StartError, socket_path};
use iopkt_stack::socket::{PingReply, SocketId};
use iopkt_stack::{Error, Mac, Stack};

/// Destination that makes the test host answer every echo request many
/// times, as a broadcast ping on a busy segment would.
const STORM_DST: &str = "10.77.0.255";
const STORM_COPIES: usize = 200;

/// A [`MemHost`] whose ping sockets are modelled here (the stack's echo
/// sockets live elsewhere): each request is answered at once with an echo
/// reply, so the server's socket ownership, event delivery and reclaiming
/// can be watched, and the open sockets counted.
struct TestHost {
    mem: MemHost,
    sockets: Mutex<HashMap<SocketId, VecDeque<PingReply>>>,
    next: AtomicU32,
    notifier: OnceLock<Notifier>,
}

impl TestHost {
    fn new() -> TestHost {
        TestHost {
            mem: MemHost::new(0),
            sockets: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
            notifier: OnceLock::new(),
        }
    }
    fn open_sockets(&self) -> usize {
        self.sockets.lock().unwrap().len()
    }
}

impl StackHost for TestHost {
    type Ctx = MemCtx;
    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, &mut MemCtx) -> R) -> R {
        self.mem.with_stack(f)
    }
    fn mount(
        &self,
        kind: ModuleKindWire,
        module: &str,
        options: &str,
    ) -> Result<Vec<String>, String> {
        if module == "devnp-test.so" && kind == ModuleKindWire::Driver && options == "name=tst" {
            self.mem
                .add_ethernet("tst0", Mac([2, 0, 0, 0, 0, 9]), 1500)
                .map_err(|e| e.to_string())?;
            Ok(vec!["tst0".into()])
        } else {
            Err(format!("cannot find module {module}"))
        }
    }
    fn destroy(&self, ifname: &str) -> Result<(), String> {
        self.mem.destroy(ifname)
    }
    fn instance(&self) -> u32 {
        0
    }
    fn ping_open(&self, _v6: bool) -> Result<SocketId, Error> {
        let id = SocketId(self.next.fetch_add(1, Ordering::SeqCst));
        self.sockets.lock().unwrap().insert(id, VecDeque::new());
        Ok(id)
    }
    fn ping_send(&self, sock: SocketId, dst: IpAddr, icmp: &[u8]) -> Result<(), Error> {
        let copies = if dst.to_string() == STORM_DST {
            STORM_COPIES
        } else {
            1
        };
        {
            let mut s = self.sockets.lock().unwrap();
            let q = s.get_mut(&sock).ok_or(Error::BadSocket)?;
            let mut reply = icmp.to_vec();
            reply[0] = 0;
            for _ in 0..copies {
                q.push_back(PingReply {
                    from: dst,
                    icmp: reply.clone(),
                    ttl: 64,
                });
            }
        }
        if let Some(n) = self.notifier.get() {
            n.socket_ready(sock);
        }
        Ok(())
    }
    fn ping_recv(&self, socks: &[SocketId], max: usize) -> Vec<(SocketId, PingReply)> {
        let mut s = self.sockets.lock().unwrap();
        let mut out = Vec::new();
        for sock in socks {
            if let Some(q) = s.get_mut(sock) {
                for _ in 0..max {
                    match q.pop_front() {
                        Some(r) => out.push((*sock, r)),
                        None => break,
                    }
                }
            }
        }
        out
    }
    fn socket_close(&self, socks: &[SocketId]) {
        let mut s = self.sockets.lock().unwrap();
        for sock in socks {
            s.remove(sock);
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    host: Arc<TestHost>,
    server: Option<Server>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        // Other users (the non-root test) must reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let host = Arc::new(TestHost::new());
        let (server, notifier) = Server::start(dir.path(), host.clone()).unwrap();
        host.notifier.set(notifier.clone()).ok().unwrap();
        host.mem.set_notifier(notifier);
        Fixture {
            dir,
            host,
            server: Some(server),
        }
    }
    fn prefix(&self) -> &Path {
        self.dir.path()
    }
    fn client(&self) -> Client {
        let mut c = Client::connect(self.prefix()).unwrap();
        c.set_timeout(Duration::from_secs(10));
        c
    }
    fn add_en0(&self) {
        self.host
            .mem
            .add_ethernet("en0", Mac([2, 0, 0, 0, 0, 1]), 1500)
            .unwrap();
    }
}

fn remote_err(r: Result<Response, ClientError>) -> WireError {
    match r {
        Err(ClientError::Remote(e)) => e,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

fn interfaces(c: &mut Client) -> Vec<IfInfo> {
    match c.call(&Request::ListInterfaces).unwrap() {
        Response::Interfaces(v) => v,
        r => panic!("{r:?}"),
    }
}

fn routes(c: &mut Client) -> Vec<RouteInfo> {
    match c.call(&Request::RouteList).unwrap() {
        Response::Routes(v) => v,
        r => panic!("{r:?}"),
    }
}

/// Waits (bounded) for a condition that another thread makes true.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn lists_lo0_with_its_addresses() {
    let fx = Fixture::new();
    let mut c = fx.client();
    let ifs = interfaces(&mut c);
    assert_eq!(ifs.len(), 1);
    let lo = &ifs[0];
    assert_eq!(lo.name, "lo0");
    assert_eq!(lo.kind, IfKindWire::Loopback);
    assert_eq!(
        lo.flags,
        ifflags::UP | ifflags::LOOPBACK | ifflags::RUNNING | ifflags::MULTICAST
    );
    assert_eq!(
        lo.addrs4,
        vec![Addr4Info {
            addr: "127.0.0.1".parse().unwrap(),
            plen: 8,
            broadcast: None
        }]
    );
    assert_eq!(lo.addrs6.len(), 1);
    assert_eq!(
        lo.addrs6[0].addr,
        "::1".parse::<std::net::Ipv6Addr>().unwrap()
    );
    assert_eq!(lo.addrs6[0].plen, 128);
    assert_eq!(lo.addrs6[0].state, Addr6StateWire::Preferred);
}

#[test]
fn root_configures_addresses_and_the_subnet_route_follows() {
    let fx = Fixture::new();
    fx.add_en0();
    let mut c = fx.client();
    c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.77.0.2".parse().unwrap(),
        plen: 24,
        op: AddrOp::Set,
    })
    .unwrap();
    c.call(&Request::SetUp {
        ifname: "en0".into(),
        up: true,
    })
    .unwrap();
    c.call(&Request::SetMtu {
        ifname: "en0".into(),
        mtu: 9000,
    })
    .unwrap();
    c.call(&Request::SetAddr6 {
        ifname: "en0".into(),
        addr: "fd00:77::2".parse().unwrap(),
        plen: 64,
        op: AddrOp::Set,
    })
    .unwrap();
    let en0 = interfaces(&mut c)
        .into_iter()
        .find(|i| i.name == "en0")
        .unwrap();
    assert_eq!(en0.mtu, 9000);
    assert!(en0.up && en0.flags & ifflags::RUNNING != 0);
    assert_eq!(en0.mac.to_string(), "02:00:00:00:00:01");
    assert_eq!(
        en0.addrs4,
        vec![Addr4Info {
            addr: "10.77.0.2".parse().unwrap(),
            plen: 24,
            broadcast: Some("10.77.0.255".parse().unwrap()),
        }]
    );
    assert!(
        en0.addrs6
            .iter()
            .any(|a| a.addr.to_string() == "fd00:77::2" && a.plen == 64)
    );
    let rs = routes(&mut c);
    let subnet = rs
        .iter()
        .find(|r| r.dest.to_string() == "10.77.0.0" && r.plen == 24)
        .expect("connected route");
    assert_eq!(subnet.ifname, "en0");
    assert_eq!(subnet.flags, "UC");
    assert!(
        rs.iter()
            .any(|r| r.dest.to_string() == "fd00:77::" && r.plen == 64)
    );

    // alias adds, -alias removes, and the route goes with the last address.
    c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.0.0.9".parse().unwrap(),
        plen: 24,
        op: AddrOp::Alias,
    })
    .unwrap();
    assert_eq!(
        interfaces(&mut c)
            .into_iter()
            .find(|i| i.name == "en0")
            .unwrap()
            .addrs4
            .len(),
        2
    );
    c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.0.0.9".parse().unwrap(),
        plen: 32,
        op: AddrOp::Delete,
    })
    .unwrap();
    assert!(
        !routes(&mut c)
            .iter()
            .any(|r| r.dest.to_string() == "10.0.0.0")
    );
    let e = remote_err(c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.0.0.9".parse().unwrap(),
        plen: 32,
        op: AddrOp::Delete,
    }));
    assert_eq!(e.code, errno::ENOENT);

    // An unknown interface and a bad MTU are one-line errors with a code.
    let e = remote_err(c.call(&Request::SetUp {
        ifname: "nope0".into(),
        up: true,
    }));
    assert_eq!(e.code, errno::ENXIO);
    assert!(e.message.contains("nope0"), "{}", e.message);
    let e = remote_err(c.call(&Request::SetMtu {
        ifname: "en0".into(),
        mtu: 10,
    }));
    assert_eq!(e.code, errno::EINVAL);
    assert!(!e.message.contains('\n'));
}

#[test]
fn routes_are_added_looked_up_and_deleted() {
    let fx = Fixture::new();
    fx.add_en0();
    let mut c = fx.client();
    c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.77.0.2".parse().unwrap(),
        plen: 24,
        op: AddrOp::Set,
    })
    .unwrap();
    let default4 = RouteSpec {
        dest: "0.0.0.0".parse().unwrap(),
        plen: 0,
        gateway: Some("10.77.0.1".parse().unwrap()),
        ifname: None,
    };
    match c.call(&Request::RouteAdd(default4.clone())).unwrap() {
        Response::Route(r) => {
            assert_eq!(r.ifname, "en0", "interface found from the gateway");
            assert_eq!(r.flags, "UGS");
        }
        r => panic!("{r:?}"),
    }
    let e = remote_err(c.call(&Request::RouteAdd(default4.clone())));
    assert_eq!(e.code, errno::EEXIST);
    match c
        .call(&Request::RouteGet {
            dest: "192.0.2.7".parse().unwrap(),
        })
        .unwrap()
    {
        Response::Route(r) => {
            assert_eq!(r.plen, 0);
            assert_eq!(r.gateway, Some("10.77.0.1".parse().unwrap()));
        }
        r => panic!("{r:?}"),
    }
    // A gateway off every connected subnet needs -ifp.
    let far = RouteSpec {
        dest: "10.99.0.0".parse().unwrap(),
        plen: 16,
        gateway: Some("10.5.5.5".parse().unwrap()),
        ifname: None,
    };
    assert_eq!(
        remote_err(c.call(&Request::RouteAdd(far.clone()))).code,
        errno::ENETUNREACH
    );
    c.call(&Request::RouteAdd(RouteSpec {
        ifname: Some("en0".into()),
        ..far
    }))
    .unwrap();
    // IPv6 through a link-local gateway with -ifp.
    c.call(&Request::RouteAdd(RouteSpec {
        dest: "fd00:99::".parse().unwrap(),
        plen: 48,
        gateway: Some("fe80::1".parse().unwrap()),
        ifname: Some("en0".into()),
    }))
    .unwrap();
    let rs = routes(&mut c);
    assert!(
        rs.iter()
            .any(|r| r.dest.to_string() == "10.99.0.0" && r.plen == 16)
    );
    assert!(
        rs.iter()
            .any(|r| r.dest.to_string() == "fd00:99::" && r.flags == "UGS")
    );

    c.call(&Request::RouteDelete(default4.clone())).unwrap();
    let e = remote_err(c.call(&Request::RouteGet {
        dest: "192.0.2.7".parse().unwrap(),
    }));
    assert_eq!(e.code, errno::ESRCH);
    assert_eq!(
        remote_err(c.call(&Request::RouteDelete(default4))).code,
        errno::ESRCH
    );
}

#[test]
fn sysctls_read_write_and_refuse() {
    let fx = Fixture::new();
    let mut c = fx.client();
    let ttl = |c: &mut Client| match c
        .call(&Request::SysctlGet {
            name: "net.inet.ip.ttl".into(),
        })
        .unwrap()
    {
        Response::Sysctl(e) => e.value,
        r => panic!("{r:?}"),
    };
    assert_eq!(ttl(&mut c), 64);
    match c
        .call(&Request::SysctlSet {
            name: "net.inet.ip.ttl".into(),
            value: 32,
        })
        .unwrap()
    {
        Response::Sysctl(old) => assert_eq!(old.value, 64),
        r => panic!("{r:?}"),
    }
    assert_eq!(ttl(&mut c), 32);
    let e = remote_err(c.call(&Request::SysctlSet {
        name: "net.inet.ip.ttl".into(),
        value: 0,
    }));
    assert_eq!(e.code, errno::EINVAL);
    assert_eq!(ttl(&mut c), 32, "a refused value changes nothing");
    let e = remote_err(c.call(&Request::SysctlGet {
        name: "net.inet.nope".into(),
    }));
    assert_eq!(e.code, errno::ENOENT);
    assert!(e.message.contains("net.inet.nope"));
    let e = remote_err(c.call(&Request::SysctlGet {
        name: "Bad Name".into(),
    }));
    assert_eq!(e.code, errno::EINVAL);
    match c.call(&Request::SysctlList).unwrap() {
        Response::Sysctls(v) => {
            assert_eq!(v.len(), iopkt_stack::config::SYSCTLS.len());
            assert!(
                v.iter()
                    .any(|e| e.name == "net.inet.ip.ttl" && e.value == 32)
            );
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn ping_sockets_belong_to_their_connection_and_go_with_it() {
    let fx = Fixture::new();
    let mut a = fx.client();
    let mut b = fx.client();
    let mut socks = Vec::new();
    for _ in 0..3 {
        match a.call(&Request::PingOpen { v6: false }).unwrap() {
            Response::SocketOpened { sock } => socks.push(sock),
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(fx.host.open_sockets(), 3);
    // Another connection cannot use or close them.
    let send = Request::PingSend {
        sock: socks[0],
        dst: "127.0.0.1".parse().unwrap(),
        icmp: vec![8, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb],
    };
    assert_eq!(remote_err(b.call(&send)).code, errno::EBADF);
    assert_eq!(
        remote_err(b.call(&Request::Close { sock: socks[1] })).code,
        errno::EBADF
    );
    // The owner gets its reply as an event.
    a.call(&send).unwrap();
    match a.next_event(Duration::from_secs(5)).unwrap() {
        Some(Event::PingReply {
            sock,
            from,
            ttl,
            icmp,
        }) => {
            assert_eq!(sock, socks[0]);
            assert_eq!(from.to_string(), "127.0.0.1");
            assert_eq!(ttl, 64);
            assert_eq!(icmp, vec![0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb]);
        }
        other => panic!("{other:?}"),
    }
    a.call(&Request::Close { sock: socks[2] }).unwrap();
    assert_eq!(fx.host.open_sockets(), 2);
    drop(a);
    eventually("the departed client's sockets to close", || {
        fx.host.open_sockets() == 0
    });
    // b is unaffected.
    assert_eq!(interfaces(&mut b).len(), 1);
}

#[test]
fn sockets_per_connection_are_bounded() {
    let fx = Fixture::new();
    let mut c = fx.client();
    for _ in 0..MAX_SOCKETS_PER_CLIENT {
        c.call(&Request::PingOpen { v6: true }).unwrap();
    }
    let e = remote_err(c.call(&Request::PingOpen { v6: true }));
    assert_eq!(e.code, errno::EMFILE);
    assert_eq!(fx.host.open_sockets(), MAX_SOCKETS_PER_CLIENT);
}

#[test]
fn a_client_that_does_not_read_its_events_is_disconnected() {
    let fx = Fixture::new();
    let mut c = fx.client();
    let sock = match c.call(&Request::PingOpen { v6: false }).unwrap() {
        Response::SocketOpened { sock } => sock,
        r => panic!("{r:?}"),
    };
    // One request whose replies (200 x 60 KB) outgrow the output limit.
    let mut icmp = vec![0u8; 60_000];
    icmp[0] = 8;
    c.send(&Request::PingSend {
        sock,
        dst: STORM_DST.parse().unwrap(),
        icmp,
    })
    .unwrap();
    eventually("the flooded client to be dropped", || {
        fx.host.open_sockets() == 0
    });
    // Other clients are still served.
    let mut d = fx.client();
    assert_eq!(interfaces(&mut d).len(), 1);
}

#[test]
fn pipelined_requests_are_throttled_not_lost() {
    let fx = Fixture::new();
    let mut raw = UnixStream::connect(socket_path(fx.prefix())).unwrap();
    raw.set_nonblocking(true).unwrap();
    let one = encode_request(1, &Request::SysctlList).unwrap();
    // Write until the server stops reading (its output to us is full and we
    // read nothing): the stream blocks rather than the server's memory grow.
    let mut sent = 0usize;
    let mut partial = 0usize;
    let end = Instant::now() + Duration::from_secs(10);
    'outer: while Instant::now() < end {
        let mut off = 0;
        while off < one.len() {
            match raw.write(&one[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    partial = off;
                    break 'outer;
                }
                Err(e) => panic!("{e}"),
            }
        }
        sent += 1;
    }
    assert!(partial > 0 || sent > 0);
    assert!(Instant::now() < end, "the server never pushed back");
    // Finish the partial request, then read every answer.
    raw.set_nonblocking(false).unwrap();
    let want = sent + usize::from(partial > 0);
    let rest = &one[partial..];
    let reader = raw.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let mut reader = reader;
        reader
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut f = Framer::new();
        let mut n = 0;
        let mut buf = vec![0u8; 65536];
        while n < want {
            let k = reader.read(&mut buf).unwrap();
            assert!(k > 0, "server closed after {n} answers");
            f.push(&buf[..k]);
            while let Some(fr) = f.next_frame().unwrap() {
                assert!(matches!(
                    decode_server_frame(&fr).unwrap(),
                    ServerMessage::Response(_, Response::Sysctls(_))
                ));
                n += 1;
            }
        }
        n
    });
    if partial > 0 {
        raw.write_all(rest).unwrap();
    }
    assert_eq!(t.join().unwrap(), want);
}

#[test]
fn a_second_server_on_the_same_prefix_is_refused() {
    let fx = Fixture::new();
    let other = Arc::new(MemHost::new(0));
    match Server::start(fx.prefix(), other) {
        Err(e @ StartError::InUse(_)) => assert_eq!(
            e.to_string(),
            format!(
                "another io-pkt already serves {}",
                socket_path(fx.prefix()).display()
            )
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two servers on one prefix"),
    }
    // The first one still answers.
    let mut c = fx.client();
    assert_eq!(interfaces(&mut c).len(), 1);
}

#[test]
fn a_stale_socket_is_replaced_and_the_path_goes_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A socket file nobody listens on, as a crashed server leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let (server, _n) = Server::start(dir.path(), Arc::new(MemHost::new(0))).unwrap();
    let mut c = Client::connect(dir.path()).unwrap();
    assert_eq!(interfaces(&mut c).len(), 1);
    server.shutdown();
    assert!(!path.exists(), "socket path removed at shutdown");
    match c.call(&Request::ListInterfaces) {
        Err(ClientError::Closed) | Err(ClientError::Io(_)) => {}
        other => panic!("{other:?}"),
    }
    match Client::connect(dir.path()) {
        Err(e @ ClientError::NotRunning { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "no io-pkt serving {}: is it running? (SOCK={})",
                path.display(),
                dir.path().display()
            )
        ),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_file_in_the_way_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"precious").unwrap();
    match Server::start(dir.path(), Arc::new(MemHost::new(0))) {
        Err(e @ StartError::NotASocket(_)) => assert!(e.to_string().contains("not a socket")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started over a regular file"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn mount_and_destroy_go_through_the_host() {
    let fx = Fixture::new();
    let mut c = fx.client();
    let mount = |instance, module: &str| Request::Mount {
        instance,
        kind: ModuleKindWire::Driver,
        module: module.into(),
        options: "name=tst".into(),
    };
    let e = remote_err(c.call(&mount(3, "devnp-test.so")));
    assert_eq!(e.code, errno::EINVAL);
    assert_eq!(
        e.message,
        "this stack is io-pkt, not io-pkt3: use -T io-pkt"
    );
    let e = remote_err(c.call(&mount(0, "devnp-missing.so")));
    assert_eq!(e.message, "cannot find module devnp-missing.so");
    match c.call(&mount(0, "devnp-test.so")).unwrap() {
        Response::Mounted { interfaces } => assert_eq!(interfaces, vec!["tst0".to_string()]),
        r => panic!("{r:?}"),
    }
    assert!(interfaces(&mut c).iter().any(|i| i.name == "tst0"));
    c.call(&Request::DestroyInterface {
        ifname: "tst0".into(),
    })
    .unwrap();
    assert!(!interfaces(&mut c).iter().any(|i| i.name == "tst0"));
    assert_eq!(
        remote_err(c.call(&Request::DestroyInterface {
            ifname: "tst0".into()
        }))
        .code,
        errno::ENXIO
    );
    assert_eq!(
        remote_err(c.call(&Request::DestroyInterface {
            ifname: "lo0".into()
        }))
        .code,
        errno::EINVAL
    );
}

/// Sends raw bytes and reads one answer frame.
fn raw_exchange(s: &mut UnixStream, bytes: &[u8]) -> Option<(u32, Response)> {
    // A closed connection shows as a failed write or an end of file.
    s.write_all(bytes).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut f = Framer::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(fr) = f.next_frame().unwrap() {
            return match decode_server_frame(&fr).unwrap() {
                ServerMessage::Response(id, r) => Some((id, r)),
                ServerMessage::Event(e) => panic!("{e:?}"),
            };
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => f.push(&buf[..n]),
        }
    }
}

fn code_of(r: Option<(u32, Response)>) -> (u32, i32) {
    match r {
        Some((id, Response::Error(e))) => (id, e.code),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_requests_get_answers_and_never_hurt_the_server() {
    let fx = Fixture::new();
    let path = socket_path(fx.prefix());
    let mut s = UnixStream::connect(&path).unwrap();
    // A bad body behind a good header: answered, and the stream goes on.
    let mut bad = encode_request(5, &Request::SysctlGet { name: "x".into() }).unwrap();
    bad[17] = 200; // string length far beyond the body
    assert_eq!(code_of(raw_exchange(&mut s, &bad)), (5, errno::EBADMSG));
    let mut newer = encode_request(6, &Request::Stats).unwrap();
    newer[16] = 99;
    assert_eq!(code_of(raw_exchange(&mut s, &newer)), (6, errno::ENOSYS));
    let invalid = encode_request(
        7,
        &Request::SetAddr4 {
            ifname: "lo0".into(),
            addr: "10.0.0.1".parse().unwrap(),
            plen: 40,
            op: AddrOp::Set,
        },
    )
    .unwrap();
    assert_eq!(code_of(raw_exchange(&mut s, &invalid)), (7, errno::EINVAL));
    let ok = encode_request(8, &Request::ListInterfaces).unwrap();
    assert!(matches!(
        raw_exchange(&mut s, &ok),
        Some((8, Response::Interfaces(_)))
    ));

    // A wrong version is answered, then the connection closes.
    let mut s = UnixStream::connect(&path).unwrap();
    let mut v2 = encode_request(9, &Request::ListInterfaces).unwrap();
    v2[4] = 2;
    assert_eq!(
        code_of(raw_exchange(&mut s, &v2)),
        (0, errno::EPROTONOSUPPORT)
    );
    assert!(
        raw_exchange(&mut s, &ok).is_none(),
        "closed after a bad header"
    );

    // An oversized body is refused before it is read.
    let mut s = UnixStream::connect(&path).unwrap();
    let mut big = encode_request(10, &Request::ListInterfaces).unwrap();
    big[12..16].copy_from_slice(&(64u32 << 20).to_le_bytes());
    assert_eq!(
        code_of(raw_exchange(&mut s, &big[..16])),
        (0, errno::EMSGSIZE)
    );

    // Garbage.
    let mut s = UnixStream::connect(&path).unwrap();
    assert_eq!(
        code_of(raw_exchange(&mut s, b"GET / HTTP/1.0\r\n\r\n")),
        (0, errno::EPROTO)
    );

    // A client that sends half a message and vanishes.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(&ok[..7]).unwrap();
    drop(s);

    let mut c = fx.client();
    assert_eq!(interfaces(&mut c).len(), 1);
}

/// Run by `privileged_requests_need_root` as uid 65534 in a child process.
#[test]
#[ignore = "helper: run as another user by privileged_requests_need_root"]
fn nonroot_client_helper() {
    let prefix = std::env::var("IOPKT_TEST_NONROOT_PREFIX").expect("set by the parent test");
    assert_ne!(rustix::process::geteuid().as_raw(), 0);
    let mut c = Client::connect(Path::new(&prefix)).unwrap();
    check_nonroot_client(&mut c);
    println!("NONROOT-CHECKS-PASSED");
}

fn check_nonroot_client(c: &mut Client) {
    // Reading is open to everyone.
    assert!(!interfaces(c).is_empty());
    let e = remote_err(c.call(&Request::SetUp {
        ifname: "lo0".into(),
        up: false,
    }));
    assert_eq!(e.code, errno::EPERM);
    assert_eq!(e.message, PERMISSION_DENIED);
    let e = remote_err(c.call(&Request::SysctlSet {
        name: "net.inet.ip.ttl".into(),
        value: 9,
    }));
    assert_eq!(e.code, errno::EPERM);
    let e = remote_err(c.call(&Request::Mount {
        instance: 0,
        kind: ModuleKindWire::Any,
        module: "x".into(),
        options: String::new(),
    }));
    assert_eq!(e.code, errno::EPERM);
}

#[test]
fn privileged_requests_need_root() {
    let fx = Fixture::new();
    if rustix::process::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "nonroot_client_helper",
                "--nocapture",
            ])
            .env("IOPKT_TEST_NONROOT_PREFIX", fx.prefix())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("NONROOT-CHECKS-PASSED"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        check_nonroot_client(&mut fx.client());
    }
    // Nothing the refused requests asked for happened.
    let mut c = fx.client();
    let lo = interfaces(&mut c).remove(0);
    assert!(lo.up);
}

#[test]
fn shutdown_disconnects_clients_and_reclaims_their_sockets() {
    let mut fx = Fixture::new();
    let mut c = fx.client();
    c.call(&Request::PingOpen { v6: false }).unwrap();
    assert_eq!(fx.host.open_sockets(), 1);
    fx.server.take().unwrap().shutdown();
    assert_eq!(fx.host.open_sockets(), 0);
    assert!(!socket_path(fx.prefix()).exists());
}

#[test]
fn the_client_skips_events_it_does_not_know_and_keeps_known_ones() {
    // A server of a later version pushing an event variant this client lacks.
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut f = Framer::new();
        let mut buf = [0u8; 256];
        let frame = loop {
            if let Some(fr) = f.next_frame().unwrap() {
                break fr;
            }
            let n = s.read(&mut buf).unwrap();
            f.push(&buf[..n]);
        };
        let mut unknown = encode_event(&Event::PingReply {
            sock: 1,
            from: "10.0.0.1".parse().unwrap(),
            ttl: 1,
            icmp: vec![0; 8],
        })
        .unwrap();
        unknown[HEADER_LEN] = 42; // an event variant from the future
        let known = Event::PingReply {
            sock: 2,
            from: "10.0.0.2".parse().unwrap(),
            ttl: 2,
            icmp: vec![0; 8],
        };
        s.write_all(&unknown).unwrap();
        s.write_all(&encode_event(&known).unwrap()).unwrap();
        s.write_all(&encode_response(frame.header.request_id, &Response::Ok).unwrap())
            .unwrap();
        known
    });
    let mut c = Client::connect(dir.path()).unwrap();
    assert_eq!(c.call(&Request::Stats).unwrap(), Response::Ok);
    let known = t.join().unwrap();
    assert_eq!(c.next_event(Duration::from_secs(1)).unwrap(), Some(known));
}

/// The Internet checksum (RFC 1071) of `b`.
fn inet_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame to en0 (02:00:00:00:00:01) carrying an ICMP echo
/// request from 10.77.0.1 to 10.77.0.2.
fn echo_request_to_en0() -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4];
    let c = inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 7, 0, 0, 64, 1, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

fn counters(c: &mut Client) -> Vec<CounterGroupWire> {
    match c.call(&Request::Counters).unwrap() {
        Response::Counters(v) => v,
        r => panic!("{r:?}"),
    }
}

fn counter(groups: &[CounterGroupWire], group: &str, what: &str) -> u64 {
    let g = groups
        .iter()
        .find(|g| g.name == group)
        .unwrap_or_else(|| panic!("no group {group}"));
    g.counters
        .iter()
        .find(|e| e.name == what)
        .unwrap_or_else(|| panic!("no counter {what:?} in {group}"))
        .value
}

#[test]
fn counters_report_what_the_stack_received() {
    let fx = Fixture::new();
    fx.add_en0();
    let mut c = fx.client();
    c.call(&Request::SetAddr4 {
        ifname: "en0".into(),
        addr: "10.77.0.2".parse().unwrap(),
        plen: 24,
        op: AddrOp::Set,
    })
    .unwrap();
    c.call(&Request::SetUp {
        ifname: "en0".into(),
        up: true,
    })
    .unwrap();
    let before = counters(&mut c);
    let names: Vec<&str> = before.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ip", "icmp", "arp", "ip6", "icmp6", "sockets", "udp", "igmp", "tcp"
        ]
    );
    assert_eq!(counter(&before, "icmp", "echo requests received"), 0);

    fx.host.mem.receive("en0", &echo_request_to_en0()).unwrap();
    let after = counters(&mut c);
    let ip_in = counter(&after, "ip", "total packets received");
    assert!(ip_in > 0);
    assert_eq!(ip_in, counter(&before, "ip", "total packets received") + 1);
    assert_eq!(
        counter(&after, "ip", "packets for this host"),
        counter(&before, "ip", "packets for this host") + 1
    );
    assert_eq!(counter(&after, "ip", "bad header checksums"), 0);
    assert_eq!(counter(&after, "icmp", "echo requests received"), 1);

    // The older request still answers with its own shape.
    match c.call(&Request::Stats).unwrap() {
        Response::Stats(v) => assert!(
            v.iter()
                .any(|e| e.name == "interfaces.packets_received" && e.value > 0)
        ),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        fx.host.mem.receive("en9", &[0; 60]),
        Err(Error::NoSuchInterface("en9".into()))
    );
}
