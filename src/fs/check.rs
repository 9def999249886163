//! `volnfs check-state`: does an export's saved state agree with its tree?
//!
//! Run with the server stopped (the index is opened read-only and redb
//! refuses while the server holds it). For each export: the handle key is
//! there and whole; the index opens, has our format, and every entry
//! decodes; every recorded link (parent, name) is looked up in the tree and
//! is *current* (that name is still the object, same inode and generation)
//! or *stale* (renamed, removed or reused since: the server forgets such
//! links on first use, so they are harmless). Nothing here writes.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;

use super::index::Node;
use super::{export_id_for, open_dir_at};
use crate::sys;

const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Where an export's handle key lives in the state directory.
pub fn key_path(state_dir: &Path, export_id: u32) -> PathBuf {
    state_dir.join(format!("handle-key-{export_id:08x}"))
}

/// Where an export's handle index lives in the state directory.
pub fn index_path(state_dir: &Path, export_id: u32) -> PathBuf {
    state_dir.join(format!("index-{export_id:08x}.redb"))
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    pub export: String,
    pub index: PathBuf,
    /// The index was closed cleanly (else it is verified on use and
    /// rebuilt on the first miss).
    pub clean: bool,
    /// The server was killed with the index open: what was checked is a
    /// repaired copy, as the server repairs it at start.
    pub repaired: bool,
    pub entries: usize,
    pub links_current: usize,
    pub links_stale: usize,
    /// Entries none of whose links is current (objects gone or moved
    /// since; a clean index should have none that a client still holds).
    pub entries_unreachable: usize,
    /// What is wrong and what to do; empty = the state is sound.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A copy of an index a killed server left, in the temp dir (removed on
/// drop), opened for writing so that redb repairs it: it repairs a database
/// only then, which check-state must not do to the real one.
struct RepairedCopy(PathBuf);

impl RepairedCopy {
    fn of(index: &Path) -> Result<(RepairedCopy, redb::Database), redb::Error> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = RepairedCopy(
            std::env::temp_dir().join(format!("volnfs-check-{}-{n}.redb", std::process::id())),
        );
        std::fs::copy(index, &copy.0)?;
        let db = redb::Database::create(&copy.0)?;
        Ok((copy, db))
    }
}

impl Drop for RepairedCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Resolves directories by inode through the index's own links.
struct Walker<'a> {
    root: Arc<OwnedFd>,
    root_ino: u64,
    nodes: &'a HashMap<u64, Node>,
    dirs: HashMap<u64, Option<Arc<OwnedFd>>>,
}

impl Walker<'_> {
    fn dir(&mut self, ino: u64, depth: usize) -> Option<Arc<OwnedFd>> {
        if ino == self.root_ino {
            return Some(self.root.clone());
        }
        if let Some(d) = self.dirs.get(&ino) {
            return d.clone();
        }
        if depth > 4096 {
            return None;
        }
        let node = self.nodes.get(&ino)?.clone();
        let mut found = None;
        for (p, name) in &node.links {
            let Some(pfd) = self.dir(*p, depth + 1) else {
                continue;
            };
            let Ok(c) = CString::new(&name[..]) else {
                continue;
            };
            if let Ok(fd) = open_dir_at(pfd.as_fd(), &c) {
                if sys::fstat(fd.as_fd()).is_ok_and(|st| st.ino == ino && st.gen == node.gen) {
                    found = Some(Arc::new(fd));
                    break;
                }
            }
        }
        self.dirs.insert(ino, found.clone());
        found
    }
}

