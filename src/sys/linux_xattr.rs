//! Linux extended attributes for the device mark (`fs::devices`), used by
//! the Linux implementation and by posix mode on Linux (where illumos would
//! use a named attribute, `illumos.rs`).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// The extended attribute that marks an emulated device node's placeholder
/// (`fs::devices`). NFSv3 has no xattr operations, so no client can set it.
const DEVICE_MARK_XATTR: &CStr = c"user.volnfs.device";

/// The device mark of `name` in `dir` (a regular file), if it has one.
pub fn read_device_mark_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    // SAFETY: fresh descriptor from openat, owned here.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut buf = [0u8; 64];
    // SAFETY: fgetxattr writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            DEVICE_MARK_XATTR.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// Marks the regular file `fd` as an emulated device node's placeholder.
pub fn write_device_mark(fd: BorrowedFd<'_>, mark: &[u8]) -> Result<(), Errno> {
    // SAFETY: fsetxattr reads mark.len() bytes of mark.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            DEVICE_MARK_XATTR.as_ptr(),
            mark.as_ptr().cast(),
            mark.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
