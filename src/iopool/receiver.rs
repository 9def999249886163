//! A call that is alone on its connection runs on the thread that received
//! it, without the hop to a pool thread (see `IoPool::submit_call`).

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::{run, IoPool, Job};

thread_local! {
    /// This thread serves one connection by itself, off the async workers
    /// (`on_receiver`).
    static ON_RECEIVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, during which a lone call submitted from this thread runs on
/// it (`IoPool::submit_call`). For a thread that is not an async worker
/// (inside `tokio::task::block_in_place`) and that serves one connection,
/// whose client waits for each reply anyway: blocking it in the filesystem
/// holds up nobody else.
pub fn on_receiver<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            ON_RECEIVER.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(ON_RECEIVER.with(|r| r.replace(true)));
    f()
}

/// Gives back a receiver slot when the call is done (or its task dropped);
/// during `shutdown`, wakes it to count again.
struct Slot(IoPool);

impl Drop for Slot {
    fn drop(&mut self) {
        let inner = &self.0.inner;
        inner.here.fetch_sub(1, Ordering::SeqCst);
        if inner.closing.load(Ordering::SeqCst) {
            // Under the lock `shutdown` reads the count with, so the wakeup
            // cannot fall between its read and its wait.
            let _g = self.0.lock();
            inner.drained.notify_all();
        }
    }
}

impl IoPool {
    /// Runs a client's call `job`. Usually on a pool thread (`submit`).
    /// When `alone` — the only call in flight on its connection, nothing
    /// more received — and fewer than `cpus` such calls run now, it runs
    /// instead on the async worker that received it, inside
    /// `tokio::task::block_in_place`: tokio first hands that worker's
    /// scheduler (its queued tasks, its turn at the I/O driver) to another
    /// thread, so the filesystem call may block without holding up anything
    /// else, and no other thread has to be woken before the work starts.
    /// That wakeup is what a client waiting for each reply (queue depth 1:
    /// one process writing a file through the kernel client) would
    /// otherwise pay on every call (bench/RESULTS.md).
    ///
    /// The job runs in a task of its own, so the connection's reader goes
    /// on reading: a call that arrives while this one waits for the disk is
    /// not alone and goes to the pool. Outside a multi-threaded tokio
    /// runtime, and once `shutdown` has begun (which waits for these calls
    /// too), every job goes to the pool.
    ///
    /// On a thread inside `on_receiver` (a connection's polling session,
    /// already off the async workers) a lone call that is also `quick`
    /// (waits for no commit and no disk read, usually) runs right there,
    /// before `submit_call` returns: no task, no hand-over. One that will
    /// wait takes the path above, so the session's reader stays free to
    /// take the connection's next call meanwhile.
    pub fn submit_call(&self, client: IpAddr, alone: bool, quick: bool, job: Job) {
        let in_session = ON_RECEIVER.with(|r| r.get());
        let here = if alone { self.receiver_slot() } else { None };
        let Some(slot) = here else {
            self.handed_off(in_session);
            return self.submit(client, job);
        };
        self.inner.here_total.fetch_add(1, Ordering::Relaxed);
        if quick && in_session {
            let _slot = slot;
            self.inner.in_session.fetch_add(1, Ordering::Relaxed);
            return run(job);
        }
        self.handed_off(in_session);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::task::block_in_place(|| run(job));
        });
    }

    /// Counts a call a polling session passes on (`PoolStats`).
    fn handed_off(&self, in_session: bool) {
        if in_session {
            self.inner.session_handoffs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A slot to run a call on its receiving thread, if the runtime allows
    /// it and fewer than `cpus` run so now.
    fn receiver_slot(&self) -> Option<Slot> {
        let multi =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if !multi {
            return None;
        }
        let cap = self.inner.cfg.cpus;
        self.inner
            .here
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        let slot = Slot(self.clone());
        // Counted first, then checked: `shutdown` sets `closing` first, then
        // reads the count, so one of the two sees the other.
        if self.inner.closing.load(Ordering::SeqCst) {
            return None; // the slot is given back
        }
        Some(slot)
    }
}
