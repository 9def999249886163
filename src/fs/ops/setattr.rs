//! SETATTR: POSIX chmod/chown/utimes/truncate rules for the caller, applied
//! through a descriptor of the object wherever one can be opened.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::io::clears_setid;
use super::perm::{self, WRITE};
use super::{fail, with_op};
use crate::fs::error::{FsError, KResult, Kind, Op};
use crate::fs::{
    open_at, Cred, ExportFs, FileHandle, Located, SetAttrs, SetTime, Stat, Time, Wcc, WccAttr,
};
use crate::sys;

pub(super) fn ts(t: Time) -> TimeSpec {
    TimeSpec::new(t.sec as _, t.nsec as _)
}

fn set_time(t: SetTime) -> TimeSpec {
    match t {
        SetTime::DontChange => TimeSpec::UTIME_OMIT,
        SetTime::ServerTime => TimeSpec::UTIME_NOW,
        SetTime::ClientTime(t) => ts(t),
    }
}

/// The (atime, mtime) an exclusive CREATE stores its verifier in, as knfsd
/// does: they stay until the client's follow-up SETATTR replaces them.
pub(super) fn exclusive_times(v: [u8; 8]) -> (Time, Time) {
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

/// Checks SETATTR permissions (POSIX chmod/chown/utimes/truncate rules).
fn check_setattr(st: &Stat, cred: &Cred, a: &SetAttrs) -> KResult<()> {
    let owner = perm::is_owner(st, cred);
    if a.mode.is_some() && !owner {
        return Err(Errno::EPERM.into());
    }
    if let Some(uid) = a.uid {
        if uid != st.uid && !cred.is_root() {
            return Err(Errno::EPERM.into());
        }
    }
    if let Some(gid) = a.gid {
        if gid != st.gid && !cred.is_root() && !(st.uid == cred.uid && cred.in_group(gid)) {
            return Err(Errno::EPERM.into());
        }
    }
    if a.size.is_some() {
        if st.is_dir() {
            return Err(Errno::EISDIR.into());
        }
        if !st.is_reg() {
            return Err(Errno::EINVAL.into());
        }
        if !perm::may_write_data(st, cred) {
            return Err(Errno::EACCES.into());
        }
    }
    for t in [a.atime, a.mtime] {
        match t {
            SetTime::DontChange => {}
            SetTime::ServerTime => {
                if !owner && !perm::allowed(st, cred, WRITE) {
                    return Err(Errno::EACCES.into());
                }
            }
            SetTime::ClientTime(_) => {
                if !owner {
                    return Err(Errno::EPERM.into());
                }
            }
        }
    }
    Ok(())
}

/// What a non-root caller's change does to set-id bits, as a local chmod or
/// truncate would: chmod by a non-member of the file's group drops setgid;
/// truncation is a write and clears set-id bits.
fn with_setid_rules(st: &Stat, cred: &Cred, a: &SetAttrs) -> SetAttrs {
    let mut a = *a;
    if cred.is_root() {
        return a;
    }
    if let Some(m) = a.mode.as_mut() {
        if !cred.in_group(a.gid.unwrap_or(st.gid)) && !st.is_dir() {
            *m &= !libc::S_ISGID;
        }
    }
    if a.size.is_some() && a.mode.is_none() && st.is_reg() && clears_setid(st, cred) {
        a.mode = Some(st.mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID));
    }
    a
}

impl ExportFs {
    pub(super) fn apply_setattr_fd(fd: BorrowedFd<'_>, a: &SetAttrs) -> KResult<()> {
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
            nix::unistd::ftruncate(fd, size.try_into().map_err(|_| Errno::EFBIG)?)?;
        }
        if a.atime != SetTime::DontChange || a.mtime != SetTime::DontChange {
            nix::sys::stat::futimens(fd.as_raw_fd(), &set_time(a.atime), &set_time(a.mtime))?;
        }
        Ok(())
    }

    /// SETATTR of the object `fh`; `guard` is the ctime the client expects
    /// (NFS3ERR_NOT_SYNC when it differs).
    pub fn setattr(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        a: &SetAttrs,
        guard: Option<Time>,
    ) -> (Wcc, Result<(), FsError>) {
        let located = match self.locate(fh) {
            Ok(l) => l,
            Err(k) => return (Wcc::default(), fail(Op::Setattr, k)),
        };
        let st = *located.stat();
        if guard.is_some_and(|g| g != st.ctime) {
            return (Wcc::unchanged(&st), fail(Op::Setattr, Kind::GuardMismatch));
        }
        if let Err(k) = check_setattr(&st, cred, a) {
            return (Wcc::unchanged(&st), fail(Op::Setattr, k));
        }
        let a = with_setid_rules(&st, cred, a);
        let res = match &located {
            Located::Dir { fd, .. } => Self::apply_setattr_fd(fd.as_fd(), &a),
            Located::Other { parent, name, st }
                if st.is_reg() || st.file_type() == libc::S_IFIFO =>
            {
                if a.size.is_some() {
                    self.open_file(fh, true)
                        .and_then(|(f, _)| Self::apply_setattr_fd(f.file.as_fd(), &a))
                } else {
                    // Change the object through a descriptor, and only after
                    // checking it is still the object the handle names: a
                    // client renaming something else over the name in between
                    // must not redirect a root chmod/chown (O_NOFOLLOW keeps
                    // symlinks out, the inode check keeps swaps out).
                    open_at(parent.as_fd(), name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)
                        .map_err(Kind::from)
                        .and_then(|fd| {
                            let now = sys::fstat(fd.as_fd())?;
                            if now.ino != st.ino || now.gen != st.gen {
                                return Err(Kind::Stale);
                            }
                            Self::apply_setattr_fd(fd.as_fd(), &a)
                        })
                }
            }
            Located::Other { parent, name, st } => (|| -> KResult<()> {
                if a.size.is_some() {
                    return Err(Errno::EINVAL.into());
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
                        return Err(Errno::EOPNOTSUPP.into());
                    }
                    // Sockets cannot be opened: change the name itself,
                    // never what a symlink swapped in since would name.
                    sys::chmod_at_nofollow(parent.as_fd(), name, mode & 0o7777, st)?;
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
        // A symlink's generation can change with its ctime (off Linux): then
        // the attributes after the change come from its name.
        let after = self.stat_of(fh).ok().or_else(|| match &located {
            Located::Other { parent, name, st } => sys::stat_at(parent.as_fd(), name)
                .ok()
                .filter(|now| now.ino == st.ino)
                .map(|now| self.device_view(parent.as_fd(), name, now)),
            Located::Dir { .. } => None,
        });
        (
            Wcc {
                before: Some(WccAttr::from(&st)),
                after,
            },
            with_op(Op::Setattr, res),
        )
    }
}
