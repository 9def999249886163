//! Shared harness for the integration tests: starts the real `volnfs` binary on a fresh
//! temporary export with ephemeral ports, waits for its `ready` line (never sleeps), and
//! kills it on drop. Also small helpers around the `nfs3_client` crate so the tests read
//! like the behaviour they check. Each test binary uses a subset, hence `dead_code`.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nfs3_client::nfs3_types::mount::dirpath;
use nfs3_client::nfs3_types::nfs3::{
    self, diropargs3, fattr3, filename3, nfs_fh3, GETATTR3args, LOOKUP3args, Nfs3Result,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{MountClient, Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

/// The export name every test server publishes.
pub const EXPORT_NAME: &str = "/exports/data";

/// How long the server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub type Connection = Nfs3Connection<TokioIo<TcpStream>>;

/// Options for [`TestServer::start_with`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub name: String,
    /// `Some(0)` = portmap on an ephemeral port, `Some(111)` = the real one (namespaces only),
    /// `None` = `--no-portmap`.
    pub portmap_port: Option<u16>,
    /// `--listen` addresses (default 127.0.0.1).
    pub listen: Vec<String>,
    pub extra_args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            name: EXPORT_NAME.to_string(),
            portmap_port: Some(0),
            listen: vec!["127.0.0.1".to_string()],
            extra_args: Vec::new(),
        }
    }
}

/// A running `volnfs serve` child process on a temporary export directory.
pub struct TestServer {
    child: Option<Child>,
    export: Arc<tempfile::TempDir>,
    /// Holds the server's stderr log (and state dir); kept outside the export so listings
    /// stay clean.
    scratch: Arc<tempfile::TempDir>,
    options: ServerOptions,
    pub name: String,
    pub nfs_port: u16,
    pub mount_port: u16,
    pub portmap_port: u16,
}

