//! ONC RPC: message headers, record marking, transports and the dispatcher.
//!
//! The dispatcher turns one received message into one call of a program
//! with a [`Reply`] to answer it. It owns the RPC-level checks (version,
//! program, version range, credential flavour) and the duplicate-request
//! cache; program-level checks (export policy per procedure) belong to the
//! programs' own dispatch tables. Programs answer through the `Reply` from
//! whichever thread finishes the work (an async worker or the file I/O
//! pool): the reply goes straight to the connection, no hop back.

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
pub use server::Ticket;

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
    /// The only call in flight on its connection, with nothing more
    /// received yet: the transport's reader has nothing else to do, so the
    /// call may run on the receiving thread (`IoPool::submit_call`).
    pub alone: bool,
}

/// One received call: its context and the message it came in (owned, so
/// the work can move to another thread).
pub struct Call {
    pub ctx: CallContext,
    msg: Vec<u8>,
    args_at: usize,
}

impl Call {
    /// The procedure's argument bytes.
    pub fn args(&self) -> &[u8] {
        &self.msg[self.args_at..]
    }
}

/// An encoded reply: the record-mark space, RPC header and results, and
/// optionally bulk data that follows them on the wire (READ data), so data
/// is never copied into the header buffer: the transport sends both in one
/// vectored write.
pub struct ReplyBytes {
    pub head: Vec<u8>,
    pub tail: Option<Vec<u8>>,
}

impl ReplyBytes {
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.as_ref().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One buffer (UDP datagrams, the reply cache).
    pub fn concat(self) -> Vec<u8> {
        let mut head = self.head;
        if let Some(t) = self.tail {
            head.extend_from_slice(&t);
        }
        head
    }
}

/// Where replies of one connection (or UDP socket) go. `deliver` may be
/// called from any thread and must not block.
pub trait Sink: Send + Sync {
    fn deliver(&self, reply: ReplyBytes, ticket: Ticket);
}

/// The one way to answer a call. Dropping it unanswered sends nothing (the
/// client retransmits) and releases what the call held.
pub struct Reply {
    xid: u32,
    sink: Arc<dyn Sink>,
    ticket: Option<Ticket>,
    drc: Option<drc::Pending>,
    capacity: usize,
}

impl Reply {
    /// A reply buffer holding the accepted/SUCCESS header; append results.
    pub fn results(&self) -> Writer {
        msg::accepted(self.xid, AcceptStat::Success, self.capacity)
    }

    pub fn send(self, w: Writer) {
        self.send_bytes(ReplyBytes {
            head: w.into_inner(),
            tail: None,
        })
    }

    /// Results in `w`, followed on the wire by `tail`.
    pub fn send_with_tail(self, w: Writer, tail: Vec<u8>) {
        self.send_bytes(ReplyBytes {
            head: w.into_inner(),
            tail: Some(tail),
        })
    }

    pub fn error(self, stat: AcceptStat) {
        let head = msg::accept_error(self.xid, stat);
        self.send_bytes(ReplyBytes { head, tail: None })
    }

    fn send_bytes(mut self, bytes: ReplyBytes) {
        let bytes = match self.drc.take() {
            Some(p) => {
                let whole = bytes.concat();
                p.finish(&whole);
                ReplyBytes {
                    head: whole,
                    tail: None,
                }
            }
            None => bytes,
        };
        if let Some(t) = self.ticket.take() {
            self.sink.deliver(bytes, t);
        }
    }
}

/// An RPC program served by this process.
#[async_trait]
pub trait Program: Send + Sync {
    fn number(&self) -> u32;
    /// The name rpcinfo shows (rpcbind's netconfig "owner" column).
    fn name(&self) -> &'static str;
    /// Lowest and highest supported version.
    fn versions(&self) -> (u32, u32);

    /// Whether a procedure is non-idempotent, so a retransmission must be
    /// answered from the duplicate-request cache rather than executed.
    fn replay_cached(&self, _vers: u32, _proc: u32) -> bool {
        false
    }

