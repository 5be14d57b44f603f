//! Making `<prefix>/dev/socket` appear only when it can be served, and only
//! once per prefix.

use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mio::net::UnixListener;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Something answers on the socket path already.
    InUse(PathBuf),
    /// The path exists and is not a socket: we do not remove what we did not
    /// make.
    NotASocket(PathBuf),
    /// A system call failed on `path`.
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::InUse(p) => write!(f, "another io-pkt already serves {}", p.display()),
            StartError::NotASocket(p) => write!(
                f,
                "{} exists and is not a socket: remove it or choose another prefix",
                p.display()
            ),
            StartError::Io { what, path, err } => {
                write!(f, "cannot {what} {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for StartError {}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StartError + 'a {
    move |err| StartError::Io {
        what,
        path: path.to_path_buf(),
        err,
    }
}

/// The socket file we created, identified so that shutdown removes it only
/// if it is still ours.
pub(crate) struct BoundPath {
    pub path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundPath {
    /// Removes the socket path if it is still the file we made.
    pub fn remove(&self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && m.dev() == self.dev
            && m.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Checks an existing path: a live server is an error, a stale socket is
/// removed.
fn clear_stale(path: &Path) -> Result<(), StartError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(StartError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(StartError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            // Nobody listens: a server died without cleaning up.
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("remove the stale socket", path)(e)),
            }
        }
        Err(e) => Err(io_err("check", path)(e)),
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Binds and listens under a temporary name, then links the socket to its
/// real name: clients never see a path nobody listens on, and of two servers
/// racing for one prefix only one link succeeds.
pub(crate) fn bind(prefix: &Path) -> Result<(UnixListener, BoundPath), StartError> {
    let dev = prefix.join("dev");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dev)
        .map_err(io_err("create", &dev))?;
    let path = dev.join("socket");
    clear_stale(&path)?;
    let tmp = dev.join(format!(
        ".socket.{}.{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io_err("listen on", &tmp))?;
    let result = (|| {
        // Everyone may connect; requests that change the stack check the
        // peer's credentials instead.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666))
            .map_err(io_err("set permissions of", &tmp))?;
        let mut tries = 0;
        loop {
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => {
                    tries += 1;
                    clear_stale(&path)?
                }
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        let m = std::fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
        Ok(BoundPath {
            path: path.clone(),
            dev: m.dev(),
            ino: m.ino(),
        })
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map(|b| (listener, b))
}
