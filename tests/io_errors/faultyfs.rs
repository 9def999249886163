//! A failing disk for tests: a FUSE passthrough of a directory that answers reads, writes
//! or fsyncs of chosen files with EIO (a bad sector under one file), and everything else
//! as the directory itself does. Files are opened direct_io, so every read and write
//! reaches it (no page cache answers in its place, and a write error is the write's).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{
    FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request,
};

const TTL: Duration = Duration::from_secs(1);

/// Which files fail, by name (any directory): shared with the test, which may change it.
#[derive(Default)]
pub struct Faults {
    pub reads: HashSet<String>,
    pub writes: HashSet<String>,
    pub fsyncs: HashSet<String>,
}

pub struct FaultyFs {
    paths: HashMap<u64, PathBuf>,
    pub faults: Arc<Mutex<Faults>>,
}

impl FaultyFs {
    pub fn new(backing: &Path, faults: Arc<Mutex<Faults>>) -> FaultyFs {
        let mut paths = HashMap::new();
        paths.insert(fuser::FUSE_ROOT_ID, backing.to_path_buf());
        FaultyFs { paths, faults }
    }

    fn fails(&self, ino: u64, which: impl Fn(&Faults) -> &HashSet<String>) -> bool {
        let Some(name) = self.paths.get(&ino).and_then(|p| p.file_name()) else {
            return false;
        };
        let faults = self.faults.lock().unwrap();
        which(&faults).contains(&*name.to_string_lossy())
    }
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Filesystem for FaultyFs {
    fn lookup(&mut self, _: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.paths.get(&parent) else {
            return reply.error(libc::ENOENT);
        };
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                let ino = m.ino();
                self.paths.insert(ino, path);
                reply.entry(&TTL, &crate::fuse_attr::attr(ino, &m), 0);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&mut self, _: &Request<'_>, ino: u64, _: Option<u64>, reply: ReplyAttr) {
        match self.paths.get(&ino).map(std::fs::symlink_metadata) {
            Some(Ok(m)) => reply.attr(&TTL, &crate::fuse_attr::attr(ino, &m)),
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
        if self.fails(ino, |f| &f.reads) {
            return reply.error(libc::EIO);
        }
        let Some(path) = self.paths.get(&ino) else {
            return reply.error(libc::ENOENT);
        };
        let mut buf = vec![0u8; size as usize];
        match std::fs::File::open(path).and_then(|f| f.read_at(&mut buf, offset as u64)) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(&e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        _: &Request<'_>,
        ino: u64,
        _: u64,
        offset: i64,
        data: &[u8],
        _: u32,
        _: i32,
        _: Option<u64>,
        reply: ReplyWrite,
    ) {
        if self.fails(ino, |f| &f.writes) {
            return reply.error(libc::EIO);
        }
        let Some(path) = self.paths.get(&ino) else {
            return reply.error(libc::ENOENT);
        };
        let res = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.write_all_at(data, offset as u64));
        match res {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsync(&mut self, _: &Request<'_>, ino: u64, _: u64, _: bool, reply: ReplyEmpty) {
        if self.fails(ino, |f| &f.fsyncs) {
            return reply.error(libc::EIO);
        }
        match self
            .paths
            .get(&ino)
            .map(|p| std::fs::File::open(p).and_then(|f| f.sync_all()))
        {
            Some(Ok(())) => reply.ok(),
            Some(Err(e)) => reply.error(errno(&e)),
            None => reply.error(libc::ENOENT),
        }
    }

    fn flush(&mut self, _: &Request<'_>, _: u64, _: u64, _: u64, reply: ReplyEmpty) {
        reply.ok();
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
