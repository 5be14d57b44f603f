//! A driver written in C against include/iopkt/module.h alone
//! (tests/c-driver/devnp-cudp.c) is compiled, loaded twice, and carries
//! frames between its two instances byte for byte.

mod common;

use std::time::Duration;

use common::*;
use iopkt_modhost::ModuleKind;

#[test]
fn c_driver_carries_frames_between_two_instances() {
    let dir = TempDir::new("cdriver");
    let so = dir.0.join("devnp-cudp.so");
    if gcc_shared(&workspace_root().join("tests/c-driver/devnp-cudp.c"), &so).is_none() {
        eprintln!("SKIPPED: gcc is not installed, cannot build tests/c-driver/devnp-cudp.c");
        return;
    }
    let sink = Recorder::new();
    let host = host_with(&sink, 2, vec![dir.0.clone()]);
    let (pa, pb) = (free_port(), free_port());
    let a = host
        .load(
            ModuleKind::Driver,
            "cudp",
            &format!("local=127.0.0.1:{pa},remote=127.0.0.1:{pb}"),
        )
        .unwrap();
    let b = host
        .load(
            ModuleKind::Driver,
            "devnp-cudp.so",
            &format!("local=127.0.0.1:{pb},remote=127.0.0.1:{pa},name=cx"),
        )
        .unwrap();
    assert_eq!(a.module, "devnp-cudp.so");
    let (ia, ib) = (a.ifindexes[0], b.ifindexes[0]);
    assert_eq!(sink.info(ia).name, "cu0", "the driver's default prefix");
    assert_eq!(sink.info(ib).name, "cx0", "name= overrides it");
    assert_eq!(sink.info(ia).driver, "cudp");

    let sent: Vec<Vec<u8>> = (0..300)
        .map(|i| frame(i, 60 + (i as usize * 7) % 1450))
        .collect();
    let got = send_paced(&host, &sink, ia, ib, &sent, 32);
    assert_same_frames(&got, &sent, "cu0 to cx0");
    assert!(sink.frames(ia).is_empty());

    host.transmit(ib, bufs(&[frame(9999, 1514)]));
    assert_eq!(
        sink.wait_for(ia, 1, Duration::from_secs(10)),
        [frame(9999, 1514)]
    );

    // C init errors come back as the module's own line.
    let e = host
        .load(ModuleKind::Driver, "cudp", "local=1.2.3")
        .unwrap_err();
    assert_eq!(e.to_string(), "devnp-cudp.so: local= expects IPv4:PORT");

    // The driver states no max_mtu: it receives into pool buffers, so it
    // carries what one holds (2048 bytes of frame less 18).
    assert_eq!(sink.info(ia).max_mtu, 2030);
    let e = host
        .load(
            ModuleKind::Driver,
            "cudp",
            &format!(
                "local=127.0.0.1:{},remote=127.0.0.1:{pa},mtu=9000",
                free_port()
            ),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "devnp-cudp.so: mtu=9000: this driver carries at most 2030"
    );
    let e = host.set_mtu(ia, 2031).unwrap_err();
    assert!(e.contains("at most 2030"), "{e}");
    host.set_mtu(ia, 2030).unwrap();
    host.shutdown();
}
