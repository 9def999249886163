//! What the index can say about where recent changes are: the time its
//! last batch was taken and the directories it knows.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable};

use super::{lock, Node, Store, NODES};

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// Unix seconds before which every change of the previous run reached
    /// the database (`None`: not known, e.g. an index of an older volnfs).
    pub fn synced_to(&self) -> Option<u64> {
        match self {
            Store::Memory(_) => None,
            Store::Redb { synced_to, .. } => *synced_to,
        }
    }

    /// Every directory some entry names as a parent: the directories the
    /// index knows (one read of the whole index).
    pub fn parents(&self) -> HashSet<u64> {
        let mut out = HashSet::new();
        let mut add = |n: &Node| out.extend(n.links.iter().map(|(p, _)| *p));
        match self {
            Store::Memory(m) => lock(m).values().for_each(&mut add),
            Store::Redb {
                db, shared, path, ..
            } => {
                let read = (|| -> Result<(), redb::Error> {
                    let r = db.begin_read()?;
                    let t = r.open_table(NODES)?;
                    for entry in t.iter()? {
                        let (_, v) = entry?;
                        if let Some(n) = Node::decode(v.value()) {
                            add(&n);
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = read {
                    tracing::warn!(index = %path.display(), error = %e, "reading the handle index for its directories failed; the search falls back to a walk of the export");
                }
                lock(&shared.overlay).values().flatten().for_each(&mut add);
            }
        }
        out
    }
}
