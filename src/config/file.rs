//! The config file's format: what `serde` reads, strict
//! (`deny_unknown_fields`: an unknown key is an error that names it).
//! `validate` turns it into the domain types of `config`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_GRACE_SECONDS, DEFAULT_MOUNT_PORT, DEFAULT_NFS_PORT, DEFAULT_PORTMAP_PORT, NOBODY,
};
use crate::access::{Access, Squash};

/// The file format.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Addresses to listen on.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    #[serde(default = "default_nfs_port")]
    pub nfs_port: u16,
    #[serde(default = "default_mount_port")]
    pub mount_port: u16,
    #[serde(default)]
    pub portmap: PortmapFile,
    /// Directory for server state (handle keys); must not be inside an export.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Unix socket for `volnfs ctl` and VAPI [default: DEFAULT_CONTROL_SOCKET].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    /// The agent's socket to connect *out* to (RFD 69 control channel, e.g.
    /// `/.zonecontrol/volnfs.sock`) [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_connect: Option<PathBuf>,
    /// Absolute path of the `zfs` tool [default: /usr/sbin/zfs].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zfs: Option<PathBuf>,
    /// Most snapshots a volume may have (RFD 26 "Limits") [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_limit: Option<usize>,
    pub exports: Vec<ExportFile>,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub locking: LockingFile,
    #[serde(default)]
    pub io: IoFile,
    /// MKNOD of devices: "emulate" (default) or "refuse".
    #[serde(default)]
    pub device_nodes: crate::fs::devices::DeviceNodes,
}

/// The file I/O pool (`crate::iopool`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoFile {
    /// Most threads doing file I/O at once [default: 64].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Most of them one client address may hold [default: 16].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_per_client: Option<usize>,
}

fn default_listen() -> Vec<String> {
    vec!["0.0.0.0".into()]
}
fn default_nfs_port() -> u16 {
    DEFAULT_NFS_PORT
}
fn default_mount_port() -> u16 {
    DEFAULT_MOUNT_PORT
}
fn default_true() -> bool {
    true
}
fn default_portmap_port() -> u16 {
    DEFAULT_PORTMAP_PORT
}
fn default_nobody() -> u32 {
    NOBODY
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortmapFile {
    /// Run the built-in portmapper (program 100000).
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_portmap_port")]
    pub port: u16,
}

impl Default for PortmapFile {
    fn default() -> Self {
        PortmapFile {
            enabled: true,
            port: DEFAULT_PORTMAP_PORT,
        }
    }
}

/// The lock manager (NLM v4 + NSM), served on the NFS port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockingFile {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// After a restart that lost locks: how long only reclaims are granted.
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: u64,
}

fn default_grace_seconds() -> u64 {
    DEFAULT_GRACE_SECONDS
}

impl Default for LockingFile {
    fn default() -> Self {
        LockingFile {
            enabled: true,
            grace_seconds: DEFAULT_GRACE_SECONDS,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFile {
    /// The path clients mount, e.g. `/exports/data`.
    pub name: String,
    /// The directory served.
    pub path: PathBuf,
    pub clients: Vec<ClientFile>,
    #[serde(default = "default_nobody")]
    pub anonuid: u32,
    #[serde(default = "default_nobody")]
    pub anongid: u32,
    #[serde(default)]
    pub secure: bool,
    /// The ZFS dataset mounted at `path` (e.g. `zones/<uuid>/data/vol`):
    /// enables snapshots and resizing through the control socket. Without
    /// it the export is a plain directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Commit namespace changes (create, remove, rename...) to stable
    /// storage before replying, as exports(5) `sync` [default: true].
    /// `false` trades crash safety of just-acknowledged metadata for speed.
    #[serde(default = "default_true")]
    pub sync: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// An address or CIDR.
    #[serde(rename = "match")]
    pub match_: String,
    pub access: Access,
    #[serde(default)]
    pub squash: Squash,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inflight_per_connection: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_poll_us: Option<u64>,
}
