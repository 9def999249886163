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

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// A unit of work; it must not panic (a panic is caught and logged).
pub type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most threads running jobs at once.
    pub threads: usize,
    /// Most jobs of one client running at once.
    pub per_client: usize,
}

pub const DEFAULT_THREADS: usize = 64;
pub const DEFAULT_PER_CLIENT: usize = 16;

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads: DEFAULT_THREADS,
            per_client: DEFAULT_PER_CLIENT,
        }
    }
}

/// Threads kept even when idle (first requests after a quiet spell do not
/// wait for a thread to start).
const WARM_THREADS: usize = 2;
const IDLE_EXIT: Duration = Duration::from_secs(60);

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
    /// Idle threads already woken for a ready client but not yet running:
    /// another ready client needs another thread, not the same wakeup.
    woken: usize,
    queued_jobs: usize,
    running_jobs: usize,
    shutdown: bool,
}

struct Inner {
    cfg: PoolConfig,
    state: Mutex<State>,
    work: Condvar,
    drained: Condvar,
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
}

impl IoPool {
    pub fn new(cfg: PoolConfig) -> IoPool {
        let cfg = PoolConfig {
            threads: cfg.threads.max(1),
            per_client: cfg.per_client.clamp(1, cfg.threads.max(1)),
        };
        IoPool {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                drained: Condvar::new(),
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
        let eligible = !q.queued && q.running < per_client;
        if eligible {
            q.queued = true;
            g.ready.push_back(client);
        }
        g.queued_jobs += 1;
        if eligible {
            self.wake_one(&mut g);
        }
    }

    /// A client became ready: an idle thread takes it, or a new one starts
    /// (up to the limit; else the next thread to finish takes it).
    fn wake_one(&self, g: &mut State) {
        if g.idle > g.woken {
            g.woken += 1;
            self.inner.work.notify_one();
        } else if g.threads < self.inner.cfg.threads {
            g.threads += 1;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("volnfs-io".into())
                .spawn(move || me.worker());
            if let Err(e) = spawned {
                g.threads -= 1;
                tracing::error!(error = %e, threads = g.threads, "cannot start a file I/O thread; queued requests wait for a running one");
            }
        }
    }

    fn worker(&self) {
        let per_client = self.inner.cfg.per_client;
        let mut g = self.lock();
        loop {
            if let Some(client) = g.ready.pop_front() {
                let Some(q) = g.clients.get_mut(&client) else {
                    continue;
                };
                q.queued = false;
                let Some(job) = q.jobs.pop_front() else {
                    continue;
                };
                q.running += 1;
                let more = !q.jobs.is_empty() && q.running < per_client;
                if more {
                    q.queued = true;
                    g.ready.push_back(client);
                }
                g.queued_jobs -= 1;
                if more {
                    self.wake_one(&mut g);
                }
                g.running_jobs += 1;
                drop(g);
                run(job);
                g = self.lock();
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
            if g.shutdown {
                break;
            }
            g.idle += 1;
            let (ng, timeout) = self
                .inner
                .work
                .wait_timeout(g, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            g = ng;
            g.idle -= 1;
            g.woken = g.woken.saturating_sub(1);
            if timeout.timed_out() && g.ready.is_empty() && g.threads > WARM_THREADS && !g.shutdown
            {
                break;
            }
        }
        g.threads -= 1;
        self.inner.drained.notify_all();
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
        }
    }

    /// Runs what is queued, then stops every thread and waits for them (at
    /// most `limit`; a job stuck in the kernel is left behind).
    pub fn shutdown(&self, limit: Duration) {
        let mut g = self.lock();
        g.shutdown = true;
        self.inner.work.notify_all();
        let deadline = std::time::Instant::now() + limit;
        while g.queued_jobs + g.running_jobs > 0 || g.threads > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    running = g.running_jobs,
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

#[cfg(test)]
mod tests;
