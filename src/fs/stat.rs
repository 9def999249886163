//! Object attributes as the server sees them, read without following symlinks.
//!
//! On Linux `statx` also gives the birth time, which serves as the handle
//! generation: a removed file's inode number may be reused, its birth time
//! will differ. Where no birth time is available the generation is 0.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes allocated on disk.
    pub used: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev: u64,
    pub ino: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub gen: u64,
}

impl Stat {
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
}

#[cfg(target_os = "linux")]
fn statx_raw(dirfd: i32, path: &CStr, flags: i32) -> Result<Stat, Errno> {
    // SAFETY: statx writes into the zeroed struct we own; path is a valid C string.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            dirfd,
            path.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            &mut sx,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    let t = |ts: libc::statx_timestamp| Time {
        sec: ts.tv_sec,
        nsec: ts.tv_nsec,
    };
    let gen = if sx.stx_mask & libc::STATX_BTIME != 0 {
        ((sx.stx_btime.tv_sec as u64) << 30) ^ sx.stx_btime.tv_nsec as u64
    } else {
        0
    };
    Ok(Stat {
        mode: sx.stx_mode as u32,
        nlink: sx.stx_nlink,
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        size: sx.stx_size,
        used: sx.stx_blocks.saturating_mul(512),
        rdev_major: sx.stx_rdev_major,
        rdev_minor: sx.stx_rdev_minor,
        dev: ((sx.stx_dev_major as u64) << 32) | sx.stx_dev_minor as u64,
        ino: sx.stx_ino,
        atime: t(sx.stx_atime),
        mtime: t(sx.stx_mtime),
        ctime: t(sx.stx_ctime),
        gen,
    })
}

#[cfg(not(target_os = "linux"))]
fn statx_raw(dirfd: i32, path: &CStr, flags: i32) -> Result<Stat, Errno> {
    // SAFETY: fstatat writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            dirfd,
            path.as_ptr(),
            &mut st,
            flags | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(Stat {
        mode: st.st_mode as u32,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        used: (st.st_blocks as u64).saturating_mul(512),
        rdev_major: libc::major(st.st_rdev) as u32,
        rdev_minor: libc::minor(st.st_rdev) as u32,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        atime: Time {
            sec: st.st_atime as i64,
            nsec: st.st_atime_nsec as u32,
        },
        mtime: Time {
            sec: st.st_mtime as i64,
            nsec: st.st_mtime_nsec as u32,
        },
        ctime: Time {
            sec: st.st_ctime as i64,
            nsec: st.st_ctime_nsec as u32,
        },
        gen: 0,
    })
}

/// Attributes of `name` in `dir`, never following a symlink.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
    statx_raw(dir.as_raw_fd(), name, 0)
}

/// Attributes of an open file descriptor.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    #[cfg(target_os = "linux")]
    {
        statx_raw(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
    }
    #[cfg(not(target_os = "linux"))]
    {
        statx_raw(fd.as_raw_fd(), c".", 0)
    }
}
