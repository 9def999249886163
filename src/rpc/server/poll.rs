//! Busy polling for a client that waits for each reply.
//!
//! A client at queue depth 1 (one process walking a tree or reading a file
//! through the kernel client: `git status`, `tar x`, `npm install`) sends
//! its next call a moment after our reply reaches it. A reader that goes to
//! sleep in between is woken by the kernel when that call arrives, and on
//! an idle CPU the wakeup costs as much as the call: ~25 µs on the VMs we
//! measure on, whose idle vCPUs halt, twice per round trip for a 75 µs NULL
//! (bench/RESULTS.md). So a reader whose client sent its last call within
//! `limits.busy_poll_us` of our reply stays awake that long for the next,
//! looking at the socket (MSG_PEEK, without consuming), and reads it
//! without a wakeup.
//!
//! Where it stays awake: in a *session* (`tcp::Conn::session`). After
//! `SESSION_AFTER` lone, prompt calls in a row, the reader leaves the async
//! workers (`block_in_place`: its worker's other tasks go to another
//! thread) and, on that thread, serves the connection by itself: runs each
//! call — a lone quick call's filesystem work too, on a local filesystem
//! (`iopool::on_receiver`) —
//! writes the reply, looks for the next call, reads it. No wakeup and no
//! hand-over between threads per call; a call that will wait for the disk
//! (a cold READ, a COMMIT, a directory commit) is handed off as before, so
//! the connection's next call is still read meanwhile, and the session
//! ends. Outside tokio's multi-threaded runtime (some tests) the reader
//! looks on its worker instead, yielding it between looks.
//!
//! A session reads only a whole record already in the socket (a client
//! that sends half a call cannot park it), and gives its place up after
//! `SESSION_TURN` when another connection wants one.
//!
//! Bounded three ways, because the CPU it burns is the zone's: only while
//! the connection runs in lock step (one call per arrival, nothing else in
//! flight) and the client's last call came within twice the window of our
//! reply (unpolled, that gap includes our own wakeup); never longer than
//! the window per reply; and only `max(1, CPUs / 4)` connections at once,
//! taking turns, the others sleep as before. Linux calls the same idea
//! busy_poll.

use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::rpc::record::LAST_FRAGMENT;

/// Connections busy polling now, across the server.
static POLLING: AtomicUsize = AtomicUsize::new(0);
/// Sessions started, and calls read in them, since start.
static SESSIONS: AtomicU64 = AtomicU64::new(0);
static SESSION_CALLS: AtomicU64 = AtomicU64::new(0);

/// What busy polling has done (for `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PollingStats {
    /// Connections polling now, and at most at once.
    pub now: usize,
    pub max: usize,
    /// Sessions started since start, and the calls read in them (the first
    /// call of each, read before its session began, not counted).
    pub sessions: u64,
    pub session_calls: u64,
}

pub fn polling_stats() -> PollingStats {
    PollingStats {
        now: POLLING.load(Ordering::Relaxed),
        max: max_polling(),
        sessions: SESSIONS.load(Ordering::Relaxed),
        session_calls: SESSION_CALLS.load(Ordering::Relaxed),
    }
}

/// Counts a session begun (`Conn::session`).
pub(super) fn session_started() {
    SESSIONS.fetch_add(1, Ordering::Relaxed);
}

/// Counts a call read in a session.
pub(super) fn session_call() {
    SESSION_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// Connections allowed to poll at once: a quarter of the CPUs, at least one.
/// Counted once (`available_parallelism` reads cgroup files on Linux: not
/// something to do per call).
fn max_polling() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1)))
}

/// A connection's read half. After a look found the next call waiting, the
/// first read asks the socket directly: tokio would otherwise believe its
/// own last word ("nothing to read") until its I/O driver, which may be
/// asleep on another CPU, hears from the kernel — the wakeup polling saves.
pub(super) struct PolledRead {
    inner: OwnedReadHalf,
    waiting: bool,
}

impl PolledRead {
    pub(super) fn new(inner: OwnedReadHalf) -> Self {
        PolledRead {
            inner,
            waiting: false,
        }
    }
}

