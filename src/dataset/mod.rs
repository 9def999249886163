//! What the export lives on: a ZFS dataset (snapshots, rollback, refquota)
//! or a plain directory (development; snapshot and quota calls answer a
//! clear "unsupported" error).
//!
//! The control socket talks to this trait only; the ZFS implementation
//! (the `zfs` CLI with `-H -p` parsing, libzfs_core behind the `lzc`
//! feature) plugs in behind it.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

pub mod zfs;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Space {
    /// The volume size clients see (`df` total).
    pub size: u64,
    pub used: u64,
    pub available: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub used: u64,
    pub referenced: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{op} is not supported by the directory backend (export {path}); use a ZFS dataset")]
    Unsupported { op: &'static str, path: PathBuf },
    #[error("reading space of {path}")]
    Space {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("{op} on {dataset}")]
    Zfs {
        op: &'static str,
        dataset: String,
        #[source]
        source: Box<crate::sys::zfs::ZfsError>,
    },
    #[error("snapshot {name} exists")]
    SnapshotExists { name: String },
    #[error("no snapshot {name}")]
    SnapshotNotFound { name: String },
    #[error("{dataset} has {limit} snapshots, the configured limit: delete one first")]
    SnapshotLimit { dataset: String, limit: usize },
    #[error("cannot roll back to {name}: newer snapshots exist ({}); delete them first", newer.join(", "))]
    HasNewerSnapshots { name: String, newer: Vec<String> },
    #[error("cannot roll back to {name}: it holds more data than the volume's current size (refquota); grow the volume first")]
    RollbackOverQuota { name: String },
    #[error("cannot set the size of {dataset} to {requested} bytes: the volume already uses {referenced} bytes")]
    QuotaBelowUsage {
        dataset: String,
        requested: u64,
        referenced: u64,
    },
    #[error("{what} is busy; try again")]
    Busy { what: String },
    #[error("internal error: {0}")]
    Internal(String),
}

#[async_trait]
pub trait Dataset: Send + Sync {
    /// "zfs" or "directory".
    fn kind(&self) -> &'static str;
    /// The dataset name (ZFS) or directory path.
    fn name(&self) -> String;
    async fn space(&self) -> Result<Space, DatasetError>;
    async fn snapshots(&self) -> Result<Vec<Snapshot>, DatasetError>;
    async fn snapshot_create(&self, name: &str) -> Result<Snapshot, DatasetError>;
    async fn snapshot_delete(&self, name: &str) -> Result<(), DatasetError>;
    async fn snapshot_rollback(&self, name: &str) -> Result<(), DatasetError>;
    async fn quota(&self) -> Result<Option<u64>, DatasetError>;
    async fn set_quota(&self, bytes: u64) -> Result<(), DatasetError>;
}

/// A plain directory: space from `statvfs`, nothing else.
pub struct Directory {
    pub path: PathBuf,
}

impl Directory {
    fn unsupported<T>(&self, op: &'static str) -> Result<T, DatasetError> {
        Err(DatasetError::Unsupported {
            op,
            path: self.path.clone(),
        })
    }
}

/// Space of the filesystem holding `path`, in bytes (`f_frsize` units).
pub fn statvfs_space(path: &Path) -> Result<Space, DatasetError> {
    let err = |source| DatasetError::Space {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(|e| {
        err(nix::errno::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    let v = nix::sys::statvfs::fstatvfs(f.as_fd()).map_err(err)?;
    let unit = v.fragment_size() as u64;
    let size = (v.blocks() as u64).saturating_mul(unit);
    let free = (v.blocks_free() as u64).saturating_mul(unit);
    Ok(Space {
        size,
        used: size.saturating_sub(free),
        available: (v.blocks_available() as u64).saturating_mul(unit),
    })
}

#[async_trait]
impl Dataset for Directory {
    fn kind(&self) -> &'static str {
        "directory"
    }
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    async fn space(&self) -> Result<Space, DatasetError> {
        statvfs_space(&self.path)
    }
    async fn snapshots(&self) -> Result<Vec<Snapshot>, DatasetError> {
        self.unsupported("snapshot.list")
    }
    async fn snapshot_create(&self, _name: &str) -> Result<Snapshot, DatasetError> {
        self.unsupported("snapshot.create")
    }
    async fn snapshot_delete(&self, _name: &str) -> Result<(), DatasetError> {
        self.unsupported("snapshot.delete")
    }
    async fn snapshot_rollback(&self, _name: &str) -> Result<(), DatasetError> {
        self.unsupported("snapshot.rollback")
    }
    async fn quota(&self) -> Result<Option<u64>, DatasetError> {
        self.unsupported("quota.get")
    }
    async fn set_quota(&self, _bytes: u64) -> Result<(), DatasetError> {
        self.unsupported("quota.set")
    }
}

/// Snapshot names VAPI may use: `[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}`.
pub fn validate_snapshot_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return Err(format!("snapshot name {name:?} must be 1 to 64 characters"));
    }
    if !b[0].is_ascii_alphanumeric() {
        return Err(format!(
            "snapshot name {name:?} must start with a letter or digit"
        ));
    }
    if let Some(c) = b
        .iter()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')))
    {
        return Err(format!(
            "snapshot name {name:?} contains {:?}; allowed are letters, digits and _ . : -",
            *c as char
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        for ok in ["a", "daily-2026.11.22", "x:y_z", &"a".repeat(64)] {
            assert!(validate_snapshot_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a@b", "a/b", "a%b", "a b", &"a".repeat(65), ".a"] {
            assert!(validate_snapshot_name(bad).is_err(), "{bad}");
        }
    }
}
