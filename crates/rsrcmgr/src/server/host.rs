//! What the server needs from the daemon: access to the stack, module
//! loading, and interface removal.

use std::net::IpAddr;

use iopkt_stack::socket::{PingReply, SocketId};
use iopkt_stack::{Ctx, Error, Stack};

use crate::proto::ModuleKindWire;

/// The daemon's side of the resource manager.
///
/// The server calls these from its own thread. It never holds the stack
/// (inside `with_stack`) while it calls `mount` or `destroy`, so a host
/// may take the stack's lock inside those two. Inside `with_stack` it does
/// only non-blocking reads and writes on its own ends of application
/// sockets' pairs, moving stream bytes between them and the stack's
/// buffers in place.
pub trait StackHost: Send + Sync + 'static {
    type Ctx: Ctx;

    /// Runs `f` with the stack locked. Whatever `f` made the stack produce
    /// (frames, socket wake-ups) is flushed by the host after `f` returns.
    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, &mut Self::Ctx) -> R) -> R;

    /// Loads a module (`mount`). Called without the stack locked, on a
    /// thread of its own. `Ok`: the names of the interfaces it attached.
    /// `Err`: one line saying what went wrong and what to do.
    fn mount(
        &self,
        kind: ModuleKindWire,
        module: &str,
        options: &str,
    ) -> Result<Vec<String>, String>;

    /// Removes a driver's interface (`ifconfig IF destroy`): the host detaches
    /// the driver, then the stack's interface. Called without the stack
    /// locked, on a thread of its own.
    fn destroy(&self, ifname: &str) -> Result<(), String>;

    /// The instance number (`io-pkt -i N`); `mount -T io-pktN` must name it.
    fn instance(&self) -> u32;

    // Socket operations. The daemon keeps these defaults, which go to the
    // stack; a host may wrap them (to count or trace sockets).

    /// Opens an ICMP echo socket.
    fn ping_open(&self, v6: bool) -> Result<SocketId, Error> {
        self.with_stack(|s, c| s.ping_open(c, v6))
    }

    /// Sends an echo request on `sock`.
    fn ping_send(&self, sock: SocketId, dst: IpAddr, icmp: &[u8]) -> Result<(), Error> {
        self.with_stack(|s, c| s.ping_send(c, sock, dst, icmp))
    }

    /// Takes up to `max` replies waiting on each of `socks`, in one visit to
    /// the stack.
    fn ping_recv(&self, socks: &[SocketId], max: usize) -> Vec<(SocketId, PingReply)> {
        self.with_stack(|s, _| {
            let mut out = Vec::new();
            for &sock in socks {
                for _ in 0..max {
                    match s.ping_recv(sock) {
                        Some(r) => out.push((sock, r)),
                        None => break,
                    }
                }
            }
            out
        })
    }

    /// Closes sockets (their client went away or asked).
    fn socket_close(&self, socks: &[SocketId]) {
        self.with_stack(|s, c| {
            for &sock in socks {
                s.socket_close(c, sock);
            }
        })
    }
}
