//! The `iopkt` binary against a server running in this test process.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use iopkt_rsrcmgr::mem_host::{MemCtx, MemHost};
use iopkt_rsrcmgr::proto::ModuleKindWire;
use iopkt_rsrcmgr::{Notifier, Server, StackHost};
use iopkt_stack::socket::{PingReply, SocketId};
use iopkt_stack::{Error, Mac, Stack};

const IOPKT: &str = env!("CARGO_BIN_EXE_iopkt");

/// Echo sockets modelled in the host (the stack's own arrive separately):
/// 10.77.0.1 answers every request, 10.77.0.66 reports "host unreachable",
/// anything else stays silent.
struct EchoHost {
    mem: MemHost,
    socks: Mutex<HashMap<SocketId, VecDeque<PingReply>>>,
    next: AtomicU32,
    notifier: OnceLock<Notifier>,
}

impl StackHost for EchoHost {
    type Ctx = MemCtx;
    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, &mut MemCtx) -> R) -> R {
        self.mem.with_stack(f)
    }
    fn mount(&self, k: ModuleKindWire, m: &str, o: &str) -> Result<Vec<String>, String> {
        self.mem.mount(k, m, o)
    }
    fn destroy(&self, ifname: &str) -> Result<(), String> {
        self.mem.destroy(ifname)
    }
    fn instance(&self) -> u32 {
        0
    }
    fn ping_open(&self, _v6: bool) -> Result<SocketId, Error> {
        let id = SocketId(self.next.fetch_add(1, Ordering::SeqCst));
        self.socks.lock().unwrap().insert(id, VecDeque::new());
        Ok(id)
    }
    fn ping_send(&self, sock: SocketId, dst: IpAddr, icmp: &[u8]) -> Result<(), Error> {
        let reply = match dst.to_string().as_str() {
            "10.77.0.1" | "fd00:77::1" => {
                let mut r = icmp.to_vec();
                r[0] = if dst.is_ipv4() { 0 } else { 129 };
                Some((dst, r))
            }
            "10.77.0.66" => {
                // Host unreachable from the router, quoting our request.
                let mut r = vec![3, 1, 0, 0, 0, 0, 0, 0, 0x45];
                r.resize(8 + 20, 0);
                r.extend_from_slice(&icmp[..8]);
                Some(("10.77.0.1".parse().unwrap(), r))
            }
            _ => None,
        };
        let mut s = self.socks.lock().unwrap();
        let q = s.get_mut(&sock).ok_or(Error::BadSocket)?;
        if let Some((from, icmp)) = reply {
            q.push_back(PingReply {
                from,
                icmp,
                ttl: 64,
            });
            drop(s);
            if let Some(n) = self.notifier.get() {
                n.socket_ready(sock);
            }
        }
        Ok(())
    }
    fn ping_recv(&self, socks: &[SocketId], max: usize) -> Vec<(SocketId, PingReply)> {
        let mut s = self.socks.lock().unwrap();
        let mut out = Vec::new();
        for id in socks {
            if let Some(q) = s.get_mut(id) {
                while out.len() < max {
                    match q.pop_front() {
                        Some(r) => out.push((*id, r)),
                        None => break,
                    }
                }
            }
        }
        out
    }
    fn socket_close(&self, socks: &[SocketId]) {
        let mut s = self.socks.lock().unwrap();
        for id in socks {
            s.remove(id);
        }
    }
}

struct Stack0 {
    dir: tempfile::TempDir,
    host: Arc<EchoHost>,
    _server: Server,
}

impl Stack0 {
    /// A stack with lo0 and an Ethernet interface en0 (02:00:00:00:00:01).
    fn new() -> Stack0 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let host = Arc::new(EchoHost {
            mem: MemHost::new(0),
            socks: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
            notifier: OnceLock::new(),
        });
        host.mem
            .add_ethernet("en0", Mac([2, 0, 0, 0, 0, 1]), 1500)
            .unwrap();
        let (server, n) = Server::start(dir.path(), host.clone()).unwrap();
        host.mem.set_notifier(n.clone());
        let _ = host.notifier.set(n);
        Stack0 {
            dir,
            host,
            _server: server,
        }
    }
    fn prefix(&self) -> &Path {
        self.dir.path()
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(IOPKT);
        c.args(args).env("SOCK", self.prefix());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "iopkt {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    fn configure(&self) {
        self.ok(&["ifconfig", "en0", "inet", "10.77.0.2/24", "up"]);
    }
}

