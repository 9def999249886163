//! Raw ONC RPC over UDP and TCP, for what `nfs3_client` cannot do: choose the source
//! address or the xid, retransmit, see "no reply at all", or see a connection closed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nfs3_client::nfs3_types::rpc::{
    accept_stat_data, call_body, msg_body, opaque_auth, reply_body, rpc_msg,
};
use nfs3_client::nfs3_types::xdr_codec::{Pack, Unpack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::nfs::unix_credential;

/// A unique xid per call within this process, so no two calls ever share one.
fn next_xid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT_XID: AtomicU32 = AtomicU32::new(0);
    (std::process::id() << 20).wrapping_add(NEXT_XID.fetch_add(1, Ordering::Relaxed))
}

/// Encodes a CALL with `cred` (and an AUTH_NONE verifier) followed by `args`.
pub fn encode_call<A: Pack>(
    xid: u32,
    (prog, vers, proc_): (u32, u32, u32),
    cred: &opaque_auth<'static>,
    args: &A,
) -> Vec<u8> {
    let msg = rpc_msg {
        xid,
        body: msg_body::CALL(call_body {
            rpcvers: 2,
            prog,
            vers,
            proc: proc_,
            cred: cred.borrow(),
            verf: opaque_auth::default(),
        }),
    };
    let mut out = Vec::new();
    msg.pack(&mut out).expect("pack call header");
    args.pack(&mut out).expect("pack call args");
    out
}

/// How [`udp_exchange_call`] waits and decodes.
struct UdpMode {
    /// Silence before each of the two retransmissions.
    per_try: Duration,
    /// Bytes after the decoded result are an error (off: decode a prefix, e.g. the status).
    whole_reply: bool,
}

/// One call over UDP from `src` to `dst`, retransmitted twice on silence.
/// `Ok(None)`: no reply at all.
async fn udp_exchange_call<A: Pack, R: Unpack>(
    src: IpAddr,
    dst: SocketAddr,
    call: (u32, u32, u32),
    cred: &opaque_auth<'static>,
    args: &A,
    mode: UdpMode,
) -> Result<Option<R>, String> {
    let xid = next_xid();
    let request = encode_call(xid, call, cred, args);
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(src, 0))
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(dst).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    for _attempt in 0..3 {
        socket.send(&request).await.map_err(|e| e.to_string())?;
        let n = match tokio::time::timeout(mode.per_try, socket.recv(&mut buf)).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => continue,
        };
        let mut cursor = std::io::Cursor::new(&buf[..n]);
        let (reply, _) =
            rpc_msg::unpack(&mut cursor).map_err(|e| format!("unpack reply: {e:?}"))?;
        if reply.xid != xid {
            continue;
        }
        return match reply.body {
            msg_body::REPLY(reply_body::MSG_ACCEPTED(acc)) => match acc.reply_data {
                accept_stat_data::SUCCESS => {
                    let (value, _) =
                        R::unpack(&mut cursor).map_err(|e| format!("unpack result: {e:?}"))?;
                    if mode.whole_reply && cursor.position() as usize != n {
                        return Err(format!(
                            "{} trailing bytes after the result",
                            n - cursor.position() as usize
                        ));
                    }
                    Ok(Some(value))
                }
                other => Err(format!("call accepted but failed: {other:?}")),
            },
            msg_body::REPLY(reply_body::MSG_DENIED(denied)) => {
                Err(format!("call denied: {denied:?}"))
            }
            msg_body::CALL(_) => Err("got a CALL back".into()),
        };
    }
    Ok(None)
}

/// One ONC RPC call over UDP to 127.0.0.1:`port` (AUTH_UNIX root), retransmitting on
/// silence. Returns the decoded result, or a description of the RPC-level failure.
pub async fn udp_call<A: Pack, R: Unpack>(
    port: u16,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &A,
) -> Result<R, String> {
    let lo = IpAddr::from([127, 0, 0, 1]);
    let cred = unix_credential(0, 0, &[]);
    let mode = UdpMode {
        per_try: Duration::from_secs(2),
        whole_reply: true,
    };
    udp_exchange_call(
        lo,
        SocketAddr::new(lo, port),
        (prog, vers, proc_),
        &cred,
        args,
        mode,
    )
    .await?
    .ok_or_else(|| format!("no UDP reply from port {port} after 3 tries"))
}

