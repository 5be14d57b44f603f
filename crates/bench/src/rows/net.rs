//! Rows measured with iperf3 and sockperf: TCP bulk over lo0 and over TAP,
//! TCP ping-pong latency, the UDP small-datagram rate, and the copy check.

use std::ffi::OsStr;
use std::time::Duration;

use super::{Config, alternate, need_tool, next_port, progress};
use crate::parse;
use crate::procs::{Proc, run};
use crate::stacks::{IoPkt, Kernel, Runner, TAP_STACK4, TapLink, VETH_B4, VethPair};
use crate::table::{Better, Cell, Row};

/// Room beyond a run's own length for start-up and the final exchange.
const SLACK: Duration = Duration::from_secs(30);
const UDP_LEN: usize = 64;

fn iperf3_server(on: &dyn Runner, addr: &str, port: u16) -> Result<Proc, String> {
    let mut srv = Proc::spawn(
        "iperf3 -s",
        on.cmd(OsStr::new("iperf3")).args([
            "-s",
            "-1",
            "--forceflush",
            "-B",
            addr,
            "-p",
            &port.to_string(),
        ]),
    )?;
    srv.wait_for("Server listening", Duration::from_secs(15))?;
    Ok(srv)
}

/// The JSON of one iperf3 run from `client` to a server on `server`.
fn iperf3(
    server: &dyn Runner,
    client: &dyn Runner,
    addr: &str,
    secs: u32,
    extra: &[&str],
) -> Result<String, String> {
    let port = next_port();
    let _srv = iperf3_server(server, addr, port)?;
    run(
        "iperf3 -c",
        client
            .cmd(OsStr::new("iperf3"))
            .args([
                "-c",
                addr,
                "-p",
                &port.to_string(),
                "-J",
                "-t",
                &secs.to_string(),
            ])
            .args(extra),
        Duration::from_secs(secs.into()) + SLACK,
    )
}

fn tcp_gbits(
    server: &dyn Runner,
    client: &dyn Runner,
    addr: &str,
    secs: u32,
    extra: &[&str],
) -> Result<f64, String> {
    parse::iperf3_tcp_gbits(&iperf3(server, client, addr, secs, extra)?)
}

/// TCP bulk, one stream, application to application: over one io-pkt's
/// lo0, and over the kernel's loopback.
pub fn lo0_bulk(cfg: &Config) -> Row {
    progress("TCP bulk over lo0 (iperf3)");
    let (iopkt, reference) = match need_tool("iperf3") {
        Err(c) => (c.clone(), c),
        Ok(()) => match IoPkt::lo0("bulk") {
            Err(e) => (Cell::Failed(e), Cell::Skipped("iopkt did not start".into())),
            Ok(stack) => alternate(
                cfg.runs,
                || tcp_gbits(&stack, &stack, "127.0.0.1", cfg.secs, &[]),
                || tcp_gbits(&Kernel, &Kernel, "127.0.0.1", cfg.secs, &[]),
            ),
        },
    };
    Row {
        name: "TCP bulk, one stream, app to app over lo0 (iperf3)".into(),
        unit: "Gbit/s",
        better: Better::Higher,
        iopkt,
        reference,
        reference_is: "the kernel's loopback".into(),
    }
}

/// TCP bulk between the kernel and io-pkt over a TAP device, each way,
/// against the kernel to itself over a veth pair between namespaces.
pub fn tap_bulk(cfg: &Config) -> Vec<Row> {
    let row = |name: &str, iopkt: Cell, reference: Cell| Row {
        name: name.into(),
        unit: "Gbit/s",
        better: Better::Higher,
        iopkt,
        reference,
        reference_is: "the kernel over a veth pair between namespaces".into(),
    };
    let names = [
        "TCP bulk over TAP, kernel → iopkt (iperf3)",
        "TCP bulk over TAP, iopkt → kernel (iperf3 -R)",
    ];
    if !cfg.root {
        let skip = Cell::Skipped("needs root (namespaces, TAP)".into());
        return names
            .iter()
            .map(|n| row(n, skip.clone(), skip.clone()))
            .collect();
    }
    if let Err(c) = need_tool("iperf3") {
        return names.iter().map(|n| row(n, c.clone(), c.clone())).collect();
    }
    progress("TCP bulk over TAP and veth (iperf3)");
    let setup = TapLink::start("tap").and_then(|t| Ok((t, VethPair::start("veth")?)));
    let (tap, veth) = match setup {
        Ok(x) => x,
        Err(e) => {
            return names
                .iter()
                .map(|n| {
                    row(
                        n,
                        Cell::Failed(e.clone()),
                        Cell::Skipped("set-up failed".into()),
                    )
                })
                .collect();
        }
    };
    // The server is the receiving side of a plain run: iopkt (or the
    // veth's far namespace) receives; with -R it sends.
    [(names[0], &[][..]), (names[1], &["-R"][..])]
        .iter()
        .map(|(name, extra)| {
            let (a, b) = alternate(
                cfg.runs,
                || tcp_gbits(&tap.stack, &tap.kernel, TAP_STACK4, cfg.secs, extra),
                || tcp_gbits(&veth.b, &veth.a, VETH_B4, cfg.secs, extra),
            );
            row(name, a, b)
        })
        .collect()
}

