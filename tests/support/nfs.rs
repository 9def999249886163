//! `nfs3_client` helpers: mounting a [`Server`]'s export (from 127.0.0.1 or a chosen
//! source address, with chosen AUTH_SYS credentials), and small wrappers so tests read
//! like the behaviour they check.

use std::net::{IpAddr, SocketAddr};

use nfs3_client::io::{AsyncRead, AsyncWrite};
use nfs3_client::nfs3_types::mount::{dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::{
    self, diropargs3, fattr3, filename3, nfs_fh3, GETATTR3args, LOOKUP3args, Nfs3Result,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{MountClient, MountError, Nfs3Client, Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::server::Server;

/// A mounted export (`Server::connect`); derefs to its `Nfs3Client`.
pub type Connection = Nfs3Connection<TokioIo<TcpStream>>;

/// An NFS client on a connection where end-of-stream is an error ([`Io`]).
pub type Nfs = Nfs3Client<Io>;

/// A TCP stream for `nfs3_client` on which end-of-stream is an error. (`nfs3_client`'s own
/// `read_exact` loops forever on a 0-byte read, so a connection the server closes would
/// hang the test instead of failing the call.)
pub struct Io(pub TcpStream);

impl AsyncRead for Io {
    async fn async_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

impl AsyncWrite for Io {
    async fn async_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).await
    }
}

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

impl Server {
    /// Mounts export 0 with `nfs3_client` as root (uid 0, gid 0).
    pub async fn connect(&self) -> Connection {
        self.connect_as(0, 0, &[]).await
    }

    /// Mounts export 0 from 127.0.0.1 with AUTH_UNIX credentials uid/gid/gids (from a
    /// privileged source port when the tests run as root).
    pub async fn connect_as(&self, uid: u32, gid: u32, gids: &[u32]) -> Connection {
        Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", &self.name)
            .mount_port(self.mount_port)
            .nfs3_port(self.nfs_port)
            .connect_from_privileged_port(super::is_root())
            .credential(unix_credential(uid, gid, gids))
            .mount()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "mounting {} failed: {e:?}\nserver log:\n{}",
                    self.name,
                    self.log()
                )
            })
    }

    /// A raw MOUNT protocol client (root credentials) from 127.0.0.1 on the mount port.
    pub async fn mount_client(&self) -> MountClient<Io> {
        mount_client(self, loopback(), loopback()).await
    }
}

/// An AUTH_SYS credential.
pub fn unix_credential(uid: u32, gid: u32, gids: &[u32]) -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"volnfs-test"),
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

/// A MOUNT v3 client (root credentials) from `src` to the server's mount port on `dst`.
pub async fn mount_client(server: &Server, src: IpAddr, dst: IpAddr) -> MountClient<Io> {
    let s = tcp_from(src, 0, SocketAddr::new(dst, server.mount_port))
        .await
        .unwrap_or_else(|e| panic!("connect mountd from {src} to {dst}: {e}"));
    MountClient::new_with_auth(Io(s), unix_credential(0, 0, &[]), none())
}

/// MNT of export `i` from `src`: the root handle or the refusal.
pub async fn mnt(
    server: &Server,
    src: IpAddr,
    dst: IpAddr,
    i: usize,
) -> Result<nfs_fh3, MountError> {
    let mut m = mount_client(server, src, dst).await;
    m.mnt(dirpath_of(&server.names[i])).await.map(|ok| nfs_fh3 {
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
    let s = tcp_from(src, 0, server.nfs_addr_at(dst))
        .await
        .unwrap_or_else(|e| panic!("connect nfs from {src} to {dst}: {e}"));
    Nfs3Client::new_with_auth(Io(s), cred, none())
}

/// A mounted client of export `i` from 127.0.0.1 with `cred`: (nfs client, root handle).
pub async fn mount_as(server: &Server, i: usize, cred: opaque_auth<'static>) -> (Nfs, nfs_fh3) {
    let root = mnt(server, loopback(), loopback(), i)
        .await
        .unwrap_or_else(|e| panic!("MNT {} failed: {e:?}\n{}", server.names[i], server.log()));
    let nfs = nfs_from(server, loopback(), loopback(), cred).await;
    (nfs, root)
}

pub fn dirpath_of(name: &str) -> dirpath<'static> {
    dirpath(Opaque::owned(name.as_bytes().to_vec()))
}

pub fn name(s: &str) -> filename3<'_> {
    filename3(Opaque::borrowed(s.as_bytes()))
}

pub fn dirop<'a>(dir: &nfs_fh3, n: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: name(n),
    }
}

/// Unwraps an NFS result, printing the status on failure.
pub fn ok<T, E: std::fmt::Debug>(res: Nfs3Result<T, E>, what: &str) -> T {
    match res {
        Nfs3Result::Ok(v) => v,
        Nfs3Result::Err((stat, detail)) => {
            panic!("{what}: expected NFS3_OK, got {stat:?} ({detail:?})")
        }
    }
}

/// The error status of an NFS result, panicking if it succeeded.
pub fn err_status<T: std::fmt::Debug, E>(res: Nfs3Result<T, E>, what: &str) -> (nfs3::nfsstat3, E) {
    match res {
        Nfs3Result::Ok(v) => panic!("{what}: expected an error, got NFS3_OK ({v:?})"),
        Nfs3Result::Err(e) => e,
    }
}

/// The status of a result (NFS3_OK when it succeeded).
pub fn status<T, E>(res: &Nfs3Result<T, E>) -> nfs3::nfsstat3 {
    match res {
        Nfs3Result::Ok(_) => nfs3::nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => *s,
    }
}

/// GETATTR that must succeed.
pub async fn getattr<IO: AsyncRead + AsyncWrite>(nfs: &mut Nfs3Client<IO>, fh: &nfs_fh3) -> fattr3 {
    let res = nfs
        .getattr(&GETATTR3args { object: fh.clone() })
        .await
        .expect("GETATTR rpc");
    ok(res, "GETATTR").obj_attributes
}

/// LOOKUP that must succeed: the handle.
pub async fn lookup<IO: AsyncRead + AsyncWrite>(
    nfs: &mut Nfs3Client<IO>,
    dir: &nfs_fh3,
    n: &str,
) -> nfs_fh3 {
    let res = nfs
        .lookup(&LOOKUP3args {
            what: dirop(dir, n),
        })
        .await
        .expect("LOOKUP rpc");
    ok(res, &format!("LOOKUP {n}")).object
}
