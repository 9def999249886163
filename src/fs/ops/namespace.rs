//! Removing, renaming and linking names: REMOVE, RMDIR, RENAME, LINK.

use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::unistd::UnlinkatFlags;

use super::perm::{self, WRITE};
use super::{fail, with_op, Check};
use crate::fs::error::{FsError, KResult, Op};
use crate::fs::{check_name, check_new_name, Cred, ExportFs, FileHandle, Located, Stat, Wcc};
use crate::sys;

impl ExportFs {
    /// REMOVE (`rmdir` false) or RMDIR of `name` in `dir`.
    pub fn remove(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
        rmdir: bool,
    ) -> (Wcc, Result<(), FsError>) {
        let op = if rmdir { Op::Rmdir } else { Op::Remove };
        self.change_dir(op, dir, cred, Check::PerEntry, |d| {
            if rmdir && name == b"." {
                return Err(Errno::EINVAL.into());
            }
            if name == b"." || name == b".." {
                return Err(if rmdir {
                    Errno::ENOTEMPTY
                } else {
                    Errno::EISDIR
                }
                .into());
            }
            let cname = check_name(name)?;
            let est = sys::stat_at(d.fd.as_fd(), &cname)?;
            if rmdir && !est.is_dir() {
                return Err(Errno::ENOTDIR.into());
            }
            if !rmdir && est.is_dir() {
                return Err(Errno::EISDIR.into());
            }
            if !perm::may_delete_entry(&d.st, &est, cred) {
                return Err(Errno::EACCES.into());
            }
            let flags = if rmdir {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            nix::unistd::unlinkat(Some(d.fd.as_raw_fd()), cname.as_c_str(), flags)
                .map_err(|e| if rmdir { sys::not_empty_errno(e) } else { e })?;
            self.forget(est.ino, dir.ino, name);
            if rmdir || est.nlink <= 1 {
                self.evict(est.ino);
            }
            Ok(())
        })
    }

    /// RENAME `from` in `from_dir` to `to` in `to_dir` (same export).
    pub fn rename(
        &self,
        from_dir: &FileHandle,
        from: &[u8],
        to_dir: &FileHandle,
        to: &[u8],
        cred: &Cred,
    ) -> (Wcc, Wcc, Result<(), FsError>) {
        let (ffd, fst) = match self.locate_dir(from_dir) {
            Ok(v) => v,
            Err(k) => return (Wcc::default(), Wcc::default(), fail(Op::Rename, k)),
        };
        let (tfd, tst) = match self.locate_dir(to_dir) {
            Ok(v) => v,
            Err(k) => {
                return (
                    Self::finish_wcc(&ffd, &fst),
                    Wcc::default(),
                    fail(Op::Rename, k),
                )
            }
        };
        let res = (|| -> KResult<()> {
            for n in [from, to] {
                if n == b"." || n == b".." {
                    return Err(Errno::EINVAL.into());
                }
            }
            let cfrom = check_name(from)?;
            let cto = check_name(to)?;
            let src = sys::stat_at(ffd.as_fd(), &cfrom)?;
            if !perm::may_delete_entry(&fst, &src, cred) || !perm::may_modify_dir(&tst, cred) {
                return Err(Errno::EACCES.into());
            }
            let target: Option<Stat> = match sys::stat_at(tfd.as_fd(), &cto) {
                Ok(t) => Some(t),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(t) = &target {
                if t.ino != src.ino && !perm::may_delete_entry(&tst, t, cred) {
                    return Err(Errno::EACCES.into());
                }
            }
            if src.is_dir() && fst.ino != tst.ino && !perm::allowed(&src, cred, WRITE) {
                // Moving a directory rewrites its "..": needs write on it.
                return Err(Errno::EACCES.into());
            }
            nix::fcntl::renameat(
                Some(ffd.as_raw_fd()),
                cfrom.as_c_str(),
                Some(tfd.as_raw_fd()),
                cto.as_c_str(),
            )
            .map_err(sys::not_empty_errno)?;
            if let Some(t) = target {
                if t.ino != src.ino {
                    self.forget(t.ino, to_dir.ino, to);
                    if t.is_dir() || t.nlink <= 1 {
                        self.evict(t.ino);
                    }
                }
            }
            self.forget(src.ino, from_dir.ino, from);
            self.remember(to_dir.ino, to, &src);
            Ok(())
        })();
        self.commit_dir(&ffd, fst.ino, res.is_ok());
        if fst.ino != tst.ino {
            self.commit_dir(&tfd, tst.ino, res.is_ok());
        }
        let fw = Self::finish_wcc(&ffd, &fst);
        let tw = Self::finish_wcc(&tfd, &tst);
        (fw, tw, with_op(Op::Rename, res))
    }

    /// LINK: a new name `name` in `dir` for the object `fh`. Returns the
    /// object's attributes after the link and the directory's WCC data.
    pub fn link(
        &self,
        fh: &FileHandle,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
    ) -> (Option<Stat>, Wcc, Result<(), FsError>) {
        let (parent, oname, st) = match self.locate(fh) {
            Ok(Located::Other { parent, name, st }) => (parent, name, st),
            Ok(Located::Dir { st, .. }) => {
                return (Some(st), Wcc::default(), fail(Op::Link, Errno::EISDIR))
            }
            Err(k) => return (None, Wcc::default(), fail(Op::Link, k)),
        };
        let (wcc, res) = self.change_dir(Op::Link, dir, cred, Check::AddEntries, |d| {
            let cname = check_new_name(name)?;
            nix::unistd::linkat(
                Some(parent.as_raw_fd()),
                oname.as_c_str(),
                Some(d.fd.as_raw_fd()),
                cname.as_c_str(),
                nix::fcntl::AtFlags::empty(),
            )?;
            self.remember(dir.ino, name, &st);
            Ok(())
        });
        let after = self.stat_of(fh).ok();
        (after, wcc, res)
    }
}
