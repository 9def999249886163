//! Object attributes as the server sees them: the platform-neutral result of
//! `sys::stat_at` and `sys::fstat`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes allocated on disk.
    pub used: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev: u64,
    pub ino: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// The handle generation: derived from the object's creation time, so a
    /// removed object's inode number, once reused, names a different object.
    /// 0 where the filesystem keeps no creation time.
    pub gen: u64,
}

impl Stat {
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
}

/// The generation of an object created at `crtime`: unique per creation as
/// far as the clock resolves (nanoseconds on ZFS and ext4).
pub fn generation_from_crtime(sec: i64, nsec: u32) -> u64 {
    ((sec as u64) << 30) ^ nsec as u64
}