    /// The most bytes the results of this call can take (READ-like calls
    /// say what they asked for), so the transport can reserve room before
    /// running it. Anything not told is small.
    fn reply_size_hint(&self, _header: &CallHeader, _args: &[u8]) -> usize {
        0
    }

    /// Whether the call finishes promptly without waiting on anything but
    /// CPU (it may hand work to the file I/O pool): the transport then runs
    /// it in line instead of in a task of its own.
    fn runs_in_line(&self, _header: &CallHeader) -> bool {
        true
    }

    /// Runs one procedure and answers through `reply` (now or later, from
    /// any thread).
    async fn call(&self, call: Call, reply: Reply);
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

/// What a received message turned out to be.
pub enum Parsed {
    /// A call for one of our programs: `reply_size_hint` bytes of results
    /// at most; run it with [`Dispatcher::run`].
    Call {
        call: Call,
        program: Arc<dyn Program>,
        reply_size_hint: usize,
    },
    /// Answered at the RPC level (bad version, unknown program, ...).
    Answer(Vec<u8>),
    /// Nothing to send (a stray REPLY).
    Nothing,
    /// Unparseable: close the connection.
    Close,
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

    pub fn programs(&self) -> &[Arc<dyn Program>] {
        &self.programs
    }

    /// Decodes the RPC header of one message and finds its program.
    pub fn parse(
        &self,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        transport: Transport,
        msg: Vec<u8>,
    ) -> Parsed {
        let (header, args_at) = match msg::decode_call(&msg) {
            Ok((h, args)) => (h, msg.len() - args.len()),
            Err(CallError::NotACall { .. }) => return Parsed::Nothing,
            Err(CallError::RpcMismatch { xid }) => return Parsed::Answer(msg::rpc_mismatch(xid)),
            Err(CallError::Auth { xid, stat }) => {
                tracing::debug!(%peer, xid, ?stat, "credential refused");
                return Parsed::Answer(msg::auth_error(xid, stat));
            }
            Err(CallError::Garbage { xid }) => {
                return Parsed::Answer(msg::accept_error(xid, AcceptStat::GarbageArgs))
            }
            Err(CallError::Unparseable(_)) => return Parsed::Close,
        };
        let xid = header.xid;
        let Some(program) = self.programs.iter().find(|p| p.number() == header.prog) else {
            return Parsed::Answer(msg::accept_error(xid, AcceptStat::ProgUnavail));
        };
        let (low, high) = program.versions();
        if header.vers < low || header.vers > high {
            return Parsed::Answer(msg::prog_mismatch(xid, low, high));
        }
        let reply_size_hint = program.reply_size_hint(&header, &msg[args_at..]);
        Parsed::Call {
            call: Call {
                ctx: CallContext {
                    header,
                    peer,
                    local,
                    transport,
                    alone: false,
                },
                msg,
                args_at,
            },
            program: program.clone(),
            reply_size_hint,
        }
    }

    /// Runs a parsed call: answered from the duplicate-request cache when
    /// it is a retransmission, else by its program through `sink`.
    pub async fn run(
        &self,
        call: Call,
        program: Arc<dyn Program>,
        sink: Arc<dyn Sink>,
        ticket: Ticket,
    ) {
        let h = call.ctx.header;
        let drc = if program.replay_cached(h.vers, h.proc_) {
            let key = drc::Key::new(
                call.ctx.peer.ip(),
                h.xid,
                h.prog,
                h.vers,
                h.proc_,
                call.args(),
            );
            match self.replies.begin(key) {
                drc::Lookup::Execute(p) => Some(p),
                drc::Lookup::InProgress => return,
                drc::Lookup::Replay(r) => {
                    tracing::debug!(peer = %call.ctx.peer, xid = h.xid, "retransmission answered from the reply cache");
                    sink.deliver(
                        ReplyBytes {
                            head: r.to_vec(),
                            tail: None,
                        },
                        ticket,
                    );
                    return;
                }
            }
        } else {
            None
        };
        let reply = Reply {
            xid: h.xid,
            sink,
            ticket: Some(ticket),
            drc,
            capacity: 256,
        };
        program.call(call, reply).await;
    }
}
