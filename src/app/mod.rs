//! Starts a server from a configuration: opens the exports, binds every
//! listener, and returns a handle with the bound addresses. Dropping
//! nothing stops it; `shutdown` drains and stops it.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dataset::zfs::ZfsDataset;
use crate::dataset::{Dataset, Directory};
use crate::exports::{Export, ExportTable};
use crate::fs::index::Store;
use crate::fs::{ExportFs, HandleKey};
use crate::iopool::IoPool;
use crate::mount::Mount;
use crate::nfs3::Nfs3;
use crate::nlm::{Nlm, Nsm};
use crate::portmap::{Portmap, Registration};
use crate::rpc::server::{ClientRegistry, Transports};
use crate::rpc::{Dispatcher, Program};
use crate::service::ServerState;

mod bind;
mod state;
use bind::*;
use state::*;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("export {name}")]
    Export {
        name: String,
        #[source]
        source: crate::fs::OpenExportError,
    },
    #[error("binding {what} on {addr} (is another NFS server or rpcbind running? choose another port in the config)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading handle key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing a new handle key {path} (state_dir must be writable and have free space)")]
    KeyWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("handle key {path} is {len} bytes, not 16: restore it from a backup; or, to start over with new handles (every handle clients hold turns STALE, they remount), delete it and move {index} aside")]
    KeyDamaged {
        path: PathBuf,
        index: PathBuf,
        len: usize,
    },
    #[error("handle key {key} is missing but the handle index {index} exists: a new key would make every handle clients hold invalid. Restore {key} from a backup; or, to start over with new handles (clients remount), move {index} aside")]
    KeyLost { key: PathBuf, index: PathBuf },
    #[error("handle index {path} cannot be written, nor removed ({remove}): make state_dir writable (read-only, it cannot record the handles clients are given)")]
    IndexUnwritable {
        path: PathBuf,
        remove: std::io::Error,
        #[source]
        source: Box<crate::fs::index::IndexError>,
    },
    #[error("handle index {path} is held by another process: is another volnfs running with the same state_dir?")]
    IndexInUse {
        path: PathBuf,
        #[source]
        source: Box<crate::fs::index::IndexError>,
    },
    #[error("no listen address configured")]
    NoListenAddress,
    #[error("starting the control socket")]
    Control(#[source] Box<crate::control::ControlError>),
}

impl AppError {
    /// Whether restarting cannot help: the operator has to act first. Under
    /// SMF such a start exits with SMF_EXIT_ERR_CONFIG (96), so the service
    /// goes to maintenance with this message instead of restarting in a loop.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            AppError::Key { .. }
                | AppError::KeyWrite { .. }
                | AppError::KeyDamaged { .. }
                | AppError::KeyLost { .. }
                | AppError::IndexInUse { .. }
                | AppError::IndexUnwritable { .. }
                | AppError::NoListenAddress
        )
    }
}

/// How long a shutdown waits for in-flight calls.
pub const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct ServerHandle {
    pub state: Arc<ServerState>,
    pub control_socket: Option<PathBuf>,
    nfs_addr: SocketAddr,
    mount_addr: SocketAddr,
    portmap_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Where `volnfs ctl` finds the control socket; removed at shutdown.
    instance: Option<crate::control::discovery::Instance>,
    pub exports: Arc<ExportTable>,
    pub nfs: Arc<Nfs3>,
}

impl ServerHandle {
    pub fn nfs_addr(&self) -> SocketAddr {
        self.nfs_addr
    }
    pub fn mount_addr(&self) -> SocketAddr {
        self.mount_addr
    }
    pub fn portmap_addr(&self) -> Option<SocketAddr> {
        self.portmap_addr
    }

    /// Stops accepting, lets in-flight requests finish (each connection
    /// waits at most the drain limit), stops the file I/O pool, flushes the
    /// handle indexes and ends the lock manager's tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.pool.shutdown(DRAIN_LIMIT);
        for e in self.exports.all() {
            e.fs.close_index();
        }
        if let Some(nlm) = &self.state.nlm {
            nlm.shutdown().await;
        }
        drop(self.instance);
    }
}

pub async fn start(config: Config) -> Result<ServerHandle, AppError> {
    start_with(config, None).await
}

