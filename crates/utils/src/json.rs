//! `--json`: every listing can print its data as JSON for scripts.

use serde::Serialize;

use crate::fail::{Fail, Res};

pub fn print<T: Serialize>(v: &T) -> Res {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Fail::Runtime(format!("cannot write JSON: {e}")))?;
    println!("{s}");
    Ok(())
}
