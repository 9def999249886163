use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

/// A gate jobs wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Also the stall rule: with one CPU, jobs that wait (here at a gate) let
/// the next ones in, up to the client's share.
#[test]
fn one_client_cannot_take_every_thread() {
    let pool = IoPool::new(PoolConfig {
        threads: 8,
        per_client: 3,
        cpus: 1,
        ..PoolConfig::default()
    });
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    for _ in 0..10 {
        let (running, peak, gate) = (running.clone(), peak.clone(), gate.clone());
        pool.submit(
            ip(1),
            Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.wait();
                running.fetch_sub(1, Ordering::SeqCst);
            }),
        );
    }
    wait_until("client 1 runs its share", || {
        running.load(Ordering::SeqCst) == 3
    });
    // Another client's job runs at once although client 1 has 7 waiting
    // and 3 stuck.
    let (done_tx, done_rx) = mpsc::channel();
    pool.submit(ip(2), Box::new(move || done_tx.send(()).unwrap()));
    done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("client 2 ran while client 1's jobs were blocked");
    assert_eq!(pool.stats().queued, 7);
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "client 1 ran more than its share"
    );
    gate.open();
    pool.shutdown(Duration::from_secs(10));
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

/// A burst of short jobs runs on the threads already awake, back to back,
/// instead of waking (or starting) a thread per job: the pool started one
/// thread per queued job, up to the client's share, and they fought over
/// the CPUs (3.5 context switches per 4 KiB write at queue depth 16).
#[test]
fn a_burst_of_short_jobs_does_not_start_a_thread_per_job() {
    let pool = IoPool::new(PoolConfig {
        threads: 32,
        per_client: 32,
        cpus: 1,
        ..PoolConfig::default()
    });
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..2000 {
        let done = done.clone();
        pool.submit(
            ip(1),
            Box::new(move || {
                done.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    wait_until("every job ran", || done.load(Ordering::SeqCst) == 2000);
    // One thread is enough; a second can start when the first is
    // descheduled past the stall limit on a busy machine, rarely more.
    let threads = pool.stats().threads;
    assert!(
        threads <= 4,
        "{threads} threads started for 2,000 jobs of nanoseconds each"
    );
    pool.shutdown(Duration::from_secs(10));
}

/// A job that says it waits (`blocking`: an fsync, a directory commit)
/// gives up its CPU at once: the job queued behind it runs although the
/// stall timer (an hour here) never fires. Without it, 16 creates of one
/// client sharing a directory commit ran two at a time.
#[test]
fn a_job_inside_blocking_lets_the_next_one_run() {
    let pool = IoPool::new(PoolConfig {
        threads: 4,
        per_client: 4,
        cpus: 1,
        stall: Duration::from_secs(3600),
    });
    let gate = Arc::new(Gate::default());
    let (tx, rx) = mpsc::channel();
    let g2 = gate.clone();
    pool.submit(ip(1), Box::new(move || blocking(|| g2.wait())));
    let t2 = tx.clone();
    pool.submit(ip(1), Box::new(move || t2.send("second").unwrap()));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok("second"),
        "the second job waited for the blocked one"
    );
    // A job that computes keeps its CPU: the next one waits for it.
    let g3 = gate.clone();
    let (started_tx, started_rx) = mpsc::channel();
    pool.submit(
        ip(1),
        Box::new(move || {
            started_tx.send(()).unwrap();
            g3.wait()
        }),
    );
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    pool.submit(ip(1), Box::new(move || tx.send("fourth").unwrap()));
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "a job ran beyond the CPU limit"
    );
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("fourth"));
    pool.shutdown(Duration::from_secs(10));
}

/// Two clients ready at once with one idle thread: the second gets a
/// thread of its own at once, not the first one's wakeup (it used to
/// wait until a running job finished: 100 ms behind a cold read).
#[test]
fn two_clients_ready_at_once_both_run_at_once() {
    for _ in 0..50 {
        let pool = IoPool::new(PoolConfig {
            threads: 4,
            per_client: 1,
            ..PoolConfig::default()
        });
        // One thread, idle.
        let (tx, rx) = mpsc::channel();
        pool.submit(ip(9), Box::new(move || tx.send(()).unwrap()));
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        wait_until("the first thread is idle", || {
            let g = pool.lock();
            g.idle == 1 && g.running_jobs == 0
        });
        let gate = Arc::new(Gate::default());
        let (started_tx, started_rx) = mpsc::channel();
        for client in [1, 2] {
            let (gate, started_tx) = (gate.clone(), started_tx.clone());
            pool.submit(
                ip(client),
                Box::new(move || {
                    started_tx.send(client).unwrap();
                    gate.wait();
                }),
            );
        }
        for _ in 0..2 {
            started_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("both clients' jobs run while neither has finished");
        }
        gate.open();
        pool.shutdown(Duration::from_secs(10));
    }
}

#[test]
fn shutdown_runs_what_was_queued_and_later_jobs_run_inline() {
    let pool = IoPool::new(PoolConfig {
        threads: 2,
        per_client: 2,
        ..PoolConfig::default()
    });
    let n = Arc::new(AtomicUsize::new(0));
    for i in 0..50 {
        let n = n.clone();
        pool.submit(
            ip(i % 5),
            Box::new(move || {
                n.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    pool.shutdown(Duration::from_secs(10));
    assert_eq!(n.load(Ordering::SeqCst), 50);
    let n2 = n.clone();
    pool.submit(
        ip(1),
        Box::new(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        }),
    );
    assert_eq!(n.load(Ordering::SeqCst), 51);
    assert_eq!(pool.stats().threads, 0);
}

#[test]
fn a_panicking_job_does_not_kill_its_thread() {
    let pool = IoPool::new(PoolConfig {
        threads: 1,
        per_client: 1,
        ..PoolConfig::default()
    });
    pool.submit(ip(1), Box::new(|| panic!("boom")));
    let (tx, rx) = mpsc::channel();
    pool.submit(ip(1), Box::new(move || tx.send(7).unwrap()));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(7));
    pool.shutdown(Duration::from_secs(5));
}

/// A lone call runs on the thread that received it (no pool thread is
/// woken), up to `cpus` at once; the rest, calls that are not alone, calls
/// outside a multi-threaded runtime and calls after `shutdown` go to the
/// pool, and `shutdown` waits for the ones on receiving threads.
#[test]
fn lone_calls_run_on_their_receiving_thread_up_to_cpus() {
    let (pool, rt) = pool_and_runtime(4, 1, 2);
    let name = || std::thread::current().name().unwrap_or("").to_string();
    let gate = Arc::new(Gate::default());
    let (tx, rx) = mpsc::channel::<(&str, String)>();
    rt.block_on(async {
        // The first lone call takes the one receiver slot and waits at the gate.
        let (t, g) = (tx.clone(), gate.clone());
        pool.submit_call(
            ip(1),
            true,
            true,
            Box::new(move || {
                t.send(("first", name())).unwrap();
                g.wait();
            }),
        );
        let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first.0, "first");
        assert_ne!(
            first.1, "volnfs-io",
            "a lone call runs on its receiving thread"
        );
        // A second lone call finds the slot taken; a call that is not
        // alone always goes to the pool.
        for (what, alone) in [("second", true), ("pipelined", false)] {
            let t = tx.clone();
            pool.submit_call(
                ip(2),
                alone,
                true,
                Box::new(move || t.send((what, name())).unwrap()),
            );
            let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(
                got,
                (what, "volnfs-io".to_string()),
                "{what} ran on a pool thread"
            );
        }
        assert_eq!(pool.stats().ran_on_receiver, 1);
    });
    // Outside a runtime: the pool.
    let t = tx.clone();
    pool.submit_call(
        ip(3),
        true,
        true,
        Box::new(move || t.send(("outside", name())).unwrap()),
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap().1,
        "volnfs-io"
    );
    // shutdown waits for the call still at the gate.
    let done = Arc::new(AtomicUsize::new(0));
    let opener = {
        let (g, done) = (gate.clone(), done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            done.store(1, Ordering::SeqCst);
            g.open();
        })
    };
    pool.shutdown(Duration::from_secs(10));
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "shutdown returned before the lone call ended"
    );
    opener.join().unwrap();
    rt.block_on(async {
        let t = tx.clone();
        pool.submit_call(
            ip(1),
            true,
            true,
            Box::new(move || t.send(("late", name())).unwrap()),
        );
    });
    // After shutdown jobs run inline, on the caller: the runtime's thread.
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0, "late");
    assert_eq!(pool.stats().ran_on_receiver, 1);
}

