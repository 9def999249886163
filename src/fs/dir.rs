//! Directory listing: the only `readdir` in the server (and its only
//! `unsafe` around directory streams). Identical on Linux and illumos
//! (`docs/illumos.md`: both have `d_off`, `seekdir` takes it back). Cookies are the entries' `d_off`
//! positions, which `seekdir` accepts back: on ZFS (both platforms) a
//! serialized ZAP cursor, stable across opens of the directory; on ext4 a
//! hash position.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

fn open_dir_again(dir: BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd, Errno> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Reads a whole directory position by position from `cookie`. `visit`
/// returns false to stop (budget exhausted). Returns whether the end of the
/// directory was reached.
pub fn scan_dir(
    dir: BorrowedFd<'_>,
    cookie: u64,
    mut visit: impl FnMut(&[u8], u64, u64) -> bool,
) -> Result<bool, Errno> {
    let fd = open_dir_again(dir)?;
    let raw = fd.as_raw_fd();
    // SAFETY: fdopendir takes ownership of the descriptor on success; we
    // forget the OwnedFd only then, and closedir releases both.
    let dp = unsafe { libc::fdopendir(raw) };
    if dp.is_null() {
        return Err(Errno::last());
    }
    std::mem::forget(fd);
    struct Guard(*mut libc::DIR);
    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: the pointer came from fdopendir and is closed once.
            unsafe { libc::closedir(self.0) };
        }
    }
    let g = Guard(dp);
    if cookie != 0 {
        // SAFETY: dp is a valid DIR*; cookies are positions we handed out.
        unsafe { libc::seekdir(g.0, cookie as libc::c_long) };
    }
    loop {
        Errno::clear();
        // SAFETY: dp is valid; the returned entry is valid until the next call.
        let ent = unsafe { libc::readdir(g.0) };
        if ent.is_null() {
            return match Errno::last_raw() {
                0 => Ok(true),
                e => Err(Errno::from_raw(e)),
            };
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let (name, ino, off) = unsafe {
            let e = &*ent;
            (
                std::ffi::CStr::from_ptr(e.d_name.as_ptr()).to_bytes(),
                e.d_ino as u64,
                e.d_off as u64,
            )
        };
        if !visit(name, ino, off) {
            return Ok(false);
        }
    }
}
