//! How a command fails: a usage error (exit 2) or a runtime failure (exit 1),
//! always as one line (ARCHITECTURE.md principle 8).

use iopkt_rsrcmgr::ClientError;

#[derive(Debug)]
pub enum Fail {
    /// The command line is wrong.
    Usage(String),
    /// The command could not be carried out.
    Runtime(String),
}

impl Fail {
    pub fn exit_code(&self) -> i32 {
        match self {
            Fail::Usage(_) => 2,
            Fail::Runtime(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fail::Usage(m) | Fail::Runtime(m) => m,
        }
    }
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Fail {
        Fail::Runtime(e.to_string())
    }
}

pub type Res<T = ()> = Result<T, Fail>;

/// A usage error that ends with the command's synopsis.
pub fn usage(msg: impl std::fmt::Display, synopsis: &str) -> Fail {
    Fail::Usage(format!("{msg} (usage: {synopsis})"))
}
