//! Writes the seed corpora to `fuzz/corpus/<target>/` (run from anywhere:
//! `cargo run -p iopkt-fuzz-targets --example write_corpus`).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for seed in iopkt_fuzz_targets::seeds::all() {
        let dir = root.join(seed.target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(seed.name), &seed.bytes)?;
    }
    println!("seeds written under {}", root.display());
    Ok(())
}
