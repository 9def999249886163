//! Linux implementations: `statx` gives attributes and the birth time (the
//! handle generation) in one call; `fchmodat` honours AT_SYMLINK_NOFOLLOW
//! (glibc >= 2.32); peer credentials come from SO_PEERCRED.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::stat::{generation_from_crtime, Stat, Time};

pub const PLATFORM: &str = "linux";

fn statx(dirfd: i32, path: &CStr, flags: i32) -> Result<Stat, Errno> {
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
        generation_from_crtime(sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec)
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

pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
    statx(dir.as_raw_fd(), name, 0)
}

pub fn fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    statx(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// chmod of `name` itself, never of what a symlink swapped in names.
pub fn chmod_at_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    _expect: &Stat,
) -> Result<(), Errno> {
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        nix::sys::stat::Mode::from_bits_truncate(mode as _),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
}

pub fn peer_uid(stream: &tokio::net::UnixStream) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials).ok().map(|c| c.uid())
}

/// On local disk filesystems (`super::local_linux_filesystem`) an open
/// descriptor's fstat comes from memory, and RWF_NOWAIT can test the page
/// cache.
pub fn serves_cached_io_without_blocking(fd: BorrowedFd<'_>) -> bool {
    super::local_linux_filesystem(fd)
}

pub fn local_filesystem(fd: BorrowedFd<'_>) -> bool {
    super::local_linux_filesystem(fd)
}

/// pread that never waits for the disk: EAGAIN unless the bytes are in the
/// page cache (preadv2 RWF_NOWAIT).
pub fn pread_nowait(
    fd: BorrowedFd<'_>,
    buf: &mut [std::mem::MaybeUninit<u8>],
    offset: u64,
) -> Result<usize, Errno> {
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the iovec describes writable memory the caller owns; the
    // kernel writes at most iov_len bytes and we return how many.
    let n = unsafe {
        libc::preadv2(
            fd.as_raw_fd(),
            &iov,
            1,
            offset as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// pwrite that never waits (block allocation, dirty throttling, locks):
/// EAGAIN instead (pwritev2 RWF_NOWAIT).
pub fn pwrite_nowait(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> Result<usize, Errno> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: the kernel only reads the iovec's bytes.
    let n = unsafe {
        libc::pwritev2(
            fd.as_raw_fd(),
            &iov,
            1,
            offset as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// LOOKUP that never waits: `name` in `dir` resolved from the dentry cache
/// only (openat2 RESOLVE_CACHED, Linux 5.12+), its attributes read from the
/// in-memory inode. `None` when that would need the disk (EAGAIN), cross a
/// mount, or anything else the pool should look at; `Some(Err(ENOENT))` is
/// a cached negative entry.
pub fn lookup_nowait(dir: BorrowedFd<'_>, name: &CStr) -> Option<Result<Stat, Errno>> {
    // SAFETY: open_how is plain data; zero is "no flags".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_CACHED
        | libc::RESOLVE_BENEATH
        | libc::RESOLVE_NO_SYMLINKS
        | libc::RESOLVE_NO_XDEV;
    // SAFETY: openat2 reads the path and the open_how we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return match Errno::last() {
            Errno::ENOENT => Some(Err(Errno::ENOENT)),
            _ => None,
        };
    }
    // SAFETY: a fresh descriptor from openat2, owned here.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    use std::os::fd::AsFd;
    Some(fstat(fd.as_fd()))
}

pub use super::linux_xattr::{read_device_mark_at, write_device_mark};