fn pingpong_us(on: &dyn Runner, secs: u32) -> Result<f64, String> {
    let port = next_port().to_string();
    let mut srv = Proc::spawn(
        "sockperf server",
        on.cmd(OsStr::new("sockperf"))
            .args(["server", "--tcp", "-i", "127.0.0.1", "-p", &port]),
    )?;
    srv.wait_for("block on socket", Duration::from_secs(15))?;
    let out = run(
        "sockperf ping-pong",
        on.cmd(OsStr::new("sockperf")).args([
            "ping-pong",
            "--tcp",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "64",
            "-t",
            &secs.to_string(),
        ]),
        Duration::from_secs(secs.into()) + SLACK,
    )?;
    parse::sockperf_median_us(&out)
}

/// TCP ping-pong latency with 64-byte messages, over lo0 and the kernel's
/// loopback.
pub fn lo0_pingpong(cfg: &Config) -> Row {
    progress("TCP ping-pong over lo0 (sockperf)");
    let (iopkt, reference) = match need_tool("sockperf") {
        Err(c) => (c.clone(), c),
        Ok(()) => match IoPkt::lo0("pingpong") {
            Err(e) => (Cell::Failed(e), Cell::Skipped("iopkt did not start".into())),
            Ok(stack) => alternate(
                cfg.runs,
                || pingpong_us(&stack, cfg.secs),
                || pingpong_us(&Kernel, cfg.secs),
            ),
        },
    };
    Row {
        name: "TCP ping-pong, 64-byte messages, median half round trip (sockperf)".into(),
        unit: "µs",
        better: Better::Lower,
        iopkt,
        reference,
        reference_is: "the kernel's loopback".into(),
    }
}

fn udp_rate(on: &dyn Runner, secs: u32) -> Result<f64, String> {
    let json = iperf3(
        on,
        on,
        "127.0.0.1",
        secs,
        &["-u", "-b", "0", "-l", &UDP_LEN.to_string()],
    )?;
    parse::iperf3_udp_rate(&json, UDP_LEN)
}

/// The rate of 64-byte UDP datagrams that arrive, sender unlimited.
pub fn lo0_udp(cfg: &Config) -> Row {
    progress("UDP 64-byte datagrams over lo0 (iperf3 -u)");
    let (iopkt, reference) = match need_tool("iperf3") {
        Err(c) => (c.clone(), c),
        Ok(()) => match IoPkt::lo0("udp") {
            Err(e) => (Cell::Failed(e), Cell::Skipped("iopkt did not start".into())),
            Ok(stack) => alternate(
                cfg.runs,
                || udp_rate(&stack, cfg.secs).map(|r| r / 1000.0),
                || udp_rate(&Kernel, cfg.secs).map(|r| r / 1000.0),
            ),
        },
    };
    Row {
        name: "UDP 64-byte datagrams received per second, over lo0 (iperf3 -u -b 0)".into(),
        unit: "k/s",
        better: Better::Higher,
        iopkt,
        reference,
        reference_is: "the kernel's loopback".into(),
    }
}

/// io-pkt's read(2) byte count (`rchar` of /proc/PID/io).
fn rchar(pid: u32) -> Result<u64, String> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .map_err(|e| format!("/proc/{pid}/io: {e}"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| "no rchar in /proc/PID/io".to_string())
}

/// Copies of each payload byte, application to application. The counts
/// come from reading the code (docs/benchmarks.md lists each copy with
/// its place); one of them is checked here by measurement: the bytes
/// io-pkt reads from applications per payload byte of an lo0 transfer
/// (1.00 means the payload crosses from the sending application into
/// io-pkt exactly once).
pub fn copies(cfg: &Config) -> Row {
    progress("copies: io-pkt's read(2) bytes per payload byte (iperf3 over lo0)");
    let measured = (|| {
        need_tool("iperf3").map_err(|_| "iperf3 is not installed".to_string())?;
        let stack = IoPkt::lo0("copies")?;
        let before = rchar(stack.pid())?;
        let json = iperf3(&stack, &stack, "127.0.0.1", cfg.secs.min(2), &[])?;
        let after = rchar(stack.pid())?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("iperf3 -J: {e}"))?;
        let bytes = v
            .pointer("/end/sum_received/bytes")
            .and_then(serde_json::Value::as_f64)
            .ok_or("iperf3 -J has no end.sum_received.bytes")?;
        Ok::<f64, String>((after - before) as f64 / bytes)
    })();
    let iopkt = match measured {
        Ok(x) => Cell::Text(format!(
            "lo0: 5 (3 in io-pkt, 2 in the library, none in the kernel); TAP: 4 in, 5 out \
             (2 + 2 kernel, 3 + 2 kernel); measured: io-pkt reads {} bytes from applications \
             through read(2) per payload byte (the shared rings carry them)",
            crate::table::number(x)
        )),
        Err(e) => Cell::Failed(e),
    };
    Row {
        name: "copies of each payload byte, app to app (see below)".into(),
        unit: "",
        better: Better::Lower,
        iopkt,
        reference: Cell::Text("loopback: 2; veth: 2".into()),
        reference_is: "the kernel".into(),
    }
}
