//! Metadata → a volnfs [`ConfigFile`] (what `zone-config` writes every boot).
//! Pure except [`write_config`], which replaces the file atomically.

use std::path::{Path, PathBuf};

use crate::access::{Access, Squash};
use crate::config::{ClientFile, ConfigFile, ExportFile, LimitsFile, PortmapFile};

use super::nics::nic_addresses;
use super::{
    bad, delegated_dataset, keys, volume_names, Metadata, ZoneError, DEFAULT_CONTROL_SOCKET,
    EXPORTS_ROOT, STATE_DIR_NAME,
};

fn squash(md: &Metadata) -> Result<Squash, ZoneError> {
    match md.string(keys::SQUASH)?.as_deref() {
        // Docker containers run as root and expect to own what they write;
        // the clients are the owner's own network, as with the node server.
        None | Some("") | Some("no_root_squash") => Ok(Squash::NoRootSquash),
        Some("root_squash") => Ok(Squash::RootSquash),
        Some("all_squash") => Ok(Squash::AllSquash),
        Some(other) => Err(bad(
            keys::SQUASH,
            format!("{other:?} is not root_squash, no_root_squash or all_squash"),
        )),
    }
}

/// The configuration for this zone: listen on the NICs' addresses, one
/// export per volume, clients = the NICs' networks read-write.
pub fn config_from_metadata(md: &Metadata, exports_root: &Path) -> Result<ConfigFile, ZoneError> {
    let addrs = nic_addresses(&md.required_json(keys::NICS)?)?;
    let volumes = volume_names(md)?;
    let delegated = delegated_dataset(md)?;
    let squash = squash(md)?;
    let control_socket = match md.string(keys::CONTROL_SOCKET)? {
        Some(s) if !s.is_empty() => {
            if !s.starts_with('/') {
                return Err(bad(keys::CONTROL_SOCKET, "must be an absolute path"));
            }
            PathBuf::from(s)
        }
        _ => PathBuf::from(DEFAULT_CONTROL_SOCKET),
    };
    // RFD 69: the global zone's agent listens on a socket mounted read-only
    // into the zone (e.g. /.zonecontrol/volnfs.sock); volnfs connects to it.
    let control_connect = match md.string(keys::CONTROL_CONNECT)? {
        Some(s) if !s.is_empty() => {
            if !s.starts_with('/') {
                return Err(bad(
                    keys::CONTROL_CONNECT,
                    "must be an absolute path such as /.zonecontrol/volnfs.sock",
                ));
            }
            Some(PathBuf::from(s))
        }
        _ => None,
    };
    let mut networks: Vec<String> = Vec::new();
    for a in &addrs {
        let n = a.network();
        if !networks.contains(&n) {
            networks.push(n);
        }
    }
    let clients: Vec<ClientFile> = networks
        .into_iter()
        .map(|n| ClientFile {
            match_: n,
            access: Access::Rw,
            squash,
        })
        .collect();
    Ok(ConfigFile {
        listen: addrs.iter().map(|a| a.ip.to_string()).collect(),
        nfs_port: crate::config::DEFAULT_NFS_PORT,
        mount_port: crate::config::DEFAULT_MOUNT_PORT,
        portmap: PortmapFile::default(),
        state_dir: Some(exports_root.join(STATE_DIR_NAME)),
        control_socket: Some(control_socket),
        control_connect,
        zfs: None,
        snapshot_limit: None,
        exports: volumes
            .iter()
            .map(|v| ExportFile {
                name: format!("{EXPORTS_ROOT}/{v}"),
                path: exports_root.join(v),
                clients: clients.clone(),
                anonuid: crate::config::NOBODY,
                anongid: crate::config::NOBODY,
                secure: false,
                // What zone-setup created: snapshots and resizing through
                // the control socket act on it.
                dataset: Some(format!("{delegated}/{v}")),
                sync: true,
            })
            .collect(),
        limits: LimitsFile::default(),
        locking: Default::default(),
        io: Default::default(),
        device_nodes: Default::default(),
    })
}

