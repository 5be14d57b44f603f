//! Each failure a user can cause at start-up is one clear line on stderr and
//! a non-zero exit (2 for usage mistakes, 1 otherwise), never a panic.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// Runs io-pkt with `args` and returns its output; it must exit by itself.
fn io_pkt_fails(args: &[&str]) -> Output {
    let o = run_limited(Command::new(io_pkt()).args(args), Duration::from_secs(30));
    assert!(
        !o.status.success(),
        "io-pkt {args:?} should fail:\n{}",
        text(&o)
    );
    o
}

/// The single error line: starts with "io-pkt: ", contains every part of
/// `needles`, and is not a panic.
fn assert_error(o: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    assert!(
        !err.contains("panicked"),
        "panic instead of an error:\n{err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("io-pkt: "))
        .unwrap_or_else(|| panic!("no 'io-pkt: ' line:\n{err}"));
    for n in needles {
        assert!(line.contains(n), "{n:?} missing from {line:?}");
    }
}

fn prefix_arg(p: &Path) -> String {
    format!("prefix={}", p.display())
}

#[test]
fn unknown_and_malformed_daemon_options() {
    let o = io_pkt_fails(&["-x"]);
    assert_error(&o, 2, &["unknown option -x", "-d", "-p", "-t"]);
    let o = io_pkt_fails(&["-t", "many"]);
    assert_error(&o, 2, &["-t many"]);
    let o = io_pkt_fails(&["-p", "tcpip", "colour=blue"]);
    assert_error(&o, 2, &["unknown option 'colour'", "prefix"]);
}

#[test]
fn a_module_that_is_not_found_lists_the_paths_searched() {
    let prefix = Daemon::fresh_prefix("nf");
    let o = io_pkt_fails(&["-d", "nosuchdrv", "-p", "tcpip", &prefix_arg(&prefix)]);
    assert_error(
        &o,
        1,
        &[
            "devnp-nosuchdrv.so",
            "not found",
            "searched",
            &bin_dir().display().to_string(),
        ],
    );
    assert!(
        !prefix.join("dev/socket").exists(),
        "socket served by a failed start"
    );
    let _ = std::fs::remove_dir_all(prefix);
}

#[test]
fn unknown_and_malformed_driver_options_are_named() {
    let prefix = Daemon::fresh_prefix("uo");
    let o = io_pkt_fails(&["-d", "pair", "bogus=1", "-p", "tcpip", &prefix_arg(&prefix)]);
    assert_error(&o, 2, &["unknown option 'bogus'", "known:", "name", "loss"]);
    let o = io_pkt_fails(&["-d", "pair", "mtu=abc", "-p", "tcpip", &prefix_arg(&prefix)]);
    assert_error(&o, 2, &["mtu"]);
    let o = io_pkt_fails(&["-d", "pair", "mac=zz", "-p", "tcpip", &prefix_arg(&prefix)]);
    assert_error(&o, 2, &["mac"]);
    let _ = std::fs::remove_dir_all(prefix);
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds `source` into `dir/name` as a shared object; None without gcc.
fn gcc_module(dir: &Path, name: &str, source: &str) -> Option<PathBuf> {
    if !have("gcc") {
        eprintln!("skipped: gcc is not installed");
        return None;
    }
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let out = dir.join(name);
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include");
    let o = run_limited(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-I"])
            .arg(include)
            .arg("-o")
            .arg(&out)
            .arg(&src),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "gcc:\n{}", text(&o));
    Some(out)
}

const NOT_A_MODULE: &str = "int some_function(void) { return 42; }\n";

const ABI_99: &str = r#"
#include "iopkt/module.h"
static int init(const struct iopkt_host *h, const struct iopkt_option *o, size_t n, void **out, char *e, size_t l)
{ (void)h; (void)o; (void)n; (void)out; (void)e; (void)l; return -1; }
static const struct iopkt_module_desc desc = {
    .abi_version = 99, .kind = IOPKT_KIND_DRIVER, .name = "future", .description = "built for another ABI",
    .options = NULL, .init = init, .fini = NULL,
};
const struct iopkt_module_desc *iopkt_module_entry(void) { return &desc; }
"#;

#[test]
fn a_missing_entry_symbol_and_a_wrong_abi_version_are_refused() {
    let dir = TempDir(std::env::temp_dir().join(format!("iopkt-badmod-{}", unique("b"))));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let Some(plain) = gcc_module(&dir.0, "devnp-plain.so", NOT_A_MODULE) else {
        return;
    };
    let Some(_) = gcc_module(&dir.0, "devnp-future.so", ABI_99) else {
        return;
    };
    let prefix = Daemon::fresh_prefix("bm");

    let o = io_pkt_fails(&[
        "-d",
        plain.to_str().expect("path"),
        "-p",
        "tcpip",
        &prefix_arg(&prefix),
    ]);
    assert_error(
        &o,
        1,
        &[
            "devnp-plain.so",
            "not an iopkt module",
            "iopkt_module_entry",
        ],
    );

    // Found through IOPKT_MODULE_PATH by its short name.
    let o = run_limited(
        Command::new(io_pkt())
            .args(["-d", "future", "-p", "tcpip", &prefix_arg(&prefix)])
            .env("IOPKT_MODULE_PATH", &dir.0),
        Duration::from_secs(30),
    );
    assert_error(&o, 1, &["devnp-future.so", "ABI 99", "speaks 1"]);
    let _ = std::fs::remove_dir_all(prefix);
}

#[test]
fn a_tap_device_without_permission_says_so() {
    if skip_unless_root("a_tap_device_without_permission_says_so") {
        return;
    }
    // An unprivileged user (nobody) cannot create a TAP device.
    let prefix = Daemon::fresh_prefix("perm");
    let mut cmd = Command::new(io_pkt());
    cmd.args([
        "-d",
        "tap",
        &format!("dev={}", unique("np")),
        "-p",
        "tcpip",
        &prefix_arg(&prefix),
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = run_limited(&mut cmd, Duration::from_secs(30));
    assert_error(&o, 1, &["devnp-tap.so", "ermission"]);
    let _ = std::fs::remove_dir_all(prefix);
}

#[test]
fn a_busy_tap_device_and_a_served_prefix_are_refused() {
    if skip_unless_root("a_busy_tap_device_and_a_served_prefix_are_refused") {
        return;
    }
    let tap = unique("bz");
    let first = Daemon::fresh_prefix("b1");
    let _d = Daemon::start(
        None,
        &first,
        &[
            "-d",
            "tap",
            &format!("dev={tap}"),
            "-p",
            "tcpip",
            &prefix_arg(&first),
        ],
    );
    // The same TAP device from a second stack.
    let second = Daemon::fresh_prefix("b2");
    let o = io_pkt_fails(&[
        "-d",
        "tap",
        &format!("dev={tap}"),
        "-p",
        "tcpip",
        &prefix_arg(&second),
    ]);
    assert_error(&o, 1, &[&tap, "busy"]);
    let _ = std::fs::remove_dir_all(second);
    // The same prefix from a second stack.
    let o = io_pkt_fails(&["-d", "pair", "-p", "tcpip", &prefix_arg(&first)]);
    assert_error(
        &o,
        1,
        &["already", &first.join("dev/socket").display().to_string()],
    );
    // And the first stack is still serving.
    iopkt_ok(&first, &["ifconfig", "-a"]);
}

#[test]
fn sigterm_shuts_down_cleanly_and_removes_the_socket() {
    let prefix = Daemon::fresh_prefix("st");
    let mut d = Daemon::start(
        None,
        &prefix,
        &["-d", "pair", "-p", "tcpip", &prefix_arg(&prefix)],
    );
    let sock = prefix.join("dev/socket");
    assert!(sock.exists());
    assert_eq!(
        d.stop(),
        Some(0),
        "exit status after SIGTERM:\n{}",
        d.log_text()
    );
    assert!(!sock.exists(), "socket path left behind");
}
