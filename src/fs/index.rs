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
/// Unix seconds at which the last committed batch was taken: every change
/// made before then is in the database.
const SYNCED_TO: &str = "synced_to";

mod error;
mod node;
mod scan;
use error::open_err;
pub use error::{IndexError, OpenFailure};
pub use node::Node;

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
        /// `SYNCED_TO` as found at open (the previous run's last batch).
        synced_to: Option<u64>,
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
        let (complete, format, synced_to) = {
            let r = db.begin_read().map_err(|e| open_err(path)(e.into()))?;
            match r.open_table(META) {
                Ok(t) => {
                    let get = |k| t.get(k).ok().flatten().map(|v| v.value());
                    (get(CLEAN) == Some(1), get(FORMAT), get(SYNCED_TO))
                }
                Err(_) => (false, None, None),
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
                synced_to,
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
    let (batch, taken): (Overlay, u64) = {
        let o = lock(&shared.overlay);
        if o.is_empty() {
            return;
        }
        (o.clone(), scan::unix_now())
    };
    let res = (|| -> Result<(), redb::Error> {
        let w = db.begin_write()?;
        w.open_table(META)?.insert(SYNCED_TO, taken)?;
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