/// Exit code and the single line on stderr.
fn failure(o: &Output) -> (i32, String) {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "one line of error: {err:?}");
    (o.status.code().unwrap(), err.trim_end().to_string())
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn ifconfig_a_prints_bsd_blocks() {
    let s = Stack0::new();
    s.configure();
    s.ok(&["ifconfig", "en0", "inet6", "fd00:77::2/64"]);
    let out = s.ok(&["ifconfig", "-a"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "lo0: flags=0x8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 33184"
    );
    assert!(lines.contains(&"\tinet 127.0.0.1/8"));
    assert!(lines.contains(&"\tinet6 ::1/128"));
    let en0 = lines
        .iter()
        .position(|l| l.starts_with("en0:"))
        .expect("en0 block");
    assert_eq!(
        lines[en0],
        "en0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500"
    );
    assert_eq!(lines[en0 + 1], "\taddress: 02:00:00:00:00:01");
    assert_eq!(lines[en0 + 2], "\tstatus: active");
    assert_eq!(lines[en0 + 3], "\tinet 10.77.0.2/24 broadcast 10.77.0.255");
    assert!(
        lines[en0 + 4..]
            .iter()
            .any(|l| l.starts_with("\tinet6 fd00:77::2/64")),
        "{out}"
    );
    // Without -a and without IF it is the same listing.
    assert_eq!(s.ok(&["ifconfig"]), out);
    // One interface.
    let one = s.ok(&["ifconfig", "lo0"]);
    assert!(one.starts_with("lo0: ") && !one.contains("en0"));

    // alias, -alias, down, mtu.
    s.ok(&["ifconfig", "en0", "inet", "10.0.0.9/24", "alias"]);
    assert!(
        s.ok(&["ifconfig", "en0"])
            .contains("\tinet 10.0.0.9/24 broadcast 10.0.0.255\n")
    );
    s.ok(&["ifconfig", "en0", "inet", "10.0.0.9", "-alias"]);
    s.ok(&["ifconfig", "en0", "down", "mtu", "9000"]);
    let en = s.ok(&["ifconfig", "en0"]);
    assert!(!en.contains("10.0.0.9"));
    assert!(
        en.starts_with("en0: flags=0x8802<BROADCAST,SIMPLEX,MULTICAST> mtu 9000\n"),
        "{en}"
    );
}

#[test]
fn json_listings_parse() {
    let s = Stack0::new();
    s.configure();
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["ifconfig", "-a", "--json"])).unwrap();
    let en0 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "en0")
        .unwrap();
    assert_eq!(en0["mac"], "02:00:00:00:00:01");
    assert_eq!(en0["mtu"], 1500);
    assert_eq!(en0["addrs4"][0]["addr"], "10.77.0.2");
    assert_eq!(en0["addrs4"][0]["broadcast"], "10.77.0.255");
    assert_eq!(en0["kind"], "ethernet");
    let r: serde_json::Value = serde_json::from_str(&s.ok(&["--json", "netstat", "-rn"])).unwrap();
    assert!(
        r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["dest"] == "10.77.0.0" && x["plen"] == 24 && x["ifname"] == "en0")
    );
    let sc: serde_json::Value = serde_json::from_str(&s.ok(&["sysctl", "-a", "--json"])).unwrap();
    assert!(
        sc.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "net.inet.ip.ttl" && e["value"] == 64)
    );
    let n: serde_json::Value = serde_json::from_str(&s.ok(&["arp", "-an", "--json"])).unwrap();
    assert!(n.is_array());
    // Not a listing.
    let (code, msg) = failure(&s.run(&["ifconfig", "en0", "up", "--json"]));
    assert_eq!(code, 2);
    assert!(msg.contains("--json is for listings"), "{msg}");
}

