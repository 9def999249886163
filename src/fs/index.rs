//! The persistent object index: object number → generation and the
//! (parent, name) links through which the object was seen.
//!
//! This is what lets a handle be resolved after a restart on systems with no
//! userland open-by-handle (illumos): walk the links up to the root, open
//! down again, verify (inode, generation) on arrival. Renames touch one
//! entry (the renamed object's), so handles below a renamed directory stay
//! valid.
//!
//! Storage is `redb`: copy-on-write B-trees with atomic commits, so a crash
//! at any point leaves the last committed state intact (no torn writes, no
//! repair step). Updates are written behind: they are applied to an
//! in-memory overlay at once and committed in batches every 200 ms, so a
//! namespace operation never waits for an index fsync. The cost of that
//! choice is a window of ≤ 200 ms of entries a crash can lose; the index
//! records whether it was closed cleanly, and after an unclean stop the
//! first unresolvable handle triggers a rebuild (a walk of the tree) before
//! the handle is declared stale.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};

const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CLEAN: &str = "clean";
const FORMAT: &str = "format";
const FORMAT_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub gen: u64,
    pub links: Vec<(u64, Box<[u8]>)>,
}

impl Node {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(9 + self.links.len() * 16);
        v.extend_from_slice(&self.gen.to_be_bytes());
        v.push(self.links.len().min(255) as u8);
        for (p, n) in self.links.iter().take(255) {
            v.extend_from_slice(&p.to_be_bytes());
            let len = n.len().min(u16::MAX as usize);
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v.extend_from_slice(&n[..len]);
        }
        v
    }

    /// Decodes a stored node; `None` if the bytes are not a node (a damaged
    /// entry is treated as missing and repaired by the next rebuild).
    pub fn decode(b: &[u8]) -> Option<Node> {
        let gen = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let n = *b.get(8)? as usize;
        let mut at = 9;
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            let p = u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?);
            let len = u16::from_be_bytes(b.get(at + 8..at + 10)?.try_into().ok()?) as usize;
            let name = b.get(at + 10..at + 10 + len)?;
            links.push((p, name.into()));
            at += 10 + len;
        }
        Some(Node { gen, links })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("opening handle index {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("handle index {path} has format {found}, this volnfs reads {FORMAT_VERSION}; it will be rebuilt")]
    Format { path: PathBuf, found: u64 },
}

/// What a failure to open the index means for the server starting up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// The file is not a usable index (garbage, truncated, another format):
    /// move it aside and rebuild it from the tree.
    Damaged,
    /// Another process has it open (a second server on the same state_dir).
    InUse,
    /// The file or its directory cannot be written (read-only, full, over
    /// quota, an I/O error): the file may be fine; leave it alone.
    Unwritable,
}

impl IndexError {
    pub fn failure(&self) -> OpenFailure {
        match self {
            IndexError::Format { .. } => OpenFailure::Damaged,
            IndexError::Open { source, .. } => match &**source {
                redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                    OpenFailure::InUse
                }
                // redb reports a file that is not (or no longer) one of its
                // databases as InvalidData ("magic number mismatch") or a
                // short read; everything else from the OS is about writing.
                redb::Error::Io(e) => match e.kind() {
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        OpenFailure::Damaged
                    }
                    _ => OpenFailure::Unwritable,
                },
                redb::Error::PreviousIo => OpenFailure::Unwritable,
                _ => OpenFailure::Damaged,
            },
        }
    }
}

