//! `include/iopkt/module.h` is generated from `src/abi.rs`; this test fails
//! when the committed header no longer matches the Rust definitions.

use std::path::PathBuf;

fn generate() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/abi.rs"))
        .generate()
        .expect("generate the C header from src/abi.rs");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/iopkt/module.h");
    let fresh = generate();
    if std::env::var_os("IOPKT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/iopkt/module.h is out of date with crates/module-abi/src/abi.rs; \
         regenerate it with: IOPKT_BLESS=1 cargo test -p iopkt-module-abi --test header"
    );
}

#[test]
fn header_declares_the_whole_abi() {
    let h = generate();
    for name in [
        "IOPKT_ABI_VERSION 1",
        "struct iopkt_module_desc",
        "struct iopkt_host",
        "struct iopkt_if_desc",
        "struct iopkt_if_ops",
        "struct iopkt_option",
        "struct iopkt_pkt",
        "iopkt_module_entry(void)",
        "pkt_alloc_rx",
        "max_mtu",
    ] {
        assert!(h.contains(name), "header lacks {name}");
    }
}
