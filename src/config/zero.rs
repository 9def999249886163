//! Zero-config mode: `volnfs serve --export DIR` without a file. The flags
//! become a `Config` here (pure but for resolving DIR and asking whether we
//! run as root), so they are tested like the file is.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{loopback_rules, validate_export_name, Config, Export, DEFAULT_PORTMAP_PORT, NOBODY};
use crate::access::{Access, Cidr, ClientRule, ExportPolicy, Squash};

/// The `serve --export` flags.
#[derive(Debug, Clone, Default)]
pub struct ZeroConfig {
    pub export: PathBuf,
    pub name: Option<String>,
    pub listen: Vec<IpAddr>,
    pub nfs_port: Option<u16>,
    pub mount_port: Option<u16>,
    pub portmap_port: Option<u16>,
    pub no_portmap: bool,
    pub allow: Vec<String>,
    pub ro: bool,
    pub squash: Option<Squash>,
    pub state_dir: Option<PathBuf>,
    pub no_state: bool,
    pub async_namespace: bool,
    pub no_lock: bool,
    pub lock_grace: u64,
    pub io_threads: Option<usize>,
    pub busy_poll_us: Option<u64>,
}

/// A flag that cannot be used, named as on the command line.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {message}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub message: String,
}

fn flag_err(
    flag: &'static str,
    value: impl std::fmt::Display,
    message: impl Into<String>,
) -> FlagError {
    FlagError {
        flag,
        value: value.to_string(),
        message: message.into(),
    }
}

impl ZeroConfig {
    /// The configuration these flags mean for a server running as root or
    /// not (`root`): a development server by default — loopback clients,
    /// root trusted, unprivileged ports when not root.
    pub fn into_config(self, root: bool) -> Result<Config, FlagError> {
        let dir = std::fs::canonicalize(&self.export).map_err(|e| {
            flag_err(
                "--export",
                self.export.display(),
                format!("cannot resolve the directory: {e}"),
            )
        })?;
        let name = match self.name {
            Some(n) => n,
            None => dir
                .to_str()
                .ok_or_else(|| {
                    flag_err(
                        "--export",
                        dir.display(),
                        "the path is not UTF-8; give --name",
                    )
                })?
                .to_string(),
        };
        validate_export_name(&name).map_err(|m| flag_err("--name", &name, m))?;
        let access = if self.ro { Access::Ro } else { Access::Rw };
        let squash = self.squash.unwrap_or(Squash::NoRootSquash);
        let rules = if self.allow.is_empty() {
            loopback_rules(access, squash)
        } else {
            let mut rules = Vec::new();
            for a in &self.allow {
                let cidr: Cidr = a
                    .parse()
                    .map_err(|e| flag_err("--allow", a, format!("{e}")))?;
                rules.push(ClientRule {
                    cidr,
                    access,
                    squash,
                });
            }
            rules
        };
        let (nfs_default, mount_default) = if root { (2049, 20048) } else { (12049, 12048) };
        let portmap_port = match (self.no_portmap, self.portmap_port) {
            (true, _) => None,
            (false, Some(p)) => Some(p),
            (false, None) if root => Some(DEFAULT_PORTMAP_PORT),
            (false, None) => None,
        };
        let state_dir = match (self.state_dir, self.no_state) {
            (_, true) => None,
            (Some(d), false) => Some(d),
            (None, false) => Some(default_state_dir(root, &dir)),
        };
        let mut io = crate::iopool::PoolConfig::default();
        if let Some(n) = self.io_threads {
            if n == 0 || n > 4096 {
                return Err(flag_err("--io-threads", n, "must be between 1 and 4096"));
            }
            io.threads = n;
            io.per_client = io.per_client.min(n);
        }
        let mut limits = crate::rpc::server::Limits::default();
        if let Some(us) = self.busy_poll_us {
            limits.busy_poll = crate::rpc::server::busy_poll_window(us)
                .map_err(|why| flag_err("--busy-poll-us", us, why))?;
        }
        Ok(Config {
            listen: if self.listen.is_empty() {
                vec![IpAddr::from([127, 0, 0, 1])]
            } else {
                self.listen
            },
            nfs_port: self.nfs_port.unwrap_or(nfs_default),
            mount_port: self.mount_port.unwrap_or(mount_default),
            portmap_port,
            state_dir,
            control_socket: None,
            control_connect: None,
            zfs_path: crate::sys::zfs::DEFAULT_ZFS_PATH.into(),
            snapshot_limit: None,
            exports: vec![Export {
                sync: !self.async_namespace,
                dataset: None,
                name,
                path: dir,
                policy: ExportPolicy {
                    rules,
                    anon_uid: NOBODY,
                    anon_gid: NOBODY,
                    secure: false,
                },
            }],
            limits,
            lock_grace: (!self.no_lock).then(|| std::time::Duration::from_secs(self.lock_grace)),
            io,
            device_nodes: Default::default(),
        })
    }
}

