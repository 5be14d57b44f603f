//! What `arp -an` and `ndp -an` show of a neighbour cache entry.

use std::net::IpAddr;
use std::time::Duration;

use iopkt_wire::Mac;

use crate::iface::IfIndex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborInfo {
    pub ip: IpAddr,
    /// `None` while resolution is incomplete.
    pub mac: Option<Mac>,
    pub ifindex: IfIndex,
    /// The entry's state in words: "incomplete", "reachable", "stale",
    /// "delay", "probe", "permanent".
    pub state: &'static str,
    /// Time left before the entry expires or is rechecked.
    pub expires: Option<Duration>,
    /// IPv6: the neighbour is a router (RFC 4861 IsRouter flag).
    pub is_router: bool,
}
