//! Export access policy: client address → rights. Pure and table-tested.
//!
//! Rules are CIDR prefixes; the most specific matching rule wins and an
//! address that matches no rule has no access at all (deny by default).
//! IPv4-mapped IPv6 addresses are canonicalised to IPv4 before matching, so a
//! dual-stack listener cannot be used to sidestep an IPv4 rule.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Ro,
    Rw,
}

/// How caller identities are mapped (names as in exports(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Squash {
    /// uid 0 / gid 0 become the anonymous ids.
    #[default]
    RootSquash,
    NoRootSquash,
    /// Every caller becomes the anonymous ids.
    AllSquash,
}

/// An address prefix such as `10.0.0.0/8`, `192.168.1.7` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address or CIDR {input:?}: {reason}")]
pub struct CidrError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let err = |reason| CidrError {
            input: s.to_string(),
            reason,
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical_ip(IpAddr::from_str(a).map_err(|_| err("not an IP address"))?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => {
                let v: u8 = p
                    .parse()
                    .map_err(|_| err("prefix length is not a number"))?;
                if v > max {
                    return Err(err("prefix length too long for the address family"));
                }
                v
            }
        };
        let c = Cidr { addr, prefix };
        // Host bits set ("10.1.2.3/8") is almost always a typo; refuse it.
        if !c.contains(addr) || c.network() != addr {
            return Err(err("host bits set beyond the prefix length"));
        }
        Ok(c)
    }
}

impl Cidr {
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One client rule of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    pub cidr: Cidr,
    pub access: Access,
    pub squash: Squash,
}

/// What a client may do on an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub access: Access,
    pub squash: Squash,
}

/// The per-export policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPolicy {
    pub rules: Vec<ClientRule>,
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// Require a privileged (< 1024) client source port.
    pub secure: bool,
}

impl ExportPolicy {
    /// The rights of the most specific rule matching `ip`, or `None` (deny).
    pub fn rights_for(&self, ip: IpAddr) -> Option<Rights> {
        self.rules
            .iter()
            .filter(|r| r.cidr.contains(ip))
            .max_by_key(|r| r.cidr.prefix_len())
            .map(|r| Rights {
                access: r.access,
                squash: r.squash,
            })
    }

    /// Rights for a caller at `ip` using source `port`.
    pub fn rights_for_peer(&self, ip: IpAddr, port: u16) -> Option<Rights> {
        if self.secure && port >= 1024 {
            return None;
        }
        self.rights_for(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[(&str, Access)]) -> ExportPolicy {
        ExportPolicy {
            rules: rules
                .iter()
                .map(|(c, a)| ClientRule {
                    cidr: c.parse().unwrap(),
                    access: *a,
                    squash: Squash::RootSquash,
                })
                .collect(),
            anon_uid: 65534,
            anon_gid: 65534,
            secure: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn no_matching_rule_denies() {
        let p = policy(&[("10.0.0.0/8", Access::Rw)]);
        assert_eq!(p.rights_for(ip("192.168.0.1")), None);
        assert_eq!(policy(&[]).rights_for(ip("10.0.0.1")), None);
    }

    #[test]
    fn most_specific_rule_wins() {
        let p = policy(&[
            ("10.0.0.0/8", Access::Rw),
            ("10.1.0.0/16", Access::Ro),
            ("0.0.0.0/0", Access::Ro),
        ]);
        assert_eq!(p.rights_for(ip("10.1.2.3")).unwrap().access, Access::Ro);
        assert_eq!(p.rights_for(ip("10.2.2.3")).unwrap().access, Access::Rw);
        assert_eq!(p.rights_for(ip("8.8.8.8")).unwrap().access, Access::Ro);
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_rules() {
        let p = policy(&[("127.0.0.0/8", Access::Rw)]);
        assert!(p.rights_for(ip("::ffff:127.0.0.2")).is_some());
        assert!(p.rights_for(ip("::1")).is_none());
    }

    #[test]
    fn ipv6_prefixes_match() {
        let p = policy(&[("fd00::/8", Access::Rw), ("::1", Access::Ro)]);
        assert!(p.rights_for(ip("fd12::5")).is_some());
        assert_eq!(p.rights_for(ip("::1")).unwrap().access, Access::Ro);
        assert!(p.rights_for(ip("fe80::1")).is_none());
    }

    #[test]
    fn secure_export_refuses_unprivileged_ports() {
        let mut p = policy(&[("127.0.0.0/8", Access::Rw)]);
        p.secure = true;
        assert!(p.rights_for_peer(ip("127.0.0.1"), 40000).is_none());
        assert!(p.rights_for_peer(ip("127.0.0.1"), 700).is_some());
    }

    #[test]
    fn bad_cidrs_are_rejected() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "banana",
            "10.0.0.0/x",
            "::1/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
