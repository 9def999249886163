//! Configuration: the JSON file format (`file`), its validation into
//! domain types (`validate`), and zero-config mode's flags (`zero`).

mod file;
mod validate;
pub mod zero;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::access::{Access, Cidr, ClientRule, ExportPolicy, Squash};
pub use file::*;

pub const DEFAULT_NFS_PORT: u16 = 2049;
pub const DEFAULT_MOUNT_PORT: u16 = 20048;
pub const DEFAULT_PORTMAP_PORT: u16 = 111;
pub const NOBODY: u32 = 65534;
/// Where the control socket listens unless `control_socket` says otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/volnfs/control.sock";

pub const DEFAULT_GRACE_SECONDS: u64 = 90;

/// A validated export.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub path: PathBuf,
    pub policy: ExportPolicy,
    pub dataset: Option<String>,
    pub sync: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<IpAddr>,
    pub nfs_port: u16,
    pub mount_port: u16,
    /// `None` = no built-in portmapper.
    pub portmap_port: Option<u16>,
    pub state_dir: Option<PathBuf>,
    /// `None` only in zero-config mode; a config file always has one.
    pub control_socket: Option<PathBuf>,
    /// The control channel's socket (the global zone's agent), if any.
    pub control_connect: Option<PathBuf>,
    pub zfs_path: PathBuf,
    pub snapshot_limit: Option<usize>,
    pub exports: Vec<Export>,
    pub limits: crate::rpc::server::Limits,
    /// The lock manager's grace period after a restart; `None` = no lock
    /// manager (clients must mount with `nolock`).
    pub lock_grace: Option<std::time::Duration>,
    pub io: crate::iopool::PoolConfig,
    /// MKNOD of character and block devices: emulated (marked placeholder
    /// files) or refused.
    pub device_nodes: crate::fs::devices::DeviceNodes,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path} has {} problem(s): {}", problems.len(),
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        file.validate().map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// A one-export configuration for development and tests: ephemeral ports
    /// everywhere (portmapper included), loopback clients read-write.
    pub fn for_directory(dir: &Path, name: &str, listen: IpAddr) -> Config {
        Config {
            listen: vec![listen],
            nfs_port: 0,
            mount_port: 0,
            portmap_port: Some(0),
            state_dir: None,
            control_socket: None,
            control_connect: None,
            zfs_path: crate::sys::zfs::DEFAULT_ZFS_PATH.into(),
            snapshot_limit: None,
            exports: vec![Export {
                sync: true,
                dataset: None,
                name: name.to_string(),
                path: dir.to_path_buf(),
                policy: ExportPolicy {
                    rules: loopback_rules(Access::Rw, Squash::NoRootSquash),
                    anon_uid: NOBODY,
                    anon_gid: NOBODY,
                    secure: false,
                },
            }],
            limits: Default::default(),
            lock_grace: Some(std::time::Duration::from_secs(DEFAULT_GRACE_SECONDS)),
            io: Default::default(),
            device_nodes: Default::default(),
        }
    }
}

/// Rules admitting the loopback networks.
pub fn loopback_rules(access: Access, squash: Squash) -> Vec<ClientRule> {
    ["127.0.0.0/8", "::1"]
        .iter()
        .filter_map(|c| c.parse::<Cidr>().ok())
        .map(|cidr| ClientRule {
            cidr,
            access,
            squash,
        })
        .collect()
}

/// Validates an export name: absolute, normalised, no empty or dot components.
pub fn validate_export_name(name: &str) -> Result<(), &'static str> {
    if !name.starts_with('/') {
        return Err("must be an absolute path such as /exports/data");
    }
    if name.len() > 1024 {
        return Err("longer than 1024 bytes (MNTPATHLEN)");
    }
    if name != "/"
        && name[1..]
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must not contain empty, '.' or '..' components or a trailing '/'");
    }
    Ok(())
}
