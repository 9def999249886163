//! The export tree: resolves handles to objects, applies the caller's
//! credentials, checks permissions and performs the file operations.
//!
//! Every access is relative to a directory descriptor and never follows a
//! symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`), so no request can leave the
//! export root. Handles name objects by (inode, generation); the index maps an
//! object to the (parent, name) links through which it was seen, so a handle
//! can be resolved again by walking down from the root. Directory and file
//! descriptors are cached: a cached descriptor follows its object through
//! renames, which is why handles survive renames of any ancestor.
//!
//! This module does not know the wire format; `nfs3` translates.

mod cache;
pub mod handle;
mod ops;
pub mod perm;
pub mod stat;
pub mod status;

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub use handle::{FileHandle, HandleKey};
pub use ops::*;
pub use stat::{Stat, Time};
pub use status::NfsStat;

use cache::LruMap;

pub type FsResult<T> = Result<T, NfsStat>;

/// Longest file name component accepted (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Links remembered per object (hard links beyond this resolve through any).
const MAX_LINKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum OpenExportError {
    #[error("opening export directory {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("export path {path} is not a directory")]
    NotADirectory { path: PathBuf },
}

struct Node {
    gen: u64,
    links: Vec<(u64, Box<[u8]>)>,
}

pub struct OpenFile {
    pub file: File,
    pub writable: bool,
}

/// What a handle resolved to.
pub enum Located {
    Dir {
        fd: Arc<OwnedFd>,
        st: Stat,
    },
    Other {
        parent: Arc<OwnedFd>,
        name: CString,
        st: Stat,
    },
}

impl Located {
    pub fn stat(&self) -> &Stat {
        match self {
            Located::Dir { st, .. } | Located::Other { st, .. } => st,
        }
    }
}

pub struct ExportFs {
    pub id: u32,
    pub name: String,
    pub path: PathBuf,
    pub fsid: u64,
    root: Arc<OwnedFd>,
    root_ino: u64,
    root_dev: u64,
    key: HandleKey,
    index: Mutex<HashMap<u64, Node>>,
    dirs: Mutex<LruMap<OwnedFd>>,
    files: Mutex<LruMap<OpenFile>>,
    /// True when the server may set ownership (it runs as root).
    pub can_chown: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps in a
    // state worse than "missing an entry", so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stable 32-bit export id from the export name.
pub fn export_id_for(name: &str) -> u32 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x766f_6c6e_6673, 0x6578_706f_7274);
    h.write(name.as_bytes());
    let v = h.finish();
    (v as u32) ^ ((v >> 32) as u32)
}

/// Validates a file name component from a client.
pub fn check_name(name: &[u8]) -> FsResult<CString> {
    if name.is_empty() {
        return Err(NfsStat::Inval);
    }
    if name.len() > NAME_MAX {
        return Err(NfsStat::NameTooLong);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(NfsStat::Inval);
    }
    CString::new(name).map_err(|_| NfsStat::Inval)
}

/// Like `check_name`, and also refuses "." and ".." (for creating objects).
pub fn check_new_name(name: &[u8]) -> FsResult<CString> {
    if name == b"." || name == b".." {
        return Err(NfsStat::Exist);
    }
    check_name(name)
}

pub fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: OFlag,
    mode: u32,
) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode as _),
    )?;
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn statvfs_fsid(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let v = nix::sys::statvfs::fstatvfs(fd)?;
    Ok(v.filesystem_id() as u64)
}

