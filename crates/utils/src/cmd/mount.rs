//! `mount -T io-pkt[N] [-o OPTIONS] MODULE`: load a module into a running
//! stack.

use std::path::Path;

use iopkt_rsrcmgr::proto::{ModuleKindWire, Request, Response};

use crate::env::Env;
use crate::fail::{Fail, Res, usage};

pub const SYNOPSIS: &str =
    "mount -T io-pkt[N] [-o OPTIONS] MODULE   (MODULE: devnp-NAME.so, lsm-NAME.so, NAME or a path)";

fn bad(msg: impl std::fmt::Display) -> Fail {
    usage(msg, SYNOPSIS)
}

/// `io-pkt` is instance 0, `io-pktN` instance N.
fn parse_instance(t: &str) -> Option<u32> {
    let n = t.strip_prefix("io-pkt")?;
    if n.is_empty() {
        Some(0)
    } else if n.bytes().all(|b| b.is_ascii_digit()) {
        n.parse().ok()
    } else {
        None
    }
}

/// The kind a module's file name says (`libdevnp_tap.so` is how cargo names
/// `devnp-tap`).
fn kind_of(module: &str) -> ModuleKindWire {
    let file = Path::new(module)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(module);
    if file.starts_with("devnp-") || file.starts_with("libdevnp_") {
        ModuleKindWire::Driver
    } else if file.starts_with("lsm-") || file.starts_with("liblsm_") {
        ModuleKindWire::Protocol
    } else {
        ModuleKindWire::Any
    }
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    env.no_json("mount")?;
    let mut instance = None;
    let mut options = String::new();
    let mut module = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-T" => {
                let t = it.next().ok_or_else(|| bad("-T needs io-pkt or io-pktN"))?;
                instance = Some(
                    parse_instance(&t)
                        .ok_or_else(|| bad(format!("-T {t}: expected io-pkt or io-pktN")))?,
                );
            }
            "-o" => {
                let o = it.next().ok_or_else(|| bad("-o needs OPTIONS"))?;
                if !options.is_empty() {
                    options.push(',');
                }
                options.push_str(&o);
            }
            s if s.starts_with('-') => return Err(bad(format!("unknown option '{s}'"))),
            _ => {
                if module.replace(a).is_some() {
                    return Err(bad("give one MODULE"));
                }
            }
        }
    }
    let instance = instance.ok_or_else(|| bad("-T io-pkt[N] is required"))?;
    let module = module.ok_or_else(|| bad("no MODULE given"))?;
    // A path is resolved here: the stack does not share our directory.
    let module = if module.contains('/') {
        std::fs::canonicalize(&module)
            .map_err(|e| Fail::Runtime(format!("{module}: {e}")))?
            .to_string_lossy()
            .into_owned()
    } else {
        module
    };
    let mut c = env.client()?;
    // Loading a module may take a while; the default wait is ample.
    let r = c
        .call(&Request::Mount {
            instance,
            kind: kind_of(&module),
            module: module.clone(),
            options,
        })
        .map_err(|e| Fail::Runtime(format!("{module}: {e}")))?;
    match r {
        Response::Mounted { interfaces } if interfaces.is_empty() => {
            println!("mounted {module}");
        }
        Response::Mounted { interfaces } => {
            println!("mounted {module}: {}", interfaces.join(" "));
        }
        _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    }
    Ok(0)
}
