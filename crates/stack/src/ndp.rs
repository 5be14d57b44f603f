//! Neighbor discovery (RFC 4861) and stateless address autoconfiguration
//! (RFC 4862).
//!
//! STUB: to be completed.

use std::net::Ipv6Addr;

use crate::neighbor::NeighborInfo;
use crate::stack::Stack;

/// The neighbour discovery state of one interface.
#[derive(Debug, Default)]
pub struct NdState {}

impl Stack {
    /// Every neighbour cache entry of every interface (`ndp -an`).
    pub fn nd_entries(&self) -> Vec<NeighborInfo> {
        Vec::new()
    }

    /// Forgets the neighbour entry for `addr`; false if there was none.
    pub fn nd_delete(&mut self, addr: Ipv6Addr) -> bool {
        let _ = addr;
        false
    }
}