#[test]
fn netstat_i_has_the_bsd_columns() {
    let s = Stack0::new();
    s.configure();
    let out = s.ok(&["netstat", "-i"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        words(lines[0]),
        [
            "Name", "Mtu", "Network", "Address", "Ipkts", "Ierrs", "Idrop", "Opkts", "Oerrs",
            "Odrop"
        ]
    );
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| words(l)).collect();
    assert!(
        rows.iter()
            .any(|r| r[..3] == ["lo0", "33184", "<Link>"] && r.len() == 9)
    );
    assert!(
        rows.iter()
            .any(|r| r[..4] == ["lo0", "33184", "127.0.0.0/8", "127.0.0.1"])
    );
    assert!(
        rows.iter()
            .any(|r| r[..4] == ["en0", "1500", "<Link>", "02:00:00:00:00:01"] && r.len() == 10)
    );
    assert!(
        rows.iter()
            .any(|r| r[..4] == ["en0", "1500", "10.77.0.0/24", "10.77.0.2"])
    );
    // Columns line up: every row's Network column starts where the header's does.
    let col = lines[0].find("Network").unwrap();
    for l in &lines[1..] {
        assert_ne!(l.as_bytes()[col], b' ', "misaligned: {l:?}");
    }
}

#[test]
fn netstat_rn_and_route_commands() {
    let s = Stack0::new();
    s.configure();
    assert_eq!(
        s.ok(&["route", "add", "default", "10.77.0.1"]),
        "add net default: gateway 10.77.0.1\n"
    );
    assert_eq!(
        s.ok(&[
            "route",
            "add",
            "-inet6",
            "fd00:99::/48",
            "fe80::1",
            "-ifp",
            "en0"
        ]),
        "add net fd00:99::/48: gateway fe80::1\n"
    );
    let out = s.ok(&["netstat", "-rn"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Routing tables");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "Internet:");
    assert_eq!(
        words(lines[3]),
        ["Destination", "Gateway", "Flags", "Netif"]
    );
    assert_eq!(words(lines[4]), ["default", "10.77.0.1", "UGS", "en0"]);
    assert!(
        lines
            .iter()
            .any(|l| words(l) == ["10.77.0.0/24", "link#2", "UC", "en0"])
    );
    assert!(
        lines
            .iter()
            .any(|l| words(l) == ["127.0.0.0/8", "link#1", "UC", "lo0"])
    );
    let v6 = lines
        .iter()
        .position(|l| *l == "Internet6:")
        .expect("Internet6");
    assert_eq!(lines[v6 - 1], "");
    assert!(
        lines[v6..]
            .iter()
            .any(|l| words(l) == ["fd00:99::/48", "fe80::1", "UGS", "en0"])
    );
    // route show is the same tables; -inet6 only the second.
    assert_eq!(s.ok(&["route", "show"]), out);
    let only6 = s.ok(&["route", "show", "-inet6"]);
    assert!(only6.contains("Internet6:") && !only6.contains("Internet:\n"));

    let get = s.ok(&["route", "-n", "get", "192.0.2.1"]);
    assert!(get.contains("   route to: 192.0.2.1\n"), "{get}");
    assert!(get.contains("    gateway: 10.77.0.1\n"));
    assert!(get.contains("  interface: en0\n"));
    assert!(get.contains("      flags: <UP,GATEWAY,STATIC>\n"));
    assert_eq!(
        s.ok(&["route", "delete", "default"]),
        "delete net default: interface en0\n"
    );
    let (code, msg) = failure(&s.run(&["route", "get", "192.0.2.1"]));
    assert_eq!(code, 1);
    assert_eq!(msg, "route: route to 192.0.2.1: not in table");
    let (code, msg) = failure(&s.run(&["route", "add", "10.99.0.0/16", "10.5.5.5"]));
    assert_eq!(code, 1);
    assert!(msg.contains("not on a directly connected network"), "{msg}");
}

#[test]
fn sysctl_reads_writes_and_refuses() {
    let s = Stack0::new();
    assert_eq!(
        s.ok(&["sysctl", "net.inet.ip.ttl"]),
        "net.inet.ip.ttl = 64\n"
    );
    assert_eq!(
        s.ok(&["sysctl", "-w", "net.inet.ip.ttl=32"]),
        "net.inet.ip.ttl: 64 -> 32\n"
    );
    assert_eq!(s.ok(&["sysctl", "-n", "net.inet.ip.ttl"]), "32\n");
    let all = s.ok(&["sysctl", "-a"]);
    assert!(all.lines().any(|l| l == "net.inet.ip.ttl = 32"));
    // Every line is `name = value`, in the BSD trees (net., and kern.
    // for kern.ipc.somaxconn).
    assert!(
        all.lines()
            .all(|l| (l.starts_with("net.") || l.starts_with("kern.")) && l.contains(" = ")),
        "{all}"
    );
    assert!(all.lines().any(|l| l.starts_with("kern.ipc.somaxconn = ")));
    assert_eq!(s.ok(&["sysctl"]), all);
    // A subtree.
    let sub = s.ok(&["sysctl", "net.inet6"]);
    assert!(!sub.is_empty() && sub.lines().all(|l| l.starts_with("net.inet6.")));
    let (code, msg) = failure(&s.run(&["sysctl", "net.nope"]));
    assert_eq!(
        (code, msg.as_str()),
        (
            1,
            "sysctl: unknown name net.nope (list them with sysctl -a)"
        )
    );
    let (code, msg) = failure(&s.run(&["sysctl", "-w", "net.inet.ip.ttl=0"]));
    assert_eq!(code, 1);
    assert!(msg.contains("net.inet.ip.ttl takes 1 to 255"), "{msg}");
    let (code, _) = failure(&s.run(&["sysctl", "-w", "net.inet.ip.ttl=abc"]));
    assert_eq!(code, 2);
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = Stack0::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["frobnicate"],
            "iopkt: unknown command 'frobnicate' (known: ifconfig, route, netstat, arp, ndp, sysctl, nicinfo, mount, ping, run)",
        ),
        (&["route", "add"], "route: add needs a destination"),
        (
            &["route", "add", "10.0.0.0/8"],
            "route: add needs a GATEWAY",
        ),
        (&["route", "frob"], "route: unknown command 'frob'"),
        (
            &["ifconfig", "en0", "inet", "300.1.1.1/24"],
            "ifconfig: bad address '300.1.1.1'",
        ),
        (
            &["ifconfig", "en0", "inet", "10.1.1.1/33"],
            "ifconfig: bad prefix length '/33'",
        ),
        (
            &["ifconfig", "en0", "inet", "10.1.1.1"],
            "ifconfig: give the prefix length",
        ),
        (
            &["ifconfig", "en0", "wibble"],
            "ifconfig: unknown keyword 'wibble'",
        ),
        (
            &["ifconfig", "en0", "mtu", "big"],
            "ifconfig: bad mtu 'big'",
        ),
        (&["netstat", "-x"], "netstat: unknown option '-x'"),
        (&["arp"], "arp: give -a to list the cache"),
        (
            &["mount", "devnp-tap.so"],
            "mount: -T io-pkt[N] is required",
        ),
        (
            &["mount", "-T", "qnet", "x"],
            "mount: -T qnet: expected io-pkt or io-pktN",
        ),
        (
            &["ping", "example.org"],
            "ping: example.org: not a numeric address",
        ),
        (&["ping", "-c", "0", "10.0.0.1"], "ping: bad count '0'"),
        (
            &["ping", "-s", "70000", "10.0.0.1"],
            "ping: packet size 70000 is too large",
        ),
        (&["ping"], "ping: no HOST given"),
        (&["sysctl", "-q"], "sysctl: unknown option '-q'"),
    ];
    for (args, want) in cases {
        let o = s.run(args);
        let (code, msg) = failure(&o);
        assert_eq!(code, 2, "{args:?}: {msg}");
        assert!(
            msg.starts_with(want),
            "{args:?}: {msg:?} should start with {want:?}"
        );
    }
    let o = Command::new(IOPKT).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_stack_is_a_runtime_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nothing");
    for args in [
        &["ifconfig", "-a"][..],
        &["netstat", "-rn"],
        &["sysctl", "-a"],
    ] {
        let o = Command::new(IOPKT)
            .args(args)
            .env("SOCK", &p)
            .output()
            .unwrap();
        let (code, msg) = failure(&o);
        assert_eq!(code, 1);
        assert_eq!(
            msg,
            format!(
                "{}: no io-pkt serving {}/dev/socket: is it running? (SOCK={})",
                args[0],
                p.display(),
                p.display()
            )
        );
    }
    // --sock wins over SOCK.
    let s = Stack0::new();
    let o = Command::new(IOPKT)
        .args([
            "--sock",
            s.prefix().to_str().unwrap(),
            "sysctl",
            "net.inet.ip.ttl",
        ])
        .env("SOCK", &p)
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn invoked_through_a_link_it_acts_as_the_command() {
    let s = Stack0::new();
    let bin = tempfile::tempdir().unwrap();
    for name in ["ifconfig", "netstat"] {
        std::os::unix::fs::symlink(IOPKT, bin.path().join(name)).unwrap();
    }
    let o = Command::new(bin.path().join("ifconfig"))
        .arg("-a")
        .env("SOCK", s.prefix())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        s.ok(&["ifconfig", "-a"])
    );
    let o = Command::new(bin.path().join("netstat"))
        .args(["-x"])
        .env("SOCK", s.prefix())
        .output()
        .unwrap();
    assert_eq!(
        failure(&o).1,
        "netstat: unknown option '-x' (usage: netstat [-i] [-r] [-s [-p PROTOCOL]] [-a] [-n])"
    );
}

