//! Routing tables with longest-prefix match.
//!
//! A table is a vector kept sorted by prefix length, longest first, so a
//! lookup is the first entry that covers the destination. It is bounded
//! ([`MAX_ROUTES`]) and small tables are the common case; a trie can replace
//! the vector behind the same interface when forwarding needs it.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Error;
use crate::iface::IfIndex;
use crate::time::Instant;

/// Most routes one table holds.
pub const MAX_ROUTES: usize = 4096;

/// An address family's address as a route key.
pub trait RouteAddr: Copy + Eq + std::fmt::Display + std::fmt::Debug {
    const BITS: u8;
    fn to_bits(self) -> u128;
    fn from_bits(b: u128) -> Self;
}

impl RouteAddr for Ipv4Addr {
    const BITS: u8 = 32;
    fn to_bits(self) -> u128 {
        u32::from(self) as u128
    }
    fn from_bits(b: u128) -> Self {
        Ipv4Addr::from(b as u32)
    }
}

impl RouteAddr for Ipv6Addr {
    const BITS: u8 = 128;
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(b: u128) -> Self {
        Ipv6Addr::from(b)
    }
}

fn mask<A: RouteAddr>(plen: u8) -> u128 {
    let bits = A::BITS as u32;
    let full = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if plen == 0 {
        0
    } else {
        (full << (bits - plen.min(A::BITS) as u32)) & full
    }
}

/// Route flags, shown by `netstat -r` as in BSD: U up, G gateway, H host,
/// S static, C connected (cloning), D dynamic (learned from the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteFlags(pub u8);

impl RouteFlags {
    pub const CONNECTED: RouteFlags = RouteFlags(1);
    pub const STATIC: RouteFlags = RouteFlags(2);
    pub const DYNAMIC: RouteFlags = RouteFlags(4);

