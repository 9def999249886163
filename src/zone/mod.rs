//! Zone metadata → a volnfs configuration (every boot) and the dataset layout
//! (first boot), for the Triton volume zone the image provisions.
//!
//! Owns the metadata format (`image/README.md` documents every key) and the
//! mapping from it to a [`crate::config::ConfigFile`]: the volume zone's NIC networks become
//! the client rules, each name of `export-volumes` an export. Parsing and
//! mapping are pure; [`setup`] is the only part that does I/O, through
//! [`ZfsCli`] and the filesystem. It does not fetch metadata (the boot
//! scripts run `mdata-get`) nor serve anything.
//!
//! The metadata file is one JSON object, key → value, as `mdata-get KEY`
//! printed it. Metadata values are strings, so a value that is itself JSON
//! (`sdc:nics`, `export-volumes`) may be given either as that string or as
//! the JSON value; tests and humans write the latter, the boot scripts the
//! former.

mod config;
mod nics;
mod setup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sys::zfs::{self, ZfsCli, ZfsError};

pub use config::{config_from_metadata, write_config};
pub use nics::{nic_addresses, NicAddress};
pub use setup::{setup, setup_plan, SetupPlan, VolumeState};

/// Where clients mount the volumes (`<ip>:/exports/<volume>`, as the node
/// server published them) and where the delegated dataset is mounted.
pub const EXPORTS_ROOT: &str = "/exports";
/// Handle keys and index: on the delegated dataset (so they survive an image
/// upgrade, which replaces the zone root) but outside every export.
pub const STATE_DIR_NAME: &str = ".volnfs";
pub const DEFAULT_CONTROL_SOCKET: &str = crate::config::DEFAULT_CONTROL_SOCKET;

pub mod keys {
    pub const NICS: &str = "sdc:nics";
    pub const ZONE_UUID: &str = "sdc:uuid";
    pub const VOLUMES: &str = "export-volumes";
    pub const SIZE_MIB: &str = "volume-size-mib";
    pub const DATASET: &str = "volnfs-delegated-dataset";
    pub const CONTROL_SOCKET: &str = "volnfs-control-socket";
    pub const CONTROL_CONNECT: &str = "volnfs-control-connect";
    pub const SQUASH: &str = "volnfs-squash";
}

#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("reading metadata file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata file {path} is not a JSON object: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("metadata key {key:?} is missing (see image/README.md)")]
    MissingKey { key: String },
    #[error("metadata key {key:?}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("the generated config is invalid: {}", problems.join("; "))]
    GeneratedConfigInvalid { problems: Vec<String> },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dataset {dataset}")]
    Zfs {
        dataset: String,
        #[source]
        source: ZfsError,
    },
    #[error("dataset {dataset} is not mounted at {mountpoint} (zfs mount {dataset}?)")]
    NotMounted { dataset: String, mountpoint: String },
    #[error("dataset {dataset}: unexpected property value")]
    Property {
        dataset: String,
        #[source]
        source: zfs::ParseError,
    },
}

fn bad(key: impl Into<String>, reason: impl Into<String>) -> ZoneError {
    ZoneError::BadValue {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The metadata file: key → value.
#[derive(Debug, Clone, Default)]
pub struct Metadata(BTreeMap<String, Value>);

impl Metadata {
    pub fn load(path: &Path) -> Result<Metadata, ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Metadata::parse(&text).map_err(|message| ZoneError::Syntax {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Metadata, String> {
        serde_json::from_str(text)
            .map(Metadata)
            .map_err(|e| e.to_string())
    }

    /// A string value; JSON numbers are accepted as their text.
    fn string(&self, key: &str) -> Result<Option<String>, ZoneError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(bad(key, "expected a string")),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, ZoneError> {
        self.string(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ZoneError::MissingKey { key: key.into() })
    }

    /// A structured value, given as JSON or as a string holding JSON.
    fn json(&self, key: &str) -> Result<Option<Value>, ZoneError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| bad(key, format!("is not valid JSON: {e}"))),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    fn required_json(&self, key: &str) -> Result<Value, ZoneError> {
        self.json(key)?
            .ok_or_else(|| ZoneError::MissingKey { key: key.into() })
    }
}

/// The dataset delegated to the zone: `volnfs-delegated-dataset`, or
/// Triton's `zones/<sdc:uuid>/data` (vmadm's `delegate_dataset`).
pub fn delegated_dataset(md: &Metadata) -> Result<String, ZoneError> {
    let delegated = match md.string(keys::DATASET)? {
        Some(d) if !d.is_empty() => d,
        _ => {
            let zone = md.required_string(keys::ZONE_UUID)?;
            format!("zones/{zone}/data")
        }
    };
    if let Err(m) = zfs::check_dataset_name(&delegated) {
        return Err(bad(keys::DATASET, format!("{delegated:?}: {m}")));
    }
    Ok(delegated)
}

/// Volume names as VAPI allows them (`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, at most
/// 256): each is a child dataset and a path component, never `.`/`..`.
pub fn volume_names(md: &Metadata) -> Result<Vec<String>, ZoneError> {
    let v = md.required_json(keys::VOLUMES)?;
    let arr = v.as_array().ok_or_else(|| {
        bad(
            keys::VOLUMES,
            "expected a JSON array of names, e.g. [\"data\"]",
        )
    })?;
    if arr.is_empty() {
        return Err(bad(keys::VOLUMES, "is empty: nothing to export"));
    }
    let mut out = Vec::new();
    for (i, n) in arr.iter().enumerate() {
        let k = format!("{}[{i}]", keys::VOLUMES);
        let n = n.as_str().ok_or_else(|| bad(&k, "expected a string"))?;
        let ok = (2..=256).contains(&n.len())
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(bad(
                &k,
                format!("{n:?} is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 256)"),
            ));
        }
        if out.iter().any(|o| o == n) {
            return Err(bad(&k, format!("{n:?} is listed twice")));
        }
        out.push(n.to_string());
    }
    Ok(out)
}
/// `volnfs zone-config`: metadata file → config file; returns a summary.
pub fn zone_config_command(
    metadata: &Path,
    exports_root: &Path,
    out: &Path,
) -> Result<String, ZoneError> {
    let md = Metadata::load(metadata)?;
    let c = write_config(&md, exports_root, out)?;
    let clients: Vec<&str> = c
        .exports
        .first()
        .map(|e| e.clients.iter().map(|c| c.match_.as_str()).collect())
        .unwrap_or_default();
    let names: Vec<&str> = c.exports.iter().map(|e| e.name.as_str()).collect();
    Ok(format!(
        "wrote {}: exports {} for clients {} listening on {}",
        out.display(),
        names.join(" "),
        clients.join(" "),
        c.listen.join(" ")
    ))
}

/// `volnfs zone-setup`: metadata file → datasets and state directory.
pub fn zone_setup_command(
    metadata: &Path,
    zfs: &Path,
    exports_root: &Path,
) -> Result<String, ZoneError> {
    let md = Metadata::load(metadata)?;
    let plan = setup_plan(&md)?;
    let states = setup(&ZfsCli::new(zfs), &plan, exports_root)?;
    let lines: Vec<String> = states
        .iter()
        .map(|v| {
            format!(
                "{} {} refquota={}",
                v.dataset,
                if v.created { "created" } else { "exists" },
                v.refquota
                    .map(|q| q.to_string())
                    .unwrap_or_else(|| "none".into())
            )
        })
        .collect();
    Ok(lines.join("\n"))
}

#[cfg(test)]
fn test_metadata(v: Value) -> Metadata {
    Metadata(
        v.as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    )
}