/// Starts a server; `config_path` is what a reload re-reads.
pub async fn start_with(
    config: Config,
    config_path: Option<PathBuf>,
) -> Result<ServerHandle, AppError> {
    let started = Instant::now();
    // Modes sent by clients are final: no server umask applies.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    match crate::sys::raise_fd_limit() {
        Ok((soft, _)) if soft < 4096 => tracing::warn!(
            limit = soft,
            "the open-file limit is low: connections and cached descriptors may run out (raise RLIMIT_NOFILE)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    if config.listen.is_empty() {
        return Err(AppError::NoListenAddress);
    }
    let mut exports = Vec::new();
    for e in &config.exports {
        let id = crate::fs::export_id_for(&e.name);
        let (key, new_key) = handle_key(config.state_dir.as_deref(), id)?;
        let (index, complete) = open_index(config.state_dir.as_deref(), id, &e.name, new_key)?;
        let fs = ExportFs::open(
            &e.name,
            &e.path,
            key,
            index,
            complete,
            crate::fs::ExportOptions {
                sync_namespace: e.sync,
                device_nodes: config.device_nodes,
            },
        )
        .map_err(|source| AppError::Export {
            name: e.name.clone(),
            source,
        })?;
        exports.push(Arc::new(Export {
            fs: Arc::new(fs),
            policy: RwLock::new(e.policy.clone()),
            gate: Arc::new(tokio::sync::RwLock::new(())),
            dataset: e.dataset.clone(),
        }));
    }
    let table = Arc::new(ExportTable::new(exports));
    let pool = IoPool::new(config.io);
    let nfs = Nfs3::new(table.clone(), write_verifier(), pool.clone());

    let ips = &config.listen;
    let (nfs_tcp, nfs_udp, nfs_port) = bind_service("nfs", ips, config.nfs_port)?;
    let (mnt_tcp, mnt_udp, mount_port) =
        if config.mount_port == config.nfs_port && config.nfs_port != 0 {
            (Vec::new(), Vec::new(), nfs_port)
        } else {
            bind_service("mountd", ips, config.mount_port)?
        };
    let (pm_tcp, pm_udp, pm_port) = match config.portmap_port {
        Some(p) => {
            let (t, u, port) = bind_service("portmapper", ips, p)?;
            (t, u, Some(port))
        }
        None => (Vec::new(), Vec::new(), None),
    };
    let first = ips[0];
    let nfs_addr = SocketAddr::new(first, nfs_port);
    let mount_addr = SocketAddr::new(first, mount_port);
    let portmap_addr = pm_port.map(|p| SocketAddr::new(first, p));

    let mut programs: Vec<Arc<dyn Program>> = vec![
        nfs.clone(),
        Arc::new(Mount {
            exports: table.clone(),
            pool: pool.clone(),
        }),
    ];
    // The lock manager and its status monitor answer on the NFS port (every
    // listener serves every program); clients find them through portmap.
    let nlm = config.lock_grace.map(|grace| {
        let (monitor, notify) = crate::nlm::nsm::Monitor::open(config.state_dir.as_deref());
        let nlm = Arc::new(Nlm::new(
            table.clone(),
            pool.clone(),
            monitor,
            grace,
            !notify.is_empty(),
        ));
        (nlm, notify, grace)
    });
    if let Some((nlm, _, _)) = &nlm {
        programs.push(nlm.clone());
        programs.push(Arc::new(Nsm { nlm: nlm.clone() }));
    }
    if let Some(pm) = portmap_addr {
        // Every program is registered at the port clients expect it on:
        // MOUNT at the mount port, the portmapper at its own, the rest
        // (NFS, NLM, NSM) at the NFS port.
        let port_of = |prog: u32| match prog {
            crate::mount::PROGRAM => mount_port,
            _ => nfs_port,
        };
        let mut regs = vec![Registration {
            prog: crate::portmap::PROGRAM,
            versions: vec![2, 3, 4],
            name: "portmapper",
            port: pm.port(),
        }];
        for p in &programs {
            let (low, high) = p.versions();
            regs.push(Registration {
                prog: p.number(),
                versions: (low..=high).collect(),
                name: p.name(),
                port: port_of(p.number()),
            });
        }
        programs.push(Arc::new(Portmap {
            mappings: crate::portmap::mappings(&regs),
            ipv6: ips.iter().any(|i| i.is_ipv6()),
        }));
    }
    let (tx, rx) = watch::channel(false);
    let clients = Arc::new(ClientRegistry::default());
    let admit_table = table.clone();
    let transports = Transports {
        dispatcher: Dispatcher::new(programs),
        limits: config.limits,
        admit: Arc::new(move |ip| admit_table.admits(ip)),
        connections: Arc::new(Semaphore::new(config.limits.max_connections)),
        shutdown: rx,
        refused: Default::default(),
        clients: clients.clone(),
    };
    let mut tasks = Vec::new();
    for l in nfs_tcp.into_iter().chain(mnt_tcp).chain(pm_tcp) {
        tasks.push(tokio::spawn(transports.clone().serve_tcp(l)));
    }
    for u in nfs_udp.into_iter().chain(mnt_udp).chain(pm_udp) {
        tasks.push(tokio::spawn(transports.clone().serve_udp(u)));
    }
    for e in table.all() {
        tracing::info!(export = %e.fs.name, path = %e.fs.path.display(), "serving export");
    }
    let first = config.exports.first();
    let dataset: Arc<dyn Dataset> = match first.and_then(|e| e.dataset.clone()) {
        Some(name) => {
            tracing::info!(dataset = %name, zfs = %config.zfs_path.display(), "volume is a ZFS dataset");
            Arc::new(ZfsDataset {
                cli: crate::sys::zfs::ZfsCli::new(config.zfs_path.clone()),
                name,
                snapshot_limit: config.snapshot_limit,
            })
        }
        None => Arc::new(Directory {
            path: first.map(|e| e.path.clone()).unwrap_or_default(),
        }),
    };
    let state = Arc::new(ServerState {
        exports: table.clone(),
        nfs: nfs.clone(),
        clients,
        dataset,
        config_path,
        started,
        nlm: nlm.as_ref().map(|(n, _, _)| n.clone()),
        pool,
        volume_ops: Default::default(),
    });
    // Zero-config mode keeps its control socket beside its state.
    let control_socket = config
        .control_socket
        .clone()
        .or_else(|| config.state_dir.as_ref().map(|d| d.join("control.sock")));
    if let Some(path) = &control_socket {
        let listener = crate::control::bind(path).map_err(|e| AppError::Control(Box::new(e)))?;
        tasks.push(tokio::spawn(crate::control::serve(
            listener,
            state.clone(),
            tx.subscribe(),
        )));
        tracing::info!(socket = %path.display(), "control socket ready");
    }
    // RFD 69: the agent's socket, which volnfs connects out to. NFS never
    // waits for it: the channel connects (and reconnects) on its own.
    if let Some(path) = &config.control_connect {
        tasks.push(tokio::spawn(crate::control::channel::run(
            path.clone(),
            state.clone(),
            tx.subscribe(),
        )));
    }
    let instance = control_socket
        .as_deref()
        .and_then(crate::control::discovery::Instance::record);
    // Only once everything is up: clients told to reclaim must find us.
    if let Some((nlm, notify, grace)) = nlm {
        nlm.start_recovery(notify, grace);
    }
    tracing::info!(nfs = %nfs_addr, mount = %mount_addr, portmap = ?portmap_addr, locking = state.nlm.is_some(), platform = crate::sys::PLATFORM, io_threads = config.io.threads, "volnfs ready");
    Ok(ServerHandle {
        state,
        control_socket,
        nfs_addr,
        mount_addr,
        portmap_addr,
        shutdown: tx,
        tasks,
        instance,
        exports: table,
        nfs,
    })
}

/// The write verifier: different at every start (time, mixed with
/// randomness so two starts within one clock tick still differ).
fn write_verifier() -> [u8; 8] {
    let mut verifier = [0u8; 8];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    verifier.copy_from_slice(&now.to_be_bytes());
    let mut rnd = [0u8; 4];
    let _ = getrandom::getrandom(&mut rnd);
    for (v, r) in verifier[4..].iter_mut().zip(rnd) {
        *v ^= r;
    }
    verifier
}
