//! The file I/O pool: every filesystem call a client's request makes runs
//! here, on threads of its own, never on the async workers that receive
//! requests and answer NULL, portmap, MOUNT, NLM and the control socket.
//!
//! Sized for disk parallelism, not for CPUs: a cold read on a volume far
//! larger than RAM waits milliseconds for the disk, and the disk (ZFS over
//! several vdevs, or a cloud block device) serves many such reads at once.
//! The default of 64 threads is knfsd's "8 per CPU" for an 8-CPU zone and a
//! quarter of ganesha's 256; threads start on demand and leave after a
//! minute idle, so a quiet server holds a few.
//!
//! Fair between clients: jobs queue per client address and the workers take
//! them round-robin across clients, and no client runs more than
//! `per_client` jobs at once, so a client with 64 cold reads outstanding
//! leaves threads for everybody else.
//!
//! Threads are for waiting, not for CPU: as many jobs run at once as there
//! are CPUs, not counting jobs inside `blocking` (an fsync, a shared
//! directory commit, a read that missed the page cache) or running longer
//! than `STALLED` (waiting for something nobody announced: a FUSE daemon, a
//! disk under an illumos read). Short jobs (a cached 4 KiB write takes
//! ~20 µs) therefore run back to back on the threads already awake, which
//! take the next job without sleeping, instead of waking one thread per job
//! to contend for two CPUs and the inode lock (measured: 3.5 context
//! switches per random write at queue depth 16 before, 1.4 after; see
//! bench/RESULTS.md). While jobs wait for that room one idle thread watches
//! the clock, so unannounced stalls let `cpus` more jobs in per `STALLED`.
//!
//! One exception to "threads of its own": a call alone on its connection
//! (nothing else in flight, nothing more received — a client waiting for
//! each reply, queue depth 1) runs on the async worker that received it,
//! inside `block_in_place`, up to `cpus` such calls at once
//! (`submit_call`, in `receiver`). The worker first hands its other tasks
//! to another thread, and the call runs in a task of its own, so neither
//! other clients nor the connection's next call wait for it; what it saves
//! is the wakeup of a sleeping pool thread on every call. A connection in a
//! polling session (`rpc::server::poll`) goes one step further: its reader
//! is already off the async workers, so a lone call that will not wait for
//! the disk (`nfs3::table::QUICK`: an UNSTABLE WRITE, a GETATTR, on a local
//! filesystem) runs right there, without the task and the hand-over
//! (`on_receiver`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A unit of work; it must not panic (a panic is caught and logged).
pub type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most threads running jobs at once.
    pub threads: usize,
    /// Most jobs of one client running at once.
    pub per_client: usize,
    /// Jobs running at once that are not stalled (the CPUs there are).
    pub cpus: usize,
    /// How long a job runs before it counts as stalled (`STALLED`).
    pub stall: Duration,
}

pub const DEFAULT_THREADS: usize = 64;
pub const DEFAULT_PER_CLIENT: usize = 16;

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads: DEFAULT_THREADS,
            per_client: DEFAULT_PER_CLIENT,
            cpus: std::thread::available_parallelism().map_or(2, |n| n.get()),
            stall: STALLED,
        }
    }
}

/// Threads kept even when idle (first requests after a quiet spell do not
/// wait for a thread to start).
const WARM_THREADS: usize = 2;
const IDLE_EXIT: Duration = Duration::from_secs(60);
/// A job running this long is taken to wait (for the disk, a lock, a FUSE
/// daemon) rather than compute, and no longer counts against `cpus`: 25
/// times a cached random write, a tenth of a disk seek.
const STALLED: Duration = Duration::from_micros(500);
/// The watcher's shortest sleep.
const MIN_TICK: Duration = Duration::from_micros(50);

#[derive(Default)]
struct ClientQueue {
    jobs: VecDeque<Job>,
    running: usize,
    /// In `State::ready`.
    queued: bool,
}

#[derive(Default)]
struct State {
    clients: HashMap<IpAddr, ClientQueue>,
    /// Clients with a job to run and room under their cap, in turn order.
    ready: VecDeque<IpAddr>,
    threads: usize,
    idle: usize,
    /// Threads woken (or started) for a ready client but not yet running:
    /// another ready client needs another thread, not the same wakeup.
    woken: usize,
    queued_jobs: usize,
    running_jobs: usize,
    /// When each running job started, by start order (so oldest first);
    /// jobs inside `blocking` are not here.
    started: BTreeMap<u64, Instant>,
    /// Running jobs inside `blocking`.
    blocked: usize,
    next_job: u64,
    /// An idle thread is waking every `STALLED` to let in jobs that wait
    /// for room under `cpus`.
    watcher: bool,
    shutdown: bool,
}