#[test]
fn runtime_errors_from_the_stack_are_passed_through() {
    let s = Stack0::new();
    let (code, msg) = failure(&s.run(&["ifconfig", "nope0", "up"]));
    assert_eq!(code, 1);
    assert_eq!(
        msg,
        "ifconfig: no such interface: nope0 (list them with ifconfig -a)"
    );
    let (code, msg) = failure(&s.run(&["ifconfig", "en0", "mtu", "10"]));
    assert_eq!(code, 1);
    assert_eq!(
        msg,
        "ifconfig: en0: invalid argument: mtu 10 (allowed 68 to 65535)"
    );
    let (code, msg) = failure(&s.run(&["ifconfig", "nope0"]));
    assert_eq!(
        (code, msg.as_str()),
        (
            1,
            "ifconfig: nope0: no such interface (list them with ifconfig -a)"
        )
    );
    let (code, msg) = failure(&s.run(&["arp", "-d", "10.77.0.1"]));
    assert_eq!((code, msg.as_str()), (1, "arp: 10.77.0.1: no ARP entry"));
    let (code, msg) = failure(&s.run(&["mount", "-T", "io-pkt3", "devnp-tap.so"]));
    assert_eq!(code, 1);
    assert_eq!(
        msg,
        "mount: devnp-tap.so: this stack is io-pkt, not io-pkt3: use -T io-pkt"
    );
    let (code, msg) = failure(&s.run(&[
        "mount",
        "-T",
        "io-pkt",
        "-o",
        "dev=ytap,name=en",
        "devnp-tap.so",
    ]));
    assert_eq!(code, 1);
    assert!(msg.contains("cannot load devnp-tap.so"), "{msg}");
    let (code, msg) = failure(&s.run(&["ifconfig", "lo0", "destroy"]));
    assert_eq!(
        (code, msg.as_str()),
        (1, "ifconfig: lo0 cannot be destroyed")
    );
    s.ok(&["ifconfig", "en0", "destroy"]);
    assert!(!s.ok(&["ifconfig", "-a"]).contains("en0"));
    // Plain `netstat` lists sockets now (tests/netstat_sockets.rs); a
    // runtime failure of netstat still exits 1 with one line.
    let (code, msg) = failure(&s.run(&["netstat", "-s", "-p", "nosuch"]));
    assert_eq!(code, 1);
    assert!(
        msg.starts_with("netstat: nosuch: no such protocol"),
        "{msg}"
    );
}

