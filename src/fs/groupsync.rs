//! Group commit for directory fsyncs.
//!
//! Every namespace change is made durable before its reply (see
//! `ExportFs::commit_dir`). When many clients change the same directory at
//! once, one fsync that *starts after* a change was made covers it, so
//! concurrent callers share fsyncs instead of queueing one each: a caller
//! whose change is older than a running fsync waits for the next one, and
//! that one covers everybody who arrived meanwhile.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct DirSync {
    /// Changes registered so far.
    requested: u64,
    /// All changes up to this one are durable.
    completed: u64,
    running: bool,
    /// Callers inside `commit` for this directory (the entry is dropped
    /// only when none is left, or a waiter would find a fresh counter).
    callers: u64,
}

#[derive(Default)]
pub struct GroupSync {
    dirs: Mutex<HashMap<u64, DirSync>>,
    done: Condvar,
}

impl GroupSync {
    /// Makes the caller's change to directory `key` durable with `sync`,
    /// sharing the fsync with concurrent callers. Returns the result of the
    /// fsync that covered this change.
    pub fn commit<E>(&self, key: u64, mut sync: impl FnMut() -> Result<(), E>) -> Result<(), E> {
        let mut g = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let my = {
            let d = g.entry(key).or_default();
            d.requested += 1;
            d.callers += 1;
            d.requested
        };
        let result = loop {
            let d = g.entry(key).or_default();
            if d.completed >= my {
                break Ok(());
            }
            if !d.running {
                d.running = true;
                let target = d.requested;
                drop(g);
                let res = sync();
                g = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
                let d = g.entry(key).or_default();
                d.running = false;
                if res.is_ok() {
                    d.completed = d.completed.max(target);
                }
                self.done.notify_all();
                if let Err(e) = res {
                    break Err(e);
                }
                continue;
            }
            g = self.done.wait(g).unwrap_or_else(|p| p.into_inner());
        };
        if let Some(d) = g.get_mut(&key) {
            d.callers -= 1;
            if d.callers == 0 {
                g.remove(&key); // keep the map as small as the directories in use
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_callers_share_fsyncs_and_all_are_covered() {
        let gs = Arc::new(GroupSync::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let gs = gs.clone();
                let syncs = syncs.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        gs.commit::<()>(7, || {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!(n < 16 * 50, "{n} fsyncs for 800 changes: none shared");
        assert!(n >= 50, "at least one fsync per round of a caller");
    }

    #[test]
    fn a_single_caller_gets_its_own_fsync_and_errors() {
        let gs = GroupSync::default();
        assert_eq!(
            gs.commit(1, || Err::<(), _>("disk on fire")),
            Err("disk on fire")
        );
        let mut called = false;
        gs.commit::<()>(1, || {
            called = true;
            Ok(())
        })
        .unwrap();
        assert!(called);
    }
}
