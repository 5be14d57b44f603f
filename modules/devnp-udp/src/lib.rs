//! devnp-udp: Ethernet frames carried one per UDP datagram, with no
//! privileges needed. The wire format is QEMU's: `-netdev dgram` (point to
//! point: `local=IP:PORT`, `remote=IP:PORT`) and `-netdev socket,mcast=`
//! (a shared segment: `mcast=GROUP:PORT`). IPv4 and IPv6.
//!
//! In multicast mode every member binds the group's port (SO_REUSEADDR and
//! SO_REUSEPORT, so several stacks on one host share it), joins the group on
//! the interface of `local=IP` (default: loopback, so the segment stays on
//! this host) and keeps IP_MULTICAST_LOOP on. A stack hears its own frames
//! back; it drops frames whose source MAC is its own.
//!
//! Receive uses recvmmsg into host buffers sized for the interface's MTU
//! (`pkt_alloc_rx`), up to one batch per wake-up; transmit uses sendmmsg.
//! A frame travels in one datagram, so the MTU is at most the largest IPv4
//! UDP payload less the Ethernet header and a VLAN tag.
//!
//! `ifconfig IF destroy` (or shutdown) unwatches and closes the socket.

mod sockaddr;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use iopkt_module_abi::driver::{
    Driver, FdHandler, FdWatch, Host, IfConfig, IfHandle, Interface, Options, Pkt,
};
use iopkt_module_abi::{IOPKT_FD_READ, IOPKT_KIND_DRIVER, IOPKT_MAX_BATCH};

use sockaddr::SockAddr;

/// Datagrams received per recvmmsg call, at most.
const RX_CHUNK: usize = 64;

/// Buffer bytes offered to one recvmmsg call: with large MTUs fewer
/// buffers are taken per call, since each is then allocated on its own.
const RX_BYTES: usize = 128 * 1024;

/// Largest UDP payload over IPv4 (65535 - 20 - 8), less the Ethernet header
/// and one VLAN tag.
const MAX_MTU: u32 = 65_507 - 18;

struct Link {
    host: Host,
    /// The socket; `None` once the interface is detached. Read-locked by
    /// tx, which may run on several threads at once.
    sock: RwLock<Option<OwnedFd>>,
    dest: SockAddr,
    ifp: OnceLock<IfHandle>,
    /// The watch on the socket; dropped before the socket is closed.
    watch: Mutex<Option<FdWatch>>,
}

impl Link {
    /// Stops receiving (no callback runs after the watch is dropped), then
    /// closes the socket.
    fn close(&self) {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(w);
        let s = self.sock.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(s);
    }
}

fn parse_addr(key: &str, v: Option<&str>) -> Result<SocketAddr, String> {
    let v = v.ok_or_else(|| format!("{key} needs a value ({key}=IP:PORT, IPv6 as [ADDR]:PORT)"))?;
    v.parse()
        .map_err(|_| format!("{key}={v}: expected IP:PORT (IPv6 as [ADDR]:PORT)"))
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", plain(&std::io::Error::last_os_error()))
}

/// An io::Error's text without the "(os error N)" suffix.
fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
    what: &str,
) -> Result<(), String> {
    // SAFETY: val points to a T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 { Err(os_err(what)) } else { Ok(()) }
}

fn socket_for(addr: &SocketAddr) -> Result<OwnedFd, String> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall; owned right away.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(os_err("cannot create a UDP socket"));
    }
    // Room for a burst of frames; the kernel caps it at net.core.rmem_max
    // and wmem_max, and a smaller buffer only means earlier drops.
    let size: libc::c_int = 1 << 21;
    let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size, "SO_RCVBUF");
    let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size, "SO_SNDBUF");
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: RawFd, addr: &SocketAddr, key: &str) -> Result<(), String> {
    let sa = SockAddr::from(*addr);
    // SAFETY: sa holds a valid sockaddr of len bytes.
    if unsafe { libc::bind(fd, sa.as_ptr(), sa.len()) } != 0 {
        let e = std::io::Error::last_os_error();
        let hint = if e.raw_os_error() == Some(libc::EADDRINUSE) {
            " (another program uses that port: pick another)"
        } else {
            ""
        };
        return Err(format!("cannot bind {key}={addr}: {}{hint}", plain(&e)));
    }
    Ok(())
}