/// Where zero-config mode keeps handle keys and the index: per exported
/// directory, under /var/lib/volnfs as root or the user's state directory.
pub fn default_state_dir(root: bool, export: &Path) -> PathBuf {
    use std::hash::Hasher;
    let base = if root {
        PathBuf::from("/var/lib/volnfs")
    } else if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        PathBuf::from(x).join("volnfs")
    } else if let Some(h) = std::env::var_os("HOME") {
        PathBuf::from(h).join(".local/state/volnfs")
    } else {
        std::env::temp_dir().join("volnfs-state")
    };
    // A fixed-key hash: the directory must be the same after an upgrade.
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write(export.as_os_str().as_encoded_bytes());
    let leaf = export
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    base.join(format!("{leaf}-{:016x}", h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(dir: &Path) -> ZeroConfig {
        ZeroConfig {
            export: dir.to_path_buf(),
            lock_grace: 90,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_a_loopback_development_server() {
        let dir = tempfile::tempdir().unwrap();
        let c = flags(dir.path()).into_config(false).unwrap();
        let canon = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            c.exports[0].name,
            canon.to_str().unwrap(),
            "named by its absolute path"
        );
        assert_eq!(
            (c.nfs_port, c.mount_port, c.portmap_port),
            (12049, 12048, None)
        );
        assert_eq!(c.listen, [IpAddr::from([127, 0, 0, 1])]);
        let rules = &c.exports[0].policy.rules;
        assert!(rules
            .iter()
            .all(|r| r.squash == Squash::NoRootSquash && r.access == Access::Rw));
        assert!(c.exports[0]
            .policy
            .rights_for("127.0.0.2".parse().unwrap())
            .is_some());
        assert!(c.exports[0]
            .policy
            .rights_for("10.0.0.1".parse().unwrap())
            .is_none());
        assert!(c.exports[0].sync, "namespace commits on unless --async");
        assert!(c.lock_grace.is_some());
        assert!(c.state_dir.is_some());
        let root = flags(dir.path()).into_config(true).unwrap();
        assert_eq!(
            (root.nfs_port, root.mount_port, root.portmap_port),
            (2049, 20048, Some(111))
        );
        assert_eq!(
            root.state_dir.unwrap().parent().unwrap(),
            Path::new("/var/lib/volnfs")
        );
    }

    #[test]
    fn flags_override_and_bad_flags_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = flags(dir.path());
        f.name = Some("/exports/data".into());
        f.allow = vec!["10.0.0.0/8".into()];
        f.ro = true;
        f.no_state = true;
        f.no_lock = true;
        f.async_namespace = true;
        let c = f.into_config(false).unwrap();
        assert_eq!(c.exports[0].name, "/exports/data");
        assert_eq!(c.exports[0].policy.rules.len(), 1);
        assert_eq!(c.exports[0].policy.rules[0].access, Access::Ro);
        assert!(c.state_dir.is_none() && c.lock_grace.is_none() && !c.exports[0].sync);

        let mut f = flags(dir.path());
        f.allow = vec!["10.0.0.0/33".into()];
        assert!(f
            .into_config(false)
            .unwrap_err()
            .to_string()
            .starts_with("--allow 10.0.0.0/33"));
        let mut f = flags(dir.path());
        f.busy_poll_us = Some(5000);
        assert!(f
            .into_config(false)
            .unwrap_err()
            .to_string()
            .starts_with("--busy-poll-us 5000"));
        let mut f = flags(dir.path());
        f.name = Some("exports".into());
        assert!(f
            .into_config(false)
            .unwrap_err()
            .to_string()
            .starts_with("--name"));
        let f = flags(&dir.path().join("missing"));
        assert!(f
            .into_config(false)
            .unwrap_err()
            .to_string()
            .starts_with("--export"));
        let mut f = flags(dir.path());
        f.io_threads = Some(0);
        assert!(f
            .into_config(false)
            .unwrap_err()
            .to_string()
            .starts_with("--io-threads"));
    }

    #[test]
    fn the_default_state_dir_is_stable_per_directory() {
        let a = default_state_dir(true, Path::new("/srv/data"));
        assert_eq!(a, default_state_dir(true, Path::new("/srv/data")));
        assert_ne!(a, default_state_dir(true, Path::new("/srv/other")));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("data-"));
    }
}
