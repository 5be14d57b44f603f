//! Where modules are found (INTERFACES.md, `io-pkt -d`): the directories in
//! `IOPKT_MODULE_PATH`, then the executable's directory, then
//! `<exe dir>/../lib/iopkt`; in each, the installed name (`devnp-tap.so`)
//! before the name cargo gives a cdylib (`libdevnp_tap.so`).

use std::path::{Path, PathBuf};

use crate::{LoadError, ModuleKind};

/// The default module search path.
pub fn default_search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("IOPKT_MODULE_PATH") {
        dirs.extend(std::env::split_paths(&p).filter(|d| !d.as_os_str().is_empty()));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        dirs.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            dirs.push(up.join("lib/iopkt"));
        }
    }
    dirs
}

fn prefix(kind: ModuleKind) -> &'static str {
    match kind {
        ModuleKind::Driver => "devnp",
        ModuleKind::Protocol => "lsm",
    }
}

/// The file names to try for `name`, most specific first. The first is the
/// name error messages use.
pub(crate) fn candidates(kind: ModuleKind, name: &str) -> Vec<String> {
    let pre = prefix(kind);
    let mut out = Vec::new();
    let mut base = name;
    if let Some(stem) = name.strip_suffix(".so") {
        out.push(name.to_string());
        base = stem;
        if let Some(b) = base.strip_prefix("lib") {
            base = b;
        }
    }
    for sep in ['-', '_'] {
        if let Some(b) = base.strip_prefix(pre).and_then(|b| b.strip_prefix(sep)) {
            base = b;
        }
    }
    for file in [
        format!("{pre}-{base}.so"),
        format!("lib{pre}_{}.so", base.replace('-', "_")),
    ] {
        if !out.contains(&file) {
            out.push(file);
        }
    }
    out
}

/// Resolves `name_or_path` to a file.
pub(crate) fn find(
    kind: ModuleKind,
    name_or_path: &str,
    search: &[PathBuf],
) -> Result<PathBuf, LoadError> {
    if name_or_path.contains('/') {
        let p = PathBuf::from(name_or_path);
        if p.is_file() {
            return Ok(p);
        }
        return Err(LoadError::NotFound {
            kind,
            file: name_or_path.to_string(),
            searched: Vec::new(),
        });
    }
    let names = candidates(kind, name_or_path);
    for dir in search {
        for n in &names {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(LoadError::NotFound {
        kind,
        file: names.first().cloned().unwrap_or_default(),
        searched: search.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_installed_and_cargo_forms() {
        assert_eq!(
            candidates(ModuleKind::Driver, "tap"),
            ["devnp-tap.so", "libdevnp_tap.so"]
        );
        assert_eq!(
            candidates(ModuleKind::Driver, "devnp-tap.so"),
            ["devnp-tap.so", "libdevnp_tap.so"]
        );
        assert_eq!(
            candidates(ModuleKind::Driver, "libdevnp_tap.so"),
            ["libdevnp_tap.so", "devnp-tap.so"]
        );
        assert_eq!(
            candidates(ModuleKind::Protocol, "pf"),
            ["lsm-pf.so", "liblsm_pf.so"]
        );
        assert_eq!(
            candidates(ModuleKind::Driver, "my-nic"),
            ["devnp-my-nic.so", "libdevnp_my_nic.so"]
        );
    }

    #[test]
    fn missing_module_lists_the_directories() {
        let e = find(
            ModuleKind::Driver,
            "nosuch",
            &[
                PathBuf::from("/nonexistent/a"),
                PathBuf::from("/nonexistent/b"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "driver module devnp-nosuch.so not found (searched: /nonexistent/a, /nonexistent/b; \
             add its directory to IOPKT_MODULE_PATH or give a path)"
        );
    }
}
