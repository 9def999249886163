//! A small ONC RPC client for the calls the server itself makes: NLM
//! GRANTED callbacks to a client's lock manager and NSM reboot notifications
//! to a client's status monitor (found first with `portmap::client`).
//!
//! One call per TCP connection, bounded in time and in reply size: these are
//! rare, and a client that answers slowly or with garbage costs a timeout,
//! never memory. The local end is bound to the address the client reached us
//! on (clients match callbacks by the server's address) and, when we may, to
//! a privileged port as kernel lock managers do.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use super::msg::{AUTH_NONE, AUTH_SYS, MSG_CALL, MSG_REPLY, RPC_VERSION};
use super::record::{read_record, RecordError};
use crate::xdr::{Reader, Writer};

/// The largest reply we read: callbacks answer with a few words.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("connecting to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("calling program {prog} version {vers} procedure {proc_} at {addr}")]
    Io {
        addr: SocketAddr,
        prog: u32,
        vers: u32,
        proc_: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the reply from {addr}")]
    Record {
        addr: SocketAddr,
        #[source]
        source: RecordError,
    },
    #[error("no reply from {addr} within {secs} s")]
    Timeout { addr: SocketAddr, secs: u64 },
    #[error("{addr} refused the call: {why}")]
    Refused { addr: SocketAddr, why: String },
    #[error("program {prog} version {vers} is not registered with the portmapper at {host}")]
    NotRegistered { host: IpAddr, prog: u32, vers: u32 },
}

/// Where and how to call.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    /// Our address to call from (the one the client knows us by).
    pub from: Option<IpAddr>,
    pub timeout: Duration,
}

fn call_message(xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_buffer(Vec::with_capacity(96 + args.len()));
    w.u32(0); // record mark
    w.u32(xid);
    w.u32(MSG_CALL);
    w.u32(RPC_VERSION);
    w.u32(prog);
    w.u32(vers);
    w.u32(proc_);
    // AUTH_SYS as root of this host, like a kernel lock manager's callbacks.
    let mut cred = Writer::new();
    cred.u32(0); // stamp
    cred.string(b"volnfs");
    cred.u32(0); // uid
    cred.u32(0); // gid
    cred.u32(0); // no groups
    let cred = cred.into_inner();
    w.u32(AUTH_SYS);
    w.opaque(&cred);
    w.u32(AUTH_NONE);
    w.u32(0);
    let mut buf = w.into_inner();
    buf.extend_from_slice(args);
    super::record::set_record_mark(&mut buf);
    buf
}

/// Checks a reply header; returns the results.
fn parse_reply(xid: u32, addr: SocketAddr, msg: &[u8]) -> Result<&[u8], ClientError> {
    let refused = |why: &str| ClientError::Refused {
        addr,
        why: why.to_string(),
    };
    let mut r = Reader::new(msg);
    let bad = |_| refused("malformed reply");
    if r.u32().map_err(bad)? != xid || r.u32().map_err(bad)? != MSG_REPLY {
        return Err(refused("reply to another call"));
    }
    if r.u32().map_err(bad)? != 0 {
        return Err(refused("call denied (RPC version or authentication)"));
    }
    let _verf_flavor = r.u32().map_err(bad)?;
    r.opaque(400).map_err(bad)?;
    match r.u32().map_err(bad)? {
        0 => Ok(r.rest()),
        1 => Err(refused("program unavailable")),
        2 => Err(refused("program version mismatch")),
        3 => Err(refused("procedure unavailable")),
        4 => Err(refused("garbage arguments")),
        _ => Err(refused("system error")),
    }
}

async fn connect(t: &Target) -> std::io::Result<TcpStream> {
    let sock = if t.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = t
        .from
        .filter(|ip| !ip.is_unspecified() && ip.is_ipv4() == t.addr.is_ipv4())
    {
        // A reserved port when we may have one (root), as bindresvport(3).
        let mut bound = false;
        for port in (665..1024).rev() {
            if sock.bind(SocketAddr::new(ip, port)).is_ok() {
                bound = true;
                break;
            }
            if !nix::unistd::geteuid().is_root() {
                break;
            }
        }
        if !bound {
            sock.bind(SocketAddr::new(ip, 0))?;
        }
    }
    sock.connect(t.addr).await
}

/// Makes one call and returns the results (the bytes after the accepted
/// reply header).
pub async fn call(
    t: Target,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let addr = t.addr;
    let io = |source| ClientError::Io {
        addr,
        prog,
        vers,
        proc_,
        source,
    };
    let mut xid_bytes = [0u8; 4];
    let _ = getrandom::getrandom(&mut xid_bytes);
    let xid = u32::from_be_bytes(xid_bytes);
    let exchange = async {
        let mut s = connect(&t)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        s.write_all(&call_message(xid, prog, vers, proc_, args))
            .await
            .map_err(io)?;
        let mut buf = Vec::new();
        loop {
            match read_record(&mut s, &mut buf, MAX_REPLY).await {
                Ok(true) => {}
                Ok(false) => return Err(io(std::io::ErrorKind::UnexpectedEof.into())),
                Err(source) => return Err(ClientError::Record { addr, source }),
            }
            // Skip replies to anything else (there should be none).
            if buf.get(..4) == Some(&xid.to_be_bytes()[..]) {
                return parse_reply(xid, addr, &buf).map(|r| r.to_vec());
            }
        }
    };
    tokio::time::timeout(t.timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            addr,
            secs: t.timeout.as_secs(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_message_decodes_as_the_call_it_encodes() {
        let msg = call_message(7, 100021, 4, 5, &[0, 0, 0, 9]);
        let rec = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]);
        assert_eq!(rec & 0x7fff_ffff, (msg.len() - 4) as u32);
        let (h, args) = super::super::msg::decode_call(&msg[4..]).unwrap();
        assert_eq!((h.xid, h.prog, h.vers, h.proc_), (7, 100021, 4, 5));
        assert!(matches!(h.auth, super::super::msg::Auth::Sys(s) if s.uid == 0));
        assert_eq!(args, &[0, 0, 0, 9]);
    }

    #[test]
    fn replies_are_checked_before_their_results_are_used() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut ok = super::super::msg::accepted(7, super::super::msg::AcceptStat::Success, 64);
        ok.u32(42);
        let ok = ok.into_inner();
        assert_eq!(parse_reply(7, addr, &ok[4..]).unwrap(), &[0, 0, 0, 42]);
        assert!(parse_reply(8, addr, &ok[4..]).is_err());
        let unavail =
            super::super::msg::accept_error(7, super::super::msg::AcceptStat::ProgUnavail);
        assert!(parse_reply(7, addr, &unavail[4..]).is_err());
        assert!(parse_reply(7, addr, &[0, 0, 0, 7]).is_err());
    }
}
