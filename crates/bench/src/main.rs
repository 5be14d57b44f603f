//! `iopkt-bench`: runs every benchmark of iopkt and its reference in one
//! run and prints the table of medians and ratios (also written to
//! target/bench/latest.md; `--write-docs` puts it in docs/benchmarks.md).
//! Any row that should have run and failed makes the exit status 1.

use std::path::PathBuf;

use iopkt_bench::rows::{self, Config};
use iopkt_bench::table::{self, Row};

const USAGE: &str = "usage: iopkt-bench [--quick] [--runs N] [--secs S] [--conns N] \
[--only ROW,...] [--write-docs] [--out FILE]
rows: startup, inproc, lo0-bulk, tap, pingpong, connrate, udp, memory, copies";

const ROWS: &[&str] = &[
    "startup", "inproc", "lo0-bulk", "tap", "pingpong", "connrate", "udp", "memory", "copies",
];

/// The workspace root (this crate is crates/bench).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Args {
    cfg: Config,
    only: Vec<String>,
    write_docs: bool,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        cfg: if quick {
            Config::quick()
        } else {
            Config::full()
        },
        only: Vec::new(),
        write_docs: false,
        out: root().join("target/bench/latest.md"),
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |s: String, name: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {s}"))
        };
        match arg.as_str() {
            "--quick" => {}
            "--runs" => a.cfg.runs = num(value("--runs")?, "--runs")?,
            "--secs" => a.cfg.secs = num(value("--secs")?, "--secs")? as u32,
            "--conns" => a.cfg.idle_conns = num(value("--conns")?, "--conns")?,
            "--write-docs" => a.write_docs = true,
            "--out" => a.out = PathBuf::from(value("--out")?),
            "--only" => {
                for r in value("--only")?.split(',') {
                    if !ROWS.contains(&r) {
                        return Err(format!("no row named {r}"));
                    }
                    a.only.push(r.to_string());
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn command_line() -> String {
    std::env::var("IOPKT_BENCH_COMMAND").unwrap_or_else(|_| {
        std::env::args()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Replaces what lies between the table markers of docs/benchmarks.md.
fn write_docs(block: &str) -> Result<(), String> {
    const START: &str = "<!-- bench-table:start -->";
    const END: &str = "<!-- bench-table:end -->";
    let path = root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        return Err(format!("{} has no {START} … {END} markers", path.display()));
    };
    if e < s {
        return Err(format!("{}: the markers are out of order", path.display()));
    }
    let new = format!("{}{START}\n{block}{}", &doc[..s], &doc[e..]);
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("iopkt-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    // Thousands of idle connections need as many descriptors, in io-pkt
    // and in the programs holding them (children inherit the limit).
    iopkt_bench::fdlimit::raise_nofile(4 * args.cfg.idle_conns as u64 + 4096);
    let wants = |r: &str| args.only.is_empty() || args.only.iter().any(|o| o == r);
    let cfg = &args.cfg;
    let mut rows: Vec<Row> = Vec::new();
    if wants("startup") {
        rows.extend(rows::startup_rows(cfg));
    }
    if wants("inproc") {
        rows.push(rows::inproc_bulk(cfg));
    }
    if wants("lo0-bulk") {
        rows.push(rows::lo0_bulk(cfg));
    }
    if wants("tap") {
        rows.extend(rows::tap_bulk(cfg));
    }
    if wants("pingpong") {
        rows.push(rows::lo0_pingpong(cfg));
    }
    if wants("connrate") {
        rows.push(rows::conn_rate(cfg));
    }
    if wants("udp") {
        rows.push(rows::lo0_udp(cfg));
    }
    if wants("memory") {
        rows.extend(rows::memory_rows(cfg));
    }
    if wants("copies") {
        rows.push(rows::copies(cfg));
    }

    let block = format!(
        "{}- command: `{}`\n- runs: {} of {} s each (memory: up to {} idle connections, as the open-file limit allows)\n\n{}",
        iopkt_bench::machine::describe(),
        command_line(),
        cfg.runs,
        cfg.secs,
        cfg.idle_conns,
        table::render(&rows)
    );
    println!("\n{block}");
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&args.out, &block) {
        eprintln!("iopkt-bench: {}: {e}", args.out.display());
    } else {
        eprintln!("iopkt-bench: table written to {}", args.out.display());
    }
    if args.write_docs {
        match write_docs(&block) {
            Ok(()) => eprintln!("iopkt-bench: docs/benchmarks.md updated"),
            Err(e) => eprintln!("iopkt-bench: {e}"),
        }
    }
    let failures: Vec<String> = rows.iter().flat_map(Row::failures).collect();
    if !failures.is_empty() {
        eprintln!("iopkt-bench: {} row(s) failed:", failures.len());
        for f in &failures {
            eprintln!("--- {f}");
        }
        std::process::exit(1);
    }
}
