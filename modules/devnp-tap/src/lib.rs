//! devnp-tap: a Linux TAP device (created if missing, `dev=LINUXNAME`;
//! default: the kernel picks `iopkt%d`).
//!
//! The device is opened with IFF_TAP | IFF_NO_PI (plain Ethernet frames, no
//! packet-information header), non-blocking, and its Linux side is brought
//! up at once so the kernel can use it without an extra `ip link set up`.
//! Each read wake-up takes up to one batch of frames into host buffers
//! sized for the interface's MTU (`pkt_alloc_rx`), so `mtu=9000` receives
//! 9000-byte frames; tx writes each frame. The driver carries MTUs up to
//! 65535, the TAP device's own limit.
//!
//! Offloads (`offload=all`, the default): the device is opened with
//! IFF_VNET_HDR, so a `virtio_net_hdr` travels in front of every frame,
//! and told with TUNSETOFFLOAD that we take partial checksums and TCP
//! segments of up to 64 KiB (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6). What
//! the kernel sends then comes with its checksum marked verified or
//! partial (made on this host: the stack does not verify it) and TCP
//! coalesced into large segments; what we send leaves with a partial
//! checksum for the kernel to complete (or not, when it delivers locally)
//! and, from a TCP that uses TSO, as large segments the kernel cuts. The
//! interface is attached with TXCSUM, RXCSUM, TSO4, TSO6 and LRO.
//! `offload=csum` keeps the header and the checksums but no large
//! segments either way; `offload=none` opens the device without the
//! header, every checksum computed and verified by the stack, one
//! MTU-sized frame per system call.
//!
//! `ifconfig IF destroy` (or shutdown) unwatches and closes the device: a
//! non-persistent device then disappears from Linux. `ifconfig IF up/down`
//! is recorded but leaves the Linux side as it is: the Linux end belongs to
//! whoever configures the host side (it was brought up once at attach).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use iopkt_module_abi::driver::{
    Driver, FdHandler, FdWatch, Host, IfConfig, IfHandle, Interface, Options, Pkt,
};
use iopkt_module_abi::virtio_net::{self, VnetHdr};
use iopkt_module_abi::{
    IOPKT_FD_READ, IOPKT_IFCAP_LRO, IOPKT_IFCAP_RXCSUM, IOPKT_IFCAP_TSO4, IOPKT_IFCAP_TSO6,
    IOPKT_IFCAP_TXCSUM, IOPKT_KIND_DRIVER, IOPKT_MAX_BATCH, IOPKT_MAX_GSO_FRAME,
    IOPKT_PKT_F_CSUM_VALID, IOPKT_PKT_F_GSO_TCPV4, IOPKT_PKT_F_GSO_TCPV6,
};

const TUN_PATH: &CStr = c"/dev/net/tun";

/// The largest MTU of a Linux TAP device.
const MAX_MTU: u32 = 65_535;

/// What the driver asks of the device (`offload=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offload {
    /// No virtio-net header: plain frames, checksums by the stack.
    None,
    /// The header, partial and verified checksums both ways.
    Csum,
    /// As `Csum`, and TCP segments of up to 64 KiB both ways.
    All,
}

impl Offload {
    fn parse(v: Option<&str>) -> Result<Offload, String> {
        match v {
            Some("none") => Ok(Offload::None),
            Some("csum") => Ok(Offload::Csum),
            Some("all") => Ok(Offload::All),
            _ => Err("offload= takes none, csum or all".into()),
        }
    }

    /// TUNSETOFFLOAD's argument.
    fn tun_flags(self) -> libc::c_uint {
        match self {
            Offload::None => 0,
            Offload::Csum => libc::TUN_F_CSUM,
            Offload::All => libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6,
        }
    }

    /// The interface's capabilities for the stack.
    fn caps(self) -> u32 {
        match self {
            Offload::None => 0,
            Offload::Csum => IOPKT_IFCAP_TXCSUM | IOPKT_IFCAP_RXCSUM,
            Offload::All => {
                IOPKT_IFCAP_TXCSUM
                    | IOPKT_IFCAP_RXCSUM
                    | IOPKT_IFCAP_TSO4
                    | IOPKT_IFCAP_TSO6
                    | IOPKT_IFCAP_LRO
            }
        }
    }
}

