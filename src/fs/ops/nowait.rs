//! The calls that can be answered without waiting for the disk, so an
//! async worker may answer them directly (no hop to the file I/O pool):
//! only through a descriptor already open and cached (its inode is in
//! memory, fstat does no I/O), only on a local filesystem on Linux
//! (`ExportFs::nowait`), and only if the kernel confirms the data needs no
//! disk (RWF_NOWAIT). Anything else returns `None`: the caller takes the
//! ordinary path on the pool. illumos and posix mode never come here.

use std::os::fd::AsFd;
use std::sync::Arc;

use nix::errno::Errno;

use std::os::fd::OwnedFd;

use super::io::{clears_setid, ReadResult};
use crate::fs::error::{FsError, Op};
use crate::fs::index::Node;
use crate::fs::perm::{self, EXEC};
use crate::fs::{check_name, lock, Cred, ExportFs, FileHandle, OpenFile, Stat, Wcc, WccAttr};
use crate::sys;

/// Links an object may have in the index (as `resolve::MAX_LINKS`).
const MAX_LINKS: usize = 8;

impl ExportFs {
    /// Whether the filesystem takes buffered writes with RWF_NOWAIT (so a
    /// refused one would have waited).
    pub fn takes_nowait_writes(&self) -> bool {
        self.write_nowait.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cached open file of `fh`, when it is still that object.
    fn cached_file(&self, fh: &FileHandle) -> Option<(Arc<OpenFile>, Stat)> {
        if !self.nowait {
            return None;
        }
        let f = lock(&self.files).get(fh.ino)?;
        let st = sys::fstat(f.file.as_fd()).ok()?;
        self.still_is(&st, fh).then_some((f, st))
    }

    fn still_is(&self, st: &Stat, fh: &FileHandle) -> bool {
        st.ino == fh.ino && st.gen == fh.gen && st.dev == self.root_dev && st.nlink > 0
    }

    /// The cached descriptor of directory `fh` (or the root).
    fn cached_dir(&self, fh: &FileHandle) -> Option<(Arc<OwnedFd>, Stat)> {
        let fd = if fh.ino == self.root_ino {
            self.root.clone()
        } else {
            lock(&self.dirs).get(fh.ino)?
        };
        let st = sys::fstat(fd.as_fd()).ok()?;
        self.still_is(&st, fh).then_some((fd, st))
    }

    /// GETATTR without waiting: through a cached descriptor, or through the
    /// object's recorded name in a cached directory, resolved from the
    /// kernel's dentry cache.
    pub fn getattr_nowait(&self, fh: &FileHandle) -> Option<Stat> {
        if !self.nowait {
            return None;
        }
        if let Some((_, st)) = self.cached_dir(fh) {
            return Some(st);
        }
        if let Some((_, st)) = self.cached_file(fh) {
            return Some(st);
        }
        let node = self.index.get_nowait(fh.ino)??;
        if node.gen != fh.gen {
            return None;
        }
        let (pino, name) = node.links.first()?;
        let pgen = if *pino == self.root_ino {
            self.root_gen
        } else {
            self.index.get_nowait(*pino)??.gen
        };
        let parent = FileHandle {
            ino: *pino,
            gen: pgen,
            ..*fh
        };
        let (pfd, _) = self.cached_dir(&parent)?;
        let cname = std::ffi::CString::new(&name[..]).ok()?;
        let st = sys::lookup_nowait(pfd.as_fd(), &cname)?.ok()?;
        if !self.still_is(&st, fh) {
            return None;
        }
        self.device_view_nowait(st)
    }

    /// Records a link without waiting: only when the object's index entry
    /// is in memory. False = the caller must take the ordinary path.
    fn remember_nowait(&self, parent: u64, name: &[u8], st: &Stat) -> bool {
        if st.ino == self.root_ino {
            return true;
        }
        let Some(known) = self.index.get_nowait(st.ino) else {
            return false;
        };
        let mut node = match known {
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
            return true;
        }
        if node.links.len() >= MAX_LINKS {
            node.links.remove(0);
        }
        node.links.push((parent, name.into()));
        self.index.put(st.ino, node);
        true
    }

    /// LOOKUP without waiting: the directory's descriptor cached, the name
    /// in the kernel's dentry cache, the object's index entry in memory.
    #[allow(clippy::type_complexity)]
    pub fn lookup_nowait(
        &self,
        dir: &FileHandle,
        name: &[u8],
        cred: &Cred,
    ) -> Option<(Option<Stat>, Result<(FileHandle, Stat), FsError>)> {
        if !self.nowait || name == b"." || name == b".." || self.is_control(dir.ino) {
            return None;
        }
        let (dfd, dst) = self.cached_dir(dir)?;
        if !perm::allowed(&dst, cred, EXEC) {
            return Some((Some(dst), Err(FsError::new(Op::Lookup, Errno::EACCES))));
        }
        let cname = match check_name(name) {
            Ok(c) => c,
            Err(k) => return Some((Some(dst), Err(FsError::new(Op::Lookup, k)))),
        };
        match sys::lookup_nowait(dfd.as_fd(), &cname)? {
            Err(e) => Some((Some(dst), Err(FsError::new(Op::Lookup, e)))),
            Ok(st) if st.dev == dst.dev && self.remember_nowait(dir.ino, name, &st) => {
                let st = self.device_view_nowait(st)?;
                Some((Some(dst), Ok((self.handle_for(&st), st))))
            }
            Ok(_) => None,
        }
    }

    /// READ from the page cache through a cached descriptor; `None` if the
    /// file is not open or any byte would come from the disk.
    pub fn read_nowait(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        offset: u64,
        count: u32,
        out: &mut Vec<u8>,
    ) -> Option<(Option<Stat>, Result<ReadResult, FsError>)> {
        let (f, st) = self.cached_file(fh)?;
        if !perm::may_read_data(&st, cred) {
            return Some((Some(st), Err(FsError::new(Op::Read, Errno::EACCES))));
        }
        let count = (count as u64).min(st.size.saturating_sub(offset)) as usize;
        let start = out.len();
        out.reserve(count + 4);
        let mut done = 0;
        while done < count {
            let spare = &mut out.spare_capacity_mut()[..count - done];
            match sys::pread_nowait(f.file.as_fd(), spare, offset + done as u64) {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    // SAFETY: the kernel initialised these n bytes.
                    unsafe { out.set_len(start + done) };
                }
                Err(Errno::EINTR) => continue,
                // EAGAIN (not cached), EOPNOTSUPP (no RWF_NOWAIT here), or a
                // real error: the pool does it properly and reports it.
                Err(_) => {
                    out.truncate(start);
                    return None;
                }
            }
        }
        let after = sys::fstat(f.file.as_fd()).ok()?;
        let eof = offset.saturating_add(done as u64) >= after.size;
        Some((
            Some(after),
            Ok(ReadResult {
                count: done as u32,
                eof,
            }),
        ))
    }