impl TestServer {
    /// Starts a server with default options (ephemeral ports, loopback-only access).
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let export = tempfile::Builder::new()
            .prefix("volnfs-export-")
            .tempdir()
            .expect("tempdir");
        let scratch = tempfile::Builder::new()
            .prefix("volnfs-log-")
            .tempdir()
            .expect("tempdir");
        Self::start_on(Arc::new(export), Arc::new(scratch), options)
    }

    /// Stops the server (SIGTERM) and starts a new one on the same export directory and
    /// state; ports are new.
    pub fn restart(self) -> Self {
        let (export, scratch, options) = (
            self.export.clone(),
            self.scratch.clone(),
            self.options.clone(),
        );
        let status = self.terminate();
        assert!(
            status.success(),
            "volnfs exited with {status} on SIGTERM before restart"
        );
        Self::start_on(export, scratch, options)
    }

    /// Kills the server with SIGKILL (no draining, no index flush: a crash) and starts a
    /// new one on the same export directory and state directory; ports are new.
    pub fn crash_restart(mut self) -> Self {
        let (export, scratch, options) = (
            self.export.clone(),
            self.scratch.clone(),
            self.options.clone(),
        );
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Self::start_on(export, scratch, options)
    }

    fn start_on(
        export: Arc<tempfile::TempDir>,
        scratch: Arc<tempfile::TempDir>,
        options: ServerOptions,
    ) -> Self {
        let log_path = scratch.path().join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("create server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_volnfs"));
        cmd.arg("serve")
            .arg("--export")
            .arg(export.path())
            .args(["--name", &options.name])
            .args(["--nfs-port", "0", "--mount-port", "0"]);
        for addr in &options.listen {
            cmd.args(["--listen", addr]);
        }
        match options.portmap_port {
            Some(port) => {
                cmd.args(["--portmap-port", &port.to_string()]);
            }
            None => {
                cmd.arg("--no-portmap");
            }
        }
        // State (handle keys, handle index) lives beside the log, so it survives
        // `restart` and is removed with the test instead of piling up in /var/lib.
        cmd.arg("--state-dir").arg(scratch.path().join("state"));
        cmd.args(&options.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn volnfs binary");

        // A reader thread hands us the first stdout line and then keeps draining stdout so
        // the server can never block on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = tx.send(line);
            }
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });

        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "volnfs did not print a ready line within {READY_TIMEOUT:?} (exit: {status:?}); \
                     stderr:\n{}",
                    read_log_tail(&log_path)
                );
            }
        };
        let ready = parse_ready_line(&line).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected first stdout line from volnfs: {line:?}")
        });
        if options.portmap_port.is_none() {
            assert_eq!(
                ready.2, 0,
                "--no-portmap must report portmap_port=0: {line:?}"
            );
        }
        Self {
            child: Some(child),
            export,
            scratch,
            name: options.name.clone(),
            options,
            nfs_port: ready.0,
            mount_port: ready.1,
            portmap_port: ready.2,
        }
    }

    /// The directory being exported (server side view).
    pub fn export_dir(&self) -> &Path {
        self.export.path()
    }

    /// The server's state directory (handle keys, index, control socket).
    pub fn state_dir(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    pub fn log(&self) -> String {
        read_log_tail(&self.scratch.path().join("server.log"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(&child, libc::SIGTERM);
        match wait_with_timeout(&mut child, Duration::from_secs(10)) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "volnfs did not exit within 10s of SIGTERM; stderr:\n{}",
                    self.log()
                );
            }
        }
    }

    /// `nfs://127.0.0.1/<export>/<path>?nfsport=N&mountport=M` for libnfs tools.
    pub fn nfs_url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        let sep = if path.is_empty() { "" } else { "/" };
        format!(
            "nfs://127.0.0.1{}{sep}{path}?nfsport={}&mountport={}",
            self.name, self.nfs_port, self.mount_port
        )
    }

    /// Mounts the export with `nfs3_client` as root (uid 0, gid 0).
    pub async fn connect(&self) -> Connection {
        self.connect_as(0, 0, &[]).await
    }

    /// Mounts the export with `nfs3_client` using AUTH_UNIX credentials uid/gid/gids.
    pub async fn connect_as(&self, uid: u32, gid: u32, gids: &[u32]) -> Connection {
        Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", &self.name)
            .mount_port(self.mount_port)
            .nfs3_port(self.nfs_port)
            .connect_from_privileged_port(is_root())
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

    /// A raw MOUNT protocol client on the mount port.
    pub async fn mount_client(&self) -> MountClient<TokioIo<TcpStream>> {
        let stream = TcpStream::connect(("127.0.0.1", self.mount_port))
            .await
            .expect("connect mountd");
        MountClient::new_with_auth(
            TokioIo::new(stream),
            unix_credential(0, 0, &[]),
            opaque_auth::default(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            if wait_with_timeout(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("---- volnfs stderr (tail) ----\n{}", self.log());
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: plain kill(2) on the pid of a child we own and have not yet reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls `try_wait` until the child exits or `limit` passes. This bounds a shutdown, it
/// does not wait for readiness.
fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(80);
    lines[start..].join("\n")
}

/// Moves the calling thread into a new, empty network namespace with only `lo` up.
/// Processes it spawns and sockets it opens afterwards live there too, so a test may use
/// port 111 and many loopback addresses without touching the host's. Needs root.
/// Network namespaces are a Linux facility of the test host (the server under test does
/// not use them); elsewhere the tests that need one fail with this message.
pub fn enter_private_netns() {
    unshare_net();
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set lo up failed");
}

#[cfg(target_os = "linux")]
fn unshare_net() {
    // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed: {}",
        std::io::Error::last_os_error()
    );
}

#[cfg(not(target_os = "linux"))]
fn unshare_net() {
    panic!("this test needs a private network namespace, which only a Linux test host has");
}

/// Runs a future on a current-thread runtime, so every socket stays on this thread (and in
/// its network namespace), bounded at two minutes.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), fut).await })
        .expect("test exceeded 120s")
}

/// Parses `ready nfs_port=N mount_port=M portmap_port=P`.
pub fn parse_ready_line(line: &str) -> Option<(u16, u16, u16)> {
    let mut words = line.split_whitespace();
    if words.next()? != "ready" {
        return None;
    }
    let (mut nfs, mut mount, mut portmap) = (None, None, None);
    for word in words {
        let (key, value) = word.split_once('=')?;
        let value: u16 = value.parse().ok()?;
        match key {
            "nfs_port" => nfs = Some(value),
            "mount_port" => mount = Some(value),
            "portmap_port" => portmap = Some(value),
            _ => {}
        }
    }
    Some((nfs?, mount?, portmap?))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn unix_credential(uid: u32, gid: u32, gids: &[u32]) -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"volnfs-test"),
        uid,
        gid,
        gids: gids.to_vec(),
    })
}

pub fn dirpath_of(name: &str) -> dirpath<'static> {
    dirpath(Opaque::owned(name.as_bytes().to_vec()))
}

/// Runs an async test body with an upper bound so a hung server fails instead of hanging CI.
pub async fn bounded<F: Future>(limit: Duration, fut: F) -> F::Output {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("test exceeded {limit:?}"))
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

pub async fn getattr(conn: &mut Connection, fh: &nfs_fh3) -> fattr3 {
    let res = conn
        .getattr(&GETATTR3args { object: fh.clone() })
        .await
        .expect("GETATTR rpc");
    ok(res, "GETATTR").obj_attributes
}

pub async fn lookup(conn: &mut Connection, dir: &nfs_fh3, n: &str) -> nfs_fh3 {
    let res = conn
        .lookup(&LOOKUP3args {
            what: dirop(dir, n),
        })
        .await
        .expect("LOOKUP rpc");
    ok(res, &format!("LOOKUP {n}")).object
}

