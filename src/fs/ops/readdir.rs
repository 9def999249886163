//! READDIR and READDIRPLUS: a directory listed from a cookie, within the
//! reply budget the client allows.

use std::ffi::CString;
use std::os::fd::AsFd;

use nix::errno::Errno;

use super::perm;
use crate::fs::error::{FsError, KResult, Kind, Op};
use crate::fs::{Cred, DirEntry, DirListing, ExportFs, FileHandle};
use crate::sys;

impl ExportFs {
    /// The cookie verifier of this export's directories: cookies are
    /// directory positions, valid for as long as the filesystem is the same.
    pub fn cookie_verifier(&self) -> [u8; 8] {
        self.fsid.to_be_bytes()
    }

    /// Lists a directory from `cookie`. `entry_cost(name_len)` is what one
    /// entry adds to the reply; listing stops before `budget` is exceeded.
    /// With `plus`, every entry also gets attributes and a handle.
    pub fn readdir(
        &self,
        dir: &FileHandle,
        cred: &Cred,
        cookie: u64,
        plus: bool,
        budget: usize,
        entry_cost: &dyn Fn(usize) -> usize,
    ) -> Result<DirListing, FsError> {
        self.list(dir, cred, cookie, plus, budget, entry_cost)
            .map_err(|k| FsError::new(Op::Readdir, k))
    }

    fn list(
        &self,
        dir: &FileHandle,
        cred: &Cred,
        cookie: u64,
        plus: bool,
        budget: usize,
        entry_cost: &dyn Fn(usize) -> usize,
    ) -> KResult<DirListing> {
        let (dfd, dst) = self.locate_dir(dir)?;
        if !perm::allowed(&dst, cred, perm::READ) {
            return Err(Errno::EACCES.into());
        }
        let at_root = dir.ino == self.root_ino();
        let mut entries = Vec::new();
        let mut used = 0usize;
        let mut too_small = false;
        let eof = crate::fs::dir::scan_dir(dfd.as_fd(), cookie, |name, ino, off| {
            let cost = entry_cost(name.len());
            if used + cost > budget {
                too_small = entries.is_empty();
                return false;
            }
            used += cost;
            // ".." of the root is the root: nothing above it is exported.
            let fileid = if name == b".." && at_root {
                self.root_ino()
            } else {
                ino
            };
            entries.push(DirEntry {
                name: name.to_vec(),
                fileid,
                cookie: off,
                attr: None,
                handle: None,
            });
            true
        })?;
        if too_small {
            return Err(Kind::TooSmall);
        }
        // Entries of .zfs/snapshot are snapshot trees: clients LOOKUP them
        // (which crosses into the snapshot) instead of taking a handle here.
        if plus && !self.is_snapdir(dir.ino) {
            for e in entries.iter_mut() {
                let is_self = e.name == b"." || (e.name == b".." && at_root);
                let st = if is_self {
                    Some(dst)
                } else {
                    CString::new(e.name.clone()).ok().and_then(|c| {
                        sys::stat_at(dfd.as_fd(), &c)
                            .ok()
                            .map(|st| self.device_view(dfd.as_fd(), &c, st))
                    })
                };
                // Objects of another filesystem mounted below get no handle.
                if let Some(st) = st.filter(|s| s.dev == dst.dev) {
                    if e.name != b"." && e.name != b".." {
                        self.remember(dir.ino, &e.name, &st);
                        e.handle = Some(self.handle_for(&st));
                    } else if is_self {
                        e.handle = Some(self.handle_for(&st));
                    }
                    e.fileid = st.ino;
                    e.attr = Some(st);
                }
            }
        }
        Ok(DirListing {
            dir_attr: sys::fstat(dfd.as_fd()).ok(),
            entries,
            eof,
        })
    }
}