struct Tap {
    host: Host,
    offload: Offload,
    /// Where the part of a coalesced segment beyond a receive buffer lands
    /// (only the receive callback uses it: one worker, never contended).
    spill: Mutex<Vec<u8>>,
    /// The device; `None` once the interface is detached (closing it
    /// removes a non-persistent device). Read-locked by tx, which may run
    /// on several threads at once.
    fd: RwLock<Option<OwnedFd>>,
    ifp: OnceLock<IfHandle>,
    /// The watch on the device; dropped before the device is closed.
    watch: Mutex<Option<FdWatch>>,
    /// Administratively up in the stack (`ifconfig IF up`).
    admin_up: AtomicBool,
    linux_name: String,
}

impl Tap {
    /// Stops reading (no callback runs after the watch is dropped), then
    /// closes the device.
    fn close(&self) {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(w);
        let fd = self.fd.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(fd);
    }
}

fn ifreq_named(name: &str) -> Result<libc::ifreq, String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
        return Err(format!(
            "dev={name}: expected a Linux interface name of 1 to {} characters",
            libc::IFNAMSIZ - 1
        ));
    }
    // SAFETY: an all-zero ifreq is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(ifr)
}

fn name_of(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Opens (creating if needed) the TAP device `name`.
fn open_tap(name: &str, offload: Offload) -> Result<(OwnedFd, String), String> {
    // SAFETY: plain syscall with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            TUN_PATH.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                "cannot open /dev/net/tun: no such device (the kernel needs TUN/TAP; create the node with: mknod /dev/net/tun c 10 200)".to_string()
            }
            Some(libc::EACCES) | Some(libc::EPERM) => {
                format!("cannot open /dev/net/tun: {} (needs root or CAP_NET_ADMIN)", plain(&e))
            }
            _ => format!("cannot open /dev/net/tun: {}", plain(&e)),
        });
    }
    // SAFETY: a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ifr = ifreq_named(name)?;
    let vnet = if offload == Offload::None {
        0
    } else {
        libc::IFF_VNET_HDR
    };
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet) as libc::c_short;
    // SAFETY: TUNSETIFF takes a pointer to an ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EBUSY) => {
                format!("device {name} is busy (another process holds it; choose another dev=)")
            }
            Some(libc::EPERM) | Some(libc::EACCES) => {
                format!(
                    "cannot create TAP device {name}: {} (needs root or CAP_NET_ADMIN)",
                    plain(&e)
                )
            }
            Some(libc::EINVAL) => format!(
                "cannot use {name} as a TAP device: it exists and is not a TAP device (choose another dev=)"
            ),
            _ => format!("cannot create TAP device {name}: {}", plain(&e)),
        });
    }
    let linux_name = name_of(&ifr);
    if offload != Offload::None {
        set_vnet(&fd, &linux_name, offload)?;
    }
    Ok((fd, linux_name))
}

/// Sets the virtio-net header size and tells the device which offloads
/// we take.
fn set_vnet(fd: &OwnedFd, name: &str, offload: Offload) -> Result<(), String> {
    let size = virtio_net::HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ takes a pointer to an int.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ as _, &size) } != 0 {
        return Err(format!(
            "cannot set the virtio-net header size of {name}: {} (try offload=none)",
            plain(&std::io::Error::last_os_error())
        ));
    }
    // SAFETY: TUNSETOFFLOAD takes the flags by value.
    let arg = offload.tun_flags() as libc::c_ulong;
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD as _, arg) } != 0 {
        return Err(format!(
            "cannot set the offloads of {name}: {} (try offload=none)",
            plain(&std::io::Error::last_os_error())
        ));
    }
    Ok(())
}

/// An io::Error's text without the "(os error N)" suffix.
fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Brings the Linux side of `name` up (SIOCSIFFLAGS with IFF_UP).
fn link_up(name: &str) -> Result<(), String> {
    // SAFETY: plain syscall; closed below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(format!(
            "cannot bring {name} up: {}",
            plain(&std::io::Error::last_os_error())
        ));
    }
    // SAFETY: a new fd we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut ifr = ifreq_named(name)?;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS take a pointer to an ifreq.
    let rc = unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) != 0 {
            -1
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut ifr)
        }
    };
    if rc != 0 {
        return Err(format!(
            "cannot bring {name} up: {}",
            plain(&std::io::Error::last_os_error())
        ));
    }
    Ok(())
}

