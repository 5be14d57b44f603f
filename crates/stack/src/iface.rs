//! Interfaces: what the stack knows of each link, and the control operations
//! on them (`ifconfig`).

use std::net::{Ipv4Addr, Ipv6Addr};

use iopkt_pkt::offload;
use iopkt_wire::Mac;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::route::{Route, RouteFlags};
use crate::stack::Stack;
use crate::time::Instant;

/// Interface index; 1 is `lo0`. Indexes are not reused while the stack runs.
pub type IfIndex = u32;

/// Most interfaces one stack holds.
pub const MAX_INTERFACES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfKind {
    Loopback,
    Ethernet,
}

/// An IPv4 address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr4 {
    pub addr: Ipv4Addr,
    pub plen: u8,
}

impl IfAddr4 {
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_mask_v4(self.plen))
    }
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & prefix_mask_v4(self.plen))
    }
    /// The directed broadcast address of the subnet (none for /31 and /32,
    /// RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.plen < 31).then(|| Ipv4Addr::from(u32::from(self.addr) | !prefix_mask_v4(self.plen)))
    }
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & prefix_mask_v4(self.plen) == u32::from(self.network())
    }
}

pub fn prefix_mask_v4(plen: u8) -> u32 {
    if plen == 0 {
        0
    } else {
        u32::MAX << (32 - plen.min(32) as u32)
    }
}

pub fn prefix_mask_v6(plen: u8) -> u128 {
    if plen == 0 {
        0
    } else {
        u128::MAX << (128 - plen.min(128) as u32)
    }
}

/// The life stage of an IPv6 address (RFC 4862 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr6State {
    /// Duplicate address detection is running; not yet usable.
    Tentative,
    Preferred,
    /// Past its preferred lifetime: kept for existing traffic only.
    Deprecated,
    /// DAD found another node using it.
    Duplicated,
}

/// An IPv6 address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr6 {
    pub addr: Ipv6Addr,
    pub plen: u8,
    pub state: Addr6State,
    /// Made by SLAAC (or the link-local address made when the link came up).
    pub autoconf: bool,
    /// When the address goes away (SLAAC); `None` is forever.
    pub valid_until: Option<Instant>,
    /// When the address becomes deprecated; `None` is never.
    pub preferred_until: Option<Instant>,
    /// DAD solicitations still to send, and when the next is due.
    pub dad_probes_left: u32,
    pub dad_next: Option<Instant>,
}

impl IfAddr6 {
    pub fn is_usable(&self) -> bool {
        matches!(self.state, Addr6State::Preferred | Addr6State::Deprecated)
    }
}

/// Interface counters (`netstat -i`, `nicinfo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub rx_multicast: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// One interface of the stack.
#[derive(Debug)]
pub struct Interface {
    pub index: IfIndex,
    pub name: String,
    pub kind: IfKind,
    pub mac: Mac,
    /// Changed through [`Stack::set_mtu`] (which counts the change in
    /// [`Stack::link_settings_generation`]).
    pub mtu: u32,
    /// The largest MTU the interface's driver carries; `set_mtu` refuses
    /// more. [`MAX_MTU`] unless the daemon says otherwise.
    pub max_mtu: u32,
    /// Administratively up (`ifconfig IF up`); changed through
    /// [`Stack::set_up`].
    pub up: bool,
    /// The driver reports carrier.
    pub link_up: bool,
    /// What the driver does about checksums and segmentation
    /// (`iopkt_pkt::offload::CAP_*`); set with [`Stack::set_offloads`].
    pub offloads: u32,
    pub addrs4: Vec<IfAddr4>,
    pub addrs6: Vec<IfAddr6>,
    pub stats: IfStats,
    /// IPv4 neighbours (ARP).
    pub arp: crate::arp::ArpCache,
    /// IPv6 neighbour discovery state: neighbour cache, routers, prefixes.
    pub nd: crate::ndp::NdState,
}

impl Interface {
    /// Up and with carrier: frames may flow.
    pub fn is_running(&self) -> bool {
        self.up && self.link_up
    }
    pub fn has_addr4(&self, a: Ipv4Addr) -> bool {
        self.addrs4.iter().any(|x| x.addr == a)
    }
    pub fn addr6(&self, a: &Ipv6Addr) -> Option<&IfAddr6> {
        self.addrs6.iter().find(|x| x.addr == *a)
    }
    /// The first usable link-local IPv6 address.
    pub fn link_local6(&self) -> Option<Ipv6Addr> {
        self.addrs6
            .iter()
            .find(|a| a.is_usable() && a.addr.is_unicast_link_local())
            .map(|a| a.addr)
    }
}

