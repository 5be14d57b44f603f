//! ICMPv6 (RFC 4443): echo, and errors with rate limiting.
//!
//! STUB: to be completed.

use std::net::Ipv6Addr;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::stack::Stack;

impl Stack {
    /// Sends an ICMPv6 message of type `ty`/`code` with the four bytes `rest`
    /// and `body` after the header, to `dst` (source chosen by RFC 6724,
    /// checksum filled in).
    pub fn icmp6_send(
        &mut self,
        ctx: &mut impl Ctx,
        dst: Ipv6Addr,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        body: &[u8],
    ) -> Result<(), Error> {
        let _ = (ctx, dst, ty, code, rest, body);
        Err(Error::NetUnreachable)
    }
}
