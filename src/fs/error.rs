//! Why a file operation failed: the operation and the cause, in the
//! filesystem's own terms. The NFS layer maps it to `nfsstat3` at the edge
//! (`nfs3::status`); nothing here knows the wire.

use std::fmt;

use nix::errno::Errno;

/// The operation that failed (for logs and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Resolve,
    Getattr,
    Setattr,
    Lookup,
    Access,
    Readlink,
    Read,
    Write,
    Commit,
    Create,
    Mkdir,
    Symlink,
    Mknod,
    Remove,
    Rmdir,
    Rename,
    Link,
    Readdir,
    Fsstat,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{self:?}").to_lowercase();
        f.write_str(&s)
    }
}

/// The cause. Everything the system said is `Os`; the rest are conditions
/// of the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Os(Errno),
    /// The handle names nothing that exists any more.
    Stale,
    /// The handle index is being rebuilt: the client should retry shortly.
    Busy,
    /// SETATTR's guard ctime did not match.
    GuardMismatch,
    /// A READDIR cookie from another incarnation of the directory.
    BadCookie,
    /// The reply budget cannot hold even one directory entry.
    TooSmall,
    /// MKNOD of a type that MKNOD does not make (regular, directory, link).
    BadType,
}

impl From<Errno> for Kind {
    fn from(e: Errno) -> Kind {
        if e == Errno::ESTALE {
            Kind::Stale
        } else {
            Kind::Os(e)
        }
    }
}

impl From<std::io::Error> for Kind {
    fn from(e: std::io::Error) -> Kind {
        Kind::Os(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Os(e) => write!(f, "{}", e.desc()),
            Kind::Stale => f.write_str("the object no longer exists"),
            Kind::Busy => f.write_str("the handle index is being rebuilt"),
            Kind::GuardMismatch => f.write_str("the object changed since the guard time"),
            Kind::BadCookie => f.write_str("the directory cookie is no longer valid"),
            Kind::TooSmall => f.write_str("the reply size cannot hold one entry"),
            Kind::BadType => f.write_str("not a type MKNOD makes"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {kind}")]
pub struct FsError {
    pub op: Op,
    pub kind: Kind,
}

impl FsError {
    pub fn new(op: Op, kind: impl Into<Kind>) -> FsError {
        FsError {
            op,
            kind: kind.into(),
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self.kind {
            Kind::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// Results inside the fs layer, before the operation is attached.
pub type KResult<T> = Result<T, Kind>;
pub type FsResult<T> = Result<T, FsError>;

/// Attaches the operation to an internal result.
pub trait WithOp<T> {
    fn op(self, op: Op) -> FsResult<T>;
}

impl<T> WithOp<T> for KResult<T> {
    fn op(self, op: Op) -> FsResult<T> {
        self.map_err(|kind| FsError { op, kind })
    }
}
