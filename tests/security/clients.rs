//! Clients for the security tests: MOUNT and NFS (`nfs3_client`) over TCP from a chosen
//! source address (bind-before-connect on loopback) with chosen AUTH_SYS credentials, raw
//! ONC RPC over UDP, and small helpers that turn replies into statuses.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nfs3_client::nfs3_types::mount::{dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::{
    diropargs3, fattr3, filename3, nfs_fh3, nfsstat3, GETATTR3args, LOOKUP3args, Nfs3Result,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::{MountClient, MountError, Nfs3Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{ip, Server, V4_ALLOWED};

pub type Nfs = Nfs3Client<Io>;

/// A TCP stream for `nfs3_client` on which end-of-stream is an error. (`nfs3_client`'s own
/// `read_exact` loops forever on a 0-byte read, so a connection the server closes would
/// hang the test instead of failing the call.)
pub struct Io(pub TcpStream);

impl nfs3_client::io::AsyncRead for Io {
    async fn async_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

impl nfs3_client::io::AsyncWrite for Io {
    async fn async_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).await
    }
}

/// An AUTH_SYS credential.
pub fn sys(uid: u32, gid: u32, gids: &[u32]) -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 7,
        machinename: Opaque::borrowed(b"volnfs-security"),
        uid,
        gid,
        gids: gids.to_vec(),
    })
}

/// AUTH_NONE.
pub fn none() -> opaque_auth<'static> {
    opaque_auth::default()
}

/// A TCP connection from source address `src` (any port, or `src_port`) to `dst`.
pub async fn tcp_from(src: IpAddr, src_port: u16, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if src.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(src, src_port))?;
    socket.connect(dst).await
}

/// A TCP connection from `src` using a free privileged port (as kernel clients do).
pub async fn tcp_from_privileged(src: IpAddr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let mut last = None;
    for port in (600..1024).rev() {
        match tcp_from(src, port, dst).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no privileged port")))
}

/// A MOUNT v3 client from `src` to the server's mount port on `dst`.
pub async fn mount_client(server: &Server, src: IpAddr, dst: IpAddr) -> MountClient<Io> {
    let s = tcp_from(src, 0, SocketAddr::new(dst, server.mount_port))
        .await
        .unwrap_or_else(|e| panic!("connect mountd from {src} to {dst}: {e}"));
    MountClient::new_with_auth(Io(s), sys(0, 0, &[]), none())
}

/// MNT of export `i` from `src`: the root handle or the refusal.
pub async fn mnt(
    server: &Server,
    src: IpAddr,
    dst: IpAddr,
    i: usize,
) -> Result<nfs_fh3, MountError> {
    let mut m = mount_client(server, src, dst).await;
    m.mnt(dirpath(Opaque::owned(server.names[i].as_bytes().to_vec())))
        .await
        .map(|ok| nfs_fh3 {
            data: Opaque::owned(ok.fhandle.0.to_vec()),
        })
}

pub fn is_mnt_acces(r: &Result<nfs_fh3, MountError>) -> bool {
    matches!(r, Err(MountError::Denied(mountstat3::MNT3ERR_ACCES)))
}

/// An NFS client from `src` to `dst` with `cred`.
pub async fn nfs_from(
    server: &Server,
    src: IpAddr,
    dst: IpAddr,
    cred: opaque_auth<'static>,
) -> Nfs {
    let s = tcp_from(src, 0, server.nfs_addr(dst))
        .await
        .unwrap_or_else(|e| panic!("connect nfs from {src} to {dst}: {e}"));
    Nfs3Client::new_with_auth(Io(s), cred, none())
}

/// A mounted client of export `i` from 127.0.0.1 with `cred`: (nfs client, root handle).
pub async fn mount_as(server: &Server, i: usize, cred: opaque_auth<'static>) -> (Nfs, nfs_fh3) {
    let root = mnt(server, ip(V4_ALLOWED), ip(V4_ALLOWED), i)
        .await
        .unwrap_or_else(|e| panic!("MNT {} failed: {e:?}\n{}", server.names[i], server.log()));
    let nfs = nfs_from(server, ip(V4_ALLOWED), ip(V4_ALLOWED), cred).await;
    (nfs, root)
}

pub fn dirop<'a>(dir: &nfs_fh3, n: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: filename3(Opaque::borrowed(n.as_bytes())),
    }
}

