//! `ping`: ICMP echo through the stack (iputils' output and exit codes).
//!
//! The stack owns the echo socket and its identifier; this side builds the
//! echo requests (type 8, or 128 for ICMPv6: RFC 792, RFC 4443 section 4.1),
//! numbers them from 1, and times the replies itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use iopkt_rsrcmgr::ClientError;
use iopkt_rsrcmgr::proto::{Event, Request, Response};

use crate::env::Env;
use crate::fail::{Fail, Res, usage};

pub const SYNOPSIS: &str =
    "ping [-6] [-c COUNT] [-s SIZE] [-i SECONDS] [-W SECONDS] HOST   (COUNT defaults to 5)";

/// Requests sent when `-c` is not given: unlike iputils, ping stops by
/// itself so scripts end.
pub const DEFAULT_COUNT: u64 = 5;
pub const DEFAULT_SIZE: usize = 56;
/// Largest payload: 65535 less the IPv4 and ICMP headers (RFC 791), or less
/// the ICMPv6 header for IPv6 (RFC 8200 payload length).
const MAX_SIZE_V4: usize = 65_507;
const MAX_SIZE_V6: usize = 65_527;
/// Shortest interval allowed to users other than root, as iputils.
const MIN_USER_INTERVAL: f64 = 0.2;

fn bad(msg: impl std::fmt::Display) -> Fail {
    usage(msg, SYNOPSIS)
}

struct Opts {
    v6: bool,
    count: u64,
    size: usize,
    interval: Duration,
    wait: Duration,
    host: IpAddr,
}

fn parse(args: Vec<String>) -> Res<Opts> {
    let mut v6 = false;
    let mut v4 = false;
    let mut count = DEFAULT_COUNT;
    let mut size = DEFAULT_SIZE;
    let mut interval = 1.0f64;
    let mut wait = 2.0f64;
    let mut host = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(opt) = a.strip_prefix('-').filter(|o| !o.is_empty()) else {
            if host.replace(a).is_some() {
                return Err(bad("give one HOST"));
            }
            continue;
        };
        let mut chars = opt.chars();
        while let Some(c) = chars.next() {
            match c {
                '6' => v6 = true,
                '4' => v4 = true,
                'c' | 's' | 'i' | 'W' => {
                    // The value is the rest of this word or the next word.
                    let rest: String = chars.by_ref().collect();
                    let v = if rest.is_empty() {
                        it.next()
                            .ok_or_else(|| bad(format!("-{c} needs a value")))?
                    } else {
                        rest
                    };
                    let num = |what: &str| -> Res<f64> {
                        v.parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite() && *x >= 0.0)
                            .ok_or_else(|| bad(format!("bad {what} '{v}'")))
                    };
                    match c {
                        'c' => {
                            count = v
                                .parse()
                                .ok()
                                .filter(|n| *n >= 1)
                                .ok_or_else(|| bad(format!("bad count '{v}' (1 or more)")))?
                        }
                        's' => {
                            size = v
                                .parse()
                                .map_err(|_| bad(format!("bad packet size '{v}'")))?
                        }
                        'i' => interval = num("interval")?,
                        _ => wait = num("wait time")?,
                    }
                }
                other => return Err(bad(format!("unknown option '-{other}'"))),
            }
        }
    }
    let host = host.ok_or_else(|| bad("no HOST given"))?;
    let host: IpAddr = host.parse().map_err(|_| {
        bad(format!(
            "{host}: not a numeric address (this ping does not resolve names)"
        ))
    })?;
    if v6 && host.is_ipv4() {
        return Err(bad(format!("-6 given but {host} is an IPv4 address")));
    }
    if v4 && host.is_ipv6() {
        return Err(bad(format!("-4 given but {host} is an IPv6 address")));
    }
    let v6 = host.is_ipv6();
    let max = if v6 { MAX_SIZE_V6 } else { MAX_SIZE_V4 };
    if size > max {
        return Err(bad(format!(
            "packet size {size} is too large (at most {max})"
        )));
    }
    if interval < MIN_USER_INTERVAL && !rustix::process::geteuid().is_root() {
        return Err(Fail::Usage(format!(
            "cannot flood: the interval for users must be at least {} ms (-i {MIN_USER_INTERVAL} or more)",
            (MIN_USER_INTERVAL * 1000.0) as u32
        )));
    }
    Ok(Opts {
        v6,
        count,
        size,
        interval: Duration::from_secs_f64(interval.min(3600.0)),
        wait: Duration::from_secs_f64(wait.min(3600.0)),
        host,
    })
}

