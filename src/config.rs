//! Configuration: the JSON file format and its validation into domain types.
//!
//! Parsing is strict (`deny_unknown_fields`); validation collects *every*
//! problem, each naming the key that has it (e.g. `exports[0].clients[1].match`),
//! so `volnfs check-config` can report them all at once.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::access::{Access, Cidr, ClientRule, ExportPolicy, Squash};

pub const DEFAULT_NFS_PORT: u16 = 2049;
pub const DEFAULT_MOUNT_PORT: u16 = 20048;
pub const DEFAULT_PORTMAP_PORT: u16 = 111;
pub const NOBODY: u32 = 65534;
/// Where the control socket listens unless `control_socket` says otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/volnfs/control.sock";

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

pub const DEFAULT_GRACE_SECONDS: u64 = 90;

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
}

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
    pub zfs_path: PathBuf,
    pub snapshot_limit: Option<usize>,
    pub exports: Vec<Export>,
    pub limits: crate::rpc::server::Limits,
    /// The lock manager's grace period after a restart; `None` = no lock
    /// manager (clients must mount with `nolock`).
    pub lock_grace: Option<std::time::Duration>,
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
            zfs_path: crate::zfs::DEFAULT_ZFS_PATH.into(),
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

impl ConfigFile {
    pub fn validate(&self) -> Result<Config, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem =
            |key: String, message: String| problems.push(ConfigProblem { key, message });

