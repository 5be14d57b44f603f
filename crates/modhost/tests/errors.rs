//! Every way loading a module can fail gives one line that names the thing
//! and what to do.

mod common;

use std::path::PathBuf;

use common::*;
use iopkt_modhost::{LoadError, ModuleKind};

fn load_err(host: &iopkt_modhost::ModHost, kind: ModuleKind, name: &str, opts: &str) -> LoadError {
    match host.load(kind, name, opts) {
        Ok(l) => panic!("{name} {opts} loaded: {l:?}"),
        Err(e) => e,
    }
}

#[test]
fn missing_module_lists_where_it_looked() {
    let sink = Recorder::new();
    let host = host_with(
        &sink,
        1,
        vec![
            PathBuf::from("/nonexistent/a"),
            PathBuf::from("/nonexistent/b"),
        ],
    );
    let e = load_err(&host, ModuleKind::Driver, "foo", "");
    assert_eq!(
        e.to_string(),
        "driver module devnp-foo.so not found (searched: /nonexistent/a, /nonexistent/b; \
         add its directory to IOPKT_MODULE_PATH or give a path)"
    );
    let e = load_err(&host, ModuleKind::Protocol, "pf", "");
    assert!(
        e.to_string()
            .starts_with("protocol module lsm-pf.so not found (searched: /nonexistent/a")
    );
    let e = load_err(&host, ModuleKind::Driver, "/nonexistent/devnp-x.so", "");
    assert!(
        e.to_string()
            .starts_with("driver module /nonexistent/devnp-x.so not found"),
        "{e}"
    );
    assert!(!e.is_usage());
    host.shutdown();
}

#[test]
fn option_errors_name_the_option() {
    let sink = Recorder::new();
    let host = host(&sink);
    let cases = [
        (
            "tap",
            "bogus",
            "devnp-tap.so: unknown option 'bogus' (known: dev, offload, name, unit, mtu, mac, loss, delay, reorder, dup, corrupt)",
        ),
        (
            "pair",
            "name=en,bogus=1",
            "devnp-pair.so: unknown option 'bogus' (known: name, unit, mtu, mac, loss, delay, reorder, dup, corrupt)",
        ),
        (
            "pair",
            "mtu=abc",
            "devnp-pair.so: mtu=abc: expected a number from 68 to 65535",
        ),
        (
            "pair",
            "mtu=70000",
            "devnp-pair.so: mtu=70000: expected a number from 68 to 65535",
        ),
        (
            "pair",
            "mac=zz",
            "devnp-pair.so: mac=zz: expected six hex bytes such as 02:00:00:00:00:01",
        ),
        (
            "pair",
            "unit=x",
            "devnp-pair.so: unit=x: expected a number from 0 to 65535",
        ),
        (
            "pair",
            "loss=101",
            "devnp-pair.so: loss=101: expected a percentage from 0 to 100",
        ),
        (
            "pair",
            "delay",
            "devnp-pair.so: delay needs a value (delay=N)",
        ),
        (
            "pair",
            "=x",
            "libdevnp_pair.so: option '=x' has no name (expected key=value)",
        ),
        (
            "pair",
            "name=en,,mtu=1500",
            "libdevnp_pair.so: empty option in 'name=en,,mtu=1500' (options are key=value or flag, separated by commas)",
        ),
    ];
    for (driver, opts, want) in cases {
        let e = load_err(&host, ModuleKind::Driver, driver, opts);
        assert_eq!(e.to_string(), want, "options {opts:?}");
        assert!(e.is_usage(), "{opts:?} is a usage error");
    }
    assert!(
        sink.attached.lock().unwrap().is_empty(),
        "nothing attached on option errors"
    );
    host.shutdown();
}

