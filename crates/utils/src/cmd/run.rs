//! `run`: executes a program with the socket library preloaded, so its
//! IPv4 and IPv6 sockets are the stack's (INTERFACES.md, "The socket
//! library").

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use iopkt_rsrcmgr::client_prefix;

use crate::env::Env;
use crate::fail::{Fail, Res, usage};

pub const SYNOPSIS: &str =
    "run [--sock PREFIX] -- COMMAND [ARGS...]   (runs COMMAND with the socket library preloaded)";

/// The library's file name, looked for next to the `iopkt` binary.
const LIBRARY: &str = "libiopkt_socket.so";

/// The command after the first `--` of this process's own arguments,
/// untouched: the global option parser would otherwise take a `--json`
/// or `--sock` that belongs to COMMAND.
fn command_after_dashes() -> Option<Vec<OsString>> {
    let mut args = std::env::args_os().skip(1);
    args.position(|a| a == "--")?;
    Some(args.collect())
}

/// `--sock PREFIX` given before the first `--` (after it, the words are
/// COMMAND's), else `$SOCK` or the default prefix.
fn prefix_before_dashes() -> PathBuf {
    let mut found = None;
    let mut args = std::env::args_os().skip(1).take_while(|a| a != "--");
    while let Some(a) = args.next() {
        if a == "--sock" {
            found = args.next().map(PathBuf::from);
        } else if let Some(p) = a.to_str().and_then(|s| s.strip_prefix("--sock=")) {
            found = Some(PathBuf::from(p));
        }
    }
    found.unwrap_or_else(client_prefix)
}

fn library() -> Res<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Fail::Runtime(format!("cannot find the iopkt binary: {e}")))?;
    let lib = exe.parent().unwrap_or(Path::new(".")).join(LIBRARY);
    if !lib.is_file() {
        return Err(Fail::Runtime(format!(
            "{} is missing: build it next to iopkt (cargo build --release)",
            lib.display()
        )));
    }
    Ok(lib)
}

/// LD_PRELOAD with our library first, keeping what was there.
fn preload(lib: &Path) -> OsString {
    let mut v = OsString::from(lib);
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
        v.push(":");
        v.push(old);
    }
    v
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    // The global parser may have taken COMMAND's own `--json` or
    // `--sock`: with `--`, both the command and the prefix are read again
    // from the arguments themselves.
    let (cmd, prefix): (Vec<OsString>, PathBuf) = match command_after_dashes() {
        Some(c) => (c, prefix_before_dashes()),
        None => (
            args.into_iter().map(OsString::from).collect(),
            env.prefix.clone(),
        ),
    };
    let Some((prog, rest)) = cmd.split_first() else {
        return Err(usage("no COMMAND given", SYNOPSIS));
    };
    let lib = library()?;
    // An absolute prefix, so the program may change directory.
    let prefix = std::env::current_dir()
        .map(|d| d.join(&prefix))
        .unwrap_or(prefix);
    let err = Command::new(prog)
        .args(rest)
        .env("LD_PRELOAD", preload(&lib))
        .env("SOCK", &prefix)
        .exec();
    Err(Fail::Runtime(format!(
        "cannot run {}: {err}",
        Path::new(prog).display()
    )))
}
