//! POSIX implementations: what volnfs runs on illumos. Selectable on Linux
//! with `RUSTFLAGS="--cfg volnfs_posix"`, so CI runs the zone's code paths
//! with real clients on every change.
//!
//! Attributes come from `fstatat`/`fstat`. The creation time (the handle
//! generation) is not part of `struct stat`: on illumos it is the ZFS system
//! attribute A_CRTIME (`sys::illumos`); in posix mode on Linux a separate
//! `statx(STATX_BTIME)` call stands in for it, at the same place and cost
//! shape (one more call per attribute read).

// The field types of `struct stat` differ between platforms: some casts are
// no-ops on one of them.
#![allow(clippy::unnecessary_cast)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::stat::{generation_from_crtime, Stat, Time};

#[cfg(target_os = "illumos")]
use super::illumos::{crtime_at, crtime_fd};

#[cfg(target_os = "illumos")]
pub const PLATFORM: &str = "illumos";
#[cfg(not(target_os = "illumos"))]
pub const PLATFORM: &str = "posix";

fn from_stat(st: &libc::stat, gen: u64) -> Stat {
    // SAFETY: major/minor only decode the number; they are unsafe fns in
    // the libc crate on illumos (safe on Linux, hence the allow).
    #[allow(unused_unsafe)]
    let (major, minor) = unsafe { (libc::major(st.st_rdev), libc::minor(st.st_rdev)) };
    Stat {
        mode: st.st_mode as u32,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        used: (st.st_blocks as u64).saturating_mul(512),
        rdev_major: major as u32,
        rdev_minor: minor as u32,
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
        gen,
    }
}

fn fstatat(dirfd: i32, path: &CStr, flags: i32) -> Result<libc::stat, Errno> {
    // SAFETY: fstatat writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(dirfd, path.as_ptr(), &mut st, flags) };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

/// The stand-in for illumos's A_CRTIME in posix mode on Linux: the same
/// creation time, by a call of its own as illumos makes one.
#[cfg(target_os = "linux")]
fn btime(dirfd: i32, path: &CStr, flags: i32) -> Option<(i64, u32)> {
    // SAFETY: statx writes into the zeroed struct we own.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            dirfd,
            path.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BTIME,
            &mut sx,
        )
    };
    (rc == 0 && sx.stx_mask & libc::STATX_BTIME != 0)
        .then_some((sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec))
}

#[cfg(target_os = "linux")]
fn crtime_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<(i64, u32)> {
    btime(dir.as_raw_fd(), name, 0)
}

#[cfg(target_os = "linux")]
fn crtime_fd(fd: BorrowedFd<'_>) -> Option<(i64, u32)> {
    btime(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

#[cfg(not(any(target_os = "linux", target_os = "illumos")))]
fn crtime_at(_: BorrowedFd<'_>, _: &CStr) -> Option<(i64, u32)> {
    None
}

#[cfg(not(any(target_os = "linux", target_os = "illumos")))]
fn crtime_fd(_: BorrowedFd<'_>) -> Option<(i64, u32)> {
    None
}

/// The handle generation: the creation time. A symlink's comes from its
/// ctime instead, because illumos can read system attributes only through
/// the object (O_XATTR follows symlinks, and a symlink cannot be opened):
/// a symlink's handle therefore turns STALE when it is renamed or chowned
/// (clients look it up again), never reaches another object.
fn generation(st: &libc::stat, crtime: impl FnOnce() -> Option<(i64, u32)>) -> u64 {
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return generation_from_crtime(st.st_ctime as i64, st.st_ctime_nsec as u32);
    }
    crtime()
        .map(|(s, ns)| generation_from_crtime(s, ns))
        .unwrap_or(0)
}

pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
    let st = fstatat(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW)?;
    let gen = generation(&st, || crtime_at(dir, name));
    Ok(from_stat(&st, gen))
}

/// fstat(2), not fstatat(fd, "."): the latter is ENOTDIR for anything but a
/// directory (the bug the first posix-mode test run found).
pub fn fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    // SAFETY: fstat writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(Errno::last());
    }
    let gen = generation(&st, || crtime_fd(fd));
    Ok(from_stat(&st, gen))
}

/// chmod of `name` itself. Without a NOFOLLOW flag for fchmodat, re-check
/// right before that the name is still the object (and not a symlink).
pub fn chmod_at_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    expect: &Stat,
) -> Result<(), Errno> {
    let now = stat_at(dir, name)?;
    if now.ino != expect.ino || now.is_symlink() {
        return Err(Errno::ESTALE);
    }
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        nix::sys::stat::Mode::from_bits_truncate(mode as _),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// getpeerucred(3C) on illumos (SO_PEERCRED on Linux), through tokio.
pub fn peer_uid(stream: &tokio::net::UnixStream) -> Option<u32> {
    stream.peer_cred().ok().map(|c| c.uid())
}

/// POSIX has no way to ask "would this block?": every file operation goes
/// to the file I/O pool (illumos has no RWF_NOWAIT).
pub fn serves_cached_io_without_blocking(_: BorrowedFd<'_>) -> bool {
    false
}

/// On illumos the filesystem's name (`fstatvfs` f_basetype); in posix mode
/// on Linux, its magic number, as the Linux build reads it.
pub fn local_filesystem(fd: BorrowedFd<'_>) -> bool {
    #[cfg(target_os = "illumos")]
    return super::illumos::local_filesystem(fd);
    #[cfg(target_os = "linux")]
    return super::local_linux_filesystem(fd);
    #[cfg(not(any(target_os = "linux", target_os = "illumos")))]
    {
        let _ = fd;
        false
    }
}

pub fn pread_nowait(
    _: BorrowedFd<'_>,
    _: &mut [std::mem::MaybeUninit<u8>],
    _: u64,
) -> Result<usize, Errno> {
    Err(Errno::EAGAIN)
}

pub fn pwrite_nowait(_: BorrowedFd<'_>, _: &[u8], _: u64) -> Result<usize, Errno> {
    Err(Errno::EAGAIN)
}

pub fn lookup_nowait(_: BorrowedFd<'_>, _: &CStr) -> Option<Result<Stat, Errno>> {
    None
}

#[cfg(target_os = "illumos")]
pub use super::illumos::{read_device_mark_at, write_device_mark};

/// In posix mode on Linux the device mark is the same user xattr as on
/// Linux (illumos keeps it as a named attribute, `illumos.rs`).
#[cfg(target_os = "linux")]
pub use super::linux_xattr::{read_device_mark_at, write_device_mark};

#[cfg(not(any(target_os = "linux", target_os = "illumos")))]
pub fn read_device_mark_at(_: BorrowedFd<'_>, _: &CStr) -> Option<Vec<u8>> {
    None
}

#[cfg(not(any(target_os = "linux", target_os = "illumos")))]
pub fn write_device_mark(_: BorrowedFd<'_>, _: &[u8]) -> Result<(), Errno> {
    Err(Errno::EOPNOTSUPP)
}
