//! Every place where the platforms volnfs runs on differ, in one module.
//!
//! Production is an illumos zone; development and CI are Linux. Each function
//! here has a Linux implementation (`linux.rs`) and a POSIX one (`posix.rs`,
//! what illumos runs) side by side. The POSIX one is also selectable on Linux
//! with `RUSTFLAGS="--cfg volnfs_posix"`, and CI runs the whole test suite and
//! the kernel-client workloads in that mode, so the zone's code paths meet
//! real clients on every change. What only illumos can run (its system
//! attribute calls) is in `illumos.rs`, type-checked for
//! `x86_64-unknown-illumos` in CI. `docs/illumos.md` is the audit: every
//! syscall and behaviour the server relies on, per platform, and its test.
//!
//! Nothing outside this module uses `cfg(target_os)` for behaviour.
//!
//! `zfs` is the other side of the system the server drives: the `zfs`
//! command runner and its output parsers (the same on both platforms), kept
//! apart from the dataset backend that uses them (`crate::dataset`).

mod stat;
pub mod zfs;

#[cfg(all(target_os = "linux", not(volnfs_posix)))]
mod linux;
#[cfg(all(target_os = "linux", not(volnfs_posix)))]
use linux as imp;

#[cfg(target_os = "illumos")]
mod illumos;
#[cfg(target_os = "linux")]
mod linux_xattr;
#[cfg(any(not(target_os = "linux"), volnfs_posix))]
mod posix;
#[cfg(any(not(target_os = "linux"), volnfs_posix))]
use posix as imp;

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

pub use stat::{generation_from_crtime, Stat, Time};

/// Which implementation this binary runs: "linux", "posix" (the illumos
/// code paths on Linux) or "illumos". Reported by `status`.
pub const PLATFORM: &str = imp::PLATFORM;

/// Attributes of `name` in `dir`, never following a symlink, with the
/// object's generation.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, Errno> {
    imp::stat_at(dir, name)
}

/// Attributes of an open descriptor (any type), with its generation.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    imp::fstat(fd)
}

/// Changes the mode of `name` in `dir` (an object that cannot be opened: a
/// socket), never through a symlink. `expect` is the object the caller
/// checked permissions on.
pub fn chmod_at_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    expect: &Stat,
) -> Result<(), Errno> {
    imp::chmod_at_nofollow(dir, name, mode, expect)
}

/// The filesystem id (`statvfs` f_fsid) of the filesystem holding `fd`:
/// stable per ZFS dataset across reboots and imports.
pub fn filesystem_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let v = nix::sys::statvfs::fstatvfs(fd).ok()?;
    // c_ulong: u64 on both 64-bit platforms today.
    #[allow(clippy::unnecessary_cast)]
    Some(v.filesystem_id() as u64)
}

/// Whether, on the filesystem of `fd`, an open descriptor's attributes
/// come from memory and reads and writes can be tried without waiting
/// (`pread_nowait`, `pwrite_nowait`): the condition for answering a call on
/// an async worker instead of the file I/O pool. Linux local filesystems
/// only; never in posix mode or on illumos.
pub fn serves_cached_io_without_blocking(fd: BorrowedFd<'_>) -> bool {
    imp::serves_cached_io_without_blocking(fd)
}

/// Whether `fd` is on a filesystem of this machine's own disks or memory
/// (ZFS, UFS, ext4, XFS, btrfs, tmpfs), whose metadata of an object in
/// memory comes without a round trip: not FUSE, NFS or SMB, where a GETATTR
/// may wait for a daemon or another server at any time. A polling session
/// runs a quick call (`nfs3::table::QUICK`) on its own thread only here.
pub fn local_filesystem(fd: BorrowedFd<'_>) -> bool {
    imp::local_filesystem(fd)
}

/// The Linux test behind `local_filesystem` (both modes on Linux: the
/// filesystem type is not one of the differences posix mode stands in for).
#[cfg(target_os = "linux")]
fn local_linux_filesystem(fd: BorrowedFd<'_>) -> bool {
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    const TMPFS: i64 = 0x0102_1994;
    const ZFS: i64 = 0x2FC1_2FC1;
    // SAFETY: fstatfs writes into the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    // f_type's width differs between C libraries.
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    matches!(magic, EXT4 | XFS | BTRFS | TMPFS | ZFS)
}

