//! Checks a running stack's sockets over its loopback: a UDP round trip and
//! a TCP transfer, through the stack named by `$SOCK` (or the default).
//!
//! `SOCK=/tmp/st cargo run -p iopkt-socket --example loopback_check [BYTES]`

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use iopkt_socket::{TcpListener, TcpStream, UdpSocket};

fn main() -> std::io::Result<()> {
    let bytes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1 << 20);

    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    a.send_to(b"hello", b.local_addr()?)?;
    let mut buf = [0u8; 64];
    let (n, from) = b.recv_from(&mut buf)?;
    println!(
        "udp: {:?} from {from} (sent from {})",
        String::from_utf8_lossy(&buf[..n]),
        a.local_addr()?
    );

    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let t = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = l.accept()?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        Ok(got.len())
    });
    let t0 = Instant::now();
    let mut c = TcpStream::connect(addr)?;
    let data = vec![0x5au8; bytes];
    c.write_all(&data)?;
    c.shutdown(Shutdown::Write)?;
    let got = t
        .join()
        .map_err(|_| std::io::Error::other("receiver panicked"))??;
    println!(
        "tcp: {got} of {bytes} bytes to {addr} in {:?}",
        t0.elapsed()
    );
    if got != bytes {
        return Err(std::io::Error::other("bytes lost"));
    }
    Ok(())
}