/// An echo request: type, code, checksum (the stack fills it), identifier
/// (the stack sets it), sequence number, payload.
fn echo_request(v6: bool, seq: u16, size: usize) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..size).map(|i| (i + 8) as u8));
    m
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// What came back.
enum Reply {
    Echo { seq: u16 },
    Error { seq: Option<u16>, what: String },
    Other,
}

fn classify(v6: bool, icmp: &[u8]) -> Reply {
    let (Some(&t), Some(&code)) = (icmp.first(), icmp.get(1)) else {
        return Reply::Other;
    };
    // An error quotes the offending datagram after its 8-byte header
    // (RFC 792; RFC 4443 section 2.1): find our sequence number in it.
    let quoted_seq = || {
        if v6 {
            be16(icmp, 8 + 40 + 6)
        } else {
            let ihl = usize::from(icmp.get(8)? & 0x0f) * 4;
            be16(icmp, 8 + ihl + 6)
        }
    };
    let err = |what: String| Reply::Error {
        seq: quoted_seq(),
        what,
    };
    match (v6, t) {
        (false, 0) | (true, 129) => match be16(icmp, 6) {
            Some(seq) => Reply::Echo { seq },
            None => Reply::Other,
        },
        (false, 3) => err(match code {
            0 => "Destination Net Unreachable",
            1 => "Destination Host Unreachable",
            2 => "Destination Protocol Unreachable",
            3 => "Destination Port Unreachable",
            4 => "Frag needed and DF set",
            _ => "Destination Unreachable",
        }
        .to_string()),
        (false, 11) => err("Time to live exceeded".into()),
        (true, 1) => err(match code {
            0 => "Destination unreachable: No route",
            1 => "Destination unreachable: Administratively prohibited",
            3 => "Destination unreachable: Address unreachable",
            4 => "Destination unreachable: Port unreachable",
            _ => "Destination unreachable",
        }
        .to_string()),
        (true, 2) => err(format!(
            "Packet too big: mtu={}",
            icmp.get(4..8)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        )),
        (true, 3) => err("Time exceeded: Hop limit".into()),
        _ => Reply::Other,
    }
}

/// iputils' precision: three decimals below 1 ms, fewer as times grow.
fn ms(d: f64) -> String {
    if d < 1.0 {
        format!("{d:.3}")
    } else if d < 10.0 {
        format!("{d:.2}")
    } else if d < 100.0 {
        format!("{d:.1}")
    } else {
        format!("{d:.0}")
    }
}

#[derive(Default)]
struct Tally {
    transmitted: u64,
    received: u64,
    duplicates: u64,
    errors: u64,
    rtts: Vec<f64>,
}

