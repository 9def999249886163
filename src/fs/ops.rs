//! The operations on an export, one function per NFS procedure's effect.
//! Each checks the caller's permissions before touching anything, and
//! returns the directory/file attributes a client needs for its caches
//! (weak cache consistency) whether or not the operation succeeded.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::UnlinkatFlags;
use nix::unistd::{Gid, Uid};

use super::perm::{self, EXEC, WRITE};
use super::{
    check_name, check_new_name, open_at, ExportFs, FileHandle, FsResult, Located, NfsStat,
};
use crate::rpc::msg::AuthSys;
use crate::sys::{self as stat, Stat, Time};

/// The pre-operation attributes of RFC 1813 `wcc_attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WccAttr {
    pub size: u64,
    pub mtime: Time,
    pub ctime: Time,
}

impl From<&Stat> for WccAttr {
    fn from(s: &Stat) -> Self {
        WccAttr {
            size: s.size,
            mtime: s.mtime,
            ctime: s.ctime,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wcc {
    pub before: Option<WccAttr>,
    pub after: Option<Stat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTime {
    #[default]
    DontChange,
    ServerTime,
    ClientTime(Time),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: SetTime,
    pub mtime: SetTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateHow {
    Unchecked(SetAttrs),
    Guarded(SetAttrs),
    Exclusive([u8; 8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stable {
    Unstable = 0,
    DataSync = 1,
    FileSync = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub fileid: u64,
    pub cookie: u64,
    /// READDIRPLUS only.
    pub attr: Option<Stat>,
    pub handle: Option<FileHandle>,
}

#[derive(Debug, Clone)]
pub struct DirListing {
    pub dir_attr: Option<Stat>,
    pub entries: Vec<DirEntry>,
    pub eof: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct FsStatInfo {
    pub tbytes: u64,
    pub fbytes: u64,
    pub abytes: u64,
    pub tfiles: u64,
    pub ffiles: u64,
    pub afiles: u64,
}

/// A refused directory change: the directory's attributes and why.
type Refused = (Wcc, NfsStat);

fn ts(t: Time) -> TimeSpec {
    TimeSpec::new(t.sec as _, t.nsec as _)
}

fn set_time(t: SetTime) -> TimeSpec {
    match t {
        SetTime::DontChange => TimeSpec::UTIME_OMIT,
        SetTime::ServerTime => TimeSpec::UTIME_NOW,
        SetTime::ClientTime(t) => ts(t),
    }
}

fn exclusive_times(v: [u8; 8]) -> (Time, Time) {
    // As knfsd does: the verifier is kept in atime and mtime until the
    // client's follow-up SETATTR replaces them.
    let a = u32::from_be_bytes([v[0], v[1], v[2], v[3]]) & 0x7fff_ffff;
    let m = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) & 0x7fff_ffff;
    (
        Time {
            sec: a as i64,
            nsec: 0,
        },
        Time {
            sec: m as i64,
            nsec: 0,
        },
    )
}

impl ExportFs {
    fn owner_gid(&self, dir: &Stat, cred: &AuthSys) -> u32 {
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
        cred: &AuthSys,
    ) -> FsResult<()> {
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

    fn dir_for_change(
        &self,
        dir: &FileHandle,
        cred: &AuthSys,
    ) -> Result<(std::sync::Arc<OwnedFd>, Stat), Box<Refused>> {
        let (dfd, dst) = self
            .locate_dir(dir)
            .map_err(|e| Box::new((Wcc::default(), e)))?;
        if !perm::may_modify_dir(&dst, cred) {
            let w = Wcc {
                before: Some((&dst).into()),
                after: Some(dst),
            };
            return Err(Box::new((w, NfsStat::Acces)));
        }
        Ok((dfd, dst))
    }

    /// Namespace changes are on stable storage before the reply, as knfsd
    /// does for `sync` exports (commit_metadata): a client told its CREATE
    /// succeeded must find the file after a server crash.
    /// Blocking: the NFS layer runs namespace procedures off the async workers.
    fn commit_dir(&self, dfd: &OwnedFd, dir_ino: u64, changed: bool) {
        if !changed || !self.sync_namespace {
            return;
        }
        let res = self
            .dir_sync
            .commit(dir_ino, || nix::unistd::fsync(dfd.as_raw_fd()));
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
            after: stat::fstat(dfd.as_fd()).ok(),
        }
    }

    pub fn lookup(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &AuthSys,
    ) -> (Option<Stat>, FsResult<(FileHandle, Stat)>) {
        let (dfd, dst) = match self.locate_dir(dir) {
            Ok(v) => v,
            Err(e) => return (None, Err(e)),
        };
        if !perm::allowed(&dst, cred, EXEC) {
            return (Some(dst), Err(NfsStat::Acces));
        }
        let res = (|| {
            if name == b"." || (name == b".." && dir.ino == self.root_ino()) {
                return Ok((self.handle_for(&dst), dst));
            }
            let cname = check_name(name)?;
            let st = stat::stat_at(dfd.as_fd(), &cname)?;
            if st.dev != dst.dev {
                // A different filesystem mounted below the export: not ours.
                return Err(NfsStat::Acces);
            }
            if name != b".." {
                self.remember(dir.ino, name, &st);
            }
            Ok((self.handle_for(&st), st))
        })();
        (Some(dst), res)
    }

    pub fn access(
        &self,
        fh: &FileHandle,
        cred: &AuthSys,
        read_only: bool,
    ) -> FsResult<(Stat, u32)> {
        let st = self.getattr(fh)?;
        Ok((st, perm::access_bits(&st, cred, read_only)))
    }

    pub fn readlink(&self, fh: &FileHandle, cred: &AuthSys) -> (Option<Stat>, FsResult<Vec<u8>>) {
        let (parent, name, st) = match self.locate(fh) {
            Ok(Located::Other { parent, name, st }) => (parent, name, st),
            Ok(Located::Dir { st, .. }) => return (Some(st), Err(NfsStat::Inval)),
            Err(e) => return (None, Err(e)),
        };
        if !st.is_symlink() {
            return (Some(st), Err(NfsStat::Inval));
        }
        let _ = cred; // symlink contents are readable by everyone (mode 0777)
        let res = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_c_str())
            .map(|s| s.into_encoded_bytes())
            .map_err(NfsStat::from);
        (Some(st), res)
    }

    /// Reads up to `count` bytes at `offset`, appending them to `out`.
    pub fn read(
        &self,
        fh: &FileHandle,
        cred: &AuthSys,
        offset: u64,
        count: u32,
        out: &mut Vec<u8>,
    ) -> (Option<Stat>, FsResult<(u32, bool)>) {
        let (f, st) = match self.open_file(fh, false) {
            Ok(v) => v,
            Err(e) => return (self.getattr(fh).ok(), Err(e)),
        };
        if !perm::may_read_data(&st, cred) {
            return (Some(st), Err(NfsStat::Acces));
        }
        // Never allocate (or zero) more than the file can return.
        let count = (count as u64).min(st.size.saturating_sub(offset)) as u32;
        let start = out.len();
        out.reserve(count as usize);
        let mut done = 0usize;
        let res = loop {
            if done == count as usize {
                break Ok(());
            }
            // pread straight into the reply buffer's spare capacity: no
            // zero-filling of memory the kernel is about to overwrite.
            let spare = &mut out.spare_capacity_mut()[..count as usize - done];
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
                    e => break Err(NfsStat::from(e)),
                },
            }
        };
        out.truncate(start + done);
        let after = stat::fstat(f.file.as_fd()).ok();
        match res {
            Ok(()) => {
                let size = after.map(|a| a.size).unwrap_or(st.size);
                let eof = offset.saturating_add(done as u64) >= size;
                (after, Ok((done as u32, eof)))
            }
            Err(e) => (after, Err(e)),
        }
    }

    /// Writes `data` at `offset` (into the page cache; see `sync`).
    pub fn write(
        &self,
        fh: &FileHandle,
        cred: &AuthSys,
        offset: u64,
        data: &[u8],
    ) -> (Wcc, FsResult<u32>) {
        let (f, st) = match self.open_file(fh, true) {
            Ok(v) => v,
            Err(e) => {
                let after = self.getattr(fh).ok();
                return (
                    Wcc {
                        before: None,
                        after,
                    },
                    Err(e),
                );
            }
        };
        let before = Some(WccAttr::from(&st));
        if !perm::may_write_data(&st, cred) {
            return (
                Wcc {
                    before,
                    after: Some(st),
                },
                Err(NfsStat::Acces),
            );
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return (
                Wcc {
                    before,
                    after: Some(st),
                },
                Err(NfsStat::FBig),
            );
        }
        let res = (|| {
            f.file.write_all_at(data, offset)?;
            // A write by anyone but root clears set-id bits, as the kernel
            // would have done had the caller written locally.
            if cred.uid != 0
                && (st.mode & libc::S_ISUID != 0
                    || (st.mode & libc::S_ISGID != 0 && st.mode & 0o010 != 0))
            {
                let m = st.mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID);
                nix::sys::stat::fchmod(f.file.as_raw_fd(), Mode::from_bits_truncate(m as _))?;
            }
            Ok::<_, NfsStat>(data.len() as u32)
        })();
        let after = stat::fstat(f.file.as_fd()).ok();
        (Wcc { before, after }, res)
    }

    /// Makes a file's data (and, unless `data_only`, its metadata) durable.
    /// Blocking: callers run it off the async workers. Stable writes come
    /// here after `write`; COMMIT comes here directly.
    pub fn sync(&self, fh: &FileHandle, data_only: bool) -> (Wcc, FsResult<()>) {
        let (f, st) = match self.open_file(fh, false) {
            Ok(v) => v,
            Err(e) => return (Wcc::default(), Err(e)),
        };
        let res = if data_only {
            f.file.sync_data()
        } else {
            f.file.sync_all()
        }
        .map_err(NfsStat::from);
        let after = stat::fstat(f.file.as_fd()).ok();
        (
            Wcc {
                before: Some((&st).into()),
                after,
            },
            res,
        )
    }

    pub fn create(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &AuthSys,
        how: CreateHow,
    ) -> (Wcc, FsResult<(FileHandle, Stat)>) {
        let (dfd, dst) = match self.dir_for_change(dir, cred) {
            Ok(v) => v,
            Err(b) => return (b.0, Err(b.1)),
        };
        let res = (|| {
            let cname = check_new_name(name)?;
            let (mode, excl) = match how {
                CreateHow::Unchecked(a) | CreateHow::Guarded(a) => {
                    (a.mode.unwrap_or(0o644) & 0o7777, false)
                }
                CreateHow::Exclusive(_) => (0o600, true),
            };
            let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL;
            match open_at(dfd.as_fd(), &cname, flags, mode) {
                Ok(fd) => {
                    self.chown_new(dfd.as_fd(), &cname, &dst, cred)?;
                    if mode & 0o6000 != 0 && self.can_chown {
                        // chown(2) cleared setuid/setgid; a local create by the
                        // caller keeps them (setgid only for a member of the group).
                        let gid = self.owner_gid(&dst, cred);
                        let keep = if cred.uid == 0 || cred.in_group(gid) {
                            mode
                        } else {
                            mode & !libc::S_ISGID
                        };
                        nix::sys::stat::fchmod(
                            fd.as_raw_fd(),
                            Mode::from_bits_truncate(keep as _),
                        )?;
                    }
                    match how {
                        CreateHow::Exclusive(v) => {
                            let (a, m) = exclusive_times(v);
                            nix::sys::stat::futimens(fd.as_raw_fd(), &ts(a), &ts(m))?;
                        }
                        CreateHow::Unchecked(a) | CreateHow::Guarded(a) => {
                            let rest = SetAttrs {
                                mode: None,
                                uid: None,
                                gid: None,
                                ..a
                            };
                            if rest != SetAttrs::default() {
                                self.apply_setattr_fd(fd.as_fd(), &rest)?;
                            }
                        }
                    }
                    let st = stat::fstat(fd.as_fd())?;
                    self.remember(dir.ino, name, &st);
                    Ok((self.handle_for(&st), st))
                }
                Err(Errno::EEXIST) => {
                    let st = stat::stat_at(dfd.as_fd(), &cname)?;
                    match how {
                        CreateHow::Guarded(_) => Err(NfsStat::Exist),
                        CreateHow::Exclusive(v) => {
                            let (a, m) = exclusive_times(v);
                            if excl && st.is_reg() && st.atime.sec == a.sec && st.mtime.sec == m.sec
                            {
                                // A retransmission of the create that made it.
                                self.remember(dir.ino, name, &st);
                                Ok((self.handle_for(&st), st))
                            } else {
                                Err(NfsStat::Exist)
                            }
                        }
                        CreateHow::Unchecked(a) => {
                            if st.is_dir() {
                                return Err(NfsStat::IsDir);
                            }
                            self.remember(dir.ino, name, &st);
                            let fh = self.handle_for(&st);
                            if a.size.is_some() {
                                let only_size = SetAttrs {
                                    size: a.size,
                                    ..Default::default()
                                };
                                let (_, r) = self.setattr(&fh, cred, &only_size, None);
                                r?;
                            }
                            let st = self.getattr(&fh)?;
                            Ok((fh, st))
                        }
                    }
                }
                Err(e) => Err(e.into()),
            }
        })();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (Self::finish_wcc(&dfd, &dst), res)
    }

    pub fn mkdir(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &AuthSys,
        attrs: &SetAttrs,
    ) -> (Wcc, FsResult<(FileHandle, Stat)>) {
        let (dfd, dst) = match self.dir_for_change(dir, cred) {
            Ok(v) => v,
            Err(b) => return (b.0, Err(b.1)),
        };
        let res = (|| {
            let cname = check_new_name(name)?;
            let mode = attrs.mode.unwrap_or(0o755) & 0o7777;
            nix::sys::stat::mkdirat(
                Some(dfd.as_raw_fd()),
                cname.as_c_str(),
                Mode::from_bits_truncate(mode as _),
            )?;
            let fd = open_at(dfd.as_fd(), &cname, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
            self.chown_new(dfd.as_fd(), &cname, &dst, cred)?;
            if mode & 0o7000 != 0 {
                // mkdir(2) drops set-id/sticky bits on some systems; set them.
                nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode as _))?;
            }
            let rest = SetAttrs {
                atime: attrs.atime,
                mtime: attrs.mtime,
                ..Default::default()
            };
            if rest != SetAttrs::default() {
                self.apply_setattr_fd(fd.as_fd(), &rest)?;
            }
            let st = stat::fstat(fd.as_fd())?;
            self.remember(dir.ino, name, &st);
            Ok((self.handle_for(&st), st))
        })();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (Self::finish_wcc(&dfd, &dst), res)
    }

    pub fn symlink(
        &self,
        dir: &FileHandle,
        name: &[u8],
        target: &[u8],
        cred: &AuthSys,
    ) -> (Wcc, FsResult<(FileHandle, Stat)>) {
        let (dfd, dst) = match self.dir_for_change(dir, cred) {
            Ok(v) => v,
            Err(b) => return (b.0, Err(b.1)),
        };
        let res = (|| {
            let cname = check_new_name(name)?;
            if target.is_empty() || target.contains(&0) {
                return Err(NfsStat::Inval);
            }
            let ctarget = CString::new(target).map_err(|_| NfsStat::Inval)?;
            nix::unistd::symlinkat(ctarget.as_c_str(), Some(dfd.as_raw_fd()), cname.as_c_str())?;
            self.chown_new(dfd.as_fd(), &cname, &dst, cred)?;
            let st = stat::stat_at(dfd.as_fd(), &cname)?;
            self.remember(dir.ino, name, &st);
            Ok((self.handle_for(&st), st))
        })();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (Self::finish_wcc(&dfd, &dst), res)
    }

    pub fn mknod(
        &self,
        dir: &FileHandle,
        name: &[u8],
        kind: NodeKind,
        cred: &AuthSys,
        attrs: &SetAttrs,
    ) -> (Wcc, FsResult<(FileHandle, Stat)>) {
        let (dfd, dst) = match self.dir_for_change(dir, cred) {
            Ok(v) => v,
            Err(b) => return (b.0, Err(b.1)),
        };
        let res = (|| {
            let cname = check_new_name(name)?;
            let kind_flag = match kind {
                NodeKind::Fifo => SFlag::S_IFIFO,
                NodeKind::Socket => SFlag::S_IFSOCK,
                NodeKind::CharDevice | NodeKind::BlockDevice => {
                    tracing::info!(export = %self.name, "MKNOD of a device node refused: volumes never hold device nodes");
                    return Err(NfsStat::Perm);
                }
            };
            let mode = attrs.mode.unwrap_or(0o644) & 0o7777;
            nix::sys::stat::mknodat(
                Some(dfd.as_raw_fd()),
                cname.as_c_str(),
                kind_flag,
                Mode::from_bits_truncate(mode as _),
                0,
            )?;
            self.chown_new(dfd.as_fd(), &cname, &dst, cred)?;
            let st = stat::stat_at(dfd.as_fd(), &cname)?;
            self.remember(dir.ino, name, &st);
            Ok((self.handle_for(&st), st))
        })();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (Self::finish_wcc(&dfd, &dst), res)
    }

    pub fn remove(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &AuthSys,
        rmdir: bool,
    ) -> (Wcc, FsResult<()>) {
        let (dfd, dst) = match self.locate_dir(dir) {
            Ok(v) => v,
            Err(e) => return (Wcc::default(), Err(e)),
        };
        let res =
            (|| {
                if rmdir && name == b"." {
                    return Err(NfsStat::Inval);
                }
                if name == b"." || name == b".." {
                    return Err(if rmdir {
                        NfsStat::NotEmpty
                    } else {
                        NfsStat::IsDir
                    });
                }
                let cname = check_name(name)?;
                let est = stat::stat_at(dfd.as_fd(), &cname)?;
                if rmdir && !est.is_dir() {
                    return Err(NfsStat::NotDir);
                }
                if !rmdir && est.is_dir() {
                    return Err(NfsStat::IsDir);
                }
                if !perm::may_delete_entry(&dst, &est, cred) {
                    return Err(NfsStat::Acces);
                }
                let flags = if rmdir {
                    UnlinkatFlags::RemoveDir
                } else {
                    UnlinkatFlags::NoRemoveDir
                };
                nix::unistd::unlinkat(Some(dfd.as_raw_fd()), cname.as_c_str(), flags)
                    .map_err(|e| if rmdir { stat::not_empty_errno(e) } else { e })?;
                self.forget(est.ino, dir.ino, name);
                if rmdir || est.nlink <= 1 {
                    self.evict(est.ino);
                }
                Ok(())
            })();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (Self::finish_wcc(&dfd, &dst), res)
    }

    pub fn rename(
        &self,
        from_dir: &FileHandle,
        from: &[u8],
        to_dir: &FileHandle,
        to: &[u8],
        cred: &AuthSys,
    ) -> (Wcc, Wcc, FsResult<()>) {
        let (ffd, fst) = match self.locate_dir(from_dir) {
            Ok(v) => v,
            Err(e) => return (Wcc::default(), Wcc::default(), Err(e)),
        };
        let (tfd, tst) = match self.locate_dir(to_dir) {
            Ok(v) => v,
            Err(e) => return (Self::finish_wcc(&ffd, &fst), Wcc::default(), Err(e)),
        };
        let res = (|| {
            for n in [from, to] {
                if n == b"." || n == b".." {
                    return Err(NfsStat::Inval);
                }
            }
            let cfrom = check_name(from)?;
            let cto = check_name(to)?;
            let src = stat::stat_at(ffd.as_fd(), &cfrom)?;
            if !perm::may_delete_entry(&fst, &src, cred) || !perm::may_modify_dir(&tst, cred) {
                return Err(NfsStat::Acces);
            }
            let target = match stat::stat_at(tfd.as_fd(), &cto) {
                Ok(t) => Some(t),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(t) = &target {
                if t.ino != src.ino && !perm::may_delete_entry(&tst, t, cred) {
                    return Err(NfsStat::Acces);
                }
            }
            if src.is_dir() && fst.ino != tst.ino && !perm::allowed(&src, cred, WRITE) {
                // Moving a directory rewrites its "..": needs write on it.
                return Err(NfsStat::Acces);
            }
            nix::fcntl::renameat(
                Some(ffd.as_raw_fd()),
                cfrom.as_c_str(),
                Some(tfd.as_raw_fd()),
                cto.as_c_str(),
            )
            .map_err(stat::not_empty_errno)?;
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
        (fw, tw, res)
    }

    pub fn link(
        &self,
        fh: &FileHandle,
        dir: &FileHandle,
        name: &[u8],
        cred: &AuthSys,
    ) -> (Option<Stat>, Wcc, FsResult<()>) {
        let (parent, oname, st) = match self.locate(fh) {
            Ok(Located::Other { parent, name, st }) => (parent, name, st),
            Ok(Located::Dir { st, .. }) => return (Some(st), Wcc::default(), Err(NfsStat::IsDir)),
            Err(e) => return (None, Wcc::default(), Err(e)),
        };
        let (dfd, dst) = match self.dir_for_change(dir, cred) {
            Ok(v) => v,
            Err(b) => return (Some(st), b.0, Err(b.1)),
        };
        let res = (|| {
            let cname = check_new_name(name)?;
            nix::unistd::linkat(
                Some(parent.as_raw_fd()),
                oname.as_c_str(),
                Some(dfd.as_raw_fd()),
                cname.as_c_str(),
                nix::fcntl::AtFlags::empty(),
            )?;
            self.remember(dir.ino, name, &st);
            Ok(())
        })();
        let after = self.getattr(fh).ok();
        self.commit_dir(&dfd, dst.ino, res.is_ok());
        (after, Self::finish_wcc(&dfd, &dst), res)
    }

    /// Checks SETATTR permissions (POSIX chmod/chown/utimes/truncate rules).
    fn check_setattr(st: &Stat, cred: &AuthSys, a: &SetAttrs) -> FsResult<()> {
        let owner = perm::is_owner(st, cred);
        if a.mode.is_some() && !owner {
            return Err(NfsStat::Perm);
        }
        if let Some(uid) = a.uid {
            if uid != st.uid && cred.uid != 0 {
                return Err(NfsStat::Perm);
            }
        }
        if let Some(gid) = a.gid {
            if gid != st.gid && cred.uid != 0 && !(st.uid == cred.uid && cred.in_group(gid)) {
                return Err(NfsStat::Perm);
            }
        }
        if a.size.is_some() {
            if st.is_dir() {
                return Err(NfsStat::IsDir);
            }
            if !st.is_reg() {
                return Err(NfsStat::Inval);
            }
            if !perm::may_write_data(st, cred) {
                return Err(NfsStat::Acces);
            }
        }
        for t in [a.atime, a.mtime] {
            match t {
                SetTime::DontChange => {}
                SetTime::ServerTime => {
                    if !owner && !perm::allowed(st, cred, WRITE) {
                        return Err(NfsStat::Acces);
                    }
                }
                SetTime::ClientTime(_) => {
                    if !owner {
                        return Err(NfsStat::Perm);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_setattr_fd(&self, fd: BorrowedFd<'_>, a: &SetAttrs) -> FsResult<()> {
        if a.uid.is_some() || a.gid.is_some() {
            nix::unistd::fchown(
                fd.as_raw_fd(),
                a.uid.map(Uid::from_raw),
                a.gid.map(Gid::from_raw),
            )?;
        }
        if let Some(mode) = a.mode {
            nix::sys::stat::fchmod(
                fd.as_raw_fd(),
                Mode::from_bits_truncate((mode & 0o7777) as _),
            )?;
        }
        if let Some(size) = a.size {
            nix::unistd::ftruncate(fd, size.try_into().map_err(|_| NfsStat::FBig)?)?;
        }
        if a.atime != SetTime::DontChange || a.mtime != SetTime::DontChange {
            nix::sys::stat::futimens(fd.as_raw_fd(), &set_time(a.atime), &set_time(a.mtime))?;
        }
        Ok(())
    }

    pub fn setattr(
        &self,
        fh: &FileHandle,
        cred: &AuthSys,
        a: &SetAttrs,
        guard: Option<Time>,
    ) -> (Wcc, FsResult<()>) {
        let located = match self.locate(fh) {
            Ok(l) => l,
            Err(e) => return (Wcc::default(), Err(e)),
        };
        let st = *located.stat();
        let before = Some(WccAttr::from(&st));
        if let Some(g) = guard {
            if g != st.ctime {
                return (
                    Wcc {
                        before,
                        after: Some(st),
                    },
                    Err(NfsStat::NotSync),
                );
            }
        }
        if let Err(e) = Self::check_setattr(&st, cred, a) {
            return (
                Wcc {
                    before,
                    after: Some(st),
                },
                Err(e),
            );
        }
        let mut a = *a;
        if cred.uid != 0 {
            if let Some(m) = a.mode.as_mut() {
                // chmod by a non-member of the file's group drops setgid.
                if !cred.in_group(a.gid.unwrap_or(st.gid)) && !st.is_dir() {
                    *m &= !libc::S_ISGID;
                }
            }
            // Truncation is a write: it clears set-id bits as `write` does.
            if a.size.is_some()
                && a.mode.is_none()
                && st.is_reg()
                && (st.mode & libc::S_ISUID != 0
                    || (st.mode & libc::S_ISGID != 0 && st.mode & 0o010 != 0))
            {
                a.mode = Some(st.mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID));
            }
        }
        let res = match &located {
            Located::Dir { fd, .. } => self.apply_setattr_fd(fd.as_fd(), &a),
            Located::Other { parent, name, st }
                if st.is_reg() || st.file_type() == libc::S_IFIFO =>
            {
                if a.size.is_some() {
                    self.open_file(fh, true)
                        .and_then(|(f, _)| self.apply_setattr_fd(f.file.as_fd(), &a))
                } else {
                    // Change the object through a descriptor, and only after
                    // checking it is still the object the handle names: a
                    // client renaming something else over the name in between
                    // must not redirect a root chmod/chown (O_NOFOLLOW keeps
                    // symlinks out, the inode check keeps swaps out).
                    open_at(parent.as_fd(), name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)
                        .map_err(NfsStat::from)
                        .and_then(|fd| {
                            let now = stat::fstat(fd.as_fd())?;
                            if now.ino != st.ino || now.gen != st.gen {
                                return Err(NfsStat::Stale);
                            }
                            self.apply_setattr_fd(fd.as_fd(), &a)
                        })
                }
            }
            Located::Other { parent, name, st } => (|| {
                if a.size.is_some() {
                    return Err(NfsStat::Inval);
                }
                if a.uid.is_some() || a.gid.is_some() {
                    nix::unistd::fchownat(
                        Some(parent.as_raw_fd()),
                        name.as_c_str(),
                        a.uid.map(Uid::from_raw),
                        a.gid.map(Gid::from_raw),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )?;
                }
                if let Some(mode) = a.mode {
                    if st.is_symlink() {
                        return Err(NfsStat::NotSupp);
                    }
                    // Sockets cannot be opened: change the name itself,
                    // never what a symlink swapped in since would name.
                    stat::chmod_at_nofollow(parent.as_fd(), name, mode & 0o7777, st)?;
                }
                if a.atime != SetTime::DontChange || a.mtime != SetTime::DontChange {
                    nix::sys::stat::utimensat(
                        Some(parent.as_raw_fd()),
                        name.as_c_str(),
                        &set_time(a.atime),
                        &set_time(a.mtime),
                        UtimensatFlags::NoFollowSymlink,
                    )?;
                }
                Ok(())
            })(),
        };
        let after = self.getattr(fh).ok();
        (Wcc { before, after }, res)
    }

    /// Lists a directory from `cookie`. `entry_cost(name_len)` is what one
    /// entry adds to the reply; listing stops before `budget` is exceeded.
    pub fn readdir(
        &self,
        dir: &FileHandle,
        cred: &AuthSys,
        cookie: u64,
        plus: bool,
        budget: usize,
        entry_cost: &dyn Fn(usize) -> usize,
    ) -> FsResult<DirListing> {
        let (dfd, dst) = self.locate_dir(dir)?;
        if !perm::allowed(&dst, cred, perm::READ) {
            return Err(NfsStat::Acces);
        }
        let mut entries = Vec::new();
        let mut used = 0usize;
        let mut too_small = false;
        let eof = stat::scan_dir(dfd.as_fd(), cookie, |name, ino, off| {
            let cost = entry_cost(name.len());
            if used + cost > budget {
                too_small = entries.is_empty();
                return false;
            }
            used += cost;
            let fileid = if name == b".." && dir.ino == self.root_ino() {
                self.root_ino()
            } else {
                ino
            };
            entries.push(DirEntry {
                name: name.to_vec(),
                fileid,
                cookie: off,
                attr: None,
                handle: None,
            });
            true
        })?;
        if too_small {
            return Err(NfsStat::TooSmall);
        }
        if plus {
            for e in entries.iter_mut() {
                let st = if e.name == b"." || (e.name == b".." && dir.ino == self.root_ino()) {
                    Some(dst)
                } else {
                    CString::new(e.name.clone())
                        .ok()
                        .and_then(|c| stat::stat_at(dfd.as_fd(), &c).ok())
                };
                if let Some(st) = st.filter(|s| s.dev == dst.dev) {
                    if e.name != b"." && e.name != b".." {
                        self.remember(dir.ino, &e.name, &st);
                        e.handle = Some(self.handle_for(&st));
                    } else if e.name == b"." || dir.ino == self.root_ino() {
                        e.handle = Some(self.handle_for(&st));
                    }
                    e.fileid = st.ino;
                    e.attr = Some(st);
                }
            }
        }
        Ok(DirListing {
            dir_attr: stat::fstat(dfd.as_fd()).ok(),
            entries,
            eof,
        })
    }

    pub fn fsstat(&self) -> FsResult<FsStatInfo> {
        let v = nix::sys::statvfs::fstatvfs(self.root_fd().as_fd())?;
        // f_frsize is the unit of the block counts (illumos f_bsize is the
        // preferred I/O size, not the unit).
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
