//! smoltcp's side of the in-process benchmark: a client and a server
//! socket in one interface whose device loops every frame back, as in
//! smoltcp's own loopback benchmark, but with an Ethernet MTU of 1500
//! (smoltcp's `Loopback` device offers 65535, which would compare 64 KB
//! segments against iopkt's 1460-byte ones) and with the socket buffers
//! of iopkt's defaults (256 KB to send, 128 KB to receive).

use std::collections::VecDeque;
use std::time::Instant;

use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

use super::{Checker, Transfer};

/// Ethernet frame size the device carries: 1500 bytes of IP and the
/// 14-byte Ethernet header (smoltcp counts the header in the MTU).
const FRAME_MTU: usize = 1514;
/// Frames in flight on the loop at most; more are refused as a full
/// transmit ring would refuse them.
const RING: usize = 1024;
const SEND_BUF: usize = 256 * 1024;
const RECV_BUF: usize = 128 * 1024;
/// Virtual time a whole transfer may take before it counts as stuck.
const VIRTUAL_LIMIT_MS: u64 = 600_000;

/// A loopback device: what is transmitted is received next.
struct LoopWire {
    frames: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

impl Device for LoopWire {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: SmolInstant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.frames.pop_front()?;
        Some((Rx(frame), Tx(&mut self.frames)))
    }

    fn transmit(&mut self, _: SmolInstant) -> Option<Tx<'_>> {
        if self.frames.len() >= RING {
            return None;
        }
        Some(Tx(&mut self.frames))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MTU;
        caps
    }
}

/// Moves `data` from a client socket to a server socket; the clock runs
/// from the first byte offered to the last byte read.
pub fn smoltcp_bulk(data: &[u8]) -> Result<Transfer, String> {
    let mut dev = LoopWire {
        frames: VecDeque::new(),
    };
    let mut now = SmolInstant::from_millis(1);
    let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
    config.random_seed = 1;
    let mut iface = Interface::new(config, &mut dev, now);
    let mut added = Ok(());
    iface.update_ip_addrs(|a| {
        added = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
    });
    added.map_err(|_| "cannot add an address")?;

    let socket = |rx: usize, tx: usize| {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; tx]),
        )
    };
    let mut sockets = SocketSet::new(Vec::new());
    let server = sockets.add(socket(RECV_BUF, SEND_BUF));
    let client = sockets.add(socket(RECV_BUF, SEND_BUF));
    sockets
        .get_mut::<tcp::Socket>(server)
        .listen(5001)
        .map_err(|e| format!("listen: {e}"))?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 5001), 49152)
        .map_err(|e| format!("connect: {e}"))?;

    let mut buf = vec![0u8; 64 * 1024];
    let mut check = Checker::new(data);
    let mut sent = 0;
    let start = Instant::now();
    while !check.done() {
        if now.total_millis() as u64 > VIRTUAL_LIMIT_MS {
            return Err("the transfer did not finish in 600 s of virtual time".into());
        }
        let mut moved = false;
        let c = sockets.get_mut::<tcp::Socket>(client);
        if sent < data.len() && c.may_send() {
            let rest = data.get(sent..).unwrap_or_default();
            let n = c.send_slice(rest).map_err(|e| format!("send: {e}"))?;
            sent += n;
            moved |= n > 0;
        }
        let polled = iface.poll(now, &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            let n = s.recv_slice(&mut buf).map_err(|e| format!("recv: {e}"))?;
            if n == 0 {
                break;
            }
            check.take(buf.get(..n).unwrap_or_default());
            moved = true;
        }
        // Nothing moved and nothing is queued: jump to the next timer, as
        // the simulator does for iopkt.
        if !moved && polled == PollResult::None && dev.frames.is_empty() {
            match iface.poll_delay(now, &sockets) {
                Some(d) if d > SmolDuration::ZERO => now += d,
                Some(_) => now += SmolDuration::from_micros(1),
                None => return Err("stuck: nothing in flight and no timer".into()),
            }
        }
    }
    Ok(Transfer {
        elapsed: start.elapsed(),
        intact: check.intact(),
    })
}
