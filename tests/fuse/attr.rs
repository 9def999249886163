//! FUSE attributes of a file in a passthrough's backing directory: shared by
//! the test filesystems (`slow_disk/slowfs.rs`, `io_errors/faultyfs.rs`).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{FileAttr, FileType};

/// `m` (a regular file or a directory) as inode `ino`.
pub fn attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    let t = |s: i64, ns: i64| UNIX_EPOCH + Duration::new(s.max(0) as u64, ns as u32);
    FileAttr {
        ino,
        size: m.len(),
        blocks: m.blocks(),
        atime: t(m.atime(), m.atime_nsec()),
        mtime: t(m.mtime(), m.mtime_nsec()),
        ctime: t(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: if m.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}
