//! A tiny request/response server for the connection-rate benchmark: each
//! connection sends one line, gets a 64-byte reply, and the server closes
//! it (as an HTTP/1.0 server does, so TIME_WAIT stays on the server side).
//! Only `std::net`: with the socket library preloaded it runs on iopkt.
//!
//! Usage: connserver ADDR:PORT THREADS

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

const REPLY: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 25\r\n\r\nfrom the bench server..\r\n";
// connrate checks for exactly this many bytes.
const _: () = assert!(REPLY.len() == 64);

fn serve(mut s: TcpStream) {
    let mut buf = [0u8; 256];
    let mut got = 0;
    // The request ends with a newline; a client that goes away early is
    // simply dropped.
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                got += n;
                if buf[..got].contains(&b'\n') {
                    break;
                }
            }
        }
    }
    let _ = s.write_all(REPLY);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(threads)) = (
        args.get(1),
        args.get(2).and_then(|t| t.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: connserver ADDR:PORT THREADS");
        std::process::exit(2);
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("connserver: bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {addr}");
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let l = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("connserver: {e}");
                std::process::exit(1);
            }
        };
        workers.push(std::thread::spawn(move || {
            loop {
                match l.accept() {
                    Ok((s, _)) => serve(s),
                    Err(e) => eprintln!("connserver: accept: {e}"),
                }
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
}