/// One ONC RPC call over UDP from `src` to `dst` with `cred`, retransmitted on silence.
/// `Ok(None)` = no reply at all after three tries (what a refused address gets). `R` may
/// be a prefix of the result (e.g. just its `nfsstat3`).
pub async fn udp_call_from<A: Pack, R: Unpack>(
    src: IpAddr,
    dst: SocketAddr,
    call: (u32, u32, u32),
    cred: &opaque_auth<'static>,
    args: &A,
) -> Result<Option<R>, String> {
    let mode = UdpMode {
        per_try: Duration::from_secs(1),
        whole_reply: false,
    };
    udp_exchange_call(src, dst, call, cred, args, mode).await
}

/// Pre-encoded XDR arguments, sent as they are.
pub struct RawArgs(pub Vec<u8>);

impl Pack for RawArgs {
    fn packed_size(&self) -> usize {
        self.0.len()
    }

    fn pack(
        &self,
        out: &mut impl std::io::Write,
    ) -> nfs3_client::nfs3_types::xdr_codec::Result<usize> {
        out.write_all(&self.0)
            .map_err(nfs3_client::nfs3_types::xdr_codec::Error::from)?;
        Ok(self.0.len())
    }
}

/// A UDP RPC client socket that lets a test choose the xid, so it can retransmit a call
/// exactly as a real client does after a lost reply.
pub struct UdpRpc {
    socket: tokio::net::UdpSocket,
}

impl UdpRpc {
    pub async fn connect(port: u16) -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind udp");
        socket
            .connect(("127.0.0.1", port))
            .await
            .expect("connect udp");
        Self { socket }
    }

    /// Encodes a CALL with AUTH_UNIX root credentials.
    pub fn encode_call<A: Pack>(xid: u32, prog: u32, vers: u32, proc_: u32, args: &A) -> Vec<u8> {
        encode_call(xid, (prog, vers, proc_), &unix_credential(0, 0, &[]), args)
    }

    /// Sends `datagram` and returns the raw reply datagram with the same xid.
    pub async fn exchange(&self, datagram: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.socket.send(datagram).await.expect("udp send");
            match tokio::time::timeout(Duration::from_secs(2), self.socket.recv(&mut buf)).await {
                Ok(Ok(n)) if n >= 4 && buf[..4] == datagram[..4] => return buf[..n].to_vec(),
                _ => continue,
            }
        }
        panic!("no UDP reply after 3 tries");
    }
}

/// Decodes a raw accepted-SUCCESS reply into `R`.
pub fn decode_reply<R: Unpack>(reply: &[u8]) -> R {
    let mut cursor = std::io::Cursor::new(reply);
    let (msg, _) = rpc_msg::unpack(&mut cursor).expect("reply header");
    match msg.body {
        msg_body::REPLY(reply_body::MSG_ACCEPTED(acc)) => {
            assert!(
                matches!(acc.reply_data, accept_stat_data::SUCCESS),
                "call not successful: {:?}",
                acc.reply_data
            );
        }
        other => panic!("unexpected reply: {other:?}"),
    }
    R::unpack(&mut cursor).expect("reply body").0
}

/// Writes `msg` as one record (a single last fragment).
pub async fn write_record(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut record = (0x8000_0000u32 | msg.len() as u32).to_be_bytes().to_vec();
    record.extend_from_slice(msg);
    s.write_all(&record).await
}

/// Reads one record (all its fragments); end of stream is an error.
pub async fn read_record(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut mark = [0u8; 4];
        s.read_exact(&mut mark).await?;
        let mark = u32::from_be_bytes(mark);
        let mut fragment = vec![0u8; (mark & 0x7fff_ffff) as usize];
        s.read_exact(&mut fragment).await?;
        out.extend_from_slice(&fragment);
        if mark & 0x8000_0000 != 0 {
            return Ok(out);
        }
    }
}

/// One call on a fresh TCP connection to 127.0.0.1:`port` (as after a reconnect),
/// returning the raw reply. Unlike `nfs3_client` (whose read loop spins on EOF), a closed
/// connection is an error.
pub async fn tcp_exchange(port: u16, call: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    write_record(&mut stream, call).await?;
    read_record(&mut stream).await
}
