//! Options every command takes: `--sock PREFIX` (else `$SOCK`, else the
//! default prefix) and `--json` for listings.

use std::path::PathBuf;

use iopkt_rsrcmgr::{Client, client_prefix};

use crate::fail::{Fail, Res};

pub struct Env {
    pub prefix: PathBuf,
    pub json: bool,
}

impl Env {
    /// Takes the global options out of `args`, wherever they are.
    pub fn from_args(args: Vec<String>) -> Res<(Env, Vec<String>)> {
        let mut prefix = None;
        let mut json = false;
        let mut rest = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if a == "--sock" {
                let p = it
                    .next()
                    .ok_or_else(|| Fail::Usage("--sock needs a PREFIX".into()))?;
                prefix = Some(PathBuf::from(p));
            } else if let Some(p) = a.strip_prefix("--sock=") {
                prefix = Some(PathBuf::from(p));
            } else if a == "--json" {
                json = true;
            } else {
                rest.push(a);
            }
        }
        let prefix = prefix.unwrap_or_else(client_prefix);
        Ok((Env { prefix, json }, rest))
    }

    pub fn client(&self) -> Res<Client> {
        Ok(Client::connect(&self.prefix)?)
    }

    /// Refuses `--json` for commands that do not list anything.
    pub fn no_json(&self, what: &str) -> Res {
        if self.json {
            Err(Fail::Usage(format!("--json is for listings, not {what}")))
        } else {
            Ok(())
        }
    }
}

/// `iopkt --sock X --json CMD ...`: global options before the command name.
pub fn take_leading_globals(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut globals = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--sock" {
            globals.extend(args.iter().skip(i).take(2).cloned());
            i += 2;
        } else if a.starts_with("--sock=") || a == "--json" {
            globals.push(a.clone());
            i += 1;
        } else {
            break;
        }
    }
    (globals, args.into_iter().skip(i).collect())
}
