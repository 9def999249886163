//! A deliberately tiny ONC RPC (RFC 5531) client for hostile-input tests: call headers are
//! encoded by hand so tests can break any field, records are framed by hand so tests can lie
//! about fragment lengths, and replies are decoded only as far as the reply header.
//! It does not try to be a general client (no retransmission, no auth beyond what tests forge).
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

pub const PMAP_PROG: u32 = 100_000;
pub const NFS_PROG: u32 = 100_003;
pub const MOUNT_PROG: u32 = 100_005;

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;

pub const LAST_FRAGMENT: u32 = 0x8000_0000;

// accept_stat (RFC 5531 §9)
pub const SUCCESS: u32 = 0;
pub const PROG_UNAVAIL: u32 = 1;
pub const PROG_MISMATCH: u32 = 2;
pub const PROC_UNAVAIL: u32 = 3;
pub const GARBAGE_ARGS: u32 = 4;
pub const SYSTEM_ERR: u32 = 5;
// auth_stat
pub const AUTH_BADCRED: u32 = 1;
pub const AUTH_REJECTEDCRED: u32 = 2;
pub const AUTH_BADVERF: u32 = 3;
pub const AUTH_TOOWEAK: u32 = 5;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// XDR writer: big-endian words, opaque data padded to 4 bytes.
#[derive(Default, Clone)]
pub struct Xdr(pub Vec<u8>);

