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
mod groupsync;
pub mod handle;
pub mod index;
mod ops;
pub mod perm;
pub mod status;

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys as stat;
pub use crate::sys::{Stat, Time};
pub use handle::{FileHandle, HandleKey};
pub use ops::*;
pub use status::NfsStat;

use cache::LruMap;
use index::{Node, Store};

pub type FsResult<T> = Result<T, NfsStat>;

/// Longest file name component accepted (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Returned internally by a lookup that missed and rebuilt the index: try
/// once more. Never leaves this module (`locate` turns it into STALE).
const RETRY: NfsStat = NfsStat::Ok;

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
    index: Store,
    /// The index holds every handle given out (it was closed cleanly or
    /// rebuilt since); when false a miss triggers a rebuild first.
    index_complete: AtomicBool,
    rebuilding: Mutex<Option<Instant>>,
    dirs: Mutex<LruMap<OwnedFd>>,
    files: Mutex<LruMap<OpenFile>>,
    /// True when the server may set ownership (it runs as root).
    pub can_chown: bool,
    /// Commit directory changes before replying (exports(5) `sync`).
    pub sync_namespace: bool,
    dir_sync: groupsync::GroupSync,
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
    pub fn open(
        name: &str,
        path: &Path,
        key: HandleKey,
        index: Store,
        index_complete: bool,
        sync_namespace: bool,
    ) -> Result<ExportFs, OpenExportError> {
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
            index,
            index_complete: AtomicBool::new(index_complete),
            rebuilding: Mutex::new(None),
            dirs: Mutex::new(LruMap::new(4096)),
            files: Mutex::new(LruMap::new(1024)),
            can_chown: nix::unistd::geteuid().is_root(),
            sync_namespace,
            dir_sync: Default::default(),
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
        let mut node = match self.index.get(st.ino) {
            Some(n) if n.gen == st.gen => n,
            _ => Node {
                gen: st.gen,
                links: Vec::new(),
            },
        };
        if node
            .links
            .iter()
            .any(|(p, n)| *p == parent && &n[..] == name)
        {
            return;
        }
        if node.links.len() >= MAX_LINKS {
            node.links.remove(0);
        }
        node.links.push((parent, name.into()));
        self.index.put(st.ino, node);
    }

    /// Forgets one link of an object (after REMOVE, RMDIR or RENAME).
    pub fn forget(&self, ino: u64, parent: u64, name: &[u8]) {
        if let Some(mut node) = self.index.get(ino) {
            let before = node.links.len();
            node.links
                .retain(|(p, n)| !(*p == parent && &n[..] == name));
            if node.links.is_empty() {
                self.index.remove(ino);
            } else if node.links.len() != before {
                self.index.put(ino, node);
            }
        }
    }

    /// Drops every cached descriptor of an object that is gone.
    pub fn evict(&self, ino: u64) {
        lock(&self.dirs).remove(ino);
        lock(&self.files).remove(ino);
    }

    fn gen_of(&self, ino: u64) -> u64 {
        if ino == self.root_ino {
            return stat::fstat(self.root.as_fd()).map(|s| s.gen).unwrap_or(0);
        }
        self.index.get(ino).map(|n| n.gen).unwrap_or(0)
    }

    fn links_of(&self, ino: u64, gen: u64) -> Vec<(u64, u64, Box<[u8]>)> {
        let Some(node) = self.index.get(ino) else {
            return Vec::new();
        };
        if node.gen != gen {
            return Vec::new();
        }
        node.links
            .into_iter()
            .map(|(p, n)| (p, self.gen_of(p), n))
            .collect()
    }

    /// Called when a handle could not be resolved through the index. If the
    /// index may be missing entries (unclean stop, lost, rolled back), walk
    /// the tree once to rebuild it; concurrent callers get JUKEBOX (the
    /// client retries shortly) instead of a premature STALE.
    fn on_miss(&self) -> NfsStat {
        if self.index_complete.load(Ordering::SeqCst) {
            return NfsStat::Stale;
        }
        let Ok(mut guard) = self.rebuilding.try_lock() else {
            return NfsStat::Jukebox;
        };
        if self.index_complete.load(Ordering::SeqCst) {
            return NfsStat::Stale;
        }
        *guard = Some(Instant::now());
        self.rebuild_index(false);
        *guard = None;
        RETRY
    }

    /// Walks the whole export and records every object's links. With
    /// `clear`, the old index is discarded first (after a rollback).
    pub fn rebuild_index(&self, clear: bool) {
        let started = Instant::now();
        tracing::info!(export = %self.name, "rebuilding the handle index: walking the export");
        if clear {
            self.index.clear();
        }
        let mut stack: Vec<(Arc<OwnedFd>, u64)> = vec![(self.root.clone(), self.root_ino)];
        let (mut objects, mut dirs) = (0u64, 0u64);
        while let Some((dfd, dino)) = stack.pop() {
            dirs += 1;
            let mut names: Vec<Vec<u8>> = Vec::new();
            let scanned = crate::sys::scan_dir(dfd.as_fd(), 0, |name, _, _| {
                if name != b"." && name != b".." {
                    names.push(name.to_vec());
                }
                true
            });
            if let Err(e) = scanned {
                tracing::warn!(export = %self.name, dir_ino = dino, error = %e, "index rebuild: cannot read a directory; its contents stay unindexed");
                continue;
            }
            for name in names {
                let Ok(cname) = CString::new(name.clone()) else {
                    continue;
                };
                let Ok(st) = stat::stat_at(dfd.as_fd(), &cname) else {
                    continue;
                };
                if st.dev != self.root_dev {
                    continue;
                }
                self.remember(dino, &name, &st);
                objects += 1;
                if objects % 50_000 == 0 {
                    tracing::info!(export = %self.name, objects, dirs, elapsed_ms = started.elapsed().as_millis() as u64, "index rebuild progress");
                }
                if st.is_dir() {
                    if let Ok(fd) =
                        open_at(dfd.as_fd(), &cname, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
                    {
                        stack.push((Arc::new(fd), st.ino));
                    }
                }
            }
        }
        self.index.mark_complete(false);
        self.index.flush();
        self.index_complete.store(true, Ordering::SeqCst);
        tracing::info!(export = %self.name, objects, dirs, elapsed_ms = started.elapsed().as_millis() as u64, "handle index rebuilt");
    }

    /// Flushes the index and records a clean close (server shutdown).
    pub fn close_index(&self) {
        self.index.close();
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
        let links = self.links_of(ino, gen);
        if links.is_empty() && depth == 0 {
            return Err(self.on_miss());
        }
        for (pino, pgen, name) in links {
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
                _ => self.forget(ino, pino, &name),
            }
        }
        Err(if depth == 0 {
            self.on_miss()
        } else {
            NfsStat::Stale
        })
    }

    /// Resolves a handle to an object of this export.
    pub fn locate(&self, fh: &FileHandle) -> FsResult<Located> {
        match self.locate_once(fh) {
            Err(RETRY) => match self.locate_once(fh) {
                Err(RETRY) => Err(NfsStat::Stale),
                r => r,
            },
            r => r,
        }
    }

    fn locate_once(&self, fh: &FileHandle) -> FsResult<Located> {
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
                // Self-repair: this link no longer leads to the object.
                _ => self.forget(fh.ino, pino, &name),
            }
        }
        Err(self.on_miss())
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
        self.rebuild_index(true);
    }

    pub fn root_fd(&self) -> &Arc<OwnedFd> {
        &self.root
    }

    pub fn root_ino(&self) -> u64 {
        self.root_ino
    }
}
