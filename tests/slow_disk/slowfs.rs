//! A slow disk for tests: a read-only FUSE passthrough of a directory whose
//! every read waits `delay` before answering (a cache-missing volume). Reads
//! are answered from threads of their own, so many can wait at once, as a
//! disk with many spindles or a cloud volume would serve them. Lookups and
//! attributes answer at once, or, `with_slow_metadata`, they wait too (cold
//! inodes; the root's attributes stay prompt) and the kernel caches none of
//! them. Files are opened direct_io, so no read is served from the kernel's
//! page cache.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{
    FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};

const TTL: Duration = Duration::from_secs(1);

pub struct SlowFs {
    paths: Arc<Mutex<HashMap<u64, PathBuf>>>,
    delay: Duration,
    /// How long a lookup or a non-root getattr waits (zero: not at all).
    meta_delay: Duration,
    /// Lookups and non-root getattrs asked so far.
    pub meta_calls: Arc<AtomicUsize>,
    /// Reads waiting right now, and the most at once.
    pub waiting: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
}

impl SlowFs {
    pub fn new(backing: &Path, delay: Duration) -> SlowFs {
        let mut paths = HashMap::new();
        paths.insert(fuser::FUSE_ROOT_ID, backing.to_path_buf());
        SlowFs {
            paths: Arc::new(Mutex::new(paths)),
            delay,
            meta_delay: Duration::ZERO,
            meta_calls: Arc::default(),
            waiting: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// Lookups and attributes (but the root's) wait `delay` too.
    pub fn with_slow_metadata(mut self, delay: Duration) -> SlowFs {
        self.meta_delay = delay;
        self
    }

    /// How long the kernel may cache an entry or attributes.
    fn ttl(&self) -> Duration {
        if self.meta_delay.is_zero() {
            TTL
        } else {
            Duration::ZERO
        }
    }

    fn path(&self, ino: u64) -> Option<PathBuf> {
        self.paths.lock().unwrap().get(&ino).cloned()
    }

    /// Runs `answer` now, or after the metadata delay on a thread of its
    /// own (so many can wait at once).
    fn metadata(&self, answer: impl FnOnce() + Send + 'static) {
        self.meta_calls.fetch_add(1, Ordering::SeqCst);
        if self.meta_delay.is_zero() {
            return answer();
        }
        let delay = self.meta_delay;
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            answer();
        });
    }
}

/// FUSE_PARALLEL_DIROPS (ABI 7.25): without it the kernel looks names up in
/// one directory one at a time (a per-directory mutex), which no disk
/// filesystem does. The raw bit: fuser names it only with its `abi-7-25`
/// feature.
const PARALLEL_DIROPS: u32 = 1 << 18;

impl Filesystem for SlowFs {
    fn init(
        &mut self,
        _: &Request<'_>,
        config: &mut fuser::KernelConfig,
    ) -> Result<(), libc::c_int> {
        // A kernel without it (before 4.7) keeps lookups serial.
        let _ = config.add_capabilities(PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&mut self, _: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.path(parent) else {
            return reply.error(libc::ENOENT);
        };
        let path = dir.join(name);
        let (paths, ttl) = (self.paths.clone(), self.ttl());
        self.metadata(move || match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                let ino = m.ino();
                paths.lock().unwrap().insert(ino, path);
                reply.entry(&ttl, &crate::fuse_attr::attr(ino, &m), 0);
            }
            Err(e) => reply.error(e.raw_os_error().unwrap_or(libc::EIO)),
        });
    }

    fn getattr(&mut self, _: &Request<'_>, ino: u64, _: Option<u64>, reply: ReplyAttr) {
        let ttl = self.ttl();
        let answer = match self.path(ino).map(std::fs::symlink_metadata) {
            Some(Ok(m)) => Ok(crate::fuse_attr::attr(ino, &m)),
            _ => Err(libc::ENOENT),
        };
        let send = move || match answer {
            Ok(a) => reply.attr(&ttl, &a),
            Err(e) => reply.error(e),
        };
        if ino == fuser::FUSE_ROOT_ID {
            send()
        } else {
            self.metadata(send)
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
        let Some(path) = self.path(ino) else {
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
        let Some(dir) = self.path(ino) else {
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