pub fn run(env: &Env, args: Vec<String>) -> Res<i32> {
    env.no_json("ping")?;
    let o = parse(args)?;
    let mut c = env.client()?;
    let sock = match c.call(&Request::PingOpen { v6: o.v6 })? {
        Response::SocketOpened { sock } => sock,
        _ => return Err(Fail::Runtime("unexpected answer from io-pkt".into())),
    };
    if o.v6 {
        println!("PING {0} ({0}) {1} data bytes", o.host, o.size);
    } else {
        println!(
            "PING {0} ({0}) {1}({2}) bytes of data.",
            o.host,
            o.size,
            o.size + 28
        );
    }
    let start = Instant::now();
    let mut t = Tally::default();
    // Send times of requests not yet answered, by sequence number.
    let mut pending: HashMap<u16, Instant> = HashMap::new();
    let mut answered: HashMap<u16, ()> = HashMap::new();
    for n in 0..o.count {
        let seq = ((n + 1) % 65_536) as u16;
        if seq == 0 {
            answered.clear();
        }
        let sent_at = Instant::now();
        t.transmitted += 1;
        match c.call(&Request::PingSend {
            sock,
            dst: o.host,
            icmp: echo_request(o.v6, seq, o.size),
        }) {
            Ok(_) => {
                pending.insert(seq, sent_at);
            }
            Err(ClientError::Remote(e)) => {
                eprintln!("ping: sendmsg: {e}");
                t.errors += 1;
            }
            Err(e) => return Err(e.into()),
        }
        let last = n + 1 == o.count;
        let until = if last {
            Instant::now() + o.wait
        } else {
            start + o.interval.mul_f64((n + 1) as f64)
        };
        loop {
            if last && pending.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            let Some(Event::PingReply {
                sock: s,
                from,
                ttl,
                icmp,
            }) = c.next_event(until - now)?
            else {
                continue;
            };
            if s != sock {
                continue;
            }
            match classify(o.v6, &icmp) {
                Reply::Echo { seq } => {
                    let dup = answered.contains_key(&seq);
                    let rtt = match pending.remove(&seq) {
                        Some(at) => at.elapsed().as_secs_f64() * 1000.0,
                        None if dup => 0.0,
                        None => continue, // not one of ours
                    };
                    if dup {
                        t.duplicates += 1;
                        println!(
                            "{} bytes from {from}: icmp_seq={seq} ttl={ttl} (DUP!)",
                            icmp.len()
                        );
                    } else {
                        answered.insert(seq, ());
                        t.received += 1;
                        t.rtts.push(rtt);
                        println!(
                            "{} bytes from {from}: icmp_seq={seq} ttl={ttl} time={} ms",
                            icmp.len(),
                            ms(rtt)
                        );
                    }
                }
                Reply::Error { seq, what } => {
                    if let Some(s) = seq {
                        if pending.remove(&s).is_none() {
                            continue;
                        }
                        println!("From {from} icmp_seq={s} {what}");
                    } else {
                        println!("From {from} {what}");
                    }
                    t.errors += 1;
                }
                Reply::Other => {}
            }
        }
    }
    let _ = c.call(&Request::Close { sock });
    print_summary(&o, &t, start.elapsed());
    Ok(if t.received > 0 { 0 } else { 1 })
}

fn print_summary(o: &Opts, t: &Tally, took: Duration) {
    println!();
    println!("--- {} ping statistics ---", o.host);
    let loss = ((t.transmitted - t.received.min(t.transmitted)) * 100)
        .checked_div(t.transmitted)
        .unwrap_or(0);
    let mut line = format!(
        "{} packets transmitted, {} received",
        t.transmitted, t.received
    );
    if t.duplicates > 0 {
        line.push_str(&format!(", +{} duplicates", t.duplicates));
    }
    if t.errors > 0 {
        line.push_str(&format!(", +{} errors", t.errors));
    }
    line.push_str(&format!(
        ", {loss}% packet loss, time {}ms",
        took.as_millis()
    ));
    println!("{line}");
    if !t.rtts.is_empty() {
        let n = t.rtts.len() as f64;
        let min = t.rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.rtts.iter().copied().fold(0.0, f64::max);
        let avg = t.rtts.iter().sum::<f64>() / n;
        let var = t.rtts.iter().map(|x| x * x).sum::<f64>() / n - avg * avg;
        let mdev = var.max(0.0).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_errors_are_told_apart() {
        let mut r = echo_request(false, 7, 4);
        r[0] = 0;
        assert!(matches!(classify(false, &r), Reply::Echo { seq: 7 }));
        // Host unreachable quoting a 20-byte IPv4 header and our request.
        let mut e = vec![3, 1, 0, 0, 0, 0, 0, 0];
        let mut ip = vec![0x45];
        ip.resize(20, 0);
        e.extend(ip);
        e.extend(echo_request(false, 9, 0));
        match classify(false, &e) {
            Reply::Error { seq, what } => {
                assert_eq!(seq, Some(9));
                assert_eq!(what, "Destination Host Unreachable");
            }
            _ => panic!("not an error"),
        }
        assert!(matches!(classify(true, &[129, 0, 0]), Reply::Other));
        assert!(matches!(classify(true, &[]), Reply::Other));
    }

    #[test]
    fn options_follow_iputils() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(a(&["-c3", "-s", "100", "fd00::1"])).unwrap();
        assert!(o.v6);
        assert_eq!((o.count, o.size), (3, 100));
        let o = parse(a(&["10.0.0.1"])).unwrap();
        assert_eq!(
            (o.count, o.size, o.interval),
            (5, 56, Duration::from_secs(1))
        );
        assert!(parse(a(&["-6", "10.0.0.1"])).is_err());
        assert!(parse(a(&["example.org"])).is_err());
        assert!(parse(a(&["-s", "65508", "10.0.0.1"])).is_err());
        assert!(parse(a(&["-c", "0", "10.0.0.1"])).is_err());
    }
}
