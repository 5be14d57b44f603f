//! The stack's context in the daemon: the real monotonic clock, a random
//! source seeded from the kernel, and output collected while the stack lock
//! is held and flushed after it is released.

use std::time::Instant as StdInstant;

use iopkt_pkt::PktBuf;
use iopkt_stack::socket::SocketId;
use iopkt_stack::{Ctx, IfIndex, Instant};

/// Output the stack produced during one turn holding the stack context.
#[derive(Default)]
pub struct Output {
    pub frames: Vec<(IfIndex, PktBuf)>,
    pub ready: Vec<SocketId>,
}

pub struct DaemonCtx {
    start: StdInstant,
    rng: Xoshiro,
    out: Output,
}

impl DaemonCtx {
    pub fn new() -> DaemonCtx {
        DaemonCtx {
            start: StdInstant::now(),
            rng: Xoshiro::from_kernel(),
            out: Output::default(),
        }
    }

    /// Takes what the stack sent since the last call.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }

    /// The stack's clock reading for a std instant (for timer waits).
    pub fn to_std(&self, t: Instant) -> StdInstant {
        self.start + std::time::Duration::from_nanos(t.as_nanos())
    }
}

impl Default for DaemonCtx {
    fn default() -> Self {
        Self::new()
    }
}

impl Ctx for DaemonCtx {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.start.elapsed().as_nanos() as u64)
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn transmit(&mut self, ifindex: IfIndex, frame: PktBuf) {
        self.out.frames.push((ifindex, frame));
    }

    fn socket_ready(&mut self, sock: SocketId) {
        if !self.out.ready.contains(&sock) {
            self.out.ready.push(sock);
        }
    }
}

/// xoshiro256** seeded from getrandom(2). Fast and unpredictable enough for
/// identifiers and jitter; secrets that must resist prediction (TCP initial
/// sequence numbers, RFC 6528) get a keyed hash of their own.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn from_kernel() -> Xoshiro {
        let mut seed = [0u8; 32];
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        if n != seed.len() as isize {
            // getrandom cannot fail on a running Linux for 32 bytes; fall
            // back to the clock and pid so we still start.
            let t = StdInstant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64;
            seed[..8].copy_from_slice(&t.to_le_bytes());
        }
        let mut s = [0u64; 4];
        for (i, c) in seed.chunks_exact(8).enumerate() {
            s[i] = u64::from_le_bytes(c.try_into().unwrap_or([1; 8]));
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Xoshiro(s)
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
}
