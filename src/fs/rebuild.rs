//! Finding what the handle index missed.
//!
//! The index is written behind, in batches (see `index`), so after an
//! unclean stop the objects made in the last ~200 ms may be missing from
//! it, and a handle to one of them is not found. Every such object was
//! linked into a directory after the last batch was taken, so that
//! directory's ctime (which no client can set) is at least that time: the
//! first miss searches only the directories changed since then, starting
//! from those the index knows. Only if that records nothing, and for any
//! later miss, is the whole export walked, once; after a rollback (the
//! dataset went back in time, what is missing was not made recently) too.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;

use super::error::Kind;
use super::resolve::Miss;
use super::{open_dir_at, ExportFs, Stat};
use crate::sys;

/// Seconds before the last batch a directory change still counts as
/// recent (filesystems with coarse timestamps, a clock step).
const RECENT_SLACK_SECS: u64 = 2;

impl ExportFs {
    /// Whether a call on `fh` can expect to find what it needs without a
    /// long wait: the handle index is whole (a miss would otherwise walk the
    /// tree to rebuild it) and `fh` is not in `.zfs` (where a snapshot is
    /// mounted on first use). For `nfs3::table::QUICK`.
    pub fn settled(&self, fh: &super::FileHandle) -> bool {
        self.index_complete.load(Ordering::Relaxed) && !self.is_control(fh.ino)
    }

    /// Called when a handle could not be resolved through the index. If the
    /// index may be missing entries (unclean stop, lost, rolled back): the
    /// first time, search the directories changed since its last batch;
    /// if that finds nothing, or on a later miss, walk the tree once to
    /// rebuild it. Concurrent callers are told to retry shortly (JUKEBOX)
    /// instead of getting a premature STALE.
    pub(super) fn on_miss(&self) -> Miss {
        if self.index_complete.load(Ordering::SeqCst) {
            return Miss::Fail(Kind::Stale);
        }
        let Ok(mut guard) = self.rebuilding.try_lock() else {
            return Miss::Fail(Kind::Busy);
        };
        if self.index_complete.load(Ordering::SeqCst) {
            return Miss::Fail(Kind::Stale);
        }
        *guard = Some(Instant::now());
        if !self.recent_searched.swap(true, Ordering::SeqCst) {
            if let Some(since) = self.index.synced_to() {
                if self.search_recent(since.saturating_sub(RECENT_SLACK_SECS)) > 0 {
                    *guard = None;
                    return Miss::Retry;
                }
            }
        }
        self.rebuild_index(false);
        *guard = None;
        Miss::Retry
    }

    /// Records the contents of every directory changed (ctime) at or after
    /// `since` (unix seconds), starting from the directories the index
    /// knows and descending only into changed subdirectories. Returns how
    /// many links it recorded that the index did not have.
    fn search_recent(&self, since: u64) -> u64 {
        let started = Instant::now();
        let changed = |st: &Stat| st.ctime.sec >= since as i64;
        let mut dirs = self.index.parents();
        dirs.insert(self.root_ino);
        let known = dirs.len();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut queue: Vec<(Arc<OwnedFd>, u64)> = Vec::new();
        for dino in dirs {
            if let Ok((fd, st)) = self.dir_fd(dino, self.gen_of(dino), 1) {
                if changed(&st) && seen.insert(dino) {
                    queue.push((fd, dino));
                }
            }
        }
        let (mut searched, mut recorded) = (0u64, 0u64);
        while let Some((dfd, dino)) = queue.pop() {
            searched += 1;
            for (name, st) in self.entries(&dfd, dino) {
                if self.remember(dino, &name, &st) {
                    recorded += 1;
                }
                if st.is_dir() && changed(&st) && seen.insert(st.ino) {
                    if let Ok(fd) = CString::new(name)
                        .map_err(|_| Errno::EINVAL)
                        .and_then(|c| open_dir_at(dfd.as_fd(), &c))
                    {
                        queue.push((Arc::new(fd), st.ino));
                    }
                }
            }
        }
        tracing::info!(export = %self.name, known_dirs = known, searched, recorded, since, elapsed_ms = started.elapsed().as_millis() as u64, "handle index: searched the directories changed since its last batch");
        recorded
    }

    /// The entries of directory `dino` on this export's filesystem, with
    /// their attributes (`.`, `..` and the root's `.zfs` left out).
    fn entries(&self, dfd: &OwnedFd, dino: u64) -> Vec<(Vec<u8>, Stat)> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let at_root = dino == self.root_ino;
        let scanned = super::dir::scan_dir(dfd.as_fd(), 0, |name, _, _| {
            // Never into .zfs: snapshots are trees of their own.
            if name != b"." && name != b".." && !(at_root && name == b".zfs") {
                names.push(name.to_vec());
            }
            true
        });
        if let Err(e) = scanned {
            tracing::warn!(export = %self.name, dir_ino = dino, error = %e, "index rebuild: cannot read a directory; its contents stay unindexed");
        }
        names
            .into_iter()
            .filter_map(|name| {
                let cname = CString::new(name.clone()).ok()?;
                let st = sys::stat_at(dfd.as_fd(), &cname).ok()?;
                (st.dev == self.root_dev).then_some((name, st))
            })
            .collect()
    }

    /// Walks the whole export and records every object's links. With
    /// `clear`, the old index is discarded first (after a rollback).
    pub fn rebuild_index(&self, clear: bool) {
        let started = Instant::now();
        tracing::info!(export = %self.name, "rebuilding the handle index: walking the export");
        if clear {
            self.index.clear();
        }
        let mut stack: Vec<(Arc<OwnedFd>, u64)> = vec![(self.root.clone(), self.root_ino)];
        let (mut objects, mut dirs) = (0u64, 0u64);
        while let Some((dfd, dino)) = stack.pop() {
            dirs += 1;
            for (name, st) in self.entries(&dfd, dino) {
                self.remember(dino, &name, &st);
                objects += 1;
                if objects % 50_000 == 0 {
                    tracing::info!(export = %self.name, objects, dirs, elapsed_ms = started.elapsed().as_millis() as u64, "index rebuild progress");
                }
                if st.is_dir() {
                    if let Ok(fd) = CString::new(name)
                        .map_err(|_| Errno::EINVAL)
                        .and_then(|c| open_dir_at(dfd.as_fd(), &c))
                    {
                        stack.push((Arc::new(fd), st.ino));
                    }
                }
            }
        }
        self.index.mark_complete(false);
        self.index.flush();
        self.index_complete.store(true, Ordering::SeqCst);
        tracing::info!(export = %self.name, objects, dirs, elapsed_ms = started.elapsed().as_millis() as u64, "handle index rebuilt");
    }
}