/// `zone-config`: writes the config (validated first, replaced atomically).
pub fn write_config(
    md: &Metadata,
    exports_root: &Path,
    out: &Path,
) -> Result<ConfigFile, ZoneError> {
    let file = config_from_metadata(md, exports_root)?;
    file.validate()
        .map_err(|p| ZoneError::GeneratedConfigInvalid {
            problems: p.iter().map(|p| p.to_string()).collect(),
        })?;
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| ZoneError::Write {
        path: out.to_path_buf(),
        source: e.into(),
    })?;
    text.push('\n');
    write_atomically(out, text.as_bytes()).map_err(|source| ZoneError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(file)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{}.tmp", name.unwrap_or_else(|| "config".into())));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_metadata as md;

    #[test]
    fn one_nic_becomes_listen_address_and_client_network() {
        let m = md(serde_json::json!({
            "sdc:nics": [{"ip": "10.88.3.7", "netmask": "255.255.0.0", "primary": true}],
            "export-volumes": "[\"data\"]",
            "sdc:uuid": "8f2c",
        }));
        let c = config_from_metadata(&m, Path::new("/exports")).unwrap();
        assert_eq!(c.listen, ["10.88.3.7"]);
        assert_eq!(c.exports[0].name, "/exports/data");
        assert_eq!(c.exports[0].path, Path::new("/exports/data"));
        assert_eq!(c.exports[0].clients[0].match_, "10.88.0.0/16");
        assert_eq!(c.exports[0].clients[0].squash, Squash::NoRootSquash);
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("/exports/.volnfs")));
        assert_eq!(
            c.exports[0].dataset.as_deref(),
            Some("zones/8f2c/data/data")
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn nics_given_as_the_string_mdata_get_prints_are_parsed() {
        let m = md(serde_json::json!({
            "sdc:nics": "[{\"ips\":[\"192.168.7.9/22\",\"fd00:7::9/64\",\"addrconf\"]}]",
            "export-volumes": ["data"],
            "volnfs-delegated-dataset": "tank/vols",
        }));
        let c = config_from_metadata(&m, Path::new("/exports")).unwrap();
        let nets: Vec<_> = c.exports[0]
            .clients
            .iter()
            .map(|c| c.match_.as_str())
            .collect();
        assert_eq!(nets, ["192.168.4.0/22", "fd00:7::/64"]);
    }

    #[test]
    fn the_control_channel_socket_comes_from_metadata() {
        let with = |v: &str| {
            md(serde_json::json!({
                "sdc:nics": [{"ips": ["10.0.0.5/24"]}],
                "export-volumes": ["data"],
                "sdc:uuid": "8f2c",
                "volnfs-control-connect": v,
            }))
        };
        let c = config_from_metadata(&with("/.zonecontrol/volnfs.sock"), Path::new("/e")).unwrap();
        assert_eq!(
            c.control_connect.as_deref(),
            Some(Path::new("/.zonecontrol/volnfs.sock"))
        );
        assert!(c.validate().is_ok());
        let c = config_from_metadata(&with(""), Path::new("/e")).unwrap();
        assert_eq!(c.control_connect, None, "empty = no channel");
        let err = config_from_metadata(&with("volnfs.sock"), Path::new("/e"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"volnfs-control-connect\""), "{err}");
    }

    #[test]
    fn missing_and_bad_keys_are_named() {
        let err = config_from_metadata(
            &md(serde_json::json!({"export-volumes": ["data"]})),
            Path::new("/e"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"sdc:nics\""), "{err}");
        let err = config_from_metadata(
            &md(serde_json::json!({"sdc:nics": [{"ip": "10.0.0.1"}], "export-volumes": ["data"]})),
            Path::new("/e"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sdc:nics[0].netmask"), "{err}");
        let err = config_from_metadata(
            &md(serde_json::json!({"sdc:nics": [{"ip": "dhcp"}], "export-volumes": ["data"]})),
            Path::new("/e"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no NIC has a static address"), "{err}");
        let err = volume_names(&md(serde_json::json!({"export-volumes": ["../x"]})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("export-volumes[0]"), "{err}");
    }
}
