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

use super::io::{clears_setid, ReadResult};
use crate::fs::error::{FsError, Op};
use crate::fs::perm;
use crate::fs::{lock, Cred, ExportFs, FileHandle, OpenFile, Stat, Wcc, WccAttr};
use crate::sys;

impl ExportFs {
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

    /// GETATTR from a cached descriptor (file, directory or the root).
    pub fn getattr_nowait(&self, fh: &FileHandle) -> Option<Stat> {
        if !self.nowait {
            return None;
        }
        if fh.ino == self.root_ino {
            return sys::fstat(self.root.as_fd())
                .ok()
                .filter(|st| self.still_is(st, fh));
        }
        if let Some((_, st)) = self.cached_file(fh) {
            return Some(st);
        }
        let d = lock(&self.dirs).get(fh.ino)?;
        sys::fstat(d.as_fd())
            .ok()
            .filter(|st| self.still_is(st, fh))
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
