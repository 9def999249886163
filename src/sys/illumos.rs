//! illumos system attributes: the ZFS creation time (A_CRTIME), read with
//! `fgetattr(3C)` / `getattrat(3C)` from libc and looked up with libnvpair.
//!
//! Only type-checked here (CI checks `x86_64-unknown-illumos`); nothing on
//! Linux can run it. In posix mode on Linux, `posix.rs` calls a `statx`
//! stand-in at exactly the same places.
//!
//! `getattrat` opens the attribute directory of `name` (O_XATTR), which
//! follows a symlink: symlinks never come here (see `posix::generation`).
//!
//! Also the filesystem's type name (`fstatvfs` f_basetype, which Linux's
//! `statvfs` lacks), for `sys::local_filesystem`.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `nvlist_t` (opaque).
#[repr(C)]
struct NvList {
    _private: [u8; 0],
}

/// `xattr_view_t`: A_CRTIME is in the read-write view (SUNWattr_rw); reading
/// it needs no write permission.
const XATTR_VIEW_READWRITE: c_int = 1;
/// `A_CRTIME`: a `uint64_t[2]` of seconds and nanoseconds.
const A_CRTIME: &CStr = c"crtime";

extern "C" {
    fn fgetattr(fd: c_int, view: c_int, response: *mut *mut NvList) -> c_int;
    fn getattrat(fd: c_int, view: c_int, name: *const c_char, response: *mut *mut NvList) -> c_int;
}

#[link(name = "nvpair")]
extern "C" {
    fn nvlist_lookup_uint64_array(
        nvl: *mut NvList,
        name: *const c_char,
        val: *mut *mut u64,
        n: *mut c_uint,
    ) -> c_int;
    fn nvlist_free(nvl: *mut NvList);
}

/// Takes ownership of a response list: reads A_CRTIME and frees the list.
fn crtime_of(nvl: *mut NvList) -> Option<(i64, u32)> {
    if nvl.is_null() {
        return None;
    }
    let mut vals: *mut u64 = std::ptr::null_mut();
    let mut n: c_uint = 0;
    // SAFETY: nvl is a list fgetattr/getattrat allocated for us; the array
    // pointer stays valid until nvlist_free, and we read it before that.
    let found = unsafe {
        let rc = nvlist_lookup_uint64_array(nvl, A_CRTIME.as_ptr(), &mut vals, &mut n);
        let v = if rc == 0 && n >= 2 && !vals.is_null() {
            Some((*vals as i64, (*vals.add(1)).min(999_999_999) as u32))
        } else {
            None
        };
        nvlist_free(nvl);
        v
    };
    found
}

pub fn crtime_fd(fd: BorrowedFd<'_>) -> Option<(i64, u32)> {
    let mut nvl: *mut NvList = std::ptr::null_mut();
    // SAFETY: fgetattr only writes the response pointer.
    let rc = unsafe { fgetattr(fd.as_raw_fd(), XATTR_VIEW_READWRITE, &mut nvl) };
    if rc != 0 {
        return None;
    }
    crtime_of(nvl)
}

pub fn crtime_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<(i64, u32)> {
    let mut nvl: *mut NvList = std::ptr::null_mut();
    // SAFETY: name is a valid C string; getattrat only writes the pointer.
    let rc = unsafe {
        getattrat(
            dir.as_raw_fd(),
            XATTR_VIEW_READWRITE,
            name.as_ptr(),
            &mut nvl,
        )
    };
    if rc != 0 {
        return None;
    }
    crtime_of(nvl)
}

/// The named attribute that marks an emulated device node's placeholder
/// (`fs::devices`): `openat(file, name, O_XATTR)`. NFSv3 has no attribute
/// operations, so no client can set it.
const DEVICE_MARK_ATTR: &CStr = c"volnfs.device";

pub fn read_device_mark_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: openat with valid C strings; descriptors are owned at once.
    let file = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if file < 0 {
        return None;
    }
    let file = unsafe { OwnedFd::from_raw_fd(file) };
    let attr = unsafe {
        libc::openat(
            file.as_raw_fd(),
            DEVICE_MARK_ATTR.as_ptr(),
            libc::O_RDONLY | libc::O_XATTR | libc::O_CLOEXEC,
        )
    };
    if attr < 0 {
        return None;
    }
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(attr) });
    let mut buf = Vec::with_capacity(64);
    (&mut f).take(64).read_to_end(&mut buf).ok()?;
    (!buf.is_empty()).then_some(buf)
}

pub fn write_device_mark(fd: BorrowedFd<'_>, mark: &[u8]) -> Result<(), nix::errno::Errno> {
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: openat with a valid C string; the descriptor is owned at once.
    let attr = unsafe {
        libc::openat(
            fd.as_raw_fd(),
            DEVICE_MARK_ATTR.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_XATTR | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if attr < 0 {
        return Err(nix::errno::Errno::last());
    }
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(attr) });
    f.write_all(mark)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    // The attribute is a file of its own (xattr=dir): make it durable.
    f.sync_all()
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Whether `fd` is on ZFS, UFS or tmpfs (`fstatvfs` f_basetype), not a
/// network or user-space filesystem (NFS, SMB, a FUSE-like one).
pub fn local_filesystem(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fstatvfs writes into the zeroed struct we own.
    let mut v: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut v) } != 0 {
        return false;
    }
    // f_basetype: a NUL-terminated name in a fixed array (FSTYPSZ).
    let name: Vec<u8> = v
        .f_basetype
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    matches!(&name[..], b"zfs" | b"ufs" | b"tmpfs")
}