impl State {
    /// How long until the oldest running job counts as stalled.
    fn until_stalled(&self, stall: Duration) -> Duration {
        let Some(oldest) = self.started.values().next() else {
            return stall;
        };
        (*oldest + stall)
            .saturating_duration_since(Instant::now())
            .max(MIN_TICK)
    }

    /// Running jobs that have run longer than `stall`.
    fn stalled(&self, stall: Duration) -> usize {
        let Some(since) = Instant::now().checked_sub(stall) else {
            return 0;
        };
        self.started.values().take_while(|t| **t <= since).count()
    }
}

struct Inner {
    cfg: PoolConfig,
    state: Mutex<State>,
    work: Condvar,
    drained: Condvar,
    /// Calls running on their receiving thread now (`submit_call`), and
    /// in all.
    here: AtomicUsize,
    here_total: AtomicU64,
    /// Calls a polling session ran itself, and passed on, since start.
    in_session: AtomicU64,
    session_handoffs: AtomicU64,
    /// Set by `shutdown`: no more calls start on their receiving thread.
    closing: AtomicBool,
}

/// A handle on the pool; clones share it.
#[derive(Clone)]
pub struct IoPool {
    inner: Arc<Inner>,
}

/// What the pool is doing now (for `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    pub threads: usize,
    pub running: usize,
    pub queued: usize,
    pub max_threads: usize,
    pub per_client: usize,
    /// Calls run on their receiving thread instead (`submit_call`), since
    /// start.
    pub ran_on_receiver: u64,
    /// Calls a polling session read and ran on its own thread (lone and
    /// quick), since start.
    pub ran_in_session: u64,
    /// Calls a polling session read and passed on (to a task of their own,
    /// or the pool when no receiving slot was free or the call was not
    /// alone): not quick (a commit, a cold read, any file call on FUSE or a
    /// network filesystem), since start.
    pub session_handoffs: u64,
}

