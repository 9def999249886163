//! The built-in portmapper (program 100000): PMAP v2 and RPCBIND v3/v4.
//!
//! It answers for the programs this process serves and nothing else, with
//! the ports they are really bound to: clients that find ports through it
//! (mount.nfs, rpcinfo, showmount, the kernel's lockd) get the truth.
//! Registration requests from other processes are refused. Its table is
//! built from the programs the server registers (their `Program::name`), so
//! it knows no program by itself. `client` is the other direction: asking a
//! client's portmapper where its lock manager or status monitor listens.

pub mod client;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;

use crate::rpc::msg::AcceptStat;
use crate::rpc::{Call, CallContext, Program, Reply, Transport};
use crate::xdr::Reader;

pub const PROGRAM: u32 = 100000;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// One registered (program, version, transport) → port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub prog: u32,
    pub vers: u32,
    pub transport: Transport,
    pub port: u16,
    /// What rpcinfo shows in its "service" column.
    pub name: &'static str,
}

pub struct Portmap {
    pub mappings: Vec<Mapping>,
    /// Whether we listen on IPv6 too (then tcp6/udp6 are listed).
    pub ipv6: bool,
}

fn prot(t: Transport) -> u32 {
    match t {
        Transport::Tcp => IPPROTO_TCP,
        Transport::Udp => IPPROTO_UDP,
    }
}

fn netid_transport(netid: &[u8]) -> Option<(Transport, bool)> {
    match netid {
        b"tcp" => Some((Transport::Tcp, false)),
        b"udp" => Some((Transport::Udp, false)),
        b"tcp6" => Some((Transport::Tcp, true)),
        b"udp6" => Some((Transport::Udp, true)),
        _ => None,
    }
}

/// RFC 1833 universal address: "h1.h2.h3.h4.p1.p2" or "v6addr.p1.p2".
pub fn uaddr(ip: IpAddr, port: u16) -> String {
    format!("{}.{}.{}", ip, port >> 8, port & 0xff)
}

