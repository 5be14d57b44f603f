use std::fmt;
use std::str::FromStr;

/// An Ethernet (EUI-48) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }

    /// Group bit set (broadcast included).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Mac::ZERO
    }

    /// The multicast MAC an IPv4 group maps to (RFC 1112 section 6.4).
    pub fn ipv4_multicast(group: std::net::Ipv4Addr) -> Mac {
        let o = group.octets();
        Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }

    /// The multicast MAC an IPv6 group maps to (RFC 2464 section 7).
    pub fn ipv6_multicast(group: std::net::Ipv6Addr) -> Mac {
        let o = group.octets();
        Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// A locally administered unicast address derived from `seed` (used when a
    /// driver has no hardware address and none is given with `mac=`).
    pub fn local_from_seed(seed: u64) -> Mac {
        let b = seed.to_be_bytes();
        Mac([0x02, b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error for a MAC address that is not six hex bytes separated by ':' or '-'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMac;

impl fmt::Display for BadMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected six hex bytes such as 02:00:00:00:00:01")
    }
}

impl std::error::Error for BadMac {}

impl FromStr for Mac {
    type Err = BadMac;
    fn from_str(s: &str) -> Result<Mac, BadMac> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 6 || part.is_empty() || part.len() > 2 {
                return Err(BadMac);
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| BadMac)?;
            n += 1;
        }
        if n != 6 {
            return Err(BadMac);
        }
        Ok(Mac(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let m: Mac = "02:0a:0B:0c:0d:ff".parse().unwrap();
        assert_eq!(m.to_string(), "02:0a:0b:0c:0d:ff");
        assert!("02:0a:0b:0c:0d".parse::<Mac>().is_err());
        assert!("02:0a:0b:0c:0d:ff:00".parse::<Mac>().is_err());
        assert!("zz:0a:0b:0c:0d:ff".parse::<Mac>().is_err());
        assert!(m.is_unicast());
        assert!(Mac::BROADCAST.is_multicast());
    }
}
