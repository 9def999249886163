//! Jobs that announce a wait (see `blocking`).

use std::time::Instant;

use super::IoPool;

thread_local! {
    /// The pool this thread works for, and the job it runs now.
    pub(super) static CURRENT: std::cell::RefCell<Option<IoPool>> = const { std::cell::RefCell::new(None) };
    pub(super) static JOB: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Runs `f`, a call known to wait rather than compute (an fsync, a
/// directory commit shared with other callers, a read that missed the page
/// cache): while it waits, the job does not count against the pool's CPUs,
/// so the jobs queued behind it start at once instead of after `STALLED`.
/// Outside a pool job it just runs `f`.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let Some(id) = JOB.with(|j| j.take()) else {
        return f(); // not in a job, or already inside `blocking`
    };
    let pool = CURRENT.with(|c| c.borrow().clone());
    if let Some(p) = &pool {
        p.enter_blocking(id);
    }
    // Left by a guard, so a panic in `f` does not leave the job blocked.
    struct Leave(Option<IoPool>, u64);
    impl Drop for Leave {
        fn drop(&mut self) {
            if let Some(p) = &self.0 {
                p.leave_blocking(self.1);
            }
            JOB.with(|j| j.set(Some(self.1)));
        }
    }
    let _leave = Leave(pool, id);
    f()
}

impl IoPool {
    fn enter_blocking(&self, id: u64) {
        let mut g = self.lock();
        if g.started.remove(&id).is_some() {
            g.blocked += 1;
            if !g.ready.is_empty() {
                self.dispatch(&mut g);
            }
        }
    }

    fn leave_blocking(&self, id: u64) {
        let mut g = self.lock();
        g.blocked -= 1;
        g.started.insert(id, Instant::now());
    }
}