fn open_err(path: &Path) -> impl Fn(redb::Error) -> IndexError + '_ {
    move |e| IndexError::Open {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Pending updates not yet committed: `None` = deleted.
type Overlay = HashMap<u64, Option<Node>>;

/// State shared with the writer thread.
pub struct Shared {
    overlay: Mutex<Overlay>,
    wake: Condvar,
    stop: AtomicBool,
    /// The last commit failed (logged once, until one succeeds again).
    failing: AtomicBool,
}

/// The store behind the index.
pub enum Store {
    /// No state directory: the index lives and dies with the process.
    Memory(Mutex<HashMap<u64, Node>>),
    Redb {
        db: Arc<Database>,
        shared: Arc<Shared>,
        writer: Mutex<Option<std::thread::JoinHandle<()>>>,
        path: PathBuf,
        /// Nodes read or written recently: answers without a database read
        /// (so a lookup can be recorded without waiting: `get_nowait`).
        cache: Mutex<super::cache::LruMap<Node>>,
    },
}

/// Nodes kept in memory per persistent index (~100 bytes each).
const NODE_CACHE: usize = 64 * 1024;

/// Result of opening a persistent index.
pub struct Opened {
    pub store: Store,
    /// Whether the index can be trusted to hold every handle ever given out
    /// (it was closed cleanly). If not, a miss must trigger a rebuild.
    pub complete: bool,
    /// The index did not exist before.
    pub created: bool,
}

impl Store {
    pub fn memory() -> Store {
        Store::Memory(Mutex::new(HashMap::new()))
    }

    pub fn open(path: &Path) -> Result<Opened, IndexError> {
        let created = !path.exists();
        let db = Database::create(path).map_err(|e| open_err(path)(e.into()))?;
        let (complete, format) = {
            let r = db.begin_read().map_err(|e| open_err(path)(e.into()))?;
            match r.open_table(META) {
                Ok(t) => {
                    let get = |k| t.get(k).ok().flatten().map(|v| v.value());
                    (get(CLEAN) == Some(1), get(FORMAT))
                }
                Err(_) => (false, None),
            }
        };
        if let Some(found) = format.filter(|f| *f != FORMAT_VERSION) {
            return Err(IndexError::Format {
                path: path.to_path_buf(),
                found,
            });
        }
        // Mark the index in use: until a clean close, it may miss entries.
        {
            let w = db.begin_write().map_err(|e| open_err(path)(e.into()))?;
            {
                let mut t = w.open_table(META).map_err(|e| open_err(path)(e.into()))?;
                t.insert(CLEAN, 0).map_err(|e| open_err(path)(e.into()))?;
                t.insert(FORMAT, FORMAT_VERSION)
                    .map_err(|e| open_err(path)(e.into()))?;
                w.open_table(NODES).map_err(|e| open_err(path)(e.into()))?;
            }
            w.commit().map_err(|e| open_err(path)(e.into()))?;
        }
        let db = Arc::new(db);
        let shared = Arc::new(Shared {
            overlay: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        });
        let writer = {
            let db = db.clone();
            let shared = shared.clone();
            let thread_path = path.to_path_buf();
            std::thread::Builder::new()
                .name("volnfs-index".into())
                .spawn(move || writer_loop(&db, &shared, &thread_path))
                .map_err(|e| open_err(path)(redb::Error::Io(e)))?
        };
        Ok(Opened {
            store: Store::Redb {
                db,
                shared,
                writer: Mutex::new(Some(writer)),
                path: path.to_path_buf(),
                cache: Mutex::new(super::cache::LruMap::new(NODE_CACHE)),
            },
            complete: complete && !created,
            created,
        })
    }

    pub fn get(&self, ino: u64) -> Option<Node> {
        match self {
            Store::Memory(m) => lock(m).get(&ino).cloned(),
            Store::Redb {
                db, shared, cache, ..
            } => {
                if let Some(pending) = lock(&shared.overlay).get(&ino) {
                    return pending.clone();
                }
                if let Some(n) = lock(cache).get(ino) {
                    return Some((*n).clone());
                }
                let r = db.begin_read().ok()?;
                let t = r.open_table(NODES).ok()?;
                let v = t.get(ino).ok()??;
                let node = Node::decode(v.value())?;
                lock(cache).insert(ino, Arc::new(node.clone()));
                Some(node)
            }
        }
    }

    /// What `get` would answer, if that needs no database read: `None` =
    /// not known without reading the database.
    pub fn get_nowait(&self, ino: u64) -> Option<Option<Node>> {
        match self {
            Store::Memory(m) => Some(lock(m).get(&ino).cloned()),
            Store::Redb { shared, cache, .. } => {
                if let Some(pending) = lock(&shared.overlay).get(&ino) {
                    return Some(pending.clone());
                }
                lock(cache).get(ino).map(|n| Some((*n).clone()))
            }
        }
    }

    pub fn put(&self, ino: u64, node: Node) {
        match self {
            Store::Memory(m) => {
                lock(m).insert(ino, node);
            }
            Store::Redb { shared, cache, .. } => {
                lock(cache).insert(ino, Arc::new(node.clone()));
                let n = {
                    let mut o = lock(&shared.overlay);
                    o.insert(ino, Some(node));
                    o.len()
                };
                if n >= 8192 {
                    shared.wake.notify_one();
                }
            }
        }
    }

    pub fn remove(&self, ino: u64) {
        match self {
            Store::Memory(m) => {
                lock(m).remove(&ino);
            }
            Store::Redb { shared, cache, .. } => {
                lock(cache).remove(ino);
                lock(&shared.overlay).insert(ino, None);
            }
        }
    }

    /// Removes every entry (before a rebuild).
    pub fn clear(&self) {
        match self {
            Store::Memory(m) => lock(m).clear(),
            Store::Redb {
                db,
                shared,
                path,
                cache,
                ..
            } => {
                lock(cache).clear();
                lock(&shared.overlay).clear();
                let res = (|| -> Result<(), redb::Error> {
                    let w = db.begin_write()?;
                    w.delete_table(NODES)?;
                    w.open_table(NODES)?;
                    w.commit()?;
                    Ok(())
                })();
                if let Err(e) = res {
                    tracing::error!(index = %path.display(), error = %e, "clearing the handle index failed");
                }
            }
        }
    }

    /// Commits pending updates now (durably).
    pub fn flush(&self) {
        if let Store::Redb {
            db, shared, path, ..
        } = self
        {
            commit_pending(db, shared, path);
        }
    }

    /// Flushes and marks the index complete (clean shutdown, finished rebuild).
    pub fn mark_complete(&self, complete: bool) {
        if let Store::Redb {
            db, shared, path, ..
        } = self
        {
            commit_pending(db, shared, path);
            let pending = lock(&shared.overlay).len();
            if complete && pending > 0 {
                // A commit failed (full or read-only state_dir): marking the
                // index complete now would turn those handles STALE after
                // the restart instead of letting a rebuild find them.
                tracing::warn!(index = %path.display(), pending, "handle index not marked clean: entries could not be committed; the next start rebuilds it on the first miss");
                return;
            }
            let res = (|| -> Result<(), redb::Error> {
                let w = db.begin_write()?;
                w.open_table(META)?.insert(CLEAN, complete as u64)?;
                w.commit()?;
                Ok(())
            })();
            if let Err(e) = res {
                tracing::error!(index = %path.display(), error = %e, "marking the handle index failed");
            }
        }
    }

    /// Stops the writer thread after a final flush.
    pub fn close(&self) {
        self.stop_writer();
        self.mark_complete(true);
    }

    pub fn is_persistent(&self) -> bool {
        matches!(self, Store::Redb { .. })
    }

    fn stop_writer(&self) {
        if let Store::Redb { shared, writer, .. } = self {
            shared.stop.store(true, Ordering::SeqCst);
            shared.wake.notify_all();
            if let Some(h) = lock(writer).take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Store {
    /// Stops the writer (after its last commit) without marking the index
    /// clean: only `close` says the index is complete.
    fn drop(&mut self) {
        self.stop_writer();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn commit_pending(db: &Database, shared: &Shared, path: &Path) {
    let batch: Overlay = {
        let o = lock(&shared.overlay);
        if o.is_empty() {
            return;
        }
        o.clone()
    };
    let res = (|| -> Result<(), redb::Error> {
        let w = db.begin_write()?;
        {
            let mut t = w.open_table(NODES)?;
            for (ino, node) in &batch {
                match node {
                    Some(n) => {
                        t.insert(*ino, n.encode().as_slice())?;
                    }
                    None => {
                        t.remove(*ino)?;
                    }
                }
            }
        }
        w.commit()?;
        Ok(())
    })();
    match res {
        Ok(()) => {
            // Drop from the overlay what was committed, unless it changed since.
            let mut o = lock(&shared.overlay);
            for (ino, node) in batch {
                if o.get(&ino) == Some(&node) {
                    o.remove(&ino);
                }
            }
            drop(o);
            if shared.failing.swap(false, Ordering::SeqCst) {
                tracing::info!(index = %path.display(), "handle index committed again");
            }
        }
        // A full or read-only state_dir fails every 200 ms: say so once. The
        // entries stay in memory (handles keep resolving) and are retried.
        Err(e) if !shared.failing.swap(true, Ordering::SeqCst) => {
            tracing::error!(index = %path.display(), error = %e, "committing the handle index failed: its new entries are kept in memory and retried every 200 ms (free space on, or make writable, the filesystem of state_dir); further failures are not logged until a commit succeeds")
        }
        Err(_) => {}
    }
}

fn writer_loop(db: &Database, shared: &Shared, path: &Path) {
    loop {
        {
            let o = lock(&shared.overlay);
            let _ = shared
                .wake
                .wait_timeout(o, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner());
        }
        commit_pending(db, shared, path);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
