//! The machine a table was measured on.

use std::process::Command;

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    output(cmd, args)
        .lines()
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// A few lines of markdown: CPUs, model, kernel, date, tool versions.
pub fn describe() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "- machine: {cpus} CPUs, {}; Linux {}\n- date: {}\n- tools: {}; {}; rustc {}\n",
        cpu_model(),
        output("uname", &["-r"]),
        output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        first_line("iperf3", &["--version"]),
        first_line("sockperf", &["--version"]),
        output("rustc", &["--version"]).trim_start_matches("rustc "),
    )
}