/// Runs an external command with a hard time limit; returns (status, stdout, stderr).
pub async fn run_tool(
    program: &str,
    args: &[&str],
    limit: Duration,
) -> (ExitStatus, String, String) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (is it installed? see tests/README.md): {e}")
        });
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {limit:?}"))
        .expect("wait for tool");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Deterministic pseudo-random bytes (xorshift64*), so payloads are not trivially compressible
/// or all zeroes and failures are reproducible.
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut state = seed | 1;
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read for hashing");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn path_in(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
}

/// One ONC RPC call over UDP to 127.0.0.1:`port` (AUTH_UNIX root), retransmitting on silence.
/// Returns the decoded result, or a description of the RPC-level failure.
pub async fn udp_call<A, R>(
    port: u16,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &A,
) -> Result<R, String>
where
    A: nfs3_client::nfs3_types::xdr_codec::Pack,
    R: nfs3_client::nfs3_types::xdr_codec::Unpack,
{
    use nfs3_client::nfs3_types::rpc::{
        accept_stat_data, call_body, msg_body, reply_body, rpc_msg,
    };
    use nfs3_client::nfs3_types::xdr_codec::{Pack, Unpack};

    let cred = unix_credential(0, 0, &[]);
    // Unique per call within this process, so no two calls ever share an xid.
    static NEXT_XID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let xid = (std::process::id() << 20)
        .wrapping_add(NEXT_XID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
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
    msg.pack(&mut request)
        .map_err(|e| format!("pack header: {e:?}"))?;
    args.pack(&mut request)
        .map_err(|e| format!("pack args: {e:?}"))?;

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    socket
        .connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    for _attempt in 0..3 {
        socket.send(&request).await.map_err(|e| e.to_string())?;
        let n = match tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => continue,
        };
        let mut cursor = std::io::Cursor::new(&buf[..n]);
        let (reply, _) =
            rpc_msg::unpack(&mut cursor).map_err(|e| format!("unpack reply: {e:?}"))?;
        if reply.xid != xid {
            continue;
        }
        match reply.body {
            msg_body::REPLY(reply_body::MSG_ACCEPTED(acc)) => match acc.reply_data {
                accept_stat_data::SUCCESS => {
                    let (value, _) =
                        R::unpack(&mut cursor).map_err(|e| format!("unpack result: {e:?}"))?;
                    if cursor.position() as usize != n {
                        return Err(format!(
                            "{} trailing bytes after the result",
                            n - cursor.position() as usize
                        ));
                    }
                    return Ok(value);
                }
                other => return Err(format!("call accepted but failed: {other:?}")),
            },
            msg_body::REPLY(reply_body::MSG_DENIED(denied)) => {
                return Err(format!("call denied: {denied:?}"))
            }
            msg_body::CALL(_) => return Err("got a CALL back".into()),
        }
    }
    Err(format!("no UDP reply from port {port} after 3 tries"))
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
    pub fn encode_call<A: nfs3_client::nfs3_types::xdr_codec::Pack>(
        xid: u32,
        prog: u32,
        vers: u32,
        proc_: u32,
        args: &A,
    ) -> Vec<u8> {
        use nfs3_client::nfs3_types::rpc::{call_body, msg_body, rpc_msg};
        use nfs3_client::nfs3_types::xdr_codec::Pack;
        let cred = unix_credential(0, 0, &[]);
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

/// Decodes a raw accepted-SUCCESS reply datagram into `R`.
pub fn decode_reply<R: nfs3_client::nfs3_types::xdr_codec::Unpack>(reply: &[u8]) -> R {
    use nfs3_client::nfs3_types::rpc::{accept_stat_data, msg_body, reply_body, rpc_msg};
    use nfs3_client::nfs3_types::xdr_codec::Unpack;
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

/// One call on a fresh TCP connection (as after a reconnect), returning the raw reply.
/// Unlike `nfs3_client` (whose read loop spins on EOF), a closed connection is an error.
pub async fn tcp_exchange(port: u16, call: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mark = 0x8000_0000u32 | call.len() as u32;
    let mut record = mark.to_be_bytes().to_vec();
    record.extend_from_slice(call);
    stream.write_all(&record).await?;
    let mut reply = Vec::new();
    loop {
        let mut mark = [0u8; 4];
        stream.read_exact(&mut mark).await?;
        let mark = u32::from_be_bytes(mark);
        let mut fragment = vec![0u8; (mark & 0x7fff_ffff) as usize];
        stream.read_exact(&mut fragment).await?;
        reply.extend_from_slice(&fragment);
        if mark & 0x8000_0000 != 0 {
            return Ok(reply);
        }
    }
}
