//! The connection-rate load generator: THREADS threads, each connecting,
//! sending a one-line request, reading the reply to the end, and closing,
//! again and again for SECONDS. Only `std::net`, so the preloaded socket
//! library moves it onto iopkt.
//!
//! Usage: connrate ADDR:PORT THREADS SECONDS
//! Prints: `connections N errors E seconds S rate R`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const REPLY_LEN: usize = 64;

fn one(addr: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::with_capacity(REPLY_LEN);
    s.read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    if reply.len() != REPLY_LEN {
        return Err(format!("reply of {} bytes", reply.len()));
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(threads), Some(secs)) = (
        args.get(1).cloned(),
        args.get(2).and_then(|t| t.parse::<usize>().ok()),
        args.get(3).and_then(|t| t.parse::<f64>().ok()),
    ) else {
        eprintln!("usage: connrate ADDR:PORT THREADS SECONDS");
        std::process::exit(2);
    };
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (addr, done, errors) = (addr.clone(), done.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut first_error = None;
                while Instant::now() < until {
                    match one(&addr) {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(e);
                        }
                    }
                }
                first_error
            })
        })
        .collect();
    for w in workers {
        if let Ok(Some(e)) = w.join() {
            eprintln!("connrate: first error of a thread: {e}");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let e = errors.load(Ordering::Relaxed);
    println!(
        "connections {n} errors {e} seconds {secs:.3} rate {:.1}",
        n as f64 / secs
    );
    if n == 0 {
        std::process::exit(1);
    }
}
