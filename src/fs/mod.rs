//! The export tree: resolves handles to objects, applies the caller's
//! credentials, checks permissions and performs the file operations.
//!
//! Every access is relative to a directory descriptor and never follows a
//! symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`), so no request can leave the
//! export root. Handles name objects by (inode, generation); the index maps an
//! object to the (parent, name) links through which it was seen, so a handle
//! can be resolved again by walking down from the root (`resolve`). Directory
//! and file descriptors are cached: a cached descriptor follows its object
//! through renames, which is why handles survive renames of any ancestor.
//!
//! Operations return `FsError` (the operation and its cause); this module
//! does not know the wire format, `nfs3` translates. Every operation here may
//! block on the disk: callers run them on the file I/O pool.

mod cache;
pub mod check;
pub mod cred;
pub mod devices;
mod dir;
pub mod error;
mod groupsync;
pub mod handle;
pub mod index;
mod ops;
pub mod perm;
mod rebuild;
mod resolve;
pub mod snapshots;
pub mod types;

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub use crate::sys::{Stat, Time};
pub use cred::Cred;
pub use error::{FsError, FsResult, Kind, Op};
pub use handle::{FileHandle, HandleKey};
pub use ops::ReadResult;
pub use resolve::Located;
pub use types::*;

use cache::LruMap;
use error::KResult;
use index::Store;

/// Longest file name component accepted (NAME_MAX).
pub const NAME_MAX: usize = 255;

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

/// How an export treats what clients may do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Commit namespace changes before replying (exports(5) `sync`).
    pub sync_namespace: bool,
    pub device_nodes: devices::DeviceNodes,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            sync_namespace: true,
            device_nodes: devices::DeviceNodes::Emulate,
        }
    }
}

pub struct OpenFile {
    pub file: File,
    pub writable: bool,
}

pub struct ExportFs {
    pub id: u32,
    pub name: String,
    pub path: PathBuf,
    pub fsid: u64,
    root: Arc<OwnedFd>,
    root_ino: u64,
    root_dev: u64,
    root_gen: u64,
    key: HandleKey,
    index: Store,
    /// The index holds every handle given out (it was closed cleanly or
    /// rebuilt since); when false a miss triggers a rebuild first.
    index_complete: AtomicBool,
    rebuilding: Mutex<Option<Instant>>,
    /// The search of recently changed directories was made (or cannot
    /// help); further misses walk the export (`rebuild`).
    recent_searched: AtomicBool,
    dirs: Mutex<LruMap<OwnedFd>>,
    files: Mutex<LruMap<OpenFile>>,
    /// True when the server may set ownership (it runs as root).
    pub can_chown: bool,
    /// Commit directory changes before replying (exports(5) `sync`).
    pub sync_namespace: bool,
    /// Calls that find their object's descriptor cached may be answered
    /// without waiting (`ops::nowait`): a local filesystem on Linux.
    pub nowait: bool,
    /// A filesystem of this machine's disks or memory, not FUSE or a
    /// network one (`sys::local_filesystem`): only there may a polling
    /// session run a quick call on its own thread.
    pub local: bool,
    /// Whether the filesystem takes buffered writes with RWF_NOWAIT (XFS,
    /// btrfs do; ext4 answers EOPNOTSUPP): cleared on the first refusal, so
    /// WRITEs then go straight to the pool without a wasted system call.
    write_nowait: std::sync::atomic::AtomicBool,
    /// MKNOD of devices: emulated with marked placeholders, or refused.
    pub devices: devices::DeviceNodes,
    marks: devices::MarkCache,
    dir_sync: groupsync::GroupSync,
    /// The live export's `.zfs` control directory and the snapshots
    /// opened below it (`None`: not a ZFS dataset root, or a snapshot).
    snapshots: Option<snapshots::Snapshots>,
    /// When this tree is a snapshot: which, and the way back up.
    snapshot: Option<snapshots::SnapshotOf>,
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
pub fn check_name(name: &[u8]) -> KResult<CString> {
    if name.is_empty() {
        return Err(Errno::EINVAL.into());
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG.into());
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL.into());
    }
    CString::new(name).map_err(|_| Errno::EINVAL.into())
}

/// Like `check_name`, and also refuses "." and ".." (for creating objects).
pub fn check_new_name(name: &[u8]) -> KResult<CString> {
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST.into());
    }
    check_name(name)
}

