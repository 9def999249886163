//! The arguments of the 22 procedures as typed values (RFC 1813 §3.3),
//! decoded in full before anything runs: a malformed field anywhere is
//! GARBAGE_ARGS, whatever the handle in front of it says. Variable-length
//! fields borrow from the request (WRITE data reaches `pwrite` uncopied)
//! and are bounded before they are looked at.

use crate::fs::{SetAttrs, Stable, Time};
use crate::xdr::{Reader, XdrError};

use super::xdr::{fh_bytes, nfstime, sattr3, MAX_NAME_WIRE};

/// Largest WRITE payload accepted (what FSINFO's wtmax promises, plus
/// slack for clients that round up).
pub const MAX_WRITE_DATA: u32 = (1 << 20) + 4096;

pub type Decoded<T> = Result<T, XdrError>;

/// A procedure's arguments: decodes itself from the bytes after the RPC
/// header.
pub trait Args<'a>: Sized {
    fn decode(r: &mut Reader<'a>) -> Decoded<Self>;
    /// The call's first handle: the one export policy is checked on.
    fn primary(&self) -> &'a [u8];
}

mod create;
pub use create::*;

/// NULL, and the procedures whose only argument is a handle.
pub struct NoArgs;

impl<'a> Args<'a> for NoArgs {
    fn primary(&self) -> &'a [u8] {
        &[]
    }

    fn decode(_: &mut Reader<'a>) -> Decoded<Self> {
        Ok(NoArgs)
    }
}

pub struct Object<'a> {
    pub fh: &'a [u8],
}

impl<'a> Args<'a> for Object<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(Object { fh: fh_bytes(r)? })
    }
}

pub struct SetattrArgs<'a> {
    pub fh: &'a [u8],
    pub attrs: SetAttrs,
    pub guard: Option<Time>,
}

impl<'a> Args<'a> for SetattrArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(SetattrArgs {
            fh: fh_bytes(r)?,
            attrs: sattr3(r)?,
            guard: r.optional(nfstime)?,
        })
    }
}

/// A directory and a name in it (LOOKUP, REMOVE, RMDIR).
pub struct DirOp<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
}

impl<'a> Args<'a> for DirOp<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(DirOp {
            dir: fh_bytes(r)?,
            name: r.string(MAX_NAME_WIRE)?,
        })
    }
}

pub struct AccessArgs<'a> {
    pub fh: &'a [u8],
    pub want: u32,
}

impl<'a> Args<'a> for AccessArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(AccessArgs {
            fh: fh_bytes(r)?,
            want: r.u32()?,
        })
    }
}

pub struct ReadArgs<'a> {
    pub fh: &'a [u8],
    pub offset: u64,
    pub count: u32,
}

impl<'a> Args<'a> for ReadArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(ReadArgs {
            fh: fh_bytes(r)?,
            offset: r.u64()?,
            count: r.u32()?,
        })
    }
}

pub struct WriteArgs<'a> {
    pub fh: &'a [u8],
    pub offset: u64,
    pub stable: Stable,
    pub data: &'a [u8],
}

impl<'a> Args<'a> for WriteArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        let fh = fh_bytes(r)?;
        let offset = r.u64()?;
        let count = r.u32()?;
        let stable = match r.u32()? {
            0 => Stable::Unstable,
            1 => Stable::DataSync,
            2 => Stable::FileSync,
            value => {
                return Err(XdrError::BadValue {
                    what: "stable_how",
                    value,
                })
            }
        };
        let data = r.opaque(MAX_WRITE_DATA)?;
        // count may be less than the data sent (RFC 1813: write count
        // bytes); never more.
        let data = data.get(..count as usize).ok_or(XdrError::BadValue {
            what: "WRITE3args.count",
            value: count,
        })?;
        Ok(WriteArgs {
            fh,
            offset,
            stable,
            data,
        })
    }
}

/// READDIR (`plus` false: `maxcount` is the one count) and READDIRPLUS.
pub struct ReaddirArgs<'a> {
    pub dir: &'a [u8],
    pub cookie: u64,
    pub verf: [u8; 8],
    pub maxcount: u32,
}

fn verifier(r: &mut Reader<'_>) -> Decoded<[u8; 8]> {
    let v = r.opaque_fixed(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(v);
    Ok(a)
}

impl<'a> Args<'a> for ReaddirArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(ReaddirArgs {
            dir: fh_bytes(r)?,
            cookie: r.u64()?,
            verf: verifier(r)?,
            maxcount: r.u32()?,
        })
    }
}

pub struct ReaddirplusArgs<'a>(pub ReaddirArgs<'a>);

impl<'a> Args<'a> for ReaddirplusArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.0.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        let dir = fh_bytes(r)?;
        let cookie = r.u64()?;
        let verf = verifier(r)?;
        let _dircount = r.u32()?;
        Ok(ReaddirplusArgs(ReaddirArgs {
            dir,
            cookie,
            verf,
            maxcount: r.u32()?,
        }))
    }
}

pub struct CommitArgs<'a> {
    pub fh: &'a [u8],
}

impl<'a> Args<'a> for CommitArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        let fh = fh_bytes(r)?;
        let _offset = r.u64()?;
        let _count = r.u32()?;
        Ok(CommitArgs { fh })
    }
}

/// How many result bytes a call can ask for (READ count, READDIR maxcount),
/// read from the raw arguments before anything else; 0 when small.
pub fn reply_size_hint(proc_: u32, args: &[u8]) -> usize {
    let mut r = Reader::new(args);
    let n = match proc_ {
        6 => ReadArgs::decode(&mut r).map(|a| a.count).ok(),
        16 => ReaddirArgs::decode(&mut r).map(|a| a.maxcount).ok(),
        17 => ReaddirplusArgs::decode(&mut r).map(|a| a.0.maxcount).ok(),
        5 => Some(4096),
        _ => None,
    };
    n.unwrap_or(0).min(1 << 20) as usize
}
