//! A slow disk for tests: a read-only FUSE passthrough of a directory whose
//! every read waits `delay` before answering (a cache-missing volume). Reads
//! are answered from threads of their own, so many can wait at once, as a
//! disk with many spindles or a cloud volume would serve them; lookups and
//! attributes answer at once. Files are opened direct_io, so no read is
//! served from the kernel's page cache.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen,
    Request,
};

const TTL: Duration = Duration::from_secs(1);

pub struct SlowFs {
    paths: HashMap<u64, PathBuf>,
    delay: Duration,
    /// Reads waiting right now, and the most at once.
    pub waiting: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
}

impl SlowFs {
    pub fn new(backing: &Path, delay: Duration) -> SlowFs {
        let mut paths = HashMap::new();
        paths.insert(fuser::FUSE_ROOT_ID, backing.to_path_buf());
        SlowFs {
            paths,
            delay,
            waiting: Arc::default(),
            peak: Arc::default(),
        }
    }

    fn attr(&self, ino: u64, m: &std::fs::Metadata) -> FileAttr {
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
}

impl Filesystem for SlowFs {
    fn lookup(&mut self, _: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.paths.get(&parent) else {
            return reply.error(libc::ENOENT);
        };
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                let ino = m.ino();
                self.paths.insert(ino, path);
                reply.entry(&TTL, &self.attr(ino, &m), 0);
            }
            Err(e) => reply.error(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    fn getattr(&mut self, _: &Request<'_>, ino: u64, _: Option<u64>, reply: ReplyAttr) {
        match self.paths.get(&ino).map(std::fs::symlink_metadata) {
            Some(Ok(m)) => reply.attr(&TTL, &self.attr(ino, &m)),
            _ => reply.error(libc::ENOENT),
        }
    }

    fn open(&mut self, _: &Request<'_>, _: u64, _: i32, reply: ReplyOpen) {
        reply.opened(0, fuser::consts::FOPEN_DIRECT_IO);
    }

    fn read(
        &mut self,
        _: &Request<'_>,
        ino: u64,
        _: u64,
        offset: i64,
        size: u32,
        _: i32,
        _: Option<u64>,
        reply: ReplyData,
    ) {
        let Some(path) = self.paths.get(&ino).cloned() else {
            return reply.error(libc::ENOENT);
        };
        let (delay, waiting, peak) = (self.delay, self.waiting.clone(), self.peak.clone());
        std::thread::spawn(move || {
            let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(delay);
            waiting.fetch_sub(1, Ordering::SeqCst);
            let mut buf = vec![0u8; size as usize];
            match std::fs::File::open(&path).and_then(|f| f.read_at(&mut buf, offset as u64)) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(e.raw_os_error().unwrap_or(libc::EIO)),
            }
        });
    }

    fn readdir(
        &mut self,
        _: &Request<'_>,
        ino: u64,
        _: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let Some(dir) = self.paths.get(&ino).cloned() else {
            return reply.error(libc::ENOENT);
        };
        let mut names: Vec<(u64, FileType, std::ffi::OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (ino, FileType::Directory, "..".into()),
        ];
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let m = e.metadata().ok();
                let kind = if m.as_ref().is_some_and(|m| m.is_dir()) {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                names.push((m.map(|m| m.ino()).unwrap_or(0), kind, e.file_name()));
            }
        }
        for (i, (ino, kind, name)) in names.into_iter().enumerate().skip(offset as usize) {
            if reply.add(ino, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}
