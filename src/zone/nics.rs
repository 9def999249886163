//! `sdc:nics` → the zone's static addresses and their networks. Pure.

use std::net::IpAddr;

use serde_json::Value;

use super::{bad, keys, ZoneError};

/// One static address of the zone and the prefix length of its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicAddress {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl NicAddress {
    /// The network, e.g. `10.88.0.0/16` for `10.88.3.7/16`.
    pub fn network(&self) -> String {
        let net = match self.ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        format!("{net}/{}", self.prefix)
    }
}

/// Parses one `addr/prefix` (the `ips` form of `sdc:nics`).
fn parse_cidr_address(key: &str, s: &str) -> Result<NicAddress, ZoneError> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| bad(key, format!("{s:?} has no /prefix")))?;
    let ip: IpAddr = a
        .parse()
        .map_err(|_| bad(key, format!("{a:?} is not an IP address")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| bad(key, format!("{p:?} is not a prefix length for {ip}")))?;
    Ok(NicAddress { ip, prefix })
}

/// `255.255.252.0` → 22; non-contiguous masks are refused.
fn netmask_prefix(key: &str, mask: &str) -> Result<u8, ZoneError> {
    let m: std::net::Ipv4Addr = mask
        .parse()
        .map_err(|_| bad(key, format!("{mask:?} is not a dotted netmask")))?;
    let bits = u32::from(m);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(bad(key, format!("{mask:?} is not a contiguous netmask")));
    }
    Ok(prefix as u8)
}

/// Static addresses from `sdc:nics`: each NIC's `ips` (`["10.0.0.5/24",
/// "fd00::5/64", "addrconf"]`, newer platforms) or else `ip` + `netmask`.
/// `dhcp`/`addrconf` have no network we could know in advance and IPv6
/// link-local addresses are per-link: those are skipped.
pub fn nic_addresses(nics: &Value) -> Result<Vec<NicAddress>, ZoneError> {
    let list = nics
        .as_array()
        .ok_or_else(|| bad(keys::NICS, "expected a JSON array of NICs"))?;
    let mut out: Vec<NicAddress> = Vec::new();
    for (i, nic) in list.iter().enumerate() {
        let key = |k: &str| format!("{}[{i}].{k}", keys::NICS);
        let obj = nic
            .as_object()
            .ok_or_else(|| bad(format!("{}[{i}]", keys::NICS), "expected an object"))?;
        let mut found = Vec::new();
        if let Some(ips) = obj.get("ips") {
            let ips = ips
                .as_array()
                .ok_or_else(|| bad(key("ips"), "expected an array of addr/prefix"))?;
            for (j, ip) in ips.iter().enumerate() {
                let k = format!("{}[{j}]", key("ips"));
                let s = ip.as_str().ok_or_else(|| bad(&k, "expected a string"))?;
                if s == "dhcp" || s == "addrconf" {
                    continue;
                }
                found.push(parse_cidr_address(&k, s)?);
            }
        } else if let Some(ip) = obj.get("ip") {
            let ip = ip
                .as_str()
                .ok_or_else(|| bad(key("ip"), "expected a string"))?;
            if ip != "dhcp" && ip != "addrconf" {
                let addr: IpAddr = ip
                    .parse()
                    .map_err(|_| bad(key("ip"), format!("{ip:?} is not an IP address")))?;
                let prefix = match (addr, obj.get("netmask").and_then(Value::as_str)) {
                    (IpAddr::V4(_), Some(m)) => netmask_prefix(&key("netmask"), m)?,
                    (IpAddr::V4(_), None) => {
                        return Err(ZoneError::MissingKey {
                            key: key("netmask"),
                        })
                    }
                    (IpAddr::V6(_), _) => {
                        return Err(bad(key("ip"), "an IPv6 address needs the ips form"))
                    }
                };
                found.push(NicAddress { ip: addr, prefix });
            }
        } else {
            return Err(ZoneError::MissingKey { key: key("ip") });
        }
        for a in found {
            let link_local =
                matches!(a.ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !link_local && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if out.is_empty() {
        return Err(bad(
            keys::NICS,
            "no NIC has a static address, so no client network is known",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_convert_to_prefixes() {
        assert_eq!(netmask_prefix("k", "255.255.252.0").unwrap(), 22);
        assert_eq!(netmask_prefix("k", "0.0.0.0").unwrap(), 0);
        assert_eq!(netmask_prefix("k", "255.255.255.255").unwrap(), 32);
        assert!(netmask_prefix("k", "255.0.255.0").is_err());
    }
}