/// Reads at `offset` only what the page cache holds now; EAGAIN if any of
/// it would need the disk.
pub fn pread_nowait(
    fd: BorrowedFd<'_>,
    buf: &mut [std::mem::MaybeUninit<u8>],
    offset: u64,
) -> Result<usize, Errno> {
    imp::pread_nowait(fd, buf, offset)
}

/// Writes at `offset` only if that needs no waiting; EAGAIN otherwise.
pub fn pwrite_nowait(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> Result<usize, Errno> {
    imp::pwrite_nowait(fd, data, offset)
}

/// `name` in `dir` from the kernel's caches only, never waiting (`None`:
/// ask the pool). Linux only; never in posix mode or on illumos.
pub fn lookup_nowait(dir: BorrowedFd<'_>, name: &CStr) -> Option<Result<Stat, Errno>> {
    imp::lookup_nowait(dir, name)
}

/// The device mark of the regular file `name` in `dir`, if it has one: an
/// extended attribute on Linux, a named attribute on illumos; both travel
/// with the dataset (snapshots, rollback, `zfs send`).
pub fn read_device_mark_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    imp::read_device_mark_at(dir, name)
}

/// Sets the device mark on the regular file `fd`.
pub fn write_device_mark(fd: BorrowedFd<'_>, mark: &[u8]) -> Result<(), Errno> {
    imp::write_device_mark(fd, mark)
}

/// The uid of the process at the other end of a unix socket.
pub fn peer_uid(stream: &tokio::net::UnixStream) -> Option<u32> {
    imp::peer_uid(stream)
}

/// Bytes waiting to be read on socket `fd` (FIONREAD), the same ioctl on
/// Linux and illumos (`filio.h`). `None` if it fails.
pub fn bytes_to_read(fd: BorrowedFd<'_>) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which we own.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    (r == 0).then(|| usize::try_from(n).ok()).flatten()
}

/// POSIX lets rmdir(2) and rename(2) report a non-empty directory as EEXIST
/// or ENOTEMPTY; illumos says EEXIST, Linux ENOTEMPTY. Clients must see
/// NFS3ERR_NOTEMPTY either way (never NFS3ERR_EXIST).
pub fn not_empty_errno(e: Errno) -> Errno {
    if e == Errno::EEXIST {
        Errno::ENOTEMPTY
    } else {
        e
    }
}

/// Raises the soft limit on open descriptors to the hard limit. The server
/// keeps up to 1,024 connections and ~5,000 cached descriptors; the default
/// soft limit is 256 on illumos and 1,024 on Linux. Raising the soft limit
/// up to the hard one needs no privilege. Returns (soft, hard) after.
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    // nix has no rlimit calls for illumos; libc has them everywhere.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = raised;
    }
    // rlim_t is u64 on both platforms today; the cast keeps it so if one changes.
    #[allow(clippy::unnecessary_cast)]
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_directory_is_enotempty_whatever_the_platform_said() {
        assert_eq!(not_empty_errno(Errno::EEXIST), Errno::ENOTEMPTY);
        assert_eq!(not_empty_errno(Errno::ENOTEMPTY), Errno::ENOTEMPTY);
        assert_eq!(not_empty_errno(Errno::EACCES), Errno::EACCES);
    }

    /// tmpfs is local (the Linux test host's `/dev/shm`), procfs is not:
    /// both build modes on Linux (illumos reads f_basetype instead, only
    /// type-checked here).
    #[cfg(target_os = "linux")]
    #[test]
    fn local_filesystems_are_told_from_others() {
        use std::os::fd::AsFd;
        let open = |p: &str| std::fs::File::open(p).unwrap_or_else(|e| panic!("open {p}: {e}"));
        let shm = open("/dev/shm");
        assert!(
            local_filesystem(shm.as_fd()),
            "/dev/shm (tmpfs) counted as not local"
        );
        let proc = open("/proc");
        assert!(!local_filesystem(proc.as_fd()), "/proc counted as local");
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = raise_fd_limit().unwrap();
        assert_eq!(soft, hard);
    }
}