/// Checks the saved state of export `name` at `path` in `state_dir`.
pub fn check_export(name: &str, path: &Path, state_dir: &Path) -> CheckReport {
    let id = export_id_for(name);
    let index = index_path(state_dir, id);
    let mut r = CheckReport {
        export: name.to_string(),
        index: index.clone(),
        ..Default::default()
    };
    let key = key_path(state_dir, id);
    match std::fs::metadata(&key) {
        Ok(m) if m.len() == 16 => {}
        Ok(m) => r.problems.push(format!(
            "{}: {} bytes, not 16: volnfs will not start: restore it from a backup, or delete it and move {} aside (every client handle turns STALE; clients remount)",
            key.display(),
            m.len(),
            index.display()
        )),
        Err(e) if index.exists() => r.problems.push(format!(
            "{}: {e}: volnfs will not start without it while {} exists (a new key would make every handle clients hold invalid): restore it from a backup, or move the index aside to start over (clients remount)",
            key.display(),
            index.display()
        )),
        Err(e) => r.problems.push(format!(
            "{}: {e}: a new one is made at start",
            key.display()
        )),
    }
    if !index.exists() {
        r.problems.push(format!("{}: no index (a new one is made at start; clients' handles are found again by walking the tree)", index.display()));
        return r;
    }
    let mut _copy = None;
    let db: Box<dyn ReadableDatabase> = match redb::ReadOnlyDatabase::open(&index) {
        Ok(db) => Box::new(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            r.problems
                .push(format!("{}: in use: stop volnfs first", index.display()));
            return r;
        }
        // Left by a server that was killed (or lost power): the server
        // repairs it when it opens it. Check what that repair gives, on a
        // copy, so that nothing here writes to the state.
        Err(redb::DatabaseError::RepairAborted) => match RepairedCopy::of(&index) {
            Ok((copy, db)) => {
                r.repaired = true;
                _copy = Some(copy);
                Box::new(db)
            }
            Err(e) => {
                r.problems.push(format!("{}: not closed cleanly, and a repaired copy cannot be made ({e}): start volnfs (it repairs the index), or move it aside (it is rebuilt from the tree)", index.display()));
                return r;
            }
        },
        Err(e) => {
            r.problems.push(format!("{}: cannot open it ({e}); stop volnfs first, or move it aside (it is rebuilt from the tree)", index.display()));
            return r;
        }
    };
    let mut nodes = HashMap::new();
    let read = (|| -> Result<(), redb::Error> {
        let t = db.begin_read()?;
        if let Ok(meta) = t.open_table(META) {
            r.clean = meta.get("clean")?.map(|v| v.value()) == Some(1);
        }
        let table = t.open_table(NODES)?;
        for row in table.iter()? {
            let (k, v) = row?;
            match Node::decode(v.value()) {
                Some(n) => {
                    nodes.insert(k.value(), n);
                }
                None => r.problems.push(format!(
                    "index entry {} does not decode: move {} aside (it is rebuilt from the tree)",
                    k.value(),
                    index.display()
                )),
            }
        }
        Ok(())
    })();
    if let Err(e) = read {
        r.problems.push(format!(
            "{}: reading it failed ({e}): move it aside (it is rebuilt from the tree)",
            index.display()
        ));
        return r;
    }
    r.entries = nodes.len();
    let root = match CString::new(path.as_os_str().as_encoded_bytes())
        .ok()
        .and_then(|c| {
            nix::fcntl::open(
                c.as_c_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
        }) {
        // SAFETY: a fresh descriptor from open(2).
        Some(fd) => Arc::new(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }),
        None => {
            r.problems.push(format!(
                "export directory {} cannot be opened",
                path.display()
            ));
            return r;
        }
    };
    let root_ino = sys::fstat(root.as_fd()).map(|s| s.ino).unwrap_or(0);
    let mut w = Walker {
        root,
        root_ino,
        nodes: &nodes,
        dirs: HashMap::new(),
    };
    for (ino, node) in &nodes {
        let mut current = 0;
        for (p, name) in &node.links {
            let ok = w.dir(*p, 0).is_some_and(|pfd| {
                CString::new(&name[..])
                    .ok()
                    .and_then(|c| sys::stat_at(pfd.as_fd(), &c).ok())
                    .is_some_and(|st| st.ino == *ino && st.gen == node.gen)
            });
            if ok {
                current += 1;
            } else {
                r.links_stale += 1;
            }
        }
        r.links_current += current;
        if current == 0 {
            r.entries_unreachable += 1;
        }
    }
    r
}