impl ExportFs {
    pub fn open(name: &str, path: &Path, key: HandleKey) -> Result<ExportFs, OpenExportError> {
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            OpenExportError::Open {
                path: path.into(),
                source: Errno::EINVAL,
            }
        })?;
        // The export root itself may be reached through symlinks in the
        // server's own configuration; only what is below it is protected.
        let raw = nix::fcntl::open(
            cpath.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| match source {
            Errno::ENOTDIR => OpenExportError::NotADirectory { path: path.into() },
            source => OpenExportError::Open {
                path: path.into(),
                source,
            },
        })?;
        // SAFETY: fresh descriptor from open(2).
        let root = unsafe { OwnedFd::from_raw_fd(raw) };
        let st = stat::fstat(root.as_fd()).map_err(|source| OpenExportError::Open {
            path: path.into(),
            source,
        })?;
        let fsid = statvfs_fsid(root.as_fd()).unwrap_or(st.dev);
        Ok(ExportFs {
            id: export_id_for(name),
            name: name.to_string(),
            path: path.to_path_buf(),
            fsid,
            root_ino: st.ino,
            root_dev: st.dev,
            root: Arc::new(root),
            key,
            index: Mutex::new(HashMap::new()),
            dirs: Mutex::new(LruMap::new(4096)),
            files: Mutex::new(LruMap::new(1024)),
            can_chown: nix::unistd::geteuid().is_root(),
        })
    }

    pub fn root_stat(&self) -> FsResult<Stat> {
        Ok(stat::fstat(self.root.as_fd())?)
    }

    pub fn root_handle(&self) -> FsResult<FileHandle> {
        Ok(self.handle_for(&self.root_stat()?))
    }

    pub fn handle_for(&self, st: &Stat) -> FileHandle {
        FileHandle {
            export_id: self.id,
            fsid: self.fsid,
            ino: st.ino,
            gen: st.gen,
        }
    }

    pub fn encode_handle(&self, fh: &FileHandle) -> [u8; handle::HANDLE_LEN] {
        fh.encode(&self.key)
    }

    /// Decodes and authenticates a wire handle for this export.
    pub fn decode_handle(&self, bytes: &[u8]) -> FsResult<FileHandle> {
        let fh = FileHandle::decode(bytes, &self.key).map_err(|_| NfsStat::BadHandle)?;
        if fh.export_id != self.id || fh.fsid != self.fsid {
            return Err(NfsStat::Stale);
        }
        Ok(fh)
    }

    pub fn is_root(&self, fh: &FileHandle) -> bool {
        fh.ino == self.root_ino
    }

    /// Records that `st` is reachable as `name` in directory `parent`.
    pub fn remember(&self, parent: u64, name: &[u8], st: &Stat) {
        if st.ino == self.root_ino {
            return;
        }
        let mut idx = lock(&self.index);
        let node = idx.entry(st.ino).or_insert_with(|| Node {
            gen: st.gen,
            links: Vec::new(),
        });
        if node.gen != st.gen {
            node.gen = st.gen;
            node.links.clear();
        }
        if !node
            .links
            .iter()
            .any(|(p, n)| *p == parent && &n[..] == name)
        {
            if node.links.len() >= MAX_LINKS {
                node.links.remove(0);
            }
            node.links.push((parent, name.into()));
        }
    }

    /// Forgets one link of an object (after REMOVE, RMDIR or RENAME).
    pub fn forget(&self, ino: u64, parent: u64, name: &[u8]) {
        let mut idx = lock(&self.index);
        if let Some(node) = idx.get_mut(&ino) {
            node.links
                .retain(|(p, n)| !(*p == parent && &n[..] == name));
            if node.links.is_empty() {
                idx.remove(&ino);
            }
        }
    }

    /// Drops every cached descriptor of an object that is gone.
    pub fn evict(&self, ino: u64) {
        lock(&self.dirs).remove(ino);
        lock(&self.files).remove(ino);
    }

    fn links_of(&self, ino: u64, gen: u64) -> Vec<(u64, u64, Box<[u8]>)> {
        let idx = lock(&self.index);
        let Some(node) = idx.get(&ino) else {
            return Vec::new();
        };
        if node.gen != gen {
            return Vec::new();
        }
        node.links
            .iter()
            .map(|(p, n)| {
                let pgen = if *p == self.root_ino {
                    None
                } else {
                    idx.get(p).map(|pn| pn.gen)
                };
                (*p, pgen.unwrap_or(0), n.clone())
            })
            .collect()
    }

    fn verify(&self, st: &Stat, ino: u64, gen: u64) -> bool {
        st.ino == ino && st.gen == gen && st.dev == self.root_dev && st.nlink > 0
    }

    /// An open descriptor for directory (ino, gen).
    fn dir_fd(&self, ino: u64, gen: u64, depth: usize) -> FsResult<(Arc<OwnedFd>, Stat)> {
        if ino == self.root_ino {
            let st = stat::fstat(self.root.as_fd())?;
            return Ok((self.root.clone(), st));
        }
        if depth > 4096 {
            return Err(NfsStat::Stale);
        }
        if let Some(fd) = lock(&self.dirs).get(ino) {
            match stat::fstat(fd.as_fd()) {
                Ok(st) if self.verify(&st, ino, gen) => return Ok((fd, st)),
                _ => lock(&self.dirs).remove(ino),
            }
        }
        for (pino, pgen, name) in self.links_of(ino, gen) {
            let Ok((pfd, _)) = self.dir_fd(pino, pgen, depth + 1) else {
                continue;
            };
            let Ok(cname) = CString::new(&name[..]) else {
                continue;
            };
            let Ok(fd) = open_at(pfd.as_fd(), &cname, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
            else {
                continue;
            };
            match stat::fstat(fd.as_fd()) {
                Ok(st) if self.verify(&st, ino, gen) => {
                    let fd = Arc::new(fd);
                    lock(&self.dirs).insert(ino, fd.clone());
                    return Ok((fd, st));
                }
                _ => continue,
            }
        }
        Err(NfsStat::Stale)
    }

    /// Resolves a handle to an object of this export.
    pub fn locate(&self, fh: &FileHandle) -> FsResult<Located> {
        if fh.ino == self.root_ino {
            let (fd, st) = self.dir_fd(fh.ino, fh.gen, 0)?;
            return Ok(Located::Dir { fd, st });
        }
        if let Some(fd) = lock(&self.dirs).get(fh.ino) {
            if let Ok(st) = stat::fstat(fd.as_fd()) {
                if self.verify(&st, fh.ino, fh.gen) {
                    return Ok(Located::Dir { fd, st });
                }
            }
        }
        for (pino, pgen, name) in self.links_of(fh.ino, fh.gen) {
            let Ok((pfd, _)) = self.dir_fd(pino, pgen, 1) else {
                continue;
            };
            let Ok(cname) = CString::new(&name[..]) else {
                continue;
            };
            match stat::stat_at(pfd.as_fd(), &cname) {
                Ok(st) if self.verify(&st, fh.ino, fh.gen) => {
                    if st.is_dir() {
                        let (fd, st) = self.dir_fd(fh.ino, fh.gen, 0)?;
                        return Ok(Located::Dir { fd, st });
                    }
                    return Ok(Located::Other {
                        parent: pfd,
                        name: cname,
                        st,
                    });
                }
                _ => continue,
            }
        }
        Err(NfsStat::Stale)
    }

    /// Resolves a handle that must name a directory.
    pub fn locate_dir(&self, fh: &FileHandle) -> FsResult<(Arc<OwnedFd>, Stat)> {
        match self.locate(fh)? {
            Located::Dir { fd, st } => Ok((fd, st)),
            Located::Other { .. } => Err(NfsStat::NotDir),
        }
    }

    pub fn getattr(&self, fh: &FileHandle) -> FsResult<Stat> {
        if let Some(f) = lock(&self.files).get(fh.ino) {
            if let Ok(st) = stat::fstat(f.file.as_fd()) {
                if self.verify(&st, fh.ino, fh.gen) {
                    return Ok(st);
                }
            }
        }
        Ok(*self.locate(fh)?.stat())
    }

    /// An open regular file for I/O, cached.
    pub fn open_file(&self, fh: &FileHandle, write: bool) -> FsResult<(Arc<OpenFile>, Stat)> {
        if let Some(f) = lock(&self.files).get(fh.ino) {
            match stat::fstat(f.file.as_fd()) {
                Ok(st) if self.verify(&st, fh.ino, fh.gen) && (f.writable || !write) => {
                    return Ok((f, st))
                }
                Ok(st) if self.verify(&st, fh.ino, fh.gen) => {}
                _ => {
                    lock(&self.files).remove(fh.ino);
                }
            }
        }
        let (parent, name, st) = match self.locate(fh)? {
            Located::Dir { .. } => return Err(NfsStat::IsDir),
            Located::Other { parent, name, st } => (parent, name, st),
        };
        if !st.is_reg() {
            return Err(NfsStat::Inval);
        }
        let (fd, writable) = match open_at(parent.as_fd(), &name, OFlag::O_RDWR, 0) {
            Ok(fd) => (fd, true),
            Err(Errno::EACCES | Errno::EROFS | Errno::ETXTBSY) if !write => {
                (open_at(parent.as_fd(), &name, OFlag::O_RDONLY, 0)?, false)
            }
            Err(e) => return Err(e.into()),
        };
        let st2 = stat::fstat(fd.as_fd())?;
        if !self.verify(&st2, st.ino, st.gen) {
            return Err(NfsStat::Stale);
        }
        let of = Arc::new(OpenFile {
            file: File::from(fd),
            writable,
        });
        lock(&self.files).insert(fh.ino, of.clone());
        Ok((of, st2))
    }

    /// Drops all caches and the index (after a rollback of the dataset).
    pub fn invalidate_all(&self) {
        lock(&self.dirs).clear();
        lock(&self.files).clear();
        lock(&self.index).clear();
    }

    pub fn root_fd(&self) -> &Arc<OwnedFd> {
        &self.root
    }

    pub fn root_ino(&self) -> u64 {
        self.root_ino
    }
}
