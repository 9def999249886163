//! Making objects: CREATE, MKDIR, SYMLINK, MKNOD. All four are one
//! skeleton ([`ExportFs::make_node`]): in a directory the caller may change,
//! make the object under a checked name, give it to the caller, adjust what
//! the kind needs, record it in the index and hand out its handle.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use super::setattr::{exclusive_times, ts};
use super::{Check, DirToChange};
use crate::fs::devices::{DeviceMark, DeviceNodes};
use crate::fs::error::{FsError, KResult, Op};
use crate::fs::{
    check_new_name, open_at, open_dir_at, CreateHow, Cred, ExportFs, FileHandle, NewObject,
    NodeKind, SetAttrs, Wcc,
};
use crate::sys;

/// What the kind-specific step made.
pub(super) enum Made {
    /// A new object, with a descriptor of it where one could be opened,
    /// and its device mark (only a device's placeholder has one).
    New {
        fd: Option<OwnedFd>,
        mark: Option<DeviceMark>,
    },
    /// The name already held the object the call asked for (an exclusive
    /// CREATE retransmitted, an UNCHECKED CREATE of an existing file).
    Existing(NewObject),
}

impl ExportFs {
    /// The skeleton of every create: `make` creates the object named
    /// `cname` in the directory; `adjust` then sets what the kind needs, on
    /// the object's descriptor when `make` returned one, after the object
    /// was given to the caller.
    fn make_node(
        &self,
        op: Op,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
        make: impl FnOnce(&DirToChange, &CString) -> KResult<Made>,
        adjust: impl FnOnce(Option<BorrowedFd<'_>>, &DirToChange) -> KResult<()>,
    ) -> (Wcc, Result<NewObject, FsError>) {
        self.change_dir(op, dir, cred, Check::AddEntries, |d| {
            let cname = check_new_name(name)?;
            let (fd, mark) = match make(d, &cname)? {
                Made::Existing(obj) => return Ok(obj),
                Made::New { fd, mark } => (fd, mark),
            };
            self.chown_new(d.fd.as_fd(), &cname, &d.st, cred)?;
            adjust(fd.as_ref().map(|f| f.as_fd()), d)?;
            let st = match &fd {
                Some(fd) => sys::fstat(fd.as_fd())?,
                None => sys::stat_at(d.fd.as_fd(), &cname)?,
            };
            // Made here, so its mark is known: no need to read it back.
            let st = self.device_view_known(st, mark);
            self.remember(d.fh.ino, name, &st);
            Ok((self.handle_for(&st), st))
        })
    }

    pub fn create(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
        how: CreateHow,
    ) -> (Wcc, Result<NewObject, FsError>) {
        let mode = match how {
            CreateHow::Unchecked(a) | CreateHow::Guarded(a) => a.mode.unwrap_or(0o644) & 0o7777,
            CreateHow::Exclusive(_) => 0o600,
        };
        let make = |d: &DirToChange, cname: &CString| -> KResult<Made> {
            let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL;
            match open_at(d.fd.as_fd(), cname, flags, mode) {
                Ok(fd) => Ok(Made::New {
                    fd: Some(fd),
                    mark: None,
                }),
                Err(Errno::EEXIST) => self.create_existing(d, name, cname, cred, how),
                Err(e) => Err(e.into()),
            }
        };
        let adjust = |fd: Option<BorrowedFd<'_>>, d: &DirToChange| -> KResult<()> {
            let Some(fd) = fd else { return Ok(()) };
            if mode & 0o6000 != 0 && self.can_chown {
                // chown(2) cleared setuid/setgid; a local create by the
                // caller keeps them (setgid only for a member of the group).
                let gid = self.owner_gid(&d.st, cred);
                let keep = if cred.is_root() || cred.in_group(gid) {
                    mode
                } else {
                    mode & !libc::S_ISGID
                };
                nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(keep as _))?;
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
                        Self::apply_setattr_fd(fd, &rest)?;
                    }
                }
            }
            Ok(())
        };
        self.make_node(Op::Create, dir, name, cred, make, adjust)
    }

    /// CREATE of a name that exists: GUARDED fails, EXCLUSIVE succeeds only
    /// for its own retransmission (the verifier is in the times), UNCHECKED
    /// opens the existing file (and truncates it if asked).
    fn create_existing(
        &self,
        d: &DirToChange,
        name: &[u8],
        cname: &CString,
        cred: &Cred,
        how: CreateHow,
    ) -> KResult<Made> {
        let st = sys::stat_at(d.fd.as_fd(), cname)?;
        let st = self.device_view(d.fd.as_fd(), cname, st);
        match how {
            CreateHow::Guarded(_) => Err(Errno::EEXIST.into()),
            CreateHow::Exclusive(v) => {
                let (a, m) = exclusive_times(v);
                if st.is_reg() && st.atime.sec == a.sec && st.mtime.sec == m.sec {
                    self.remember(d.fh.ino, name, &st);
                    Ok(Made::Existing((self.handle_for(&st), st)))
                } else {
                    Err(Errno::EEXIST.into())
                }
            }
            CreateHow::Unchecked(a) => {
                if st.is_dir() {
                    return Err(Errno::EISDIR.into());
                }
                self.remember(d.fh.ino, name, &st);
                let fh = self.handle_for(&st);
                if a.size.is_some() {
                    let only_size = SetAttrs {
                        size: a.size,
                        ..Default::default()
                    };
                    let (_, r) = self.setattr(&fh, cred, &only_size, None);
                    r.map_err(|e| e.kind)?;
                }
                let st = self.stat_of(&fh)?;
                Ok(Made::Existing((fh, st)))
            }
        }
    }

    pub fn mkdir(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
        attrs: &SetAttrs,
    ) -> (Wcc, Result<NewObject, FsError>) {
        let mode = attrs.mode.unwrap_or(0o755) & 0o7777;
        let make = |d: &DirToChange, cname: &CString| -> KResult<Made> {
            nix::sys::stat::mkdirat(
                Some(d.fd.as_raw_fd()),
                cname.as_c_str(),
                Mode::from_bits_truncate(mode as _),
            )?;
            Ok(Made::New {
                fd: Some(open_dir_at(d.fd.as_fd(), cname)?),
                mark: None,
            })
        };
        let adjust = |fd: Option<BorrowedFd<'_>>, _: &DirToChange| -> KResult<()> {
            let Some(fd) = fd else { return Ok(()) };
            if mode & 0o7000 != 0 {
                // mkdir(2) drops set-id/sticky bits on some systems; set them.
                nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode as _))?;
            }
            let times = SetAttrs {
                atime: attrs.atime,
                mtime: attrs.mtime,
                ..Default::default()
            };
            if times != SetAttrs::default() {
                Self::apply_setattr_fd(fd, &times)?;
            }
            Ok(())
        };
        self.make_node(Op::Mkdir, dir, name, cred, make, adjust)
    }

    pub fn symlink(
        &self,
        dir: &FileHandle,
        name: &[u8],
        target: &[u8],
        cred: &Cred,
    ) -> (Wcc, Result<NewObject, FsError>) {
        let make = |d: &DirToChange, cname: &CString| -> KResult<Made> {
            if target.is_empty() || target.contains(&0) {
                return Err(Errno::EINVAL.into());
            }
            let ctarget = CString::new(target).map_err(|_| Errno::EINVAL)?;
            nix::unistd::symlinkat(ctarget.as_c_str(), Some(d.fd.as_raw_fd()), cname.as_c_str())?;
            Ok(Made::New {
                fd: None,
                mark: None,
            })
        };
        self.make_node(Op::Symlink, dir, name, cred, make, |_, _| Ok(()))
    }

    /// A device node's placeholder: an empty regular file with the device's
    /// mark, durable before the directory change is committed.
    fn make_placeholder(
        &self,
        d: &DirToChange,
        cname: &CString,
        mode: u32,
        block: bool,
        (major, minor): (u32, u32),
    ) -> KResult<Made> {
        let fd = open_at(
            d.fd.as_fd(),
            cname,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
        )?;
        let mark = DeviceMark {
            block,
            major,
            minor,
        };
        let marked = sys::write_device_mark(fd.as_fd(), &mark.encode())
            .and_then(|()| nix::unistd::fsync(fd.as_raw_fd()));
        if let Err(e) = marked {
            // Never leave an unmarked placeholder (it would read as a file).
            let _ = nix::unistd::unlinkat(
                Some(d.fd.as_raw_fd()),
                cname.as_c_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            tracing::warn!(export = %self.name, error = %e, "cannot mark a device node's placeholder (does the filesystem take extended attributes?)");
            return Err(e.into());
        }
        Ok(Made::New {
            fd: Some(fd),
            mark: Some(mark),
        })
    }

    /// MKNOD of a FIFO or socket (a real one), or of a device (a marked
    /// placeholder, see `fs::devices`; `dev` is its major and minor).
    pub fn mknod(
        &self,
        dir: &FileHandle,
        name: &[u8],
        kind: NodeKind,
        dev: (u32, u32),
        cred: &Cred,
        attrs: &SetAttrs,
    ) -> (Wcc, Result<NewObject, FsError>) {
        let mode = attrs.mode.unwrap_or(0o644) & 0o7777;
        let make = |d: &DirToChange, cname: &CString| -> KResult<Made> {
            let kind_flag = match kind {
                NodeKind::Fifo => SFlag::S_IFIFO,
                NodeKind::Socket => SFlag::S_IFSOCK,
                NodeKind::CharDevice | NodeKind::BlockDevice => {
                    // Making a device takes privilege, as locally (mknod(2)).
                    if !cred.is_root() {
                        return Err(Errno::EPERM.into());
                    }
                    if self.devices == DeviceNodes::Refuse {
                        tracing::info!(export = %self.name, "MKNOD of a device node refused (device_nodes: refuse)");
                        return Err(Errno::EPERM.into());
                    }
                    return self.make_placeholder(
                        d,
                        cname,
                        mode,
                        kind == NodeKind::BlockDevice,
                        dev,
                    );
                }
            };
            nix::sys::stat::mknodat(
                Some(d.fd.as_raw_fd()),
                cname.as_c_str(),
                kind_flag,
                Mode::from_bits_truncate(mode as _),
                0,
            )?;
            Ok(Made::New {
                fd: None,
                mark: None,
            })
        };
        self.make_node(Op::Mknod, dir, name, cred, make, |_, _| Ok(()))
    }
}