    pub fn contains(self, other: RouteFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<A> {
    pub dest: A,
    pub plen: u8,
    pub gateway: Option<A>,
    pub ifindex: IfIndex,
    pub flags: RouteFlags,
    /// For routes learned from router advertisements.
    pub expires: Option<Instant>,
}

impl<A: RouteAddr> Route<A> {
    pub fn covers(&self, a: A) -> bool {
        a.to_bits() & mask::<A>(self.plen) == self.dest.to_bits()
    }

    /// BSD flag letters for listings.
    pub fn flag_letters(&self) -> String {
        let mut s = String::from("U");
        if self.gateway.is_some() {
            s.push('G');
        }
        if self.plen == A::BITS {
            s.push('H');
        }
        if self.flags.contains(RouteFlags::STATIC) {
            s.push('S');
        }
        if self.flags.contains(RouteFlags::CONNECTED) {
            s.push('C');
        }
        if self.flags.contains(RouteFlags::DYNAMIC) {
            s.push('D');
        }
        s
    }
}

#[derive(Debug, Clone)]
pub struct RouteTable<A> {
    routes: Vec<Route<A>>,
}

impl<A: RouteAddr> Default for RouteTable<A> {
    fn default() -> Self {
        RouteTable { routes: Vec::new() }
    }
}

impl<A: RouteAddr> RouteTable<A> {
    /// Adds a route; the destination is masked to its prefix. An entry for
    /// the same prefix and gateway is an error. Returns the route as stored.
    pub fn add(&mut self, mut r: Route<A>) -> Result<Route<A>, Error> {
        if r.plen > A::BITS {
            return Err(Error::Invalid(format!(
                "prefix length {} (0 to {})",
                r.plen,
                A::BITS
            )));
        }
        r.dest = A::from_bits(r.dest.to_bits() & mask::<A>(r.plen));
        if self.routes.iter().any(|x| {
            x.dest == r.dest && x.plen == r.plen && x.gateway == r.gateway && x.ifindex == r.ifindex
        }) {
            return Err(Error::Exists(format!("route to {}/{}", r.dest, r.plen)));
        }
        if self.routes.len() >= MAX_ROUTES {
            return Err(Error::NoBuffers);
        }
        let pos = self.routes.partition_point(|x| x.plen >= r.plen);
        self.routes.insert(pos, r.clone());
        Ok(r)
    }

    /// Removes the route to `dest/plen` (through `gateway` if given).
    pub fn delete(&mut self, dest: A, plen: u8, gateway: Option<A>) -> Result<Route<A>, Error> {
        let dest = A::from_bits(dest.to_bits() & mask::<A>(plen));
        let pos = self
            .routes
            .iter()
            .position(|x| {
                x.dest == dest && x.plen == plen && (gateway.is_none() || x.gateway == gateway)
            })
            .ok_or_else(|| Error::NotFound(format!("route to {dest}/{plen}")))?;
        Ok(self.routes.remove(pos))
    }

    pub(crate) fn delete_connected(&mut self, dest: A, plen: u8, ifindex: IfIndex) {
        let dest = A::from_bits(dest.to_bits() & mask::<A>(plen));
        self.routes.retain(|x| {
            !(x.dest == dest
                && x.plen == plen
                && x.ifindex == ifindex
                && x.flags.contains(RouteFlags::CONNECTED))
        });
    }

    /// Longest-prefix match.
    pub fn lookup(&self, dst: A) -> Option<&Route<A>> {
        self.routes.iter().find(|r| r.covers(dst))
    }

    /// Drops every route through `ifindex` (the interface went away).
    pub fn remove_interface(&mut self, ifindex: IfIndex) {
        self.routes.retain(|r| r.ifindex != ifindex);
    }

    /// Drops routes whose lifetime ended; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.routes.len();
        self.routes.retain(|r| r.expires.is_none_or(|t| t > now));
        before - self.routes.len()
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.routes.iter().filter_map(|r| r.expires).min()
    }

    pub fn find_mut(&mut self, dest: A, plen: u8, gateway: Option<A>) -> Option<&mut Route<A>> {
        self.routes
            .iter_mut()
            .find(|x| x.dest == dest && x.plen == plen && x.gateway == gateway)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route<A>> {
        self.routes.iter()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r4(dest: &str, plen: u8, ifindex: IfIndex) -> Route<Ipv4Addr> {
        Route {
            dest: dest.parse().unwrap(),
            plen,
            gateway: None,
            ifindex,
            flags: RouteFlags::STATIC,
            expires: None,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.add(r4("0.0.0.0", 0, 1)).unwrap();
        t.add(r4("10.0.0.0", 8, 2)).unwrap();
        t.add(r4("10.1.2.0", 24, 3)).unwrap();
        t.add(r4("10.1.0.0", 16, 4)).unwrap();
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().ifindex, 3);
        assert_eq!(t.lookup("10.1.9.3".parse().unwrap()).unwrap().ifindex, 4);
        assert_eq!(t.lookup("10.9.9.3".parse().unwrap()).unwrap().ifindex, 2);
        assert_eq!(t.lookup("192.0.2.1".parse().unwrap()).unwrap().ifindex, 1);
        assert!(t.add(r4("10.1.2.77", 24, 3)).is_err(), "same prefix twice");
        t.delete("10.1.2.0".parse().unwrap(), 24, None).unwrap();
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().ifindex, 4);
    }

    #[test]
    fn ipv6_masks() {
        let mut t = RouteTable::<Ipv6Addr>::default();
        t.add(Route {
            dest: "fd00:77::1".parse().unwrap(),
            plen: 64,
            gateway: None,
            ifindex: 2,
            flags: RouteFlags::CONNECTED,
            expires: None,
        })
        .unwrap();
        let r = t.lookup("fd00:77::99".parse().unwrap()).unwrap();
        assert_eq!(r.dest, "fd00:77::".parse::<Ipv6Addr>().unwrap());
        assert!(t.lookup("fd00:78::1".parse().unwrap()).is_none());
        assert_eq!(r.flag_letters(), "UC");
    }

    proptest::proptest! {
        #[test]
        fn lookup_matches_a_linear_reference(
            routes in proptest::collection::vec((proptest::num::u32::ANY, 0u8..=32), 0..40),
            probes in proptest::collection::vec(proptest::num::u32::ANY, 1..40),
        ) {
            let mut t = RouteTable::<Ipv4Addr>::default();
            for (i, (d, p)) in routes.iter().enumerate() {
                let _ = t.add(r4(&Ipv4Addr::from(*d).to_string(), *p, i as u32 + 1));
            }
            for a in probes {
                let best = t.iter().filter(|r| r.covers(Ipv4Addr::from(a))).map(|r| r.plen).max();
                proptest::prop_assert_eq!(t.lookup(Ipv4Addr::from(a)).map(|r| r.plen), best);
            }
        }
    }
}
