//! What the stack needs from the world.

use iopkt_pkt::PktBuf;

use crate::iface::IfIndex;
use crate::socket::SocketId;
use crate::time::Instant;

/// The stack's only way to reach outside itself.
///
/// Every entry point of [`crate::Stack`] that can produce output or needs the
/// time takes one. Implementations must not call back into the stack.
pub trait Ctx {
    /// The current time.
    fn now(&self) -> Instant;

    /// A random 64-bit value (ARP/ND jitter, IP identifiers, ISNs). The daemon
    /// uses a cryptographic source; the simulator a seeded one.
    fn random_u64(&mut self) -> u64;

    /// Sends a complete Ethernet frame out of interface `ifindex`. Never called
    /// for the loopback interface, which the stack serves itself.
    fn transmit(&mut self, ifindex: IfIndex, frame: PktBuf);

    /// Socket `sock` has something new to report (data to read, an error, room
    /// to write). The resource manager wakes the socket's client.
    fn socket_ready(&mut self, sock: SocketId) {
        let _ = sock;
    }

    /// A random value in `0..n` (`n > 0`).
    fn random_below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.random_u64() % n }
    }
}