    /// An UNSTABLE WRITE into the page cache through a cached writable
    /// descriptor; `None` if the write would wait (or the file needs more
    /// than the data written: set-id bits to clear).
    pub fn write_nowait(
        &self,
        fh: &FileHandle,
        cred: &Cred,
        offset: u64,
        data: &[u8],
    ) -> Option<(Wcc, Result<u32, FsError>)> {
        if !self.write_nowait.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let (f, st) = self.cached_file(fh)?;
        if !f.writable
            || clears_setid(&st, cred)
            || offset.checked_add(data.len() as u64)? > i64::MAX as u64
        {
            return None;
        }
        if !perm::may_write_data(&st, cred) {
            return Some((
                Wcc::unchanged(&st),
                Err(FsError::new(Op::Write, Errno::EACCES)),
            ));
        }
        let mut done = 0;
        while done < data.len() {
            match sys::pwrite_nowait(f.file.as_fd(), &data[done..], offset + done as u64) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EOPNOTSUPP) => {
                    self.write_nowait
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    return None;
                }
                // Rewriting the same bytes on the pool is harmless.
                Err(_) => return None,
            }
        }
        let after = sys::fstat(f.file.as_fd()).ok();
        Some((
            Wcc {
                before: Some(WccAttr::from(&st)),
                after,
            },
            Ok(data.len() as u32),
        ))
    }
}
