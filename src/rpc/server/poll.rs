//! Busy polling for a client that waits for each reply.
//!
//! A client at queue depth 1 (one process walking a tree or reading a file
//! through the kernel client: `git status`, `tar x`, `npm install`) sends
//! its next call a moment after our reply reaches it. A reader that goes to
//! sleep in between is woken by the kernel when that call arrives, and on
//! an idle CPU the wakeup costs as much as the call: ~25 µs on the VMs we
//! measure on, whose idle vCPUs halt, twice per round trip for a 75 µs NULL
//! (bench/RESULTS.md). So a reader whose client answered its last reply
//! within `limits.busy_poll_us` stays awake that long, looking at the socket
//! (MSG_PEEK, without consuming) and yielding its worker to other tasks
//! between looks, and reads the next call without a wakeup.
//!
//! Bounded three ways, because the CPU it burns is the zone's: only while
//! the connection runs in lock step (one call per arrival, nothing else in
//! flight) and the client's last gap fitted in the window; never longer
//! than the window per reply; and only `max(1, CPUs / 4)` connections at
//! once, the others sleep as before. Linux calls the same idea busy_poll.

use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

/// Connections busy polling now, across the server.
static POLLING: AtomicUsize = AtomicUsize::new(0);

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
    /// When the reader last went to wait with everything answered.
    idle_since: Option<Instant>,
    /// The client's last call came within the window of our reply.
    prompt: bool,
}

impl Poller {
    pub(super) fn new(window: Duration) -> Self {
        Poller {
            window,
            since_empty: 0,
            idle_since: None,
            prompt: true,
        }
    }

    /// Before the reader waits for its next call. `answered`: every call
    /// read so far has its reply written; `buffered`: bytes of the next
    /// call already read. Polls when the connection runs in lock step.
    pub(super) async fn before_read(
        &mut self,
        rd: &mut PolledRead,
        answered: bool,
        buffered: bool,
    ) {
        self.idle_since = None;
        if buffered || !answered {
            return;
        }
        self.idle_since = Some(Instant::now());
        if self.window.is_zero() || self.since_empty != 1 || !self.prompt {
            return;
        }
        let max = max_polling();
        let Ok(_) = POLLING.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        }) else {
            return;
        };
        rd.waiting = look(&rd.inner, self.window).await;
        POLLING.fetch_sub(1, Ordering::SeqCst);
    }

    /// After a call was read; `was_buffered`: it had started arriving
    /// before the reader waited.
    pub(super) fn after_read(&mut self, was_buffered: bool) {
        if !was_buffered {
            self.since_empty = 0;
        }
        self.since_empty = self.since_empty.saturating_add(1);
        if let Some(t) = self.idle_since.take() {
            self.prompt = t.elapsed() <= self.window;
        }
    }
}

/// Looks at the socket until a byte waits or `window` passes; yields to
/// the worker's other tasks between looks. True: something to read (data,
/// the end of the stream, or an error the read will report).
async fn look(rd: &OwnedReadHalf, window: Duration) -> bool {
    let fd = rd.as_ref().as_raw_fd();
    let start = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        match recv(fd, &mut byte, MsgFlags::MSG_PEEK) {
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            _ => return true,
        }
        if start.elapsed() >= window {
            return false;
        }
        tokio::task::yield_now().await;
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
        let mut p = Poller::new(Duration::from_micros(100));
        // One call per arrival: lock step.
        p.after_read(false);
        assert_eq!(p.since_empty, 1);
        // A burst: the second call was already buffered.
        p.after_read(true);
        assert_eq!(p.since_empty, 2);
        p.after_read(false);
        assert_eq!(p.since_empty, 1);
        // A client that took longer than the window is not polled for next time.
        p.idle_since = Some(Instant::now() - Duration::from_millis(1));
        p.after_read(false);
        assert!(!p.prompt);
        p.idle_since = Some(Instant::now());
        p.after_read(false);
        assert!(p.prompt);
    }
}