impl AsyncRead for PolledRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if std::mem::take(&mut self.waiting) && buf.remaining() > 0 {
            let fd = self.inner.as_ref().as_raw_fd();
            // The socket is non-blocking (tokio's): no data = EAGAIN.
            match recv(fd, buf.initialize_unfilled(), MsgFlags::empty()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Per connection: whether its client runs in lock step, and how promptly.
pub(super) struct Poller {
    window: Duration,
    /// Calls read since the reader last found nothing buffered.
    since_empty: u32,
    /// The client's last call came within twice the window of our reply.
    prompt: bool,
    /// Calls in a row that came alone, promptly (outside sessions).
    alone_run: u32,
}

/// Lone, prompt calls in a row before a session starts. A client at queue
/// depth 16 now and then has every call answered and sends one alone; a
/// session started for it would end at the next burst, having paid for
/// leaving the workers (a thread hand-over) for nothing.
const SESSION_AFTER: u32 = 8;

/// Times a connection wanted a place to poll and found none.
static WANTED: AtomicU64 = AtomicU64::new(0);

/// How long a session keeps its place once another connection wants one:
/// long enough to amortise leaving the workers, short enough that lock-step
/// clients take turns. Two qd-1 writers on one place (bench/RESULTS.md,
/// 2026-12-07 night): 2 ms turns cost 0.65x of the calls no turns serve,
/// 20 ms 0.85x, both sharing evenly (slowest client 0.99 of the fastest;
/// without turns 0.86).
const SESSION_TURN: Duration = Duration::from_millis(20);

/// One of the `max_polling()` places; given back when dropped.
pub(super) struct PollSlot {
    since: Instant,
    /// `WANTED` when the place was taken.
    wanted: u64,
}

impl PollSlot {
    pub(super) fn take() -> Option<PollSlot> {
        let max = max_polling();
        let taken = POLLING.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        });
        if taken.is_err() {
            WANTED.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(PollSlot {
            since: Instant::now(),
            wanted: WANTED.load(Ordering::Relaxed),
        })
    }

    /// Whether a session holding this place should give it up: another
    /// connection wanted one since, and this one had its turn.
    pub(super) fn others_waiting(&self) -> bool {
        turn_over(
            self.wanted,
            WANTED.load(Ordering::Relaxed),
            self.since.elapsed(),
        )
    }
}

/// A place taken when `WANTED` was `then` and held for `held`, with
/// `WANTED` at `now`: whether to give it up.
fn turn_over(then: u64, now: u64, held: Duration) -> bool {
    now != then && held >= SESSION_TURN
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        POLLING.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Poller {
    pub(super) fn new(window: Duration) -> Self {
        Poller {
            window,
            since_empty: 0,
            prompt: true,
            alone_run: 0,
        }
    }

    /// Before the reader waits for its next call. `answered`: every call
    /// read so far has its reply written; `buffered`: bytes of the next
    /// call already read. Some: look for the call on the async worker
    /// (`look`) — only outside tokio's multi-threaded runtime, where
    /// polling happens in sessions instead.
    pub(super) fn before_read(&self, answered: bool, buffered: bool) -> Option<PollSlot> {
        if !self.still_lock_step(answered, buffered) || multi_threaded() {
            return None;
        }
        PollSlot::take()
    }

    /// Whether the reader, about to wait, may poll: everything answered,
    /// nothing more received, and the client runs in lock step, promptly.
    pub(super) fn still_lock_step(&self, answered: bool, buffered: bool) -> bool {
        answered && !buffered && self.lock_step()
    }

    fn lock_step(&self) -> bool {
        !self.window.is_zero() && self.since_empty == 1 && self.prompt
    }

    /// For a call just read outside a session, `alone` on its connection
    /// (nothing else in flight, nothing more received): whether to start
    /// a session with it.
    pub(super) fn wants_session(&mut self, alone: bool) -> bool {
        if !(alone && self.lock_step()) {
            self.alone_run = 0;
            return false;
        }
        self.alone_run = self.alone_run.saturating_add(1);
        self.alone_run >= SESSION_AFTER && multi_threaded()
    }

    /// A session ended: the next one waits for another run of lone calls.
    pub(super) fn session_ended(&mut self) {
        self.alone_run = 0;
    }

    /// After a call was read; `was_buffered`: it had started arriving
    /// before the reader waited; `replied`: when the connection's last
    /// reply was written.
    pub(super) fn after_read(&mut self, was_buffered: bool, replied: Option<Instant>) {
        if !was_buffered {
            self.since_empty = 0;
        }
        self.since_empty = self.since_empty.saturating_add(1);
        // Twice the window: unpolled, the gap includes our own wakeup for
        // the call, which polling is there to remove.
        self.prompt = replied.is_some_and(|t| t.elapsed() <= 2 * self.window);
    }

    /// Looks for the next call for up to the window, on the async worker.
    /// True: something to read (the read will ask the socket directly).
    pub(super) async fn look(&self, rd: &mut PolledRead) -> bool {
        rd.waiting = look(&rd.inner, self.window).await;
        rd.waiting
    }

    /// The same on a thread that may spin (a session's).
    pub(super) fn spin(&self, rd: &mut PolledRead) -> bool {
        rd.waiting = spin(&rd.inner, self.window);
        rd.waiting
    }
}

/// Sessions need `block_in_place`, which only this runtime has.
fn multi_threaded() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// Whether a byte waits on the socket (without taking it). True also for
/// the end of the stream or an error, which the read will report.
fn peek(rd: &OwnedReadHalf) -> bool {
    let mut byte = [0u8; 1];
    !matches!(
        recv(rd.as_ref().as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK),
        Err(Errno::EAGAIN | Errno::EINTR)
    )
}

/// Looks at the socket until a byte waits or `window` passes; yields to
/// the worker's other tasks between looks.
async fn look(rd: &OwnedReadHalf, window: Duration) -> bool {
    let start = Instant::now();
    loop {
        if peek(rd) {
            return true;
        }
        if start.elapsed() >= window {
            return false;
        }
        tokio::task::yield_now().await;
    }
}

/// Whether a whole record waits on the socket (one last fragment, all its
/// bytes), or the end of the stream or an error, which the read will
/// report: then reading it cannot wait for the client. A session reads only
/// then, so a client that sends half a call cannot park the session's
/// thread and its place (a record in several fragments, or larger than the
/// socket buffers, is read by the worker instead).
fn record_waits(rd: &OwnedReadHalf) -> bool {
    let fd = rd.as_ref().as_fd();
    // Small calls (a 4 KiB WRITE with its headers) are seen whole by the
    // look itself; only larger ones cost a second system call.
    let mut head = [0u8; PEEK];
    let seen = match recv(fd.as_raw_fd(), &mut head, MsgFlags::MSG_PEEK) {
        Err(Errno::EAGAIN | Errno::EINTR) => return false,
        Err(_) | Ok(0) => return true,
        Ok(n) => n,
    };
    let Some(mark) = head.get(..4).filter(|_| seen >= 4) else {
        return false;
    };
    let mark = u32::from_be_bytes([mark[0], mark[1], mark[2], mark[3]]);
    if mark & LAST_FRAGMENT == 0 {
        return false;
    }
    let need = 4 + (mark & !LAST_FRAGMENT) as usize;
    seen >= need || crate::sys::bytes_to_read(fd).is_some_and(|n| n >= need)
}

/// Bytes `record_waits` peeks at.
const PEEK: usize = 8 * 1024;

/// Looks at the socket until a whole record waits (`record_waits`) or
/// `window` passes, on a thread that is not an async worker; gives the CPU
/// to whatever else is ready to run on it (the client, on a small machine)
/// between looks.
fn spin(rd: &OwnedReadHalf, window: Duration) -> bool {
    let start = Instant::now();
    loop {
        if record_waits(rd) {
            return true;
        }
        if start.elapsed() >= window {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_look_finds_what_arrives_and_leaves_it_for_the_read() {
        let (mut client, server) = pair().await;
        let (rd, _wr) = server.into_split();
        let mut rd = PolledRead::new(rd);
        // Nothing sent: the look gives up after its window.
        let t = Instant::now();
        assert!(!look(&rd.inner, Duration::from_millis(5)).await);
        assert!(t.elapsed() >= Duration::from_millis(5));
        // Sent while looking: found, and every byte is still there to read.
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            client.write_all(b"hello, world").await.unwrap();
            client
        });
        assert!(look(&rd.inner, Duration::from_secs(10)).await);
        rd.waiting = true;
        let mut got = [0u8; 12];
        rd.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello, world");
        // The end of the stream counts as something to read, and reads as 0.
        drop(writer.await.unwrap());
        assert!(look(&rd.inner, Duration::from_secs(10)).await);
        rd.waiting = true;
        assert_eq!(rd.read(&mut got).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_looking_connection_leaves_its_worker_to_others() {
        // One worker, busy looking: a task spawned meanwhile runs at once
        // only if looking yields between looks.
        let (_client, server) = pair().await;
        let (rd, _wr) = server.into_split();
        let window = Duration::from_millis(500);
        let looking = tokio::spawn(async move {
            let t = Instant::now();
            (look(&rd, window).await, t)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let other = tokio::spawn(async { Instant::now() }).await.unwrap();
        let (found, started) = looking.await.unwrap();
        assert!(!found);
        assert!(other.duration_since(started) < Duration::from_millis(300));
    }

    #[test]
    fn only_a_prompt_lock_step_client_is_polled_for() {
        // A wide window: this checks the rule, not a speed.
        let mut p = Poller::new(Duration::from_secs(1));
        let just = || Some(Instant::now());
        // One call per arrival, soon after our reply: lock step.
        p.after_read(false, just());
        assert!(p.still_lock_step(true, false));
        assert!(!p.still_lock_step(false, false), "a reply still to write");
        assert!(!p.still_lock_step(true, true), "the next call already here");
        // A burst: the second call was already buffered.
        p.after_read(true, just());
        assert!(!p.still_lock_step(true, false));
        p.after_read(false, just());
        assert!(p.still_lock_step(true, false));
        // A client that took longer than twice the window after our reply.
        p.after_read(false, Some(Instant::now() - Duration::from_secs(3)));
        assert!(!p.still_lock_step(true, false));
        // Nothing answered yet on this connection.
        p.after_read(false, None);
        assert!(!p.still_lock_step(true, false));
        // Turned off.
        let mut off = Poller::new(Duration::ZERO);
        off.after_read(false, just());
        assert!(!off.still_lock_step(true, false));
    }

    #[test]
    fn a_session_gives_its_place_up_only_to_a_waiting_connection_after_its_turn() {
        let ms = Duration::from_millis;
        assert!(!turn_over(5, 5, ms(1000)), "nobody waiting: keep it");
        assert!(!turn_over(5, 6, ms(1)), "somebody waiting, turn not over");
        assert!(turn_over(5, 6, SESSION_TURN));
        assert!(
            turn_over(u64::MAX, 0, ms(1000)),
            "the count wrapped: still a change"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_session_starts_after_a_run_of_lone_prompt_calls() {
        let mut p = Poller::new(Duration::from_secs(1));
        let just = || Some(Instant::now());
        for i in 1..SESSION_AFTER {
            p.after_read(false, just());
            assert!(!p.wants_session(true), "call {i}: too early");
        }
        p.after_read(false, just());
        assert!(p.wants_session(true));
        // A call not alone (another in flight) starts the count again, and
        // so does the end of a session.
        p.after_read(false, just());
        assert!(!p.wants_session(false));
        p.after_read(false, just());
        assert!(!p.wants_session(true));
        p.session_ended();
        for _ in 1..SESSION_AFTER {
            p.after_read(false, just());
            assert!(!p.wants_session(true));
        }
        p.after_read(false, just());
        assert!(p.wants_session(true));
    }

    #[test]
    fn no_session_outside_the_multi_threaded_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut p = Poller::new(Duration::from_secs(1));
            for _ in 0..2 * SESSION_AFTER {
                p.after_read(false, Some(Instant::now()));
                assert!(!p.wants_session(true));
            }
        });
    }
}