impl Portmap {
    fn find(&self, prog: u32, vers: Option<u32>, t: Transport) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.prog == prog && m.transport == t && vers.is_none_or(|v| v == m.vers))
    }

    /// The address a GETADDR answer names: the one the client reached us on
    /// when known, else the loopback/any address of the right family.
    fn answer_ip(ctx: &CallContext, v6: bool) -> IpAddr {
        match (ctx.local.map(|l| l.ip()), v6) {
            (Some(ip @ IpAddr::V4(_)), false) if !ip.is_unspecified() => ip,
            (Some(ip @ IpAddr::V6(_)), true) if !ip.is_unspecified() => ip,
            (_, false) if ctx.peer.ip().is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            (_, true) if ctx.peer.ip().is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            (_, false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (_, true) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

#[async_trait]
impl Program for Portmap {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (2, 4)
    }

    fn name(&self) -> &'static str {
        "portmapper"
    }

    async fn call(&self, call: Call, reply: Reply) {
        let mut w = reply.results();
        match self.answer(&call.ctx, call.args(), &mut w) {
            Ok(()) => reply.send(w),
            Err(stat) => reply.error(stat),
        }
    }
}

impl Portmap {
    fn answer(
        &self,
        ctx: &CallContext,
        args: &[u8],
        w: &mut crate::xdr::Writer,
    ) -> Result<(), AcceptStat> {
        let mut r = Reader::new(args);
        let g = |_| AcceptStat::GarbageArgs;
        match (ctx.header.vers, ctx.header.proc_) {
            (_, 0) => Ok(()),
            // SET / UNSET: we serve only ourselves.
            (_, 1) | (_, 2) => {
                w.bool(false);
                Ok(())
            }
            (2, 3) => {
                let prog = r.u32().map_err(g)?;
                let vers = r.u32().map_err(g)?;
                let p = r.u32().map_err(g)?;
                let _port = r.u32().map_err(g)?;
                let t = match p {
                    IPPROTO_TCP => Some(Transport::Tcp),
                    IPPROTO_UDP => Some(Transport::Udp),
                    _ => None,
                };
                let port = t
                    .and_then(|t| self.find(prog, Some(vers), t))
                    .map(|m| m.port);
                w.u32(port.unwrap_or(0) as u32);
                Ok(())
            }
            (2, 4) => {
                for m in &self.mappings {
                    w.bool(true);
                    w.u32(m.prog);
                    w.u32(m.vers);
                    w.u32(prot(m.transport));
                    w.u32(m.port as u32);
                }
                w.bool(false);
                Ok(())
            }
            // GETADDR (v3, v4) and GETVERSADDR (v4).
            (3 | 4, 3) | (4, 9) => {
                let prog = r.u32().map_err(g)?;
                let vers = r.u32().map_err(g)?;
                let netid = r.string(64).map_err(g)?;
                let _addr = r.string(128).map_err(g)?;
                let _owner = r.string(256).map_err(g)?;
                let answer = netid_transport(netid)
                    .filter(|(_, v6)| !*v6 || self.ipv6)
                    .and_then(|(t, v6)| self.find(prog, Some(vers), t).map(|m| (m, v6)))
                    .map(|(m, v6)| uaddr(Self::answer_ip(ctx, v6), m.port));
                w.string(answer.unwrap_or_default().as_bytes());
                Ok(())
            }
            (3 | 4, 4) => {
                let families: &[bool] = if self.ipv6 { &[false, true] } else { &[false] };
                for m in &self.mappings {
                    for &v6 in families {
                        w.bool(true);
                        w.u32(m.prog);
                        w.u32(m.vers);
                        w.string(m.transport.netid(v6).as_bytes());
                        let ip = if v6 {
                            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                        } else {
                            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                        };
                        w.string(uaddr(ip, m.port).as_bytes());
                        w.string(m.name.as_bytes());
                    }
                }
                w.bool(false);
                Ok(())
            }
            // GETADDRLIST (v4): every address of a program's version, one
            // entry per transport and address family (`rpcinfo -l`).
            (4, 11) => {
                let prog = r.u32().map_err(g)?;
                let vers = r.u32().map_err(g)?;
                let _netid = r.string(64).map_err(g)?;
                let _addr = r.string(128).map_err(g)?;
                let _owner = r.string(256).map_err(g)?;
                let families: &[bool] = if self.ipv6 { &[false, true] } else { &[false] };
                for m in self
                    .mappings
                    .iter()
                    .filter(|m| m.prog == prog && m.vers == vers)
                {
                    for &v6 in families {
                        w.bool(true);
                        w.string(uaddr(Self::answer_ip(ctx, v6), m.port).as_bytes());
                        w.string(m.transport.netid(v6).as_bytes());
                        // NC_TPI_COTS_ORD for TCP, NC_TPI_CLTS for UDP
                        w.u32(match m.transport {
                            Transport::Tcp => 3,
                            Transport::Udp => 1,
                        });
                        w.string(if v6 { b"inet6" } else { b"inet" });
                        w.string(match m.transport {
                            Transport::Tcp => b"tcp",
                            Transport::Udp => b"udp",
                        });
                    }
                }
                w.bool(false);
                Ok(())
            }
            // GETTIME
            (3 | 4, 6) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as u32)
                    .unwrap_or(0);
                w.u32(now);
                Ok(())
            }
            _ => Err(AcceptStat::ProcUnavail),
        }
    }
}

/// One program as the portmapper lists it: its versions on TCP and UDP at
/// `port`.
pub struct Registration {
    pub prog: u32,
    pub versions: Vec<u32>,
    pub name: &'static str,
    pub port: u16,
}

/// The table for these registrations (every version on TCP and UDP).
pub fn mappings(registrations: &[Registration]) -> Vec<Mapping> {
    let mut v = Vec::new();
    for t in [Transport::Tcp, Transport::Udp] {
        for r in registrations {
            for &vers in r.versions.iter().rev() {
                v.push(Mapping {
                    prog: r.prog,
                    vers,
                    transport: t,
                    port: r.port,
                    name: r.name,
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universal_addresses() {
        assert_eq!(uaddr("127.0.0.1".parse().unwrap(), 2049), "127.0.0.1.8.1");
        assert_eq!(uaddr("::1".parse().unwrap(), 111), "::1.0.111");
    }
}
