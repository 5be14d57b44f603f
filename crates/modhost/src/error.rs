use std::fmt;
use std::path::PathBuf;

use crate::ModuleKind;

/// Why a module could not be loaded. Its `Display` is one line that names
/// the module and says what to do (ARCHITECTURE.md, principle 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No file of that name in any search directory.
    NotFound {
        kind: ModuleKind,
        file: String,
        searched: Vec<PathBuf>,
    },
    /// The dynamic loader refused the file.
    Open { path: PathBuf, reason: String },
    /// The file loaded but exports no `iopkt_module_entry`, or it returned
    /// nothing.
    NotAModule { path: PathBuf, why: String },
    /// Built against another module ABI version.
    AbiMismatch {
        file: String,
        found: u32,
        expected: u32,
    },
    /// A driver given to `-p`, or a protocol module given to `-d`.
    WrongKind {
        file: String,
        wanted: ModuleKind,
        found: u32,
    },
    /// An option is unknown, malformed, or out of range.
    BadOption { module: String, msg: String },
    /// The module's own init failed; `msg` is its explanation.
    Init { module: String, msg: String },
}

impl LoadError {
    /// True when the user's command line is at fault (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, LoadError::BadOption { .. })
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound {
                kind,
                file,
                searched,
            } => {
                let dirs: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "{kind} module {file} not found (searched: {}; add its directory to IOPKT_MODULE_PATH or give a path)",
                    if dirs.is_empty() {
                        "nothing".to_string()
                    } else {
                        dirs.join(", ")
                    }
                )
            }
            LoadError::Open { path, reason } => {
                write!(f, "cannot load {}: {}", path.display(), one_line(reason))
            }
            LoadError::NotAModule { path, why } => {
                write!(f, "{} is not an iopkt module ({why})", path.display())
            }
            LoadError::AbiMismatch {
                file,
                found,
                expected,
            } => write!(
                f,
                "{file} speaks module ABI {found}, this io-pkt speaks {expected} (rebuild the module against include/iopkt/module.h)"
            ),
            LoadError::WrongKind {
                file,
                wanted,
                found,
            } => {
                let is = match *found {
                    iopkt_module_abi::IOPKT_KIND_DRIVER => "a driver (load it with -d)".to_string(),
                    iopkt_module_abi::IOPKT_KIND_PROTOCOL => {
                        "a protocol module (load it with -p)".to_string()
                    }
                    k => format!("of unknown kind {k}"),
                };
                write!(f, "{file} is {is}, not a {wanted} module")
            }
            LoadError::BadOption { module, msg } => write!(f, "{module}: {}", one_line(msg)),
            LoadError::Init { module, msg } => write!(f, "{module}: {}", one_line(msg)),
        }
    }
}

impl std::error::Error for LoadError {}

/// Keeps a message from a module or the loader on one line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModuleKind::Driver => "driver",
            ModuleKind::Protocol => "protocol",
        })
    }
}
