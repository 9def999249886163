//! The values file operations take and return: weak cache consistency data,
//! attributes to set, create modes, directory listings, filesystem space.

use super::handle::FileHandle;
use crate::sys::{Stat, Time};

/// The pre-operation attributes of RFC 1813 `wcc_attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WccAttr {
    pub size: u64,
    pub mtime: Time,
    pub ctime: Time,
}

impl From<&Stat> for WccAttr {
    fn from(s: &Stat) -> Self {
        WccAttr {
            size: s.size,
            mtime: s.mtime,
            ctime: s.ctime,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wcc {
    pub before: Option<WccAttr>,
    pub after: Option<Stat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTime {
    #[default]
    DontChange,
    ServerTime,
    ClientTime(Time),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: SetTime,
    pub mtime: SetTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateHow {
    Unchecked(SetAttrs),
    Guarded(SetAttrs),
    Exclusive([u8; 8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stable {
    Unstable = 0,
    DataSync = 1,
    FileSync = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub fileid: u64,
    pub cookie: u64,
    /// READDIRPLUS only.
    pub attr: Option<Stat>,
    pub handle: Option<FileHandle>,
}

#[derive(Debug, Clone)]
pub struct DirListing {
    pub dir_attr: Option<Stat>,
    pub entries: Vec<DirEntry>,
    pub eof: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct FsStatInfo {
    pub tbytes: u64,
    pub fbytes: u64,
    pub abytes: u64,
    pub tfiles: u64,
    pub ffiles: u64,
    pub afiles: u64,
}

impl Wcc {
    /// A refused change: the object was looked at and left as it was.
    pub fn unchanged(st: &Stat) -> Wcc {
        Wcc {
            before: Some(st.into()),
            after: Some(*st),
        }
    }
}

/// A new object made by CREATE, MKDIR, SYMLINK or MKNOD.
pub type NewObject = (FileHandle, Stat);
