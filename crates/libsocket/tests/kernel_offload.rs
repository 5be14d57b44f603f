//! The TAP driver's offloads at work against the Linux kernel: with the
//! virtio-net header (the default, `offload=all`) the kernel hands io-pkt
//! coalesced TCP segments of many MSS each and takes large ones from it
//! (our TSO);
//! with `offload=none` every frame is at most one MSS. The kernel's
//! counters of the TAP device say which: frames against bytes. Needs root;
//! skips otherwise.

mod common;
mod kernel;

use std::time::Duration;

use common::{Background, run_limited, text};
use kernel::{KERNEL4, KernelLink, STACK4, can_run, need};

const LIMIT: Duration = Duration::from_secs(120);
/// Bytes moved each way.
const BYTES: u64 = 20 << 20;
/// The MSS over a 1500-byte MTU with timestamps.
const MSS: u64 = 1448;

/// A sink on the kernel's side (`socat` to /dev/null) and a source on
/// ours, then the other way; the TAP's (tx_packets, rx_packets) deltas of
/// (kernel to stack, stack to kernel).
fn transfer_both_ways(link: &KernelLink) -> (u64, u64) {
    let count = format!("count={}", BYTES >> 20);
    // Kernel to stack: the kernel's dd sends, a socat on our stack sinks.
    let tx0 = link.tap_stat("tx_packets");
    {
        let sink = Background::spawn(link.stack_cmd("socat").args([
            "-u",
            &format!("TCP-LISTEN:9100,bind={STACK4},reuseaddr"),
            "OPEN:/dev/null",
        ]));
        let o = run_limited(
            link.kernel_cmd("sh").args([
                "-c",
                &format!(
                    "dd if=/dev/zero bs=1M {count} 2>/dev/null | socat -u - TCP:{STACK4}:9100,retry=100,interval=0.1"
                ),
            ]),
            LIMIT,
        );
        assert!(o.status.success(), "kernel to stack:\n{}", text(&o));
        // The last frames and the FIN exchange settle.
        std::thread::sleep(Duration::from_millis(300));
        drop(sink);
    }
    let down = link.tap_stat("tx_packets") - tx0;
    // Stack to kernel.
    let rx0 = link.tap_stat("rx_packets");
    {
        let sink = Background::spawn(link.kernel_cmd("socat").args([
            "-u",
            &format!("TCP-LISTEN:9101,bind={KERNEL4},reuseaddr"),
            "OPEN:/dev/null",
        ]));
        let o = run_limited(
            link.stack_cmd("sh").args([
                "-c",
                &format!(
                    "dd if=/dev/zero bs=1M {count} 2>/dev/null | socat -u - TCP:{KERNEL4}:9101,retry=100,interval=0.1"
                ),
            ]),
            LIMIT,
        );
        assert!(o.status.success(), "stack to kernel:\n{}", text(&o));
        // The last frames and the FIN exchange settle.
        std::thread::sleep(Duration::from_millis(300));
        drop(sink);
    }
    let up = link.tap_stat("rx_packets") - rx0;
    eprintln!("{BYTES} bytes each way: {down} frames to the stack, {up} from it");
    (down, up)
}

#[test]
fn the_vnet_header_carries_large_segments_and_none_does_not() {
    let t = "the_vnet_header_carries_large_segments_and_none_does_not";
    if !can_run(t) || !need(t, "socat") {
        return;
    }
    let segments = BYTES / MSS;

    let mut link = KernelLink::start("of", "");
    assert!(
        link.log().contains("TXCSUM,RXCSUM,TSO4,TSO6,LRO"),
        "the driver did not report its offloads:\n{}",
        link.log()
    );
    let (down, up) = transfer_both_ways(&link);
    // Coalesced: far fewer frames than segments of one MSS (ACKs and the
    // handshake are a few frames more, never this many).
    assert!(
        down < segments / 3,
        "kernel to stack took {down} frames for {segments} MSS"
    );
    // Our TCP builds large segments (TSO) that the kernel takes whole.
    assert!(
        up < segments / 3,
        "stack to kernel took {up} frames for {segments} MSS"
    );
    assert!(link.daemon_alive(), "io-pkt died:\n{}", link.log());
    drop(link);

    let mut plain = KernelLink::start("on", "offload=none");
    let (down, up) = transfer_both_ways(&plain);
    assert!(
        down >= segments && up >= segments,
        "without offloads every frame is one MSS at most: {down} and {up} frames for {segments} MSS"
    );
    assert!(plain.daemon_alive(), "io-pkt died:\n{}", plain.log());
}