/// The index of the interface holding IPv6 address `ip` (loopback for ::1).
fn if_index_of(ip: &Ipv6Addr) -> Result<u32, String> {
    if ip.is_loopback() || ip.is_unspecified() {
        // SAFETY: NUL-terminated name.
        return Ok(unsafe { libc::if_nametoindex(c"lo".as_ptr()) });
    }
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(os_err("cannot list interfaces"));
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() && found.is_none() {
        // SAFETY: a node of the list getifaddrs gave us.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_addr, when set to AF_INET6, points to a sockaddr_in6.
        if !ifa.ifa_addr.is_null() && unsafe { (*ifa.ifa_addr).sa_family } as i32 == libc::AF_INET6
        {
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            if sin6.sin6_addr.s6_addr == ip.octets() {
                // SAFETY: ifa_name is a NUL-terminated name.
                found = Some(unsafe { libc::if_nametoindex(ifa.ifa_name) });
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: the list from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    found
        .filter(|i| *i != 0)
        .ok_or_else(|| format!("local={ip}: no interface has this address"))
}

/// Point to point: bind `local` (any port if absent), send to `remote`.
fn open_p2p(local: Option<SocketAddr>, remote: SocketAddr) -> Result<(OwnedFd, SockAddr), String> {
    let local = local.unwrap_or(match remote {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    });
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(format!(
            "local={local} and remote={remote} must both be IPv4 or both IPv6"
        ));
    }
    let sock = socket_for(&local)?;
    bind(sock.as_raw_fd(), &local, "local")?;
    Ok((sock, SockAddr::from(remote)))
}

/// A multicast segment on `group`, joined on the interface of `local`.
fn open_mcast(group: SocketAddr, local: Option<IpAddr>) -> Result<(OwnedFd, SockAddr), String> {
    if !group.ip().is_multicast() {
        return Err(format!(
            "mcast={group}: not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)"
        ));
    }
    let sock = socket_for(&group)?;
    let fd = sock.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        &one,
        "SO_REUSEADDR",
    )?;
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEPORT,
        &one,
        "SO_REUSEPORT",
    )?;
    match (group, local) {
        (SocketAddr::V4(g), local) => {
            let ifaddr = match local {
                None => Ipv4Addr::LOCALHOST,
                Some(IpAddr::V4(a)) => a,
                Some(IpAddr::V6(_)) => {
                    return Err(format!("mcast={group} is IPv4 but local= is IPv6"));
                }
            };
            // Binding the group address receives only this group's datagrams.
            bind(fd, &SocketAddr::V4(g), "mcast")?;
            let mreq = libc::ip_mreq {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(g.ip().octets()),
                },
                imr_interface: libc::in_addr {
                    s_addr: u32::from_ne_bytes(ifaddr.octets()),
                },
            };
            setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                &mreq,
                "cannot join the group",
            )?;
            let ifa = libc::in_addr {
                s_addr: u32::from_ne_bytes(ifaddr.octets()),
            };
            setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                &ifa,
                "IP_MULTICAST_IF",
            )?;
            setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_LOOP,
                &one,
                "IP_MULTICAST_LOOP",
            )?;
            // TTL 0 keeps a loopback segment on this host even if routes change.
            let ttl: libc::c_int = if ifaddr.is_loopback() { 0 } else { 1 };
            setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_TTL,
                &ttl,
                "IP_MULTICAST_TTL",
            )?;
        }
        (SocketAddr::V6(g), local) => {
            let ifindex = match local {
                None => if_index_of(&Ipv6Addr::LOCALHOST)?,
                Some(IpAddr::V6(a)) => if_index_of(&a)?,
                Some(IpAddr::V4(_)) => {
                    return Err(format!("mcast={group} is IPv6 but local= is IPv4"));
                }
            };
            let mut bind_to = g;
            bind_to.set_scope_id(ifindex);
            bind(fd, &SocketAddr::V6(bind_to), "mcast")?;
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: g.ip().octets(),
                },
                ipv6mr_interface: ifindex,
            };
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                &mreq,
                "cannot join the group",
            )?;
            let idx = ifindex as libc::c_int;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                &idx,
                "IPV6_MULTICAST_IF",
            )?;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_LOOP,
                &one,
                "IPV6_MULTICAST_LOOP",
            )?;
            let hops: libc::c_int = 1;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_HOPS,
                &hops,
                "IPV6_MULTICAST_HOPS",
            )?;
            let mut dest = g;
            dest.set_scope_id(ifindex);
            return Ok((sock, SockAddr::from(SocketAddr::V6(dest))));
        }
    }
    Ok((sock, SockAddr::from(group)))
}

impl Interface for Link {
    fn detached(&self) {
        self.close();
    }

