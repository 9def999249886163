//! Handle resolution: from (inode, generation) to an open descriptor or a
//! (parent, name) pair, through the descriptor caches and the index.
//!
//! A handle is resolved by walking its recorded links up to the root and
//! opening down again, verifying (inode, generation, device, nlink > 0) on
//! arrival; links that no longer lead to the object are forgotten on the
//! way (self-repair). After an unclean stop the index may miss entries: a
//! miss searches for them first (see `rebuild`) before a handle is
//! declared STALE.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::error::{KResult, Kind};
use super::index::Node;
use super::{lock, open_at, open_dir_at, ExportFs, FileHandle, OpenFile, Stat};
use crate::sys;

/// Links remembered per object (hard links beyond this resolve through any).
const MAX_LINKS: usize = 8;

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

/// One resolution attempt's outcome: a miss after a rebuild is retried once.
pub(super) enum Miss {
    Fail(Kind),
    Retry,
}

impl From<Kind> for Miss {
    fn from(k: Kind) -> Miss {
        Miss::Fail(k)
    }
}

impl ExportFs {
    /// Records that `st` is reachable as `name` in directory `parent`.
    /// Returns whether the link was new to the index.
    pub(super) fn remember(&self, parent: u64, name: &[u8], st: &Stat) -> bool {
        if st.ino == self.root_ino {
            return false;
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
            return false;
        }
        if node.links.len() >= MAX_LINKS {
            node.links.remove(0);
        }
        node.links.push((parent, name.into()));
        self.index.put(st.ino, node);
        true
    }

    /// Forgets one link of an object (after REMOVE, RMDIR or RENAME).
    pub(super) fn forget(&self, ino: u64, parent: u64, name: &[u8]) {
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
    pub(super) fn evict(&self, ino: u64) {
        lock(&self.dirs).remove(ino);
        lock(&self.files).remove(ino);
    }

    /// The object's path (the export's path and the first recorded link at
    /// each level), for log lines; `None` if the index does not reach it.
    pub fn path_of(&self, ino: u64) -> Option<std::path::PathBuf> {
        let mut names = Vec::new();
        let mut at = ino;
        while at != self.root_ino {
            if names.len() > 4096 {
                return None;
            }
            let node = self.index.get(at)?;
            let (parent, name) = node.links.first()?;
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
            at = *parent;
        }
        let mut p = self.path.clone();
        p.extend(names.iter().rev());
        Some(p)
    }

    pub(super) fn gen_of(&self, ino: u64) -> u64 {
        if ino == self.root_ino {
            return self.root_gen;
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

    fn verify(&self, st: &Stat, ino: u64, gen: u64) -> bool {
        st.ino == ino && st.gen == gen && st.dev == self.root_dev && st.nlink > 0
    }

    /// An open descriptor for directory (ino, gen).
    pub(super) fn dir_fd(
        &self,
        ino: u64,
        gen: u64,
        depth: usize,
    ) -> Result<(Arc<OwnedFd>, Stat), Miss> {
        if ino == self.root_ino {
            let st = sys::fstat(self.root.as_fd()).map_err(Kind::from)?;
            return Ok((self.root.clone(), st));
        }
        if depth > 4096 {
            return Err(Kind::Stale.into());
        }
        if let Some(fd) = lock(&self.dirs).get(ino) {
            match sys::fstat(fd.as_fd()) {
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
            let Ok(fd) = open_dir_at(pfd.as_fd(), &cname) else {
                continue;
            };
            match sys::fstat(fd.as_fd()) {
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
            Miss::Fail(Kind::Stale)
        })
    }

    /// Resolves a handle to an object of this export.
    pub fn locate(&self, fh: &FileHandle) -> KResult<Located> {
        // A miss may search the recently changed directories, then walk
        // the export: at most two retries.
        for _ in 0..3 {
            match self.locate_once(fh) {
                Ok(l) => return Ok(l),
                Err(Miss::Fail(k)) => return Err(k),
                Err(Miss::Retry) => {}
            }
        }
        Err(Kind::Stale)
    }

    fn locate_once(&self, fh: &FileHandle) -> Result<Located, Miss> {
        if fh.ino == self.root_ino {
            if fh.gen != self.root_gen {
                return Err(Kind::Stale.into());
            }
            let (fd, st) = self.dir_fd(fh.ino, fh.gen, 0)?;
            return Ok(Located::Dir { fd, st });
        }
        if let Some(fd) = lock(&self.dirs).get(fh.ino) {
            if let Ok(st) = sys::fstat(fd.as_fd()) {
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
            match sys::stat_at(pfd.as_fd(), &cname) {
                Ok(st) if self.verify(&st, fh.ino, fh.gen) => {
                    let st = self.device_view(pfd.as_fd(), &cname, st);
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
    pub fn locate_dir(&self, fh: &FileHandle) -> KResult<(Arc<OwnedFd>, Stat)> {
        match self.locate(fh)? {
            Located::Dir { fd, st } => Ok((fd, st)),
            Located::Other { .. } => Err(Errno::ENOTDIR.into()),
        }
    }

    /// Attributes of the object a handle names (through its cached open
    /// descriptor when there is one).
    pub(super) fn stat_of(&self, fh: &FileHandle) -> KResult<Stat> {
        if let Some(f) = lock(&self.files).get(fh.ino) {
            if let Ok(st) = sys::fstat(f.file.as_fd()) {
                if self.verify(&st, fh.ino, fh.gen) {
                    return Ok(st);
                }
            }
        }
        Ok(*self.locate(fh)?.stat())
    }

    /// An open regular file for I/O, cached.
    pub(super) fn open_file(&self, fh: &FileHandle, write: bool) -> KResult<(Arc<OpenFile>, Stat)> {
        if let Some(f) = lock(&self.files).get(fh.ino) {
            match sys::fstat(f.file.as_fd()) {
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
            Located::Dir { .. } => return Err(Errno::EISDIR.into()),
            Located::Other { parent, name, st } => (parent, name, st),
        };
        if !st.is_reg() {
            return Err(Errno::EINVAL.into());
        }
        let (fd, writable) = match open_at(parent.as_fd(), &name, OFlag::O_RDWR, 0) {
            Ok(fd) => (fd, true),
            Err(Errno::EACCES | Errno::EROFS | Errno::ETXTBSY) if !write => {
                (open_at(parent.as_fd(), &name, OFlag::O_RDONLY, 0)?, false)
            }
            Err(e) => return Err(e.into()),
        };
        let st2 = sys::fstat(fd.as_fd())?;
        if !self.verify(&st2, st.ino, st.gen) {
            return Err(Kind::Stale);
        }
        let of = Arc::new(OpenFile {
            file: std::fs::File::from(fd),
            writable,
        });
        lock(&self.files).insert(fh.ino, of.clone());
        Ok((of, st2))
    }

    /// After the dataset changed under the server (a rollback): drops every
    /// cached descriptor and marks the index unverified. Its entries stay:
    /// each is verified on use (inode, generation) as after a crash, and the
    /// first handle it cannot resolve walks the tree. So the pause a
    /// rollback causes does not grow with the number of files.
    pub fn invalidate_all(&self) {
        lock(&self.dirs).clear();
        lock(&self.files).clear();
        self.forget_marks();
        self.forget_snapshots();
        self.index.mark_complete(false);
        self.index_complete.store(false, Ordering::SeqCst);
        // What is missing now was not made recently: only a walk finds it.
        self.recent_searched.store(true, Ordering::SeqCst);
    }
}
