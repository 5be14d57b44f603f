//! TCP bulk between two stacks in one process, with no I/O at all: what
//! the protocol code itself costs per byte. iopkt's two stacks talk over the
//! simulator's link; smoltcp's two sockets talk over a loopback device of
//! the same shape (Ethernet, 1500-byte MTU). Both run in virtual time, so
//! a timer (a delayed ACK) costs nothing but the work it triggers, and the
//! wall-clock time measured is CPU time spent in the stacks.

mod iopkt;
mod smol;

pub use iopkt::iopkt_bulk;
pub use smol::smoltcp_bulk;

/// The payload both stacks move: not compressible, not repeating on any
/// short period (xorshift64), so neither side can cheat by accident.
pub fn payload(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(&b[..n]);
    }
    data
}

/// What a transfer reports: how long it took and whether every byte
/// arrived in order.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub elapsed: std::time::Duration,
    pub intact: bool,
}

impl Transfer {
    /// Payload throughput in Gbit/s.
    pub fn gbits(&self, bytes: usize) -> f64 {
        bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e9
    }
}

/// Checks received bytes against the payload as they come, so no second
/// copy of the payload is kept.
pub(crate) struct Checker<'a> {
    want: &'a [u8],
    got: usize,
    ok: bool,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(want: &'a [u8]) -> Checker<'a> {
        Checker {
            want,
            got: 0,
            ok: true,
        }
    }

    pub(crate) fn take(&mut self, bytes: &[u8]) {
        let end = self.got + bytes.len();
        match self.want.get(self.got..end) {
            Some(w) if w == bytes => {}
            _ => self.ok = false,
        }
        self.got = end;
    }

    pub(crate) fn done(&self) -> bool {
        self.got >= self.want.len()
    }

    pub(crate) fn intact(&self) -> bool {
        self.ok && self.got == self.want.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stacks_deliver_a_megabyte_intact() {
        let data = payload(1 << 20);
        let a = iopkt_bulk(&data).expect("iopkt transfer");
        assert!(a.intact, "iopkt corrupted or lost bytes");
        let b = smoltcp_bulk(&data).expect("smoltcp transfer");
        assert!(b.intact, "smoltcp corrupted or lost bytes");
    }

    #[test]
    fn the_checker_notices_a_wrong_byte_and_a_short_stream() {
        let data = payload(100);
        let mut c = Checker::new(&data);
        c.take(&data[..50]);
        assert!(!c.done());
        let mut bad = data[50..].to_vec();
        bad[3] ^= 1;
        c.take(&bad);
        assert!(c.done() && !c.intact());
        let mut short = Checker::new(&data);
        short.take(&data[..99]);
        assert!(!short.intact());
    }
}