    fn tx(&self, pkts: Vec<Pkt>) {
        let sock = self.sock.read().unwrap_or_else(|e| e.into_inner());
        let Some(sock) = sock.as_ref() else {
            return;
        };
        let mut iov: Vec<libc::iovec> = pkts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.data().as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: zeroed mmsghdr is a valid empty message.
        let mut msgs: Vec<libc::mmsghdr> = (0..iov.len())
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_name = self.dest.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = self.dest.len();
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: msgs[sent..] are valid messages whose buffers (the
            // packets) outlive the call.
            let n = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    msgs[sent..].as_mut_ptr(),
                    (msgs.len() - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // A full socket buffer or an unreachable peer drops the rest,
                // as a full NIC ring would; the stack's protocols recover.
                // Skip the failing datagram and go on with the others.
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
        drop(pkts);
    }
}

impl FdHandler for Link {
    fn ready(&self, fd: RawFd, _events: u32) {
        let Some(ifp) = self.ifp.get().copied() else {
            return;
        };
        let mut delivered = 0;
        while delivered < IOPKT_MAX_BATCH as usize {
            let Some(mut first) = self.host.alloc_rx(ifp) else {
                return;
            };
            let chunk = (RX_BYTES / first.room_mut().len().max(1)).clamp(1, RX_CHUNK);
            let mut pkts = vec![first];
            pkts.extend((1..chunk).map_while(|_| self.host.alloc_rx(ifp)));
            let mut iov: Vec<libc::iovec> = pkts
                .iter_mut()
                .map(|p| {
                    let room = p.room_mut();
                    libc::iovec {
                        iov_base: room.as_mut_ptr().cast(),
                        iov_len: room.len(),
                    }
                })
                .collect();
            // SAFETY: zeroed mmsghdr is a valid empty message.
            let mut msgs: Vec<libc::mmsghdr> = (0..iov.len())
                .map(|_| unsafe { std::mem::zeroed() })
                .collect();
            for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every iovec points into a packet we own.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    msgs.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                return;
            }
            let n = n as usize;
            let mut batch = Vec::with_capacity(n);
            for (mut p, m) in pkts.drain(..n).zip(&msgs) {
                // A datagram larger than a buffer is not a frame we can take.
                if m.msg_hdr.msg_flags & libc::MSG_TRUNC == 0 {
                    p.set_len(m.msg_len as usize);
                    batch.push(p);
                }
            }
            delivered += n;
            self.host.input(ifp, batch);
            if n < chunk {
                return;
            }
        }
    }
}

struct Udp {
    link: Arc<Link>,
}

impl Drop for Udp {
    fn drop(&mut self) {
        // Normally done by detach already; not after a failed attach.
        self.link.close();
    }
}

impl Driver for Udp {
    fn init(host: Host, opts: &Options) -> Result<Udp, String> {
        let local = opts.has("local").then(|| opts.get("local"));
        let remote = opts.has("remote").then(|| opts.get("remote"));
        let mcast = opts.has("mcast").then(|| opts.get("mcast"));
        let (sock, dest) = match (mcast, remote) {
            (Some(_), Some(_)) => {
                return Err(
                    "give either remote= (point to point) or mcast= (a segment), not both".into(),
                );
            }
            (Some(g), None) => {
                let group = parse_addr("mcast", g)?;
                let local_ip = match local {
                    None => None,
                    Some(Some(v)) => Some(
                        v.parse::<IpAddr>()
                            .or_else(|_| v.parse::<SocketAddr>().map(|s| s.ip()))
                            .map_err(|_| {
                                format!(
                                    "local={v}: expected the IP address of the interface to join on"
                                )
                            })?,
                    ),
                    Some(None) => return Err("local needs a value (local=IP)".into()),
                };
                open_mcast(group, local_ip)?
            }
            (None, Some(r)) => {
                let remote = parse_addr("remote", r)?;
                let local = local.map(|l| parse_addr("local", l)).transpose()?;
                open_p2p(local, remote)?
            }
            (None, None) => {
                return Err("needs remote=IP:PORT (with local=IP:PORT) or mcast=GROUP:PORT".into());
            }
        };
        let raw = sock.as_raw_fd();
        let link = Arc::new(Link {
            host,
            sock: RwLock::new(Some(sock)),
            dest,
            ifp: OnceLock::new(),
            watch: Mutex::new(None),
        });
        // From here a failure drops the driver, which closes the socket.
        let drv = Udp {
            link: Arc::clone(&link),
        };
        let cfg = IfConfig {
            name_prefix: c"en",
            mac: None,
            mtu: 1500,
            max_mtu: MAX_MTU,
        };
        let ifp = host
            .attach(&cfg, Arc::clone(&link))
            .map_err(|rc| format!("cannot attach the interface (error {rc})"))?;
        let _ = link.ifp.set(ifp);
        let watch = host
            .watch_fd(raw, IOPKT_FD_READ, Arc::clone(&link))
            .map_err(|rc| format!("cannot watch the socket (error {rc})"))?;
        *link.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(watch);
        Ok(drv)
    }
}

iopkt_module_abi::export_module! {
    kind: IOPKT_KIND_DRIVER,
    name: "udp",
    description: "Ethernet frames in UDP datagrams (QEMU dgram / socket mcast compatible)",
    options: ["local", "remote", "mcast"],
    instance: Udp,
}
