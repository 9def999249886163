//! Reading attributes and data, writing data, and making it durable.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::sys::stat::Mode;

use super::{fail, with_op};
use crate::fs::error::{FsError, KResult, Op};
use crate::fs::perm::{self, EXEC};
use crate::fs::{check_name, Cred, ExportFs, FileHandle, FsStatInfo, Located, Stat, Wcc, WccAttr};
use crate::sys;

/// What a READ returned: bytes appended to the caller's buffer, and whether
/// the end of the file was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadResult {
    pub count: u32,
    pub eof: bool,
}

/// A write by anyone but root clears set-id bits, as the kernel would have
/// done had the caller written locally.
pub(super) fn clears_setid(st: &Stat, cred: &Cred) -> bool {
    !cred.is_root()
        && (st.mode & libc::S_ISUID != 0 || (st.mode & libc::S_ISGID != 0 && st.mode & 0o010 != 0))
}

impl ExportFs {
    pub fn getattr(&self, fh: &FileHandle) -> Result<Stat, FsError> {
        with_op(Op::Getattr, self.stat_of(fh))
    }

    /// LOOKUP: the object `name` in directory `dir`, and the directory's
    /// attributes (when it could be read).
    pub fn lookup(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
    ) -> (Option<Stat>, Result<(FileHandle, Stat), FsError>) {
        let (dfd, dst) = match self.locate_dir(dir) {
            Ok(v) => v,
            Err(k) => return (None, fail(Op::Lookup, k)),
        };
        if !perm::allowed(&dst, cred, EXEC) {
            return (Some(dst), fail(Op::Lookup, Errno::EACCES));
        }
        let res = (|| -> KResult<_> {
            if name == b".." && dir.ino == self.root_ino() {
                // Nothing above the export; a snapshot's root goes back
                // to .zfs/snapshot of the live export.
                return Ok(self
                    .up_from_snapshot_root()
                    .unwrap_or((self.handle_for(&dst), dst)));
            }
            if name == b"." {
                return Ok((self.handle_for(&dst), dst));
            }
            if self.is_snapdir(dir.ino) {
                // .zfs/snapshot/<name>: the root of that snapshot's tree.
                let snap = self.open_snapshot(name)?;
                let st = snap.root_stat().map_err(|e| e.kind)?;
                return Ok((snap.root_handle(), st));
            }
            let cname = check_name(name)?;
            let st = sys::stat_at(dfd.as_fd(), &cname)?;
            let st = self.device_view(dfd.as_fd(), &cname, st);
            if st.dev != dst.dev {
                // A different filesystem mounted below the export: not ours.
                return Err(Errno::EACCES.into());
            }
            if name != b".." {
                self.remember(dir.ino, name, &st);
            }
            Ok((self.handle_for(&st), st))
        })();
        (Some(dst), with_op(Op::Lookup, res))
    }

    /// ACCESS: the object's attributes and the ACCESS3 bits `cred` holds.
    pub fn access(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        read_only: bool,
    ) -> Result<(Stat, u32), FsError> {
        let st = with_op(Op::Access, self.stat_of(fh))?;
        Ok((st, perm::access_bits(&st, cred, read_only)))
    }