/// The offloads of `lo0`: checksums are left partial on output and trusted
/// on input.
pub const LOOPBACK_OFFLOADS: u32 = offload::CAP_TXCSUM | offload::CAP_RXCSUM;

/// Largest MTU we accept on any interface (jumbo frames).
pub const MAX_MTU: u32 = 65_535;
/// Smallest MTU: IPv4 needs 68 (RFC 791); IPv6 needs 1280 and is disabled
/// below it.
pub const MIN_MTU: u32 = 68;

impl Stack {
    /// Adds an interface. Ethernet interfaces start down with no addresses;
    /// the loopback interface is made by [`Stack::new`].
    pub fn add_interface(
        &mut self,
        name: &str,
        kind: IfKind,
        mac: Mac,
        mtu: u32,
    ) -> Result<IfIndex, Error> {
        if self.iface_by_name(name).is_some() {
            return Err(Error::Exists(format!("interface {name}")));
        }
        if name.is_empty()
            || name.len() > 15
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(Error::Invalid(format!("interface name {name:?}")));
        }
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(Error::Invalid(format!(
                "mtu {mtu} (allowed {MIN_MTU} to {MAX_MTU})"
            )));
        }
        if self.ifaces.iter().flatten().count() >= MAX_INTERFACES {
            return Err(Error::NoBuffers);
        }
        let index = self.ifaces.len() as IfIndex + 1;
        self.link_settings_gen += 1;
        self.ifaces.push(Some(Interface {
            index,
            name: name.to_string(),
            kind,
            mac,
            mtu,
            max_mtu: MAX_MTU,
            up: false,
            link_up: kind == IfKind::Loopback,
            // Frames on lo0 never leave the process, so the transport
            // checksums are neither completed nor verified there (as BSD's
            // lo does with its CSUM_* flags); they are completed where a
            // frame leaves for an interface that needs them.
            offloads: if kind == IfKind::Loopback {
                LOOPBACK_OFFLOADS
            } else {
                0
            },
            addrs4: Vec::new(),
            addrs6: Vec::new(),
            stats: IfStats::default(),
            arp: Default::default(),
            nd: Default::default(),
        }));
        Ok(index)
    }

    /// Removes an interface with its addresses, routes and neighbours.
    pub fn remove_interface(&mut self, index: IfIndex) -> Result<(), Error> {
        if index == crate::LOOPBACK_IFINDEX {
            return Err(Error::Invalid("lo0 cannot be destroyed".into()));
        }
        let slot = self
            .ifaces
            .get_mut(index as usize - 1)
            .filter(|s| s.is_some())
            .ok_or_else(|| Error::NoSuchInterface(format!("#{index}")))?;
        *slot = None;
        self.link_settings_gen += 1;
        self.routes4.remove_interface(index);
        self.routes6.remove_interface(index);
        Ok(())
    }

    pub fn iface(&self, index: IfIndex) -> Option<&Interface> {
        self.ifaces.get((index as usize).checked_sub(1)?)?.as_ref()
    }

    pub fn iface_mut(&mut self, index: IfIndex) -> Option<&mut Interface> {
        self.ifaces
            .get_mut((index as usize).checked_sub(1)?)?
            .as_mut()
    }

    pub fn iface_by_name(&self, name: &str) -> Option<&Interface> {
        self.interfaces().find(|i| i.name == name)
    }

    /// Every interface, in index order.
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.ifaces.iter().flatten()
    }

    fn iface_or_err(&mut self, index: IfIndex) -> Result<&mut Interface, Error> {
        self.iface_mut(index)
            .ok_or_else(|| Error::NoSuchInterface(format!("#{index}")))
    }

    /// `ifconfig IF up` / `down`.
    pub fn set_up(&mut self, ctx: &mut impl Ctx, index: IfIndex, up: bool) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        let was = i.is_running();
        i.up = up;
        let now = i.is_running();
        self.link_settings_gen += 1;
        self.running_changed(ctx, index, was, now);
        Ok(())
    }

    /// The driver reports a change of carrier.
    pub fn set_link(
        &mut self,
        ctx: &mut impl Ctx,
        index: IfIndex,
        link_up: bool,
    ) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        let was = i.is_running();
        i.link_up = link_up;
        let now = i.is_running();
        self.running_changed(ctx, index, was, now);
        Ok(())
    }

    fn running_changed(&mut self, ctx: &mut impl Ctx, index: IfIndex, was: bool, now: bool) {
        if was == now {
            return;
        }
        if now {
            self.ipv4_if_up(ctx, index);
            self.ipv6_if_up(ctx, index);
        } else {
            self.ipv4_if_down(ctx, index);
            self.ipv6_if_down(ctx, index);
        }
    }

    /// `ifconfig IF mtu N`.
    pub fn set_mtu(&mut self, index: IfIndex, mtu: u32) -> Result<(), Error> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(Error::Invalid(format!(
                "mtu {mtu} (allowed {MIN_MTU} to {MAX_MTU})"
            )));
        }
        let i = self.iface_or_err(index)?;
        if mtu > i.max_mtu {
            return Err(Error::Invalid(format!(
                "mtu {mtu}: the driver of {} carries at most {}",
                i.name, i.max_mtu
            )));
        }
        i.mtu = mtu;
        self.link_settings_gen += 1;
        Ok(())
    }

    /// Records the largest MTU the interface's driver carries (lowering the
    /// MTU to it if needed).
    pub fn set_max_mtu(&mut self, index: IfIndex, max: u32) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        i.max_mtu = max.clamp(MIN_MTU, MAX_MTU);
        i.mtu = i.mtu.min(i.max_mtu);
        self.link_settings_gen += 1;
        Ok(())
    }

    /// Records what the interface's driver does about checksums and
    /// segmentation (`iopkt_pkt::offload::CAP_*`; unknown bits are
    /// ignored, and TSO counts only with TXCSUM). `lo0` keeps its own.
    pub fn set_offloads(&mut self, index: IfIndex, caps: u32) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        if i.kind == IfKind::Loopback {
            return Ok(());
        }
        let mut caps = caps & offload::CAP_ALL;
        if caps & offload::CAP_TXCSUM == 0 {
            caps &= !(offload::CAP_TSO4 | offload::CAP_TSO6);
        }
        i.offloads = caps;
        Ok(())
    }

    /// `ifconfig IF inet ADDR/PLEN [alias]`: adds an address and the route to
    /// its subnet. Without `alias` the interface's other IPv4 addresses are
    /// replaced, as the BSD ifconfig does.
    pub fn add_addr4(
        &mut self,
        ctx: &mut impl Ctx,
        index: IfIndex,
        addr: Ipv4Addr,
        plen: u8,
        alias: bool,
    ) -> Result<(), Error> {
        if plen > 32 {
            return Err(Error::Invalid(format!("prefix length {plen} (0 to 32)")));
        }
        if addr.is_multicast() || addr.is_broadcast() || addr.is_unspecified() {
            return Err(Error::Invalid(format!("{addr} is not a unicast address")));
        }
        if self
            .interfaces()
            .any(|i| i.index != index && i.has_addr4(addr))
        {
            return Err(Error::Exists(format!(
                "address {addr} on another interface"
            )));
        }
        self.iface_or_err(index)?;
        if !alias {
            let old: Vec<IfAddr4> = self
                .iface(index)
                .map(|i| i.addrs4.clone())
                .unwrap_or_default();
            for a in old.into_iter().filter(|a| a.addr != addr) {
                self.del_addr4(index, a.addr)?;
            }
        }
        let i = self.iface_or_err(index)?;
        if let Some(a) = i.addrs4.iter_mut().find(|a| a.addr == addr) {
            if a.plen == plen {
                return Ok(());
            }
            let old = *a;
            a.plen = plen;
            self.routes4
                .delete_connected(old.network(), old.plen, index);
        } else {
            i.addrs4.push(IfAddr4 { addr, plen });
        }
        let ifa = IfAddr4 { addr, plen };
        // The subnet route; a second address in the same subnet shares it.
        let _ = self.routes4.add(Route {
            dest: ifa.network(),
            plen,
            gateway: None,
            ifindex: index,
            flags: RouteFlags::CONNECTED,
            expires: None,
        });
        self.ipv4_addr_added(ctx, index, addr);
        Ok(())
    }

    /// `ifconfig IF inet ADDR -alias` / `delete`.
    pub fn del_addr4(&mut self, index: IfIndex, addr: Ipv4Addr) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        let pos = i
            .addrs4
            .iter()
            .position(|a| a.addr == addr)
            .ok_or_else(|| Error::NotFound(format!("address {addr}")))?;
        let old = i.addrs4.remove(pos);
        let still_covered = i
            .addrs4
            .iter()
            .any(|a| a.plen == old.plen && a.network() == old.network());
        if !still_covered {
            self.routes4
                .delete_connected(old.network(), old.plen, index);
        }
        Ok(())
    }

    /// `ifconfig IF inet6 ADDR/PLEN`: adds an address, starts duplicate
    /// address detection and adds the on-link prefix route.
    pub fn add_addr6(
        &mut self,
        ctx: &mut impl Ctx,
        index: IfIndex,
        addr: Ipv6Addr,
        plen: u8,
    ) -> Result<(), Error> {
        self.add_addr6_full(ctx, index, addr, plen, false, None, None)
    }

    /// Adds an IPv6 address with lifetimes (SLAAC uses this).
    #[allow(clippy::too_many_arguments)]
    pub fn add_addr6_full(
        &mut self,
        ctx: &mut impl Ctx,
        index: IfIndex,
        addr: Ipv6Addr,
        plen: u8,
        autoconf: bool,
        valid_until: Option<Instant>,
        preferred_until: Option<Instant>,
    ) -> Result<(), Error> {
        if plen > 128 {
            return Err(Error::Invalid(format!("prefix length {plen} (0 to 128)")));
        }
        if addr.is_multicast() || addr.is_unspecified() {
            return Err(Error::Invalid(format!("{addr} is not a unicast address")));
        }
        if self
            .interfaces()
            .any(|i| i.index != index && i.addr6(&addr).is_some())
        {
            return Err(Error::Exists(format!(
                "address {addr} on another interface"
            )));
        }
        let dad = self.config.dad_count;
        let loopback = self.iface_or_err(index)?.kind == IfKind::Loopback;
        let i = self.iface_or_err(index)?;
        if let Some(a) = i.addrs6.iter_mut().find(|a| a.addr == addr) {
            a.valid_until = valid_until;
            a.preferred_until = preferred_until;
            if a.state == Addr6State::Deprecated && preferred_until.is_none_or(|t| t > ctx.now()) {
                a.state = Addr6State::Preferred;
            }
            return Ok(());
        }
        let tentative = dad > 0 && !loopback;
        i.addrs6.push(IfAddr6 {
            addr,
            plen,
            state: if tentative {
                Addr6State::Tentative
            } else {
                Addr6State::Preferred
            },
            autoconf,
            valid_until,
            preferred_until,
            dad_probes_left: if tentative { dad } else { 0 },
            dad_next: None,
        });
        if plen < 128 && !addr.is_unicast_link_local() {
            let net = Ipv6Addr::from(u128::from(addr) & prefix_mask_v6(plen));
            let _ = self.routes6.add(Route {
                dest: net,
                plen,
                gateway: None,
                ifindex: index,
                flags: RouteFlags::CONNECTED,
                expires: None,
            });
        }
        self.ipv6_addr_added(ctx, index, addr);
        Ok(())
    }

    /// `ifconfig IF inet6 ADDR delete`.
    pub fn del_addr6(&mut self, index: IfIndex, addr: Ipv6Addr) -> Result<(), Error> {
        let i = self.iface_or_err(index)?;
        let pos = i
            .addrs6
            .iter()
            .position(|a| a.addr == addr)
            .ok_or_else(|| Error::NotFound(format!("address {addr}")))?;
        let old = i.addrs6.remove(pos);
        let net = Ipv6Addr::from(u128::from(old.addr) & prefix_mask_v6(old.plen));
        let still = i.addrs6.iter().any(|a| {
            a.plen == old.plen && Ipv6Addr::from(u128::from(a.addr) & prefix_mask_v6(a.plen)) == net
        });
        if !still {
            self.routes6.delete_connected(net, old.plen, index);
        }
        self.ipv6_addr_removed(index);
        Ok(())
    }

    /// The interface holding IPv4 address `a`, if it is one of ours.
    pub fn local_iface4(&self, a: Ipv4Addr) -> Option<IfIndex> {
        self.interfaces().find(|i| i.has_addr4(a)).map(|i| i.index)
    }

    /// The interface holding IPv6 address `a` (in any state), if it is ours.
    pub fn local_iface6(&self, a: &Ipv6Addr) -> Option<IfIndex> {
        self.interfaces()
            .find(|i| i.addr6(a).is_some())
            .map(|i| i.index)
    }
}
