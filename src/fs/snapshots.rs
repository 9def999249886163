//! Snapshots, browsable and read-only: `.zfs/snapshot/<name>/` of a ZFS
//! export, so a user restores one file with `cp` instead of a rollback.
//!
//! ZFS itself provides the tree: `.zfs` is found by name at the dataset's
//! root whether or not `snapdir` makes READDIR show it (so READDIR follows
//! the property by itself), and a snapshot directory is mounted on first
//! open (Linux automounts it, illumos mounts it in the kernel on lookup).
//! volnfs serves each snapshot as an export tree of its own
//! ([`ExportFs`] rooted at the snapshot's directory) whose handles carry the
//! snapshot's own filesystem id: a hash of the live export's id and the
//! snapshot's name, so they stay valid across a server restart while the
//! snapshot exists (the name is found again by listing `.zfs/snapshot`),
//! and are STALE once it is gone. Everything below `.zfs` is read-only
//! (the dispatcher refuses every write with NFS3ERR_ROFS, including
//! `mkdir`/`rmdir` in `.zfs/snapshot`, which ZFS would turn into snapshot
//! creation and destruction); `..` of a snapshot's root leads back to
//! `.zfs/snapshot`, and nothing below can reach the live tree.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::error::{KResult, Kind};
use super::index::Store;
use super::{lock, open_dir_at, ExportFs, ExportOptions, FileHandle, Stat};
use crate::sys;

const CONTROL_DIR: &CStr = c".zfs";
const SNAPSHOT_DIR: &CStr = c"snapshot";

/// The live export's control directory.
pub struct Snapshots {
    /// Inode numbers of `.zfs` and `.zfs/snapshot`.
    control: u64,
    snapdir: u64,
    snapdir_fd: Arc<OwnedFd>,
    /// Snapshot trees opened so far, by their filesystem id.
    open: Mutex<HashMap<u64, Arc<ExportFs>>>,
}

/// What a snapshot tree knows of where it hangs.
pub struct SnapshotOf {
    pub name: String,
    /// `.zfs/snapshot` of the live export: `..` of the snapshot's root.
    up: (FileHandle, Arc<OwnedFd>),
}

impl Snapshots {
    /// The control directory of the dataset whose root is `root`, if any.
    pub(super) fn probe(root: &OwnedFd) -> Option<Snapshots> {
        let control = open_dir_at(root.as_fd(), CONTROL_DIR).ok()?;
        let cst = sys::fstat(control.as_fd()).ok()?;
        let snapdir = open_dir_at(control.as_fd(), SNAPSHOT_DIR).ok()?;
        let sst = sys::fstat(snapdir.as_fd()).ok()?;
        tracing::info!(
            control_ino = cst.ino,
            snapdir_ino = sst.ino,
            "ZFS snapshots browsable under .zfs/snapshot (read-only)"
        );
        Some(Snapshots {
            control: cst.ino,
            snapdir: sst.ino,
            snapdir_fd: Arc::new(snapdir),
            open: Mutex::new(HashMap::new()),
        })
    }
}

/// The filesystem id a snapshot's handles carry.
fn snapshot_fsid(live_fsid: u64, name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(live_fsid, 0x736e_6170_7368_6f74);
    h.write(name);
    h.finish() | 1
}

impl ExportFs {
    /// True for `.zfs` and `.zfs/snapshot` of this (live) export: the
    /// control directory, never to be changed through NFS.
    pub fn is_control(&self, ino: u64) -> bool {
        self.snapshots
            .as_ref()
            .is_some_and(|s| ino == s.control || ino == s.snapdir)
    }

    /// Whether every change through NFS must be refused: a snapshot tree.
    pub fn read_only(&self) -> bool {
        self.snapshot.is_some()
    }

    pub(super) fn is_snapdir(&self, ino: u64) -> bool {
        self.snapshots.as_ref().is_some_and(|s| ino == s.snapdir)
    }

    /// `..` of a snapshot tree's root: `.zfs/snapshot` of the live export.
    pub(super) fn up_from_snapshot_root(&self) -> Option<(FileHandle, Stat)> {
        let (fh, fd) = &self.snapshot.as_ref()?.up;
        Some((*fh, sys::fstat(fd.as_fd()).ok()?))
    }

    /// The snapshot tree a handle with filesystem id `fsid` belongs to.
    pub fn snapshot_tree(&self, fsid: u64) -> Option<Arc<ExportFs>> {
        let snaps = self.snapshots.as_ref()?;
        if let Some(fs) = lock(&snaps.open).get(&fsid) {
            return Some(fs.clone());
        }
        // After a restart: find the snapshot by listing .zfs/snapshot.
        let mut found = None;
        let _ = super::dir::scan_dir(snaps.snapdir_fd.as_fd(), 0, |name, _, _| {
            if name != b"." && name != b".." && snapshot_fsid(self.fsid, name) == fsid {
                found = Some(name.to_vec());
                return false;
            }
            true
        });
        self.open_snapshot(&found?).ok()
    }

    /// The snapshot tree `name` (mounting it if ZFS has not yet).
    pub(super) fn open_snapshot(&self, name: &[u8]) -> KResult<Arc<ExportFs>> {
        let snaps = self.snapshots.as_ref().ok_or(Errno::ENOENT)?;
        let fsid = snapshot_fsid(self.fsid, name);
        if let Some(fs) = lock(&snaps.open).get(&fsid) {
            return Ok(fs.clone());
        }
        let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let root = open_dir_at(snaps.snapdir_fd.as_fd(), &cname)?;
        let rst = sys::fstat(root.as_fd())?;
        if rst.dev == self.root_dev {
            // Not a mounted snapshot (ZFS did not mount it): nothing to serve.
            return Err(Kind::Stale);
        }
        let name_s = String::from_utf8_lossy(name).into_owned();
        let sst = sys::fstat(snaps.snapdir_fd.as_fd())?;
        let up = (self.handle_for(&sst), snaps.snapdir_fd.clone());
        let label = format!("{}@{}", self.name, name_s);
        let path = self.path.join(".zfs/snapshot").join(&name_s);
        let opts = ExportOptions {
            sync_namespace: false,
            device_nodes: self.devices,
        };
        // Its own index, in memory: a snapshot never changes, so the first
        // miss after a restart walks it once.
        let mut fs = ExportFs::from_root(
            &self.name,
            &path,
            root,
            self.key,
            Store::memory(),
            false,
            opts,
        )?;
        fs.fsid = fsid;
        fs.snapshot = Some(SnapshotOf { name: name_s, up });
        let fs = Arc::new(fs);
        tracing::info!(snapshot = %label, "serving snapshot (read-only)");
        lock(&snaps.open).insert(fsid, fs.clone());
        Ok(fs)
    }

    /// Lets go of a snapshot's tree (before it is destroyed: held
    /// descriptors would keep it busy).
    pub fn forget_snapshot(&self, name: &str) {
        if let Some(s) = &self.snapshots {
            let fsid = snapshot_fsid(self.fsid, name.as_bytes());
            lock(&s.open).remove(&fsid);
        }
    }

    /// Lets go of every snapshot tree (after a rollback).
    pub fn forget_snapshots(&self) {
        if let Some(s) = &self.snapshots {
            lock(&s.open).clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_are_stable_distinct_and_never_the_live_one() {
        let a = snapshot_fsid(42, b"daily");
        assert_eq!(a, snapshot_fsid(42, b"daily"), "same after a restart");
        assert_ne!(a, snapshot_fsid(42, b"weekly"));
        assert_ne!(a, snapshot_fsid(43, b"daily"));
        assert_ne!(a, 42);
    }
}