#[test]
fn a_user_other_than_root_may_look_but_not_change() {
    if !rustix::process::geteuid().is_root() {
        // Not root: the stack here runs as this same user, who may change
        // it; another user's refusal can only be tested as root (setuid).
        let s = Stack0::new();
        s.ok(&["ifconfig", "en0", "up"]);
        eprintln!("skipped the other-user half of this test: needs root to switch users");
        return;
    }
    use std::os::unix::process::CommandExt;
    let s = Stack0::new();
    let o = s
        .cmd(&["ifconfig", "-a"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = s
        .cmd(&["ifconfig", "en0", "inet", "10.9.9.9/24"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let (code, msg) = failure(&o);
    assert_eq!(code, 1);
    assert_eq!(
        msg,
        "ifconfig: en0: permission denied: changing the stack's configuration needs root \
         (or the user io-pkt runs as)"
    );
    let o = s
        .cmd(&["sysctl", "-w", "net.inet.ip.ttl=9"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(
        failure(&o),
        (
            1,
            "sysctl: permission denied: changing the stack's configuration needs root \
             (or the user io-pkt runs as)"
                .into()
        )
    );
    assert_eq!(s.ok(&["sysctl", "-n", "net.inet.ip.ttl"]), "64\n");
    // And -i below 0.2 s is root's only.
    let o = s
        .cmd(&["ping", "-i", "0.01", "-c", "1", "10.77.0.1"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let (code, msg) = failure(&o);
    assert_eq!(code, 2);
    assert!(msg.starts_with("ping: cannot flood"), "{msg}");
}

#[test]
fn nicinfo_arp_and_ndp_listings() {
    let s = Stack0::new();
    s.configure();
    let out = s.ok(&["nicinfo", "en0"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "en0:");
    let field = |label: &str| -> String {
        let l = lines
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label} missing in {out}"));
        l.rsplit(' ').next().unwrap().to_string()
    };
    assert_eq!(field("Link is"), "UP");
    assert_eq!(field("Physical Node ID"), "02:00:00:00:00:01");
    assert_eq!(field("Maximum Transmittable data Unit"), "1500");
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("Packets Received OK"))
    );
    let all = s.ok(&["nicinfo"]);
    assert!(all.starts_with("lo0:\n") && all.contains("\nen0:\n"));
    assert_eq!(
        failure(&s.run(&["nicinfo", "en7"])),
        (
            1,
            "nicinfo: en7: no such interface (list them with ifconfig -a)".into()
        )
    );
    // Empty caches list as nothing (ARP) or a header (ND), and succeed.
    assert_eq!(s.ok(&["arp", "-an"]), "");
    assert_eq!(
        words(&s.ok(&["ndp", "-an"])),
        [
            "Neighbor",
            "Linklayer-Address",
            "Netif",
            "Expire",
            "State",
            "Flags"
        ]
    );
}

#[test]
fn ping_prints_replies_and_the_summary() {
    let s = Stack0::new();
    s.configure();
    let out = s.ok(&["ping", "-c", "3", "-i", "0.2", "-s", "100", "10.77.0.1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "PING 10.77.0.1 (10.77.0.1) 100(128) bytes of data."
    );
    for (i, seq) in (1..=3).enumerate() {
        let l = lines[1 + i];
        let prefix = format!("108 bytes from 10.77.0.1: icmp_seq={seq} ttl=64 time=");
        assert!(l.starts_with(&prefix) && l.ends_with(" ms"), "{l}");
    }
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "--- 10.77.0.1 ping statistics ---");
    assert!(
        lines[6].starts_with("3 packets transmitted, 3 received, 0% packet loss, time "),
        "{}",
        lines[6]
    );
    assert!(lines[7].starts_with("rtt min/avg/max/mdev = "));

    let out = s.ok(&["ping", "-6", "-c", "1", "fd00:77::1"]);
    assert!(out.starts_with("PING fd00:77::1 (fd00:77::1) 56 data bytes\n64 bytes from fd00:77::1: icmp_seq=1 ttl=64 time="));

    // Nobody answers: exit 1 after waiting -W seconds.
    let o = s.run(&["ping", "-c", "2", "-i", "0.2", "-W", "0.3", "10.77.0.9"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("2 packets transmitted, 0 received, 100% packet loss"),
        "{out}"
    );
    assert!(!out.contains("rtt"));

    // An ICMP error about our request.
    let o = s.run(&["ping", "-c", "1", "-W", "0.5", "10.77.0.66"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("From 10.77.0.1 icmp_seq=1 Destination Host Unreachable\n"),
        "{out}"
    );
    assert!(
        out.contains("1 packets transmitted, 0 received, +1 errors, 100% packet loss"),
        "{out}"
    );
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

/// An Ethernet frame to en0 carrying an ICMP echo request from 10.77.0.1 to
/// 10.77.0.2.
fn echo_request_to_en0() -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4];
    let c = inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![
        0x45, 0, 0, 32, 0, 7, 0, 0, 64, 1, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2,
    ];
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

/// `netstat -s` output as (group, [(value, description)]), checking the
/// NetBSD shape on the way: `proto:` lines, then `\tVALUE DESCRIPTION`.
fn parse_netstat_s(out: &str) -> Vec<(String, Vec<(u64, String)>)> {
    let mut groups: Vec<(String, Vec<(u64, String)>)> = Vec::new();
    for line in out.lines() {
        if let Some(body) = line.strip_prefix('\t') {
            let (n, d) = body.split_once(' ').expect("value and description");
            let n = n
                .parse()
                .unwrap_or_else(|_| panic!("not a count: {line:?}"));
            assert!(!d.is_empty() && !d.starts_with(' '), "{line:?}");
            groups
                .last_mut()
                .expect("a group line first")
                .1
                .push((n, d.into()));
        } else {
            let g = line.strip_suffix(':').unwrap_or_else(|| panic!("{line:?}"));
            assert!(!g.is_empty() && !g.contains(char::is_whitespace));
            groups.push((g.into(), Vec::new()));
        }
    }
    groups
}

fn count_of(groups: &[(String, Vec<(u64, String)>)], g: &str, what: &str) -> u64 {
    let (_, v) = groups.iter().find(|(n, _)| n == g).unwrap();
    v.iter().find(|(_, d)| d == what).unwrap().0
}

#[test]
fn netstat_s_prints_protocol_counters_netbsd_style() {
    let s = Stack0::new();
    s.configure();
    s.host.mem.receive("en0", &echo_request_to_en0()).unwrap();
    let out = s.ok(&["netstat", "-s"]);
    assert!(out.starts_with("ip:\n\t"), "{out}");
    let groups = parse_netstat_s(&out);
    let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ip", "icmp", "arp", "ip6", "icmp6", "sockets", "udp", "igmp", "tcp"
        ]
    );
    assert_eq!(groups[0].1[0].1, "total packets received");
    assert!(count_of(&groups, "ip", "total packets received") >= 1);
    assert!(count_of(&groups, "ip", "packets for this host") >= 1);
    assert_eq!(count_of(&groups, "icmp", "echo requests received"), 1);
    assert_eq!(count_of(&groups, "ip", "packets forwarded"), 0);

    // One protocol.
    let only = parse_netstat_s(&s.ok(&["netstat", "-s", "-p", "icmp"]));
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].0, "icmp");
    assert_eq!(count_of(&only, "icmp", "echo requests received"), 1);
    assert_eq!(
        parse_netstat_s(&s.ok(&["netstat", "-sp", "arp"]))[0].0,
        "arp"
    );
    let (code, msg) = failure(&s.run(&["netstat", "-s", "-p", "sctp"]));
    assert_eq!(code, 1);
    assert!(msg.contains("sctp: no such protocol"), "{msg}");
    let (code, _) = failure(&s.run(&["netstat", "-p", "ip"]));
    assert_eq!(code, 2);
    let (code, _) = failure(&s.run(&["netstat", "-s", "-p"]));
    assert_eq!(code, 2);

    // --json: the same groups.
    let j: serde_json::Value = serde_json::from_str(&s.ok(&["netstat", "-s", "--json"])).unwrap();
    let groups = j["counters"].as_array().unwrap();
    assert_eq!(groups.len(), 9);
    assert_eq!(groups[0]["name"], "ip");
    let icmp = groups.iter().find(|g| g["name"] == "icmp").unwrap();
    assert!(
        icmp["counters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "echo requests received" && c["value"] == 1)
    );
}
