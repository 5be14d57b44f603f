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
use iopkt_module_abi::{IOPKT_FD_READ, IOPKT_KIND_DRIVER, IOPKT_MAX_BATCH};

const TUN_PATH: &CStr = c"/dev/net/tun";

/// The largest MTU of a Linux TAP device.
const MAX_MTU: u32 = 65_535;

struct Tap {
    host: Host,
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
fn open_tap(name: &str) -> Result<(OwnedFd, String), String> {
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
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
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
    Ok((fd, name_of(&ifr)))
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
            // SAFETY: writing the packet's bytes.
            unsafe { libc::write(fd.as_raw_fd(), p.data().as_ptr().cast(), p.len()) };
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
        while batch.len() < IOPKT_MAX_BATCH as usize {
            let Some(mut p) = self.host.alloc_rx(ifp) else {
                break;
            };
            let room = p.room_mut();
            // SAFETY: reading into the packet's room.
            let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
            if n <= 0 {
                break;
            }
            p.set_len(n as usize);
            batch.push(p);
        }
        if !batch.is_empty() {
            self.host.input(ifp, batch);
        }
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
        let (fd, linux_name) = open_tap(name)?;
        link_up(&linux_name)?;
        let raw = fd.as_raw_fd();
        let tap = Arc::new(Tap {
            host,
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
            .attach(&cfg, Arc::clone(&tap))
            .map_err(|rc| format!("cannot attach the interface for {linux_name} (error {rc})"))?;
        let _ = tap.ifp.set(ifp);
        let watch = host
            .watch_fd(raw, IOPKT_FD_READ, Arc::clone(&tap))
            .map_err(|rc| format!("cannot watch {linux_name} (error {rc})"))?;
        *tap.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(watch);
        host.log(
            iopkt_module_abi::IOPKT_LOG_INFO,
            &format!("attached to Linux TAP device {linux_name}"),
        );
        Ok(drv)
    }
}

iopkt_module_abi::export_module! {
    kind: IOPKT_KIND_DRIVER,
    name: "tap",
    description: "a Linux TAP device (created if missing)",
    options: ["dev"],
    instance: TapDriver,
}
