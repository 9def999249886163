//! `nfsstat3` (RFC 1813 §2.6) and the mapping of filesystem errors to it:
//! the one place where an `FsError` becomes what a client sees.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum NfsStat {
    Ok = 0,
    Perm = 1,
    NoEnt = 2,
    Io = 5,
    NxIo = 6,
    Acces = 13,
    Exist = 17,
    XDev = 18,
    NoDev = 19,
    NotDir = 20,
    IsDir = 21,
    Inval = 22,
    FBig = 27,
    NoSpc = 28,
    RoFs = 30,
    MLink = 31,
    NameTooLong = 63,
    NotEmpty = 66,
    DQuot = 69,
    Stale = 70,
    Remote = 71,
    BadHandle = 10001,
    NotSync = 10002,
    BadCookie = 10003,
    NotSupp = 10004,
    TooSmall = 10005,
    ServerFault = 10006,
    BadType = 10007,
    Jukebox = 10008,
}

impl fmt::Display for NfsStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NFS3ERR_{:?}", self)
    }
}

impl From<&crate::fs::Kind> for NfsStat {
    fn from(k: &crate::fs::Kind) -> Self {
        use crate::fs::Kind;
        match k {
            Kind::Os(e) => errno_to_nfsstat(*e as i32),
            Kind::Stale => NfsStat::Stale,
            Kind::Busy => NfsStat::Jukebox,
            Kind::GuardMismatch => NfsStat::NotSync,
            Kind::BadCookie => NfsStat::BadCookie,
            Kind::TooSmall => NfsStat::TooSmall,
            Kind::BadType => NfsStat::BadType,
        }
    }
}

impl From<crate::fs::FsError> for NfsStat {
    fn from(e: crate::fs::FsError) -> Self {
        NfsStat::from(&e.kind)
    }
}

impl From<nix::errno::Errno> for NfsStat {
    fn from(e: nix::errno::Errno) -> Self {
        errno_to_nfsstat(e as i32)
    }
}

impl From<std::io::Error> for NfsStat {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => errno_to_nfsstat(n),
            None => NfsStat::Io,
        }
    }
}

/// Maps an errno to the status a client should see. Codes with a direct
/// NFSv3 equivalent map to it; transient resource shortages become JUKEBOX
/// (the client retries later); the rest are I/O errors.
pub fn errno_to_nfsstat(errno: i32) -> NfsStat {
    use libc::*;
    match errno {
        0 => NfsStat::Ok,
        EPERM => NfsStat::Perm,
        ENOENT => NfsStat::NoEnt,
        EIO => NfsStat::Io,
        ENXIO => NfsStat::NxIo,
        EACCES => NfsStat::Acces,
        EEXIST => NfsStat::Exist,
        EXDEV => NfsStat::XDev,
        ENODEV => NfsStat::NoDev,
        ENOTDIR => NfsStat::NotDir,
        EISDIR => NfsStat::IsDir,
        EINVAL => NfsStat::Inval,
        EFBIG | EOVERFLOW => NfsStat::FBig,
        ENOSPC => NfsStat::NoSpc,
        EROFS => NfsStat::RoFs,
        EMLINK => NfsStat::MLink,
        ENAMETOOLONG => NfsStat::NameTooLong,
        ENOTEMPTY => NfsStat::NotEmpty,
        EDQUOT => NfsStat::DQuot,
        ESTALE => NfsStat::Stale,
        EREMOTE => NfsStat::Remote,
        // Equal on Linux; two different numbers on illumos.
        e if e == EOPNOTSUPP || e == ENOTSUP => NfsStat::NotSupp,
        // ELOOP from O_NOFOLLOW: the object is a symlink where a file or
        // directory was required.
        ELOOP => NfsStat::NotDir,
        EAGAIN | ENOMEM | EMFILE | ENFILE | EINTR => NfsStat::Jukebox,
        ETXTBSY | EBUSY => NfsStat::Acces,
        _ => NfsStat::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping_is_exact() {
        let table = [
            (libc::EACCES, NfsStat::Acces),
            (libc::ENOTEMPTY, NfsStat::NotEmpty),
            (libc::EXDEV, NfsStat::XDev),
            (libc::ENAMETOOLONG, NfsStat::NameTooLong),
            (libc::EDQUOT, NfsStat::DQuot),
            (libc::ENOSPC, NfsStat::NoSpc),
            (libc::EPERM, NfsStat::Perm),
            (libc::EROFS, NfsStat::RoFs),
            (libc::ENOTDIR, NfsStat::NotDir),
            (libc::EISDIR, NfsStat::IsDir),
            (libc::EMLINK, NfsStat::MLink),
            (libc::EFBIG, NfsStat::FBig),
            (libc::EEXIST, NfsStat::Exist),
            (libc::ENOENT, NfsStat::NoEnt),
            // Two numbers on illumos (48, 122), one on Linux.
            (libc::ENOTSUP, NfsStat::NotSupp),
            (libc::EOPNOTSUPP, NfsStat::NotSupp),
        ];
        for (errno, want) in table {
            assert_eq!(errno_to_nfsstat(errno), want, "errno {errno}");
        }
    }
}