impl IoPool {
    pub fn new(cfg: PoolConfig) -> IoPool {
        let cfg = PoolConfig {
            threads: cfg.threads.max(1),
            per_client: cfg.per_client.clamp(1, cfg.threads.max(1)),
            cpus: cfg.cpus.max(1),
            stall: cfg.stall,
        };
        IoPool {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                drained: Condvar::new(),
                here: AtomicUsize::new(0),
                here_total: AtomicU64::new(0),
                in_session: AtomicU64::new(0),
                session_handoffs: AtomicU64::new(0),
                closing: AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` for `client`. After `shutdown` the job runs on the
    /// caller's thread (nothing is lost, nothing is left waiting).
    pub fn submit(&self, client: IpAddr, job: Job) {
        let mut g = self.lock();
        if g.shutdown {
            drop(g);
            run(job);
            return;
        }
        let per_client = self.inner.cfg.per_client;
        let q = g.clients.entry(client).or_default();
        q.jobs.push_back(job);
        if !q.queued && q.running < per_client {
            q.queued = true;
            g.ready.push_back(client);
        }
        g.queued_jobs += 1;
        self.dispatch(&mut g);
    }

    /// Whether a thread may start another job now.
    fn may_start(&self, g: &State) -> bool {
        g.shutdown
            || g.running_jobs - g.blocked < self.inner.cfg.cpus + g.stalled(self.inner.cfg.stall)
    }

    /// Makes sure every ready client not yet covered by a wakeup gets a
    /// thread, as far as `may_start` allows: an idle thread is woken, or a
    /// new one starts (up to the limit; else the next thread to finish
    /// takes it). What may not start yet gets a watcher.
    fn dispatch(&self, g: &mut State) {
        let room = (self.inner.cfg.cpus + g.stalled(self.inner.cfg.stall))
            .saturating_sub(g.running_jobs - g.blocked);
        while g.ready.len() > g.woken && room > g.woken {
            if !self.wake_thread(g) {
                return;
            }
        }
        if g.ready.len() > g.woken && !g.watcher && g.woken == 0 {
            // Deferred: one idle (or new) thread becomes the watcher.
            self.wake_thread(g);
        }
    }

    /// Wakes an idle thread or starts one; false if neither is possible.
    fn wake_thread(&self, g: &mut State) -> bool {
        if g.idle > g.woken {
            g.woken += 1;
            self.inner.work.notify_one();
            true
        } else if g.threads < self.inner.cfg.threads {
            g.threads += 1;
            g.woken += 1;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("volnfs-io".into())
                .spawn(move || me.worker());
            if let Err(e) = spawned {
                g.threads -= 1;
                g.woken -= 1;
                tracing::error!(error = %e, threads = g.threads, "cannot start a file I/O thread; queued requests wait for a running one");
                return false;
            }
            true
        } else {
            false
        }
    }

    fn worker(&self) {
        let per_client = self.inner.cfg.per_client;
        let mut g = self.lock();
        // Started for a ready client: this thread is that wakeup.
        g.woken = g.woken.saturating_sub(1);
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
        loop {
            if !g.ready.is_empty() && self.may_start(&g) {
                let Some(client) = g.ready.pop_front() else {
                    continue;
                };
                let Some(q) = g.clients.get_mut(&client) else {
                    continue;
                };
                q.queued = false;
                let Some(job) = q.jobs.pop_front() else {
                    continue;
                };
                q.running += 1;
                if !q.jobs.is_empty() && q.running < per_client {
                    q.queued = true;
                    g.ready.push_back(client);
                }
                g.queued_jobs -= 1;
                g.running_jobs += 1;
                let id = g.next_job;
                g.next_job += 1;
                g.started.insert(id, Instant::now());
                if !g.ready.is_empty() {
                    self.dispatch(&mut g);
                }
                drop(g);
                JOB.with(|j| j.set(Some(id)));
                run(job);
                JOB.with(|j| j.set(None));
                g = self.lock();
                g.started.remove(&id);
                g.running_jobs -= 1;
                let q = g.clients.entry(client).or_default();
                q.running -= 1;
                if !q.jobs.is_empty() && !q.queued && q.running < per_client {
                    q.queued = true;
                    g.ready.push_back(client);
                    // This thread loops to take it; nothing to wake.
                } else if q.jobs.is_empty() && q.running == 0 {
                    g.clients.remove(&client);
                }
                if g.queued_jobs == 0 && g.running_jobs == 0 {
                    self.inner.drained.notify_all();
                }
                continue;
            }
            if g.shutdown && g.ready.is_empty() {
                break;
            }
            // Work that waits for room (not for a thread) needs someone to
            // look at the clock: the first thread to find it.
            let watch = !g.ready.is_empty() && !g.watcher;
            let tick = g.until_stalled(self.inner.cfg.stall);
            if watch {
                g.watcher = true;
            }
            g.idle += 1;
            let (ng, timeout) = self
                .inner
                .work
                .wait_timeout(g, if watch { tick } else { IDLE_EXIT })
                .unwrap_or_else(|p| p.into_inner());
            g = ng;
            g.idle -= 1;
            g.woken = g.woken.saturating_sub(1);
            if watch {
                // Jobs may have stalled since: the next turn lets in what
                // may run now (waking more threads if there is room for
                // more), or watches again.
                g.watcher = false;
                continue;
            }
            if timeout.timed_out() && g.ready.is_empty() && g.threads > WARM_THREADS && !g.shutdown
            {
                break;
            }
        }
        g.threads -= 1;
        self.inner.drained.notify_all();
        drop(g);
        CURRENT.with(|c| c.borrow_mut().take());
    }

    /// Runs `f` on the pool for `client` and waits for its result (`None`
    /// if it panicked).
    pub async fn run<T: Send + 'static>(
        &self,
        client: IpAddr,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            client,
            Box::new(move || {
                let _ = tx.send(f());
            }),
        );
        rx.await.ok()
    }

    pub fn stats(&self) -> PoolStats {
        let g = self.lock();
        PoolStats {
            threads: g.threads,
            running: g.running_jobs,
            queued: g.queued_jobs,
            max_threads: self.inner.cfg.threads,
            per_client: self.inner.cfg.per_client,
            ran_on_receiver: self.inner.here_total.load(Ordering::Relaxed),
            ran_in_session: self.inner.in_session.load(Ordering::Relaxed),
            session_handoffs: self.inner.session_handoffs.load(Ordering::Relaxed),
        }
    }

    /// Runs what is queued, then stops every thread and waits for them (at
    /// most `limit`; a job stuck in the kernel is left behind).
    pub fn shutdown(&self, limit: Duration) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let mut g = self.lock();
        g.shutdown = true;
        self.inner.work.notify_all();
        let deadline = std::time::Instant::now() + limit;
        loop {
            // Calls on their receiving threads signal `drained` too (`Slot`).
            let here = self.inner.here.load(Ordering::SeqCst);
            if g.queued_jobs + g.running_jobs == 0 && g.threads == 0 && here == 0 {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    running = g.running_jobs + here,
                    queued = g.queued_jobs,
                    "file I/O still running at the drain limit; not waiting for it"
                );
                return;
            }
            g = self
                .inner
                .drained
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn run(job: Job) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        tracing::error!(
            "a file I/O job panicked (a bug: please report it); its request gets no reply"
        );
    }
}

mod blocking;
mod receiver;
pub use blocking::blocking;
use blocking::{CURRENT, JOB};
pub use receiver::on_receiver;

#[cfg(test)]
mod tests;