#[test]
fn driver_init_errors_carry_the_drivers_message() {
    let sink = Recorder::new();
    let host = host(&sink);
    let e = load_err(&host, ModuleKind::Driver, "udp", "");
    assert_eq!(
        e.to_string(),
        "devnp-udp.so: needs remote=IP:PORT (with local=IP:PORT) or mcast=GROUP:PORT"
    );
    assert!(!e.is_usage());
    let e = load_err(&host, ModuleKind::Driver, "udp", "remote=nowhere");
    assert_eq!(
        e.to_string(),
        "devnp-udp.so: remote=nowhere: expected IP:PORT (IPv6 as [ADDR]:PORT)"
    );
    let e = load_err(&host, ModuleKind::Driver, "udp", "mcast=127.0.0.1:5000");
    assert!(
        e.to_string()
            .starts_with("devnp-udp.so: mcast=127.0.0.1:5000: not a multicast group"),
        "{e}"
    );

    // A port already taken by someone else.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = load_err(
        &host,
        ModuleKind::Driver,
        "udp",
        &format!("local=127.0.0.1:{port},remote=127.0.0.1:9"),
    );
    assert_eq!(
        e.to_string(),
        format!(
            "devnp-udp.so: cannot bind local=127.0.0.1:{port}: Address already in use \
             (another program uses that port: pick another)"
        )
    );
    host.shutdown();
}

#[test]
fn a_driver_is_not_a_protocol_module() {
    let sink = Recorder::new();
    let host = host(&sink);
    let path = drivers_dir().join("libdevnp_pair.so");
    let e = load_err(&host, ModuleKind::Protocol, path.to_str().unwrap(), "");
    assert_eq!(
        e.to_string(),
        "libdevnp_pair.so is a driver (load it with -d), not a protocol module"
    );
    host.shutdown();
}

const NOT_A_MODULE: &str = "int some_function(void) { return 1; }\n";

const OLD_ABI: &str = r#"
#include "iopkt/module.h"
static int init(const struct iopkt_host *h, const struct iopkt_option *o, size_t n, void **out, char *e, size_t l)
{ (void)h; (void)o; (void)n; (void)out; (void)e; (void)l; return -1; }
static const struct iopkt_module_desc desc = {
    .abi_version = 99, .kind = IOPKT_KIND_DRIVER, .name = "old", .description = "from the future",
    .options = NULL, .init = init, .fini = NULL,
};
const struct iopkt_module_desc *iopkt_module_entry(void) { return &desc; }
"#;

#[test]
fn foreign_objects_and_other_abi_versions_are_refused() {
    let dir = TempDir::new("errors");
    let not_mod = dir.0.join("libnotmod.so");
    std::fs::write(dir.0.join("notmod.c"), NOT_A_MODULE).unwrap();
    if gcc_shared(&dir.0.join("notmod.c"), &not_mod).is_none() {
        eprintln!("SKIPPED: gcc is not installed, cannot build test modules in C");
        return;
    }
    std::fs::write(dir.0.join("old.c"), OLD_ABI).unwrap();
    gcc_shared(&dir.0.join("old.c"), &dir.0.join("devnp-old.so")).unwrap();
    std::fs::write(dir.0.join("devnp-junk.so"), b"this is not an ELF file").unwrap();

    let sink = Recorder::new();
    let host = host_with(&sink, 1, vec![dir.0.clone()]);
    let e = load_err(&host, ModuleKind::Driver, not_mod.to_str().unwrap(), "");
    assert_eq!(
        e.to_string(),
        format!(
            "{} is not an iopkt module (no symbol iopkt_module_entry)",
            not_mod.display()
        )
    );
    let e = load_err(&host, ModuleKind::Driver, "old", "");
    assert_eq!(
        e.to_string(),
        "devnp-old.so speaks module ABI 99, this io-pkt speaks 1 (rebuild the module against include/iopkt/module.h)"
    );
    let e = load_err(&host, ModuleKind::Driver, "junk", "");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("cannot load {}/devnp-junk.so: ", dir.0.display())),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    host.shutdown();
}