impl Interface for Tap {
    fn tx(&self, pkts: Vec<Pkt>) {
        let fd = self.fd.read().unwrap_or_else(|e| e.into_inner());
        let Some(fd) = fd.as_ref() else {
            return;
        };
        for p in pkts {
            // One write is one frame. A full device queue (EAGAIN) drops
            // the frame, as a full NIC ring would.
            if self.offload == Offload::None {
                // SAFETY: writing the packet's bytes.
                unsafe { libc::write(fd.as_raw_fd(), p.data().as_ptr().cast(), p.len()) };
                continue;
            }
            let gso = if p.flags() & (IOPKT_PKT_F_GSO_TCPV4 | IOPKT_PKT_F_GSO_TCPV6) != 0 {
                p.gso_size()
            } else {
                0
            };
            let hdr = virtio_net::tx_header(p.flags(), p.csum_partial(), gso, p.data()).to_bytes();
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_ptr() as *mut libc::c_void,
                    iov_len: hdr.len(),
                },
                libc::iovec {
                    iov_base: p.data().as_ptr() as *mut libc::c_void,
                    iov_len: p.len(),
                },
            ];
            // SAFETY: both iovecs point to live bytes we own.
            unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) };
        }
    }

    fn set_up(&self, up: bool) {
        if self.admin_up.swap(up, Ordering::Relaxed) != up {
            let state = if up { "up" } else { "down" };
            self.host.log(
                iopkt_module_abi::IOPKT_LOG_DEBUG,
                &format!(
                    "interface of {} set {state} (the Linux side is left as it is)",
                    self.linux_name
                ),
            );
        }
    }

    fn detached(&self) {
        self.close();
        self.host.log(
            iopkt_module_abi::IOPKT_LOG_INFO,
            &format!("released Linux TAP device {}", self.linux_name),
        );
    }
}

impl FdHandler for Tap {
    fn ready(&self, fd: RawFd, _events: u32) {
        let Some(ifp) = self.ifp.get().copied() else {
            return;
        };
        let mut batch = Vec::new();
        let mut spill = self.spill.lock().unwrap_or_else(|e| e.into_inner());
        while batch.len() < IOPKT_MAX_BATCH as usize {
            let Some(mut p) = self.host.alloc_rx(ifp) else {
                break;
            };
            if self.offload == Offload::None {
                let room = p.room_mut();
                // SAFETY: reading into the packet's room.
                let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
                if n <= 0 {
                    break;
                }
                p.set_len(n as usize);
                batch.push(p);
                continue;
            }
            match self.read_vnet(fd, p, &mut spill) {
                Read::Frame(p) => batch.push(p),
                Read::Dropped => {}
                Read::Empty => break,
            }
        }
        drop(spill);
        if !batch.is_empty() {
            self.host.input(ifp, batch);
        }
    }
}

/// The outcome of one read from the device.
enum Read {
    Frame(Pkt),
    /// A frame was read but could not be kept (no buffer for a large one,
    /// or too short to carry the header).
    Dropped,
    /// Nothing more to read now.
    Empty,
}

