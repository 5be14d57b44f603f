//! ICMP for IPv4 (RFC 792, RFC 1122 section 3.2.2, RFC 1812 section 4.3):
//! echo, and errors with rate limiting.
//!
//! STUB: to be completed.

use std::net::Ipv4Addr;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::stack::Stack;

impl Stack {
    /// Sends an ICMP message of type `ty`/`code` with the four bytes `rest`
    /// and `body` after the header, to `dst` (the checksum is filled in).
    pub fn icmp4_send(
        &mut self,
        ctx: &mut impl Ctx,
        dst: Ipv4Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        let _ = (ctx, dst, ty, code, rest, body);
        Err(Error::NetUnreachable)
    }
}