/// Opens `name` in `dir`, never following a symlink.
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

fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
}

impl ExportFs {
    pub fn open(
        name: &str,
        path: &Path,
        key: HandleKey,
        index: Store,
        index_complete: bool,
        opts: ExportOptions,
    ) -> Result<ExportFs, OpenExportError> {
        let err = |source| OpenExportError::Open {
            path: path.into(),
            source,
        };
        let cpath =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| err(Errno::EINVAL))?;
        // The export root itself may be reached through symlinks in the
        // server's own configuration; only what is below it is protected.
        let raw = nix::fcntl::open(
            cpath.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| match source {
            Errno::ENOTDIR => OpenExportError::NotADirectory { path: path.into() },
            source => err(source),
        })?;
        // SAFETY: fresh descriptor from open(2).
        let root = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut fs =
            Self::from_root(name, path, root, key, index, index_complete, opts).map_err(err)?;
        if fs.gen_missing() {
            tracing::warn!(export = name, path = %path.display(), "the export's filesystem keeps no creation time: a removed file's handle may reach a new file that reuses its inode number (use ZFS, ext4 or XFS)");
        }
        fs.snapshots = snapshots::Snapshots::probe(&fs.root);
        Ok(fs)
    }

    /// An export tree rooted at an open directory: the live export, or a
    /// snapshot of it (`snapshots`).
    fn from_root(
        name: &str,
        path: &Path,
        root: OwnedFd,
        key: HandleKey,
        index: Store,
        index_complete: bool,
        opts: ExportOptions,
    ) -> Result<ExportFs, Errno> {
        let st = crate::sys::fstat(root.as_fd())?;
        let fsid = crate::sys::filesystem_id(root.as_fd()).unwrap_or(st.dev);
        let nowait = crate::sys::serves_cached_io_without_blocking(root.as_fd());
        let local = crate::sys::local_filesystem(root.as_fd());
        Ok(ExportFs {
            id: export_id_for(name),
            name: name.to_string(),
            path: path.to_path_buf(),
            fsid,
            root_ino: st.ino,
            root_dev: st.dev,
            root_gen: st.gen,
            root: Arc::new(root),
            key,
            index,
            index_complete: AtomicBool::new(index_complete),
            rebuilding: Mutex::new(None),
            recent_searched: AtomicBool::new(index_complete),
            dirs: Mutex::new(LruMap::new(4096)),
            files: Mutex::new(LruMap::new(1024)),
            can_chown: nix::unistd::geteuid().is_root(),
            sync_namespace: opts.sync_namespace,
            nowait,
            local,
            write_nowait: std::sync::atomic::AtomicBool::new(nowait),
            devices: opts.device_nodes,
            marks: devices::new_cache(),
            dir_sync: Default::default(),
            snapshots: None,
            snapshot: None,
        })
    }

    fn gen_missing(&self) -> bool {
        self.root_gen == 0
    }

    pub fn root_stat(&self) -> FsResult<Stat> {
        crate::sys::fstat(self.root.as_fd()).map_err(|e| FsError::new(Op::Getattr, e))
    }

    /// The export root's handle, without touching the disk: its identity
    /// was read when the export was opened.
    pub fn root_handle(&self) -> FileHandle {
        FileHandle {
            export_id: self.id,
            fsid: self.fsid,
            ino: self.root_ino,
            gen: self.root_gen,
        }
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
    pub fn decode_handle(&self, bytes: &[u8]) -> Result<FileHandle, handle::Refusal> {
        let fh = FileHandle::decode(bytes, &self.key).map_err(|_| handle::Refusal::Bad)?;
        if fh.export_id != self.id || fh.fsid != self.fsid {
            return Err(handle::Refusal::Stale);
        }
        Ok(fh)
    }

    pub(crate) fn key(&self) -> &HandleKey {
        &self.key
    }

    pub fn is_root(&self, fh: &FileHandle) -> bool {
        fh.ino == self.root_ino
    }

    pub fn root_fd(&self) -> &Arc<OwnedFd> {
        &self.root
    }

    pub fn root_ino(&self) -> u64 {
        self.root_ino
    }

    /// Flushes the index and records a clean close (server shutdown).
    pub fn close_index(&self) {
        self.index.close();
    }
}

#[cfg(test)]
mod tests;