impl Xdr {
    pub fn new() -> Self {
        Xdr(Vec::new())
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Variable-length opaque/string: length word, bytes, zero padding.
    pub fn opaque(self, data: &[u8]) -> Self {
        self.u32(data.len() as u32).fixed(data)
    }
    /// Fixed-length opaque: bytes plus padding, no length word.
    pub fn fixed(mut self, data: &[u8]) -> Self {
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
    pub fn raw(mut self, data: &[u8]) -> Self {
        self.0.extend_from_slice(data);
        self
    }
    pub fn bytes(self) -> Vec<u8> {
        self.0
    }
}

/// AUTH_SYS credential body (RFC 5531 appendix A).
pub fn auth_sys_body(uid: u32, gid: u32, gids: &[u32]) -> Vec<u8> {
    let mut x = Xdr::new()
        .u32(0x1234)
        .opaque(b"hostile")
        .u32(uid)
        .u32(gid)
        .u32(gids.len() as u32);
    for g in gids {
        x = x.u32(*g);
    }
    x.bytes()
}

/// One call message (no record mark). Every field is public so tests can break it.
#[derive(Clone)]
pub struct Call {
    pub xid: u32,
    pub rpcvers: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub cred_flavor: u32,
    pub cred: Vec<u8>,
    pub verf_flavor: u32,
    pub verf: Vec<u8>,
    pub args: Vec<u8>,
}

impl Call {
    pub fn new(xid: u32, prog: u32, vers: u32, proc_: u32) -> Self {
        Call {
            xid,
            rpcvers: 2,
            prog,
            vers,
            proc_,
            cred_flavor: AUTH_SYS,
            cred: auth_sys_body(0, 0, &[0]),
            verf_flavor: AUTH_NONE,
            verf: Vec::new(),
            args: Vec::new(),
        }
    }
    pub fn null(xid: u32, prog: u32, vers: u32) -> Self {
        Call::new(xid, prog, vers, 0)
    }
    pub fn args(mut self, args: Vec<u8>) -> Self {
        self.args = args;
        self
    }
    pub fn encode(&self) -> Vec<u8> {
        Xdr::new()
            .u32(self.xid)
            .u32(0) // CALL
            .u32(self.rpcvers)
            .u32(self.prog)
            .u32(self.vers)
            .u32(self.proc_)
            .u32(self.cred_flavor)
            .opaque(&self.cred)
            .u32(self.verf_flavor)
            .opaque(&self.verf)
            .raw(&self.args)
            .bytes()
    }
    /// The message as one last fragment.
    pub fn record(&self) -> Vec<u8> {
        record(&self.encode())
    }
}

pub fn record(msg: &[u8]) -> Vec<u8> {
    let mut out = (LAST_FRAGMENT | msg.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// The message split into fragments of at most `frag` bytes (the last one flagged).
pub fn fragmented(msg: &[u8], frag: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = msg.chunks(frag.max(1)).collect();
    for (i, c) in chunks.iter().enumerate() {
        let last = if i + 1 == chunks.len() {
            LAST_FRAGMENT
        } else {
            0
        };
        out.extend_from_slice(&(last | c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// MSG_ACCEPTED: accept_stat and what follows it (results, or low/high for PROG_MISMATCH).
    Accepted { xid: u32, stat: u32, body: Vec<u8> },
    /// MSG_DENIED RPC_MISMATCH with the supported version range.
    RpcMismatch { xid: u32, low: u32, high: u32 },
    /// MSG_DENIED AUTH_ERROR with its auth_stat.
    AuthError { xid: u32, stat: u32 },
}

impl Reply {
    pub fn xid(&self) -> u32 {
        match self {
            Reply::Accepted { xid, .. }
            | Reply::RpcMismatch { xid, .. }
            | Reply::AuthError { xid, .. } => *xid,
        }
    }
    /// (low, high) of an accepted PROG_MISMATCH reply.
    pub fn prog_mismatch(&self) -> Option<(u32, u32)> {
        match self {
            Reply::Accepted {
                stat: PROG_MISMATCH,
                body,
                ..
            } if body.len() >= 8 => Some((word(body, 0), word(body, 4))),
            _ => None,
        }
    }
    pub fn accept_stat(&self) -> Option<u32> {
        match self {
            Reply::Accepted { stat, .. } => Some(*stat),
            _ => None,
        }
    }
    pub fn body(&self) -> &[u8] {
        match self {
            Reply::Accepted { body, .. } => body,
            _ => &[],
        }
    }
}

pub fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decode a reply message (no record mark). Errors describe what is malformed.
pub fn decode_reply(m: &[u8]) -> Result<Reply, String> {
    let need = |n: usize| {
        if m.len() < n {
            Err(format!("reply too short: {} < {n}: {m:02x?}", m.len()))
        } else {
            Ok(())
        }
    };
    need(12)?;
    let xid = word(m, 0);
    if word(m, 4) != 1 {
        return Err(format!("msg_type {} is not REPLY", word(m, 4)));
    }
    match word(m, 8) {
        0 => {
            need(20)?;
            let verf_len = word(m, 16) as usize;
            if verf_len > 400 {
                return Err(format!("reply verifier length {verf_len}"));
            }
            let at = 20 + verf_len.div_ceil(4) * 4;
            need(at + 4)?;
            Ok(Reply::Accepted {
                xid,
                stat: word(m, at),
                body: m[at + 4..].to_vec(),
            })
        }
        1 => {
            need(16)?;
            match word(m, 12) {
                0 => {
                    need(24)?;
                    Ok(Reply::RpcMismatch {
                        xid,
                        low: word(m, 16),
                        high: word(m, 20),
                    })
                }
                1 => {
                    need(20)?;
                    Ok(Reply::AuthError {
                        xid,
                        stat: word(m, 16),
                    })
                }
                s => Err(format!("unknown reject_stat {s}")),
            }
        }
        s => Err(format!("unknown reply_stat {s}")),
    }
}

/// What came back on a TCP connection.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// EOF or reset: the server dropped the connection.
    Closed,
    /// Nothing within the timeout, connection still open.
    Silent,
}

pub struct Conn {
    pub s: TcpStream,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(Conn { s })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes)
    }

    /// Reads one record (all fragments). Ok(None) on clean EOF before the first byte.
    pub fn read_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut msg = Vec::new();
        let mut first = true;
        loop {
            let mut mark = [0u8; 4];
            match read_full(&mut self.s, &mut mark) {
                Ok(0) if first => return Ok(None),
                Ok(4) => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "short record mark",
                    ))
                }
                Err(e) => return Err(e),
            }
            first = false;
            let m = u32::from_be_bytes(mark);
            let len = (m & !LAST_FRAGMENT) as usize;
            if msg.len() + len > 4 << 20 {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("reply fragment of {len} bytes"),
                ));
            }
            let start = msg.len();
            msg.resize(start + len, 0);
            if read_full(&mut self.s, &mut msg[start..])? != len {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "short fragment"));
            }
            if m & LAST_FRAGMENT != 0 {
                return Ok(Some(msg));
            }
        }
    }

    /// Next reply, or Closed / Silent (read timeout set on the socket).
    pub fn outcome(&mut self) -> Outcome {
        match self.read_record() {
            Ok(Some(m)) => match decode_reply(&m) {
                Ok(r) => Outcome::Reply(r),
                Err(e) => panic!("server sent an undecodable reply: {e}"),
            },
            Ok(None) => Outcome::Closed,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Outcome::Silent
            }
            Err(_) => Outcome::Closed,
        }
    }

    pub fn reply(&mut self) -> Reply {
        match self.outcome() {
            Outcome::Reply(r) => r,
            o => panic!("expected a reply, got {o:?}"),
        }
    }

    pub fn call(&mut self, c: &Call) -> Reply {
        self.send(&c.record()).expect("send call");
        let r = self.reply();
        assert_eq!(r.xid(), c.xid, "reply xid");
        r
    }

    /// Waits (up to `within`) for the server to close the connection, discarding replies.
    pub fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        self.s
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.s.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return, // reset
            }
            assert!(
                Instant::now() < deadline,
                "server kept the connection open for {within:?}"
            );
        }
    }
}

/// read_exact that reports how many bytes arrived before EOF.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// One UDP exchange: send a datagram, return the decoded reply or None on timeout.
pub fn udp_call(addr: SocketAddr, datagram: &[u8], timeout: Duration) -> Option<Reply> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.send_to(datagram, addr).expect("udp send");
    let mut buf = vec![0u8; 65536];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => {
            Some(decode_reply(&buf[..n]).unwrap_or_else(|e| panic!("bad UDP reply: {e}")))
        }
        Err(_) => None,
    }
}

/// Sends all calls at once on one connection and collects one reply per call (any order).
pub fn pipelined(addr: SocketAddr, calls: &[Call]) -> Vec<Reply> {
    let mut c = Conn::connect(addr).expect("connect");
    let mut all = Vec::new();
    for call in calls {
        all.extend_from_slice(&call.record());
    }
    let mut w = c.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&all));
    let mut replies = Vec::new();
    let mut seen = HashSet::new();
    while replies.len() < calls.len() {
        let r = c.reply();
        assert!(
            seen.insert(r.xid()),
            "duplicate reply for xid {:#x}",
            r.xid()
        );
        replies.push(r);
    }
    writer.join().unwrap().expect("write pipelined calls");
    replies
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
