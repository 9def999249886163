//! The operations on an export, one function per NFS procedure's effect.
//! Each checks the caller's permissions before touching anything, and
//! returns the directory/file attributes a client needs for its caches
//! (weak cache consistency) whether or not the operation succeeded.
//!
//! - `io`: GETATTR, LOOKUP, ACCESS, READLINK, READ, WRITE, COMMIT, FSSTAT
//! - `create`: CREATE, MKDIR, SYMLINK, MKNOD (one skeleton: [`ExportFs::make_node`])
//! - `namespace`: REMOVE, RMDIR, RENAME, LINK
//! - `setattr`: SETATTR and the attribute-setting shared with create
//! - `readdir`: READDIR, READDIRPLUS
//!
//! Every change to a directory goes through [`ExportFs::change_dir`]: find
//! the directory, check the caller may change it, run the change, commit it
//! (directory fsync, shared between concurrent callers) and collect WCC data.

mod create;
mod io;
mod namespace;
mod nowait;
mod readdir;
mod setattr;

pub use io::ReadResult;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::error::{FsError, KResult, Kind, Op};
use super::{perm, Cred, ExportFs, FileHandle, Stat, Wcc};
use crate::sys;

/// The directory a change happens in, as `change_dir` hands it over.
pub(super) struct DirToChange {
    pub fd: Arc<OwnedFd>,
    pub st: Stat,
    pub fh: FileHandle,
}

/// Who may change a directory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Write and search permission on the directory (adding entries).
    AddEntries,
    /// The change decides per entry (REMOVE: sticky directories).
    PerEntry,
}

impl ExportFs {
    fn owner_gid(&self, dir: &Stat, cred: &Cred) -> u32 {
        if dir.mode & libc::S_ISGID != 0 {
            dir.gid
        } else {
            cred.gid
        }
    }

    /// Gives a new object to the caller, before anyone can see data in it.
    fn chown_new(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
        dst: &Stat,
        cred: &Cred,
    ) -> KResult<()> {
        if !self.can_chown {
            return Ok(());
        }
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name.as_c_str(),
            Some(Uid::from_raw(cred.uid)),
            Some(Gid::from_raw(self.owner_gid(dst, cred))),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    /// Namespace changes are on stable storage before the reply, as knfsd
    /// does for `sync` exports (commit_metadata): a client told its CREATE
    /// succeeded must find the file after a server crash.
    fn commit_dir(&self, dfd: &OwnedFd, dir_ino: u64, changed: bool) {
        if !changed || !self.sync_namespace {
            return;
        }
        let res = crate::iopool::blocking(|| {
            self.dir_sync
                .commit(dir_ino, || nix::unistd::fsync(dfd.as_raw_fd()))
        });
        if let Err(e) = res {
            // fsync of a read-only directory descriptor is VOP_FSYNC on both
            // platforms (zil_commit on ZFS); only filesystems that cannot sync
            // directories say EINVAL, and for them there is nothing to do.
            if e != Errno::EINVAL {
                tracing::warn!(export = %self.name, dir_ino, error = %e, "fsync of a directory failed: a namespace change may not survive a crash");
            }
        }
    }

    fn finish_wcc(dfd: &OwnedFd, before: &Stat) -> Wcc {
        Wcc {
            before: Some(before.into()),
            after: sys::fstat(dfd.as_fd()).ok(),
        }
    }

    /// Changes directory `dir` for `cred`: resolves it, checks the caller
    /// may (per `check`), runs `change`, commits the directory when the
    /// change succeeded, and returns the directory's WCC data either way.
    pub(super) fn change_dir<T>(
        &self,
        op: Op,
        dir: &FileHandle,
        cred: &Cred,
        check: Check,
        change: impl FnOnce(&DirToChange) -> KResult<T>,
    ) -> (Wcc, Result<T, FsError>) {
        let (fd, st) = match self.locate_dir(dir) {
            Ok(v) => v,
            Err(k) => return (Wcc::default(), Err(FsError::new(op, k))),
        };
        if check == Check::AddEntries && !perm::may_modify_dir(&st, cred) {
            return (Wcc::unchanged(&st), Err(FsError::new(op, Errno::EACCES)));
        }
        let d = DirToChange { fd, st, fh: *dir };
        let res = change(&d);
        self.commit_dir(&d.fd, d.st.ino, res.is_ok());
        (
            Self::finish_wcc(&d.fd, &d.st),
            res.map_err(|k| FsError::new(op, k)),
        )
    }
}

/// Maps an internal result to the operation's error.
fn with_op<T>(op: Op, r: KResult<T>) -> Result<T, FsError> {
    r.map_err(|k| FsError::new(op, k))
}

/// A failure before anything was looked at.
fn fail<T>(op: Op, k: impl Into<Kind>) -> Result<T, FsError> {
    Err(FsError::new(op, k))
}