    /// READLINK. Symlink contents are readable by everyone (mode 0777).
    pub fn readlink(&self, fh: &FileHandle) -> (Option<Stat>, Result<Vec<u8>, FsError>) {
        let (parent, name, st) = match self.locate(fh) {
            Ok(Located::Other { parent, name, st }) => (parent, name, st),
            Ok(Located::Dir { st, .. }) => return (Some(st), fail(Op::Readlink, Errno::EINVAL)),
            Err(k) => return (None, fail(Op::Readlink, k)),
        };
        if !st.is_symlink() {
            return (Some(st), fail(Op::Readlink, Errno::EINVAL));
        }
        let res = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_c_str())
            .map(|s| s.into_encoded_bytes())
            .map_err(|e| FsError::new(Op::Readlink, e));
        (Some(st), res)
    }

    /// Reads up to `count` bytes at `offset`, appending them to `out`.
    pub fn read(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        offset: u64,
        count: u32,
        out: &mut Vec<u8>,
    ) -> (Option<Stat>, Result<ReadResult, FsError>) {
        let (f, st) = match self.open_file(fh, false) {
            Ok(v) => v,
            Err(k) => return (self.stat_of(fh).ok(), fail(Op::Read, k)),
        };
        if !perm::may_read_data(&st, cred) {
            return (Some(st), fail(Op::Read, Errno::EACCES));
        }
        // Never allocate (or zero) more than the file can return.
        let count = (count as u64).min(st.size.saturating_sub(offset)) as usize;
        let start = out.len();
        // Room for the XDR padding the reply appends, so it never reallocates.
        out.reserve(count + 4);
        let mut done = 0usize;
        let mut read_all = || loop {
            if done == count {
                break Ok(());
            }
            // pread straight into the reply buffer's spare capacity: no
            // zero-filling of memory the kernel is about to overwrite.
            let spare = &mut out.spare_capacity_mut()[..count - done];
            // SAFETY: the pointer and length describe writable memory owned
            // by `out`; pread writes at most that many bytes and we expose
            // only the bytes it reports written.
            let n = unsafe {
                libc::pread(
                    f.file.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    (offset + done as u64) as libc::off_t,
                )
            };
            match n {
                0 => break Ok(()),
                n if n > 0 => {
                    done += n as usize;
                    // SAFETY: pread initialised these n bytes.
                    unsafe { out.set_len(start + done) };
                }
                _ => match Errno::last() {
                    Errno::EINTR => continue,
                    e => break Err(e),
                },
            }
        };
        // With page-cache reads answered in line (`nowait`), a read that
        // comes here missed the cache: it waits for the disk.
        let res = if self.nowait {
            crate::iopool::blocking(read_all)
        } else {
            read_all()
        };
        out.truncate(start + done);
        let after = sys::fstat(f.file.as_fd()).ok();
        match res {
            Ok(()) => {
                let size = after.map(|a| a.size).unwrap_or(st.size);
                let eof = offset.saturating_add(done as u64) >= size;
                (
                    after,
                    Ok(ReadResult {
                        count: done as u32,
                        eof,
                    }),
                )
            }
            Err(e) => (after, fail(Op::Read, e)),
        }
    }

    /// Writes `data` at `offset` (into the page cache; see `sync`).
    pub fn write(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        offset: u64,
        data: &[u8],
    ) -> (Wcc, Result<u32, FsError>) {
        let (f, st) = match self.open_file(fh, true) {
            Ok(v) => v,
            Err(k) => {
                let after = self.stat_of(fh).ok();
                return (
                    Wcc {
                        before: None,
                        after,
                    },
                    fail(Op::Write, k),
                );
            }
        };
        if !perm::may_write_data(&st, cred) {
            return (Wcc::unchanged(&st), fail(Op::Write, Errno::EACCES));
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return (Wcc::unchanged(&st), fail(Op::Write, Errno::EFBIG));
        }
        let res = (|| -> KResult<u32> {
            f.file.write_all_at(data, offset)?;
            if clears_setid(&st, cred) {
                let m = st.mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID);
                nix::sys::stat::fchmod(f.file.as_raw_fd(), Mode::from_bits_truncate(m as _))?;
            }
            Ok(data.len() as u32)
        })();
        let after = sys::fstat(f.file.as_fd()).ok();
        (
            Wcc {
                before: Some(WccAttr::from(&st)),
                after,
            },
            with_op(Op::Write, res),
        )
    }

    /// Makes a file's data (and, unless `data_only`, its metadata) durable.
    /// Stable writes come here after `write`; COMMIT comes here directly.
    pub fn sync(&self, fh: &FileHandle, data_only: bool) -> (Wcc, Result<(), FsError>) {
        let (f, st) = match self.open_file(fh, false) {
            Ok(v) => v,
            Err(k) => return (Wcc::default(), fail(Op::Commit, k)),
        };
        let res = crate::iopool::blocking(|| {
            if data_only {
                f.file.sync_data()
            } else {
                f.file.sync_all()
            }
        })
        .map_err(|e| FsError::new(Op::Commit, e));
        let after = sys::fstat(f.file.as_fd()).ok();
        (
            Wcc {
                before: Some((&st).into()),
                after,
            },
            res,
        )
    }

    /// The export's space: what `df` shows through the client.
    pub fn fsstat(&self) -> Result<FsStatInfo, FsError> {
        let v = nix::sys::statvfs::fstatvfs(self.root_fd().as_fd())
            .map_err(|e| FsError::new(Op::Fsstat, e))?;
        // f_frsize is the unit of the block counts (illumos f_bsize is the
        // recordsize, not the unit).
        let unit = v.fragment_size() as u64;
        Ok(FsStatInfo {
            tbytes: (v.blocks() as u64).saturating_mul(unit),
            fbytes: (v.blocks_free() as u64).saturating_mul(unit),
            abytes: (v.blocks_available() as u64).saturating_mul(unit),
            tfiles: v.files() as u64,
            ffiles: v.files_free() as u64,
            afiles: v.files_available() as u64,
        })
    }
}
