//! The tap driver against the real kernel: only as root with /dev/net/tun.
//! The device is named after this process and is not persistent, so it
//! disappears when the driver closes it (or the process dies).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use iopkt_modhost::ModuleKind;

fn sys(dev: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Sends one raw frame into the kernel side of `dev` with AF_PACKET, which
/// the kernel transmits into the TAP device: our driver reads it.
fn kernel_sends(dev: &str, frame: &[u8]) {
    let name = std::ffi::CString::new(dev).unwrap();
    // SAFETY: plain syscalls with valid arguments; the fd is closed below.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert!(ifindex != 0, "{dev} has no index");
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        let n = libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(n, frame.len() as isize, "AF_PACKET send: {err}");
    }
}

#[test]
fn tap_device_is_created_up_carries_frames_and_is_exclusive() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/net/tun").exists() {
        eprintln!("SKIPPED: the tap test needs root and /dev/net/tun");
        return;
    }
    let dev = format!("iopkt-t{}", std::process::id() % 10_000_000);
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host
        .load(ModuleKind::Driver, "tap", &format!("dev={dev},name=tp"))
        .unwrap();
    let ifx = l.ifindexes[0];
    assert_eq!(sink.info(ifx).name, "tp0");
    assert_eq!(sink.info(ifx).driver, "tap");

    // The Linux side exists and is up (IFF_UP = 1) right away.
    let flags = sys(&dev, "flags").expect("the TAP device exists in /sys/class/net");
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert!(flags & 1 != 0, "{dev} is up (flags {flags:#x})");

    // A second open of the same device: the kernel refuses a non-multiqueue
    // TAP that already has a reader with EBUSY.
    let e = host
        .load(ModuleKind::Driver, "tap", &format!("dev={dev}"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "devnp-tap.so: device {dev} is busy (another process holds it; choose another dev=)"
        )
    );
    // And a name that is not a TAP device at all.
    let e = host.load(ModuleKind::Driver, "tap", "dev=lo").unwrap_err();
    assert!(e.to_string().starts_with("devnp-tap.so: "), "{e}");
    eprintln!("dev=lo: {e}");

    // Our frames reach the kernel: its receive counter grows.
    let before: u64 = sys(&dev, "statistics/rx_packets").unwrap().parse().unwrap();
    let out: Vec<Vec<u8>> = (0..5).map(|i| frame(i, 100)).collect();
    host.transmit(ifx, bufs(&out));
    let end = Instant::now() + Duration::from_secs(5);
    let mut after = before;
    while Instant::now() < end && after < before + 5 {
        std::thread::sleep(Duration::from_millis(10));
        after = sys(&dev, "statistics/rx_packets").unwrap().parse().unwrap();
    }
    assert!(
        after >= before + 5,
        "kernel received {} of 5 frames",
        after - before
    );

    // Frames the kernel sends come to us (the kernel may also send its own
    // IPv6 chatter; look for ours).
    let ours = frame(77, 120);
    kernel_sends(&dev, &ours);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && !sink.frames(ifx).contains(&ours) {
        sink.wait_for(ifx, sink.frames(ifx).len() + 1, Duration::from_millis(200));
    }
    assert!(
        sink.frames(ifx).contains(&ours),
        "frame sent by the kernel arrived"
    );

    host.shutdown();
    assert!(
        sys(&dev, "flags").is_none(),
        "{dev} disappears when the driver closes it"
    );
}

#[test]
fn tap_with_mtu_9000_receives_jumbo_frames_and_detach_removes_the_device() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/net/tun").exists() {
        eprintln!("SKIPPED: the tap test needs root and /dev/net/tun");
        return;
    }
    let dev = format!("iopkt-j{}", std::process::id() % 10_000_000);
    let sink = Recorder::new();
    let host = host(&sink);
    let l = host
        .load(ModuleKind::Driver, "tap", &format!("dev={dev},mtu=9000"))
        .unwrap();
    let ifx = l.ifindexes[0];
    assert_eq!(sink.info(ifx).mtu, 9000);
    let st = std::process::Command::new("ip")
        .args(["link", "set", "dev", &dev, "mtu", "9000"])
        .status()
        .expect("run ip");
    assert!(st.success(), "ip link set {dev} mtu 9000");

    // 9000 bytes of payload after the Ethernet header: a full jumbo frame.
    let big = frame(9000, 9000 + 14);
    kernel_sends(&dev, &big);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && !sink.frames(ifx).contains(&big) {
        sink.wait_for(ifx, sink.frames(ifx).len() + 1, Duration::from_millis(200));
    }
    assert!(
        sink.frames(ifx).contains(&big),
        "the 9014-byte frame sent by the kernel arrived whole"
    );

    host.detach(ifx).unwrap();
    assert!(
        sys(&dev, "flags").is_none(),
        "{dev} disappears when its interface is detached"
    );
    assert_eq!(host.ifname(ifx), None);
    host.shutdown();
}
