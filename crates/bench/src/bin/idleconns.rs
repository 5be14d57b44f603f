//! Holds idle TCP connections open, for the memory benchmark.
//!
//! `idleconns serve ADDR:PORT COUNT` accepts COUNT connections, says
//! `accepted COUNT`, and holds them; `idleconns connect ADDR:PORT COUNT`
//! opens COUNT connections, says `connected COUNT`, and holds them. Both
//! hold until killed. Only `std::net`, so the preloaded socket library
//! moves them onto iopkt.

use std::net::{TcpListener, TcpStream};

fn fail(msg: String) -> ! {
    eprintln!("idleconns: {msg}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(addr), Some(count)) = (
        args.get(1).map(String::as_str),
        args.get(2),
        args.get(3).and_then(|c| c.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: idleconns serve|connect ADDR:PORT COUNT");
        std::process::exit(2);
    };
    iopkt_bench::fdlimit::raise_nofile(count as u64 + 256);
    let mut held = Vec::with_capacity(count);
    match mode {
        "serve" => {
            let l = TcpListener::bind(addr).unwrap_or_else(|e| fail(format!("bind {addr}: {e}")));
            println!("listening on {addr}");
            while held.len() < count {
                match l.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(e) => fail(format!("accept after {}: {e}", held.len())),
                }
            }
            println!("accepted {count}");
        }
        "connect" => {
            while held.len() < count {
                match TcpStream::connect(addr) {
                    Ok(s) => held.push(s),
                    Err(e) => fail(format!("connect after {}: {e}", held.len())),
                }
            }
            println!("connected {count}");
        }
        _ => fail(format!("unknown mode {mode}")),
    }
    loop {
        std::thread::park();
    }
}
