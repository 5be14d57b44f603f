//! Where a stack's socket lives. The daemon and every client use the same
//! rule, so a stack started without `prefix=` and a utility run without
//! `SOCK` find each other.

use std::path::{Path, PathBuf};

/// The prefix used when none is given:
/// 1. `$IOPKT_PREFIX` if set and not empty;
/// 2. `/run/iopkt` for root;
/// 3. `$XDG_RUNTIME_DIR/iopkt` if `XDG_RUNTIME_DIR` is set and not empty;
/// 4. `/tmp/iopkt-<uid>` otherwise.
pub fn default_prefix() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("IOPKT_PREFIX") {
        return PathBuf::from(p);
    }
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/iopkt");
    }
    if let Some(x) = env("XDG_RUNTIME_DIR") {
        return Path::new(&x).join("iopkt");
    }
    PathBuf::from(format!("/tmp/iopkt-{}", uid.as_raw()))
}

/// The prefix a client talks to: `$SOCK` if set and not empty, else
/// [`default_prefix`].
pub fn client_prefix() -> PathBuf {
    match std::env::var_os("SOCK").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => default_prefix(),
    }
}

/// `<prefix>/dev/socket`.
pub fn socket_path(prefix: &Path) -> PathBuf {
    prefix.join("dev").join("socket")
}
