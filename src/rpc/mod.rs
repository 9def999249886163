//! ONC RPC: message headers, record marking, transports and the dispatcher.
//!
//! The dispatcher turns one received message into one reply buffer. It owns
//! the RPC-level checks (version, program, version range, credential flavour);
//! program-level checks (export policy per procedure) belong to the programs'
//! own dispatch tables. Handlers return values; only `server` touches sockets.

pub mod client;
pub mod drc;
pub mod msg;
pub mod record;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::xdr::Writer;
use msg::{AcceptStat, CallError, CallHeader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn netid(self, v6: bool) -> &'static str {
        match (self, v6) {
            (Transport::Tcp, false) => "tcp",
            (Transport::Udp, false) => "udp",
            (Transport::Tcp, true) => "tcp6",
            (Transport::Udp, true) => "udp6",
        }
    }
}

/// Everything a procedure may know about the call it serves.
#[derive(Debug, Clone, Copy)]
pub struct CallContext {
    pub header: CallHeader,
    /// The client's address, with IPv4-mapped IPv6 canonicalised to IPv4.
    pub peer: SocketAddr,
    /// Our address the call arrived on, when the transport knows it.
    pub local: Option<SocketAddr>,
    pub transport: Transport,
}

/// An RPC program served by this process.
#[async_trait]
pub trait Program: Send + Sync {
    fn number(&self) -> u32;
    /// Lowest and highest supported version.
    fn versions(&self) -> (u32, u32);
    /// Runs one procedure. On success the results are appended to `reply`,
    /// which already holds an accepted/SUCCESS header; on error the
    /// dispatcher replaces the reply with the given accept status.
    async fn call(
        &self,
        ctx: &CallContext,
        args: &[u8],
        reply: &mut Writer,
    ) -> Result<(), AcceptStat>;

    /// Whether a procedure is non-idempotent, so a retransmission must be
    /// answered from the duplicate-request cache rather than executed.
    fn replay_cached(&self, _vers: u32, _proc: u32) -> bool {
        false
    }
}

/// Canonicalises an address: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    programs: Arc<Vec<Arc<dyn Program>>>,
    replies: Arc<drc::ReplyCache>,
}

impl Dispatcher {
    pub fn new(programs: Vec<Arc<dyn Program>>) -> Self {
        Dispatcher {
            programs: Arc::new(programs),
            // Non-idempotent replies are small (WCC data, a handle): 16k
            // entries within 16 MiB covers minutes of heavy churn.
            replies: Arc::new(drc::ReplyCache::new(16 * 1024, 16 << 20)),
        }
    }

    /// Handles one RPC message; returns the reply buffer (with four bytes
    /// reserved up front for the record mark) or `None` when nothing should be
    /// sent. `Err` means the stream should be closed (unparseable header).
    pub async fn dispatch(
        &self,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        transport: Transport,
        msg: &[u8],
    ) -> Result<Option<Vec<u8>>, CallError> {
        let (header, args) = match msg::decode_call(msg) {
            Ok(v) => v,
            Err(CallError::NotACall { .. }) => return Ok(None),
            Err(CallError::RpcMismatch { xid }) => return Ok(Some(msg::rpc_mismatch(xid))),
            Err(CallError::Auth { xid, stat }) => {
                tracing::debug!(%peer, xid, ?stat, "credential refused");
                return Ok(Some(msg::auth_error(xid, stat)));
            }
            Err(CallError::Garbage { xid }) => {
                return Ok(Some(msg::accept_error(xid, AcceptStat::GarbageArgs)))
            }
            Err(e @ CallError::Unparseable(_)) => return Err(e),
        };
        let xid = header.xid;
        let Some(program) = self.programs.iter().find(|p| p.number() == header.prog) else {
            return Ok(Some(msg::accept_error(xid, AcceptStat::ProgUnavail)));
        };
        let (low, high) = program.versions();
        if header.vers < low || header.vers > high {
            return Ok(Some(msg::prog_mismatch(xid, low, high)));
        }
        let ctx = CallContext {
            header,
            peer,
            local,
            transport,
        };
        let pending = if program.replay_cached(header.vers, header.proc_) {
            let key = drc::Key::new(peer.ip(), xid, header.prog, header.vers, header.proc_, args);
            match self.replies.begin(key) {
                drc::Lookup::Execute(p) => Some(p),
                drc::Lookup::InProgress => return Ok(None),
                drc::Lookup::Replay(r) => {
                    tracing::debug!(%peer, xid, "retransmission answered from the reply cache");
                    return Ok(Some(r.to_vec()));
                }
            }
        } else {
            None
        };
        let mut reply = msg::accepted(xid, AcceptStat::Success, 256);
        let reply = match program.call(&ctx, args, &mut reply).await {
            Ok(()) => reply.into_inner(),
            Err(stat) => msg::accept_error(xid, stat),
        };
        if let Some(p) = pending {
            p.finish(&reply);
        }
        Ok(Some(reply))
    }
}