/// NFS3_OK's value, or a panic naming the status.
pub fn ok<T, E: std::fmt::Debug>(res: Nfs3Result<T, E>, what: &str) -> T {
    match res {
        Nfs3Result::Ok(v) => v,
        Nfs3Result::Err((stat, detail)) => {
            panic!("{what}: expected NFS3_OK, got {stat:?} ({detail:?})")
        }
    }
}

/// The status of a result (NFS3_OK when it succeeded).
pub fn status<T, E>(res: &Nfs3Result<T, E>) -> nfsstat3 {
    match res {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => *s,
    }
}

pub async fn getattr(nfs: &mut Nfs, fh: &nfs_fh3) -> fattr3 {
    let r = nfs
        .getattr(&GETATTR3args { object: fh.clone() })
        .await
        .expect("GETATTR rpc");
    ok(r, "GETATTR").obj_attributes
}

pub async fn lookup(nfs: &mut Nfs, dir: &nfs_fh3, n: &str) -> Nfs3Result<nfs_fh3, ()> {
    let r = nfs
        .lookup(&LOOKUP3args {
            what: dirop(dir, n),
        })
        .await
        .expect("LOOKUP rpc");
    match r {
        Nfs3Result::Ok(ok) => Nfs3Result::Ok(ok.object),
        Nfs3Result::Err((s, _)) => Nfs3Result::Err((s, ())),
    }
}

/// One ONC RPC call over UDP from `src` to `dst` with `cred`, retransmitted on silence.
/// `Ok(None)` = no reply at all after three tries (what a refused address gets).
pub async fn udp_call<A, R>(
    src: IpAddr,
    dst: SocketAddr,
    (prog, vers, proc_): (u32, u32, u32),
    cred: &opaque_auth<'static>,
    args: &A,
) -> Result<Option<R>, String>
where
    A: nfs3_client::nfs3_types::xdr_codec::Pack,
    R: nfs3_client::nfs3_types::xdr_codec::Unpack,
{
    use nfs3_client::nfs3_types::rpc::{
        accept_stat_data, call_body, msg_body, reply_body, rpc_msg,
    };
    use nfs3_client::nfs3_types::xdr_codec::{Pack, Unpack};

    let xid = 0x5ec0_0000 ^ proc_ ^ u32::from(dst.port());
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
    let mut request = Vec::new();
    msg.pack(&mut request).map_err(|e| format!("pack: {e:?}"))?;
    args.pack(&mut request)
        .map_err(|e| format!("pack: {e:?}"))?;
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(src, 0))
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(dst).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    for _ in 0..3 {
        socket.send(&request).await.map_err(|e| e.to_string())?;
        let n = match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => continue,
        };
        let mut cursor = std::io::Cursor::new(&buf[..n]);
        let (reply, _) = rpc_msg::unpack(&mut cursor).map_err(|e| format!("unpack: {e:?}"))?;
        if reply.xid != xid {
            continue;
        }
        return match reply.body {
            msg_body::REPLY(reply_body::MSG_ACCEPTED(acc)) => match acc.reply_data {
                accept_stat_data::SUCCESS => R::unpack(&mut cursor)
                    .map(|(v, _)| Some(v))
                    .map_err(|e| format!("unpack result: {e:?}")),
                other => Err(format!("accepted but failed: {other:?}")),
            },
            msg_body::REPLY(reply_body::MSG_DENIED(d)) => Err(format!("denied: {d:?}")),
            msg_body::CALL(_) => Err("got a CALL back".into()),
        };
    }
    Ok(None)
}

/// Pre-encoded XDR arguments, sent as they are.
pub struct RawArgs(pub Vec<u8>);

impl nfs3_client::nfs3_types::xdr_codec::Pack for RawArgs {
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