        let mut listen = Vec::new();
        if self.listen.is_empty() {
            problem("listen".into(), "at least one address is required".into());
        }
        for (i, a) in self.listen.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) => listen.push(ip),
                Err(_) => problem(
                    format!("listen[{i}]"),
                    format!("{a:?} is not an IP address"),
                ),
            }
        }
        if self.exports.is_empty() {
            problem("exports".into(), "at least one export is required".into());
        }
        let mut exports = Vec::new();
        let mut names = HashSet::new();
        let mut paths: Vec<(usize, PathBuf)> = Vec::new();
        for (i, e) in self.exports.iter().enumerate() {
            let key = |k: &str| format!("exports[{i}].{k}");
            if let Err(m) = validate_export_name(&e.name) {
                problem(key("name"), format!("{:?} {m}", e.name));
            }
            if !names.insert(e.name.clone()) {
                problem(key("name"), format!("{:?} is exported twice", e.name));
            }
            if !e.path.is_absolute() {
                problem(
                    key("path"),
                    format!("{} must be an absolute path", e.path.display()),
                );
            }
            for (j, p) in &paths {
                if e.path.starts_with(p) || p.starts_with(&e.path) {
                    problem(
                        key("path"),
                        format!(
                            "{} overlaps exports[{j}].path {}",
                            e.path.display(),
                            p.display()
                        ),
                    );
                }
            }
            if let Some(sd) = &self.state_dir {
                if sd.starts_with(&e.path) {
                    problem(
                        "state_dir".into(),
                        format!(
                            "{} is inside exports[{i}].path; clients could read the handle keys",
                            sd.display()
                        ),
                    );
                }
            }
            paths.push((i, e.path.clone()));
            if e.clients.is_empty() {
                problem(
                    key("clients"),
                    "is empty: no client could mount (access is denied by default); add e.g. {\"match\": \"10.0.0.0/8\", \"access\": \"rw\"}".into(),
                );
            }
            let mut rules = Vec::new();
            for (j, c) in e.clients.iter().enumerate() {
                match c.match_.parse::<Cidr>() {
                    Ok(cidr) => {
                        if rules.iter().any(|r: &ClientRule| r.cidr == cidr) {
                            problem(
                                format!("exports[{i}].clients[{j}].match"),
                                format!("{cidr} is listed twice"),
                            );
                        }
                        rules.push(ClientRule {
                            cidr,
                            access: c.access,
                            squash: c.squash,
                        })
                    }
                    Err(err) => {
                        problem(format!("exports[{i}].clients[{j}].match"), err.to_string())
                    }
                }
            }
            if let Some(ds) = &e.dataset {
                if let Err(m) = crate::zfs::check_dataset_name(ds) {
                    problem(key("dataset"), format!("{ds:?}: {m}"));
                }
            }
            exports.push(Export {
                sync: e.sync,
                dataset: e.dataset.clone(),
                name: e.name.clone(),
                path: e.path.clone(),
                policy: ExportPolicy {
                    rules,
                    anon_uid: e.anonuid,
                    anon_gid: e.anongid,
                    secure: e.secure,
                },
            });
        }
        if let Some(cs) = &self.control_socket {
            if !cs.is_absolute() {
                problem(
                    "control_socket".into(),
                    format!("{} must be an absolute path", cs.display()),
                );
            }
        }
        if let Some(z) = &self.zfs {
            if !z.is_absolute() {
                problem(
                    "zfs".into(),
                    format!(
                        "{} must be an absolute path (volnfs never searches $PATH)",
                        z.display()
                    ),
                );
            }
        }
        let mut limits = crate::rpc::server::Limits::default();
        if let Some(n) = self.limits.max_connections {
            if n == 0 {
                problem("limits.max_connections".into(), "must be at least 1".into());
            }
            limits.max_connections = n.max(1);
        }
        if let Some(n) = self.limits.max_inflight_per_connection {
            if n == 0 || n > 4096 {
                problem(
                    "limits.max_inflight_per_connection".into(),
                    "must be between 1 and 4096".into(),
                );
            }
            limits.max_inflight_per_conn = n.clamp(1, 4096);
        }
        let ports = [("nfs_port", self.nfs_port), ("mount_port", self.mount_port)];
        if self.nfs_port != 0 && self.nfs_port == self.mount_port {
            // Allowed: every port serves every program. Nothing to report.
        }
        if self.portmap.enabled {
            for (k, p) in ports {
                if p != 0 && p == self.portmap.port {
                    problem(k.into(), format!("port {p} is also portmap.port"));
                }
            }
        }
        if self.locking.grace_seconds > 3600 {
            problem(
                "locking.grace_seconds".into(),
                "must be at most 3600 (clients reclaim within seconds of being told)".into(),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            listen,
            nfs_port: self.nfs_port,
            mount_port: self.mount_port,
            portmap_port: self.portmap.enabled.then_some(self.portmap.port),
            state_dir: self.state_dir.clone(),
            control_socket: Some(
                self.control_socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            ),
            zfs_path: self
                .zfs
                .clone()
                .unwrap_or_else(|| crate::zfs::DEFAULT_ZFS_PATH.into()),
            snapshot_limit: self.snapshot_limit,
            exports,
            limits,
            lock_grace: self
                .locking
                .enabled
                .then(|| std::time::Duration::from_secs(self.locking.grace_seconds)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.json"))
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse(
            r#"{"exports":[{"name":"/exports/data","path":"/srv/data",
            "clients":[{"match":"10.0.0.0/8","access":"rw"}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.nfs_port, 2049);
        assert_eq!(c.portmap_port, Some(111));
        assert_eq!(c.exports[0].policy.anon_uid, NOBODY);
        assert_eq!(c.exports[0].policy.rules[0].squash, Squash::RootSquash);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(r#"{"exports":[],"bogus":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = parse(
            r#"{"listen":["nope"],"exports":[
                {"name":"exports/data","path":"/srv/a","clients":[]},
                {"name":"/b","path":"/srv/a/sub","clients":[{"match":"10.0.0.0/33","access":"ro"}]}]}"#,
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected Invalid")
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "listen[0]",
            "exports[0].name",
            "exports[0].clients",
            "exports[1].path",
            "exports[1].clients[0].match",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
    }

    #[test]
    fn locking_is_on_by_default_and_can_be_turned_off_or_tuned() {
        let exports = r#""exports":[{"name":"/e","path":"/srv/e","clients":[{"match":"10.0.0.0/8","access":"rw"}]}]"#;
        let c = parse(&format!("{{{exports}}}")).unwrap();
        assert_eq!(c.lock_grace, Some(std::time::Duration::from_secs(90)));
        let c = parse(&format!(
            r#"{{{exports},"locking":{{"grace_seconds":20}}}}"#
        ))
        .unwrap();
        assert_eq!(c.lock_grace, Some(std::time::Duration::from_secs(20)));
        let c = parse(&format!(r#"{{{exports},"locking":{{"enabled":false}}}}"#)).unwrap();
        assert_eq!(c.lock_grace, None);
        let err = parse(&format!(
            r#"{{{exports},"locking":{{"grace_seconds":100000}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("locking.grace_seconds"), "{err}");
        let err = parse(&format!(r#"{{{exports},"locking":{{"grace":1}}}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("grace"), "{err}");
    }

    #[test]
    fn export_names_are_checked() {
        assert!(validate_export_name("/exports/data").is_ok());
        assert!(validate_export_name("/").is_ok());
        for bad in ["exports", "/a/../b", "/a//b", "/a/"] {
            assert!(validate_export_name(bad).is_err(), "{bad}");
        }
    }
}