impl Tap {
    /// Reads one frame with its virtio-net header into `p` (spilling what
    /// does not fit into `spill`, then moving the whole frame into a
    /// buffer of its size) and gives it the offload state the header
    /// vouches for.
    fn read_vnet(&self, fd: RawFd, mut p: Pkt, spill: &mut Vec<u8>) -> Read {
        let lro = self.offload == Offload::All;
        if lro && spill.len() < IOPKT_MAX_GSO_FRAME as usize {
            spill.resize(IOPKT_MAX_GSO_FRAME as usize, 0);
        }
        let mut hdr = [0u8; virtio_net::HDR_LEN];
        let room = p.room_mut();
        let room_len = room.len();
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: room.as_mut_ptr().cast(),
                iov_len: room_len,
            },
            libc::iovec {
                iov_base: spill.as_mut_ptr().cast(),
                iov_len: if lro { spill.len() } else { 0 },
            },
        ];
        // SAFETY: every iovec points to writable memory of its length.
        let n = unsafe { libc::readv(fd, iov.as_ptr(), 3) };
        if n <= 0 {
            return Read::Empty;
        }
        let Some(len) = (n as usize).checked_sub(virtio_net::HDR_LEN) else {
            return Read::Dropped;
        };
        if len > room_len {
            // A coalesced segment: into a buffer that holds all of it.
            let Some(mut big) = self.host.alloc_len(len) else {
                return Read::Dropped;
            };
            let Some(dst) = big.room_mut().get_mut(..len) else {
                return Read::Dropped;
            };
            let (head, tail) = dst.split_at_mut(room_len);
            head.copy_from_slice(&p.room_mut()[..room_len]);
            let Some(rest) = spill.get(..tail.len()) else {
                return Read::Dropped;
            };
            tail.copy_from_slice(rest);
            p = big;
        }
        p.set_len(len);
        let h = VnetHdr::parse(&hdr);
        let o = virtio_net::rx_offload(&h, len, lro);
        p.set_flags(o.flags & IOPKT_PKT_F_CSUM_VALID);
        if o.flags & iopkt_module_abi::IOPKT_PKT_F_CSUM_PARTIAL != 0 {
            p.set_csum_partial(o.csum_start, o.csum_offset);
        }
        let gso = o.flags & (IOPKT_PKT_F_GSO_TCPV4 | IOPKT_PKT_F_GSO_TCPV6);
        if gso != 0 {
            p.set_gso(gso, o.gso_size);
        }
        Read::Frame(p)
    }
}

struct TapDriver {
    tap: Arc<Tap>,
}

impl Drop for TapDriver {
    fn drop(&mut self) {
        // Normally done by detach already; not after a failed attach.
        self.tap.close();
    }
}

impl Driver for TapDriver {
    fn init(host: Host, opts: &Options) -> Result<TapDriver, String> {
        let name = match (opts.has("dev"), opts.get("dev")) {
            (false, _) => "iopkt%d",
            (true, Some(n)) => n,
            (true, None) => return Err("dev needs a value (dev=LINUXNAME)".into()),
        };
        let offload = if opts.has("offload") {
            Offload::parse(opts.get("offload"))?
        } else {
            Offload::All
        };
        let (fd, linux_name) = open_tap(name, offload)?;
        link_up(&linux_name)?;
        let raw = fd.as_raw_fd();
        let tap = Arc::new(Tap {
            host,
            offload,
            spill: Mutex::new(Vec::new()),
            fd: RwLock::new(Some(fd)),
            ifp: OnceLock::new(),
            watch: Mutex::new(None),
            admin_up: AtomicBool::new(false),
            linux_name: linux_name.clone(),
        });
        // From here a failure drops the driver, which closes the device.
        let drv = TapDriver {
            tap: Arc::clone(&tap),
        };
        let cfg = IfConfig {
            name_prefix: c"en",
            mac: None,
            mtu: 1500,
            max_mtu: MAX_MTU,
        };
        let ifp = host
            .attach_offloading(&cfg, offload.caps(), Arc::clone(&tap))
            .map_err(|rc| format!("cannot attach the interface for {linux_name} (error {rc})"))?;
        let _ = tap.ifp.set(ifp);
        let watch = host
            .watch_fd(raw, IOPKT_FD_READ, Arc::clone(&tap))
            .map_err(|rc| format!("cannot watch {linux_name} (error {rc})"))?;
        *tap.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(watch);
        host.log(
            iopkt_module_abi::IOPKT_LOG_INFO,
            &format!(
                "attached to Linux TAP device {linux_name} (offloads: {})",
                match offload.caps() {
                    0 => "none".to_string(),
                    c => iopkt_module_abi::driver::offload_names(c),
                }
            ),
        );
        Ok(drv)
    }
}

iopkt_module_abi::export_module! {
    kind: IOPKT_KIND_DRIVER,
    name: "tap",
    description: "a Linux TAP device (created if missing)",
    options: ["dev", "offload"],
    instance: TapDriver,
}