/// A pool of `threads` threads (`cpus` of them for calls that compute,
/// any client may use them all) and a multi-threaded runtime with
/// `workers` workers to receive calls on.
fn pool_and_runtime(
    threads: usize,
    cpus: usize,
    workers: usize,
) -> (IoPool, tokio::runtime::Runtime) {
    let pool = IoPool::new(PoolConfig {
        threads,
        per_client: threads,
        cpus,
        ..PoolConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap();
    (pool, rt)
}

/// Submits a call (`alone`, `quick`) that reports the thread it ran on:
/// its id and name.
fn report_thread(
    pool: &IoPool,
    alone: bool,
    quick: bool,
) -> mpsc::Receiver<(std::thread::ThreadId, Option<String>)> {
    let (tx, rx) = mpsc::channel();
    pool.submit_call(
        ip(1),
        alone,
        quick,
        Box::new(move || {
            let me = std::thread::current();
            tx.send((me.id(), me.name().map(String::from))).unwrap()
        }),
    );
    rx
}

#[test]
fn in_a_session_a_quick_lone_call_runs_before_submit_returns() {
    let (pool, rt) = pool_and_runtime(2, 2, 1);
    let wait = Duration::from_secs(5);
    rt.block_on(async {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            super::on_receiver(|| {
                handle.block_on(async {
                    let me = std::thread::current().id();
                    // Quick: right here, already done when submit_call returns.
                    let ran = report_thread(&pool, true, true).try_recv().ok();
                    assert_eq!(ran.map(|r| r.0), Some(me), "ran on the session's thread");
                    // Not quick (a commit, a cold read): elsewhere, so this
                    // thread goes on reading meanwhile.
                    let ran = report_thread(&pool, true, false)
                        .recv_timeout(wait)
                        .unwrap();
                    assert_ne!(
                        ran.0, me,
                        "a call that may wait ran on the session's thread"
                    );
                    // Not alone: the pool, as everywhere.
                    let ran = report_thread(&pool, false, true)
                        .recv_timeout(wait)
                        .unwrap();
                    assert_eq!(ran.1.as_deref(), Some("volnfs-io"));
                })
            })
        });
        // Outside a session a quick lone call runs in a task of its own.
        let me = std::thread::current().id();
        let ran = report_thread(&pool, true, true).recv_timeout(wait).unwrap();
        assert_ne!(ran.0, me, "ran in line outside a session");
    });
    assert_eq!(pool.stats().ran_on_receiver, 3);
    // Run by the session: the quick lone call; passed on: the call that
    // may wait, the one not alone.
    assert_eq!(pool.stats().ran_in_session, 1);
    assert_eq!(pool.stats().session_handoffs, 2);
}
