//! Arguments of the procedures that make or link names: CREATE, MKDIR,
//! SYMLINK, MKNOD, RENAME, LINK.

use crate::fs::{CreateHow, NodeKind, SetAttrs};
use crate::xdr::{Reader, XdrError};

use super::{Args, Decoded};
use crate::nfs3::xdr::{createhow3, fh_bytes, sattr3, MAX_NAME_WIRE, MAX_PATH_WIRE};

pub struct CreateArgs<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
    pub how: CreateHow,
}

impl<'a> Args<'a> for CreateArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(CreateArgs {
            dir: fh_bytes(r)?,
            name: r.string(MAX_NAME_WIRE)?,
            how: createhow3(r)?,
        })
    }
}

pub struct MkdirArgs<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
    pub attrs: SetAttrs,
}

impl<'a> Args<'a> for MkdirArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(MkdirArgs {
            dir: fh_bytes(r)?,
            name: r.string(MAX_NAME_WIRE)?,
            attrs: sattr3(r)?,
        })
    }
}

pub struct SymlinkArgs<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
    pub target: &'a [u8],
}

impl<'a> Args<'a> for SymlinkArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        let dir = fh_bytes(r)?;
        let name = r.string(MAX_NAME_WIRE)?;
        // The symlink's attributes: a symlink's mode is always 0777.
        let _attrs = sattr3(r)?;
        Ok(SymlinkArgs {
            dir,
            name,
            target: r.string(MAX_PATH_WIRE)?,
        })
    }
}

/// What MKNOD is asked to make.
pub enum MknodWhat {
    Node(NodeKind, SetAttrs, (u32, u32)),
    /// NF3REG, NF3DIR, NF3LNK: not MKNOD's to make (NFS3ERR_BADTYPE).
    WrongType,
}

pub struct MknodArgs<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
    pub what: MknodWhat,
}

impl<'a> Args<'a> for MknodArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        let dir = fh_bytes(r)?;
        let name = r.string(MAX_NAME_WIRE)?;
        let what = match r.u32()? {
            t @ (3 | 4) => {
                let a = sattr3(r)?;
                let dev = (r.u32()?, r.u32()?);
                let kind = if t == 3 {
                    NodeKind::BlockDevice
                } else {
                    NodeKind::CharDevice
                };
                MknodWhat::Node(kind, a, dev)
            }
            6 => MknodWhat::Node(NodeKind::Socket, sattr3(r)?, (0, 0)),
            7 => MknodWhat::Node(NodeKind::Fifo, sattr3(r)?, (0, 0)),
            1 | 2 | 5 => MknodWhat::WrongType,
            value => {
                return Err(XdrError::BadValue {
                    what: "ftype3",
                    value,
                })
            }
        };
        Ok(MknodArgs { dir, name, what })
    }
}

pub struct RenameArgs<'a> {
    pub from_dir: &'a [u8],
    pub from: &'a [u8],
    pub to_dir: &'a [u8],
    pub to: &'a [u8],
}

impl<'a> Args<'a> for RenameArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.from_dir
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(RenameArgs {
            from_dir: fh_bytes(r)?,
            from: r.string(MAX_NAME_WIRE)?,
            to_dir: fh_bytes(r)?,
            to: r.string(MAX_NAME_WIRE)?,
        })
    }
}

pub struct LinkArgs<'a> {
    pub fh: &'a [u8],
    pub dir: &'a [u8],
    pub name: &'a [u8],
}

impl<'a> Args<'a> for LinkArgs<'a> {
    fn primary(&self) -> &'a [u8] {
        self.fh
    }

    fn decode(r: &mut Reader<'a>) -> Decoded<Self> {
        Ok(LinkArgs {
            fh: fh_bytes(r)?,
            dir: fh_bytes(r)?,
            name: r.string(MAX_NAME_WIRE)?,
        })
    }
}
