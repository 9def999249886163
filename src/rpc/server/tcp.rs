//! One TCP connection: the reader loop and the reply sink.
//!
//! Replies are written by the thread that made them, with one non-blocking
//! vectored write (record mark, header and results, then bulk data), in
//! the order they are finished. Only when the socket's send buffer is full
//! does a reply wait in the connection's queue, which its flusher task
//! writes as the socket drains; replies made meanwhile queue behind it, so
//! bytes of two replies never interleave.
//!
//! Replies the reader makes itself for a batch of calls received together
//! (sixteen GETATTRs a client sent at once, each answered from the caches)
//! are written together, with one vectored write, once the batch is done
//! (`Batch`).
//!
//! A reader whose client waits for each reply may stay awake for the next
//! call instead of sleeping, on a thread of its own (a polling session:
//! `poll`, `limits.busy_poll_us`).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, Instrument};

use super::poll::{self, PollSlot, PolledRead, Poller};
use super::registry::{now_ms, CloseReason};
use super::{Ticket, Transports};
use crate::rpc::record::{read_record, RecordError, LAST_FRAGMENT};
use crate::rpc::{canonical_addr, Call, Parsed, Program, ReplyBytes, Sink, Transport};

/// Request and reply bytes one TCP connection may hold, in KiB. Reading a
/// request reserves the largest reply it could need; once the reply exists
/// the reservation shrinks to its size, and it is returned when the reply
/// has been written. A client that stops reading its replies therefore
/// pins at most this much, not `max_inflight_per_conn` full-size replies
/// (the Linux server likewise stops reading a socket without room for a
/// reply).
const CONN_BUDGET_KIB: usize = 8 * 1024;

/// KiB reserved before a request is read (most calls and replies fit).
const BASE_RESERVE_KIB: u32 = 16;

/// Bytes a TCP connection reads ahead of the record it is parsing: small
/// calls arrive whole (mark and body) in one receive; larger payloads are
/// read straight into the record.
const READ_BUFFER: usize = 16 * 1024;

fn kib(bytes: usize) -> u32 {
    bytes.div_ceil(1024).min(u32::MAX as usize) as u32
}

/// Reply bytes reserved in a connection's budget.
pub(crate) struct Room(OwnedSemaphorePermit);

impl Room {
    /// Keeps only what a reply of `bytes` needs until it is written.
    fn shrink_to(&mut self, bytes: usize) {
        let keep = kib(bytes).max(1) as usize;
        let held = self.0.num_permits();
        if held > keep {
            drop(self.0.split(held - keep));
        }
    }
}

struct Queued {
    bytes: ReplyBytes,
    written: usize,
    _ticket: Ticket,
}

impl Queued {
    fn total(&self) -> usize {
        self.bytes.len()
    }
}

#[derive(Default)]
struct SinkState {
    queue: VecDeque<Queued>,
    /// A write failed: the connection is gone, replies are dropped.
    broken: bool,
    closing: bool,
}

/// Where a connection's replies go; shared with every call in flight.
pub(super) struct TcpSink {
    wr: OwnedWriteHalf,
    state: Mutex<SinkState>,
    wake: Notify,
    /// When the connection last made progress (for idle eviction).
    active: Arc<AtomicU64>,
    /// When the last reply was written whole, in µs since `EPOCH` plus
    /// one (0: never), for `poll`: how promptly the client sends its next
    /// call. Not under `state`, which a reply holds while it is written:
    /// the reader asks after every call.
    replied: AtomicU64,
}

/// The reference point of `TcpSink::replied`.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

impl TcpSink {
    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes as much of `q` as the socket takes now. Ok(true) = all of it.
    fn write_some(&self, q: &mut Queued) -> std::io::Result<bool> {
        loop {
            let total = q.total();
            if q.written >= total {
                return Ok(true);
            }
            let head = &q.bytes.head;
            let tail = q.bytes.tail.as_deref().unwrap_or(&[]);
            let res = if q.written < head.len() {
                self.wr
                    .try_write_vectored(&[IoSlice::new(&head[q.written..]), IoSlice::new(tail)])
            } else {
                self.wr.try_write(&tail[q.written - head.len()..])
            };
            match res {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => q.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    fn fail(&self, st: &mut SinkState, e: &std::io::Error) {
        if !st.broken {
            debug!(error = %e, "reply write failed; closing");
        }
        st.broken = true;
        st.queue.clear();
    }

    /// Writes the queue while the socket takes it; Ok(true) = emptied.
    fn drain_queue(&self) -> bool {
        let mut st = self.lock();
        while let Some(front) = st.queue.front_mut() {
            match self.write_some(front) {
                Ok(true) => {
                    st.queue.pop_front();
                    self.note_replied();
                    self.active.store(now_ms(), Ordering::Relaxed);
                }
                Ok(false) => return false,
                Err(e) => {
                    self.fail(&mut st, &e);
                    return true;
                }
            }
        }
        true
    }

    /// The flusher: writes queued replies as the socket drains, until the
    /// connection closes with nothing left to write.
    async fn flush_loop(self: Arc<Self>) {
        loop {
            {
                let st = self.lock();
                if st.broken || (st.closing && st.queue.is_empty()) {
                    break;
                }
            }
            if self.lock().queue.is_empty() {
                self.wake.notified().await;
                continue;
            }
            if self.drain_queue() {
                continue;
            }
            if let Err(e) = self.wr.writable().await {
                let mut st = self.lock();
                self.fail(&mut st, &e);
                break;
            }
        }
    }

    fn note_replied(&self) {
        let us = EPOCH.elapsed().as_micros().saturating_add(1);
        self.replied
            .store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn replied(&self) -> Option<Instant> {
        match self.replied.load(Ordering::Relaxed) {
            0 => None,
            us => EPOCH.checked_add(Duration::from_micros(us - 1)),
        }
    }

    fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }
}

/// A reply ready to write: its record mark set, its room shrunk to its size.
fn prepare(mut bytes: ReplyBytes, mut ticket: Ticket) -> Queued {
    let total = bytes.len();
    let mark = (total.saturating_sub(4) as u32) | LAST_FRAGMENT;
    if let Some(h) = bytes.head.get_mut(..4) {
        h.copy_from_slice(&mark.to_be_bytes());
    }
    if let Some(room) = ticket.room.as_mut() {
        room.shrink_to(total);
    }
    Queued {
        bytes,
        written: 0,
        _ticket: ticket,
    }
}

/// Most replies a `Batch` holds (two slices each in one vectored write,
/// far below any system's IOV_MAX).
const MAX_BATCH: usize = 64;

impl TcpSink {
    /// Writes the replies of a `Batch`: all of them with one vectored write
    /// when the socket takes them, the rest queued for the flusher.
    fn deliver_batch(&self, batch: Vec<Queued>) {
        if batch.is_empty() {
            return;
        }
        let mut rest = VecDeque::from(batch);
        let mut st = self.lock();
        if st.broken {
            return;
        }
        if st.queue.is_empty() {
            if let Err(e) = self.write_front(&mut rest) {
                self.fail(&mut st, &e);
                return;
            }
            if rest.is_empty() {
                return;
            }
        }
        st.queue.extend(rest);
        drop(st);
        self.wake.notify_one();
    }

    /// Writes replies from the front of `batch` while the socket takes
    /// them, several per vectored write; those written whole leave it, the
    /// first written in part keeps its offset.
    fn write_front(&self, batch: &mut VecDeque<Queued>) -> std::io::Result<()> {
        while !batch.is_empty() {
            let res = {
                let mut slices = Vec::with_capacity(2 * batch.len().min(MAX_BATCH));
                for q in batch.iter().take(MAX_BATCH) {
                    let head = &q.bytes.head;
                    let tail = q.bytes.tail.as_deref().unwrap_or(&[]);
                    if q.written < head.len() {
                        slices.push(IoSlice::new(&head[q.written..]));
                        slices.push(IoSlice::new(tail));
                    } else {
                        slices.push(IoSlice::new(&tail[q.written - head.len()..]));
                    }
                }
                self.wr.try_write_vectored(&slices)
            };
            let mut n = match res {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            while let Some(front) = batch.front_mut() {
                let left = front.total() - front.written;
                if n < left {
                    front.written += n;
                    break;
                }
                n -= left;
                batch.pop_front();
                self.note_replied();
                self.active.store(now_ms(), Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The replies the reader makes itself while more calls it received
/// together wait in its buffer: held (up to `MAX_BATCH`, for at most
/// `BATCH_HOLD`) and written together when the batch is done
/// (`Conn::flush_batch`), which the reader does before anything it could
/// wait for (more bytes from the client, an in-flight slot, room in the
/// budget) — so a held reply never waits for something its own ticket
/// holds. Only a call that waits inside its dispatch (behind a rollback's
/// gate) keeps the batch's earlier replies until it runs. A reply made on
/// another thread (a call passed to the pool) is never held.
///
/// Measured (bench/RESULTS.md, 2026-12-08 morning): at queue depth 16 the
/// server's CPU per NULL fell by almost half and the client's by a quarter
/// (one segment, one wakeup, for many replies); cached READs 1.43x.
struct Batch {
    sink: Arc<TcpSink>,
    held: Mutex<Option<Vec<Queued>>>,
    opened: Instant,
}

/// How long a batch holds its first reply at most (checked before each
/// further call, so a reply waits this plus one call): calls answered from
/// the caches take a few µs, and a writev per reply costs about as much as
/// the call; a run of in-line WRITEs (~20 µs each) would otherwise hold
/// the first reply for the whole run, and the client, which sends its next
/// WRITE when one returns, waits (randwrite16 lost 7 % with no limit).
const BATCH_HOLD: Duration = Duration::from_micros(30);

impl Batch {
    fn new(sink: Arc<TcpSink>) -> Batch {
        Batch {
            sink,
            held: Mutex::new(Some(Vec::new())),
            opened: Instant::now(),
        }
    }

    /// Ends the batch: what it holds, for `TcpSink::deliver_batch`.
    fn take(&self) -> Vec<Queued> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.take().unwrap_or_default()
    }
}

thread_local! {
    /// This thread runs a reader's call now (`Conn::step`): a reply
    /// delivered here was made in line. One delivered elsewhere (by the
    /// pool, while the batch is still open) is not held: it waited for the
    /// disk already.
    static IN_LINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Sink for Batch {
    fn deliver(&self, bytes: ReplyBytes, ticket: Ticket) {
        let q = prepare(bytes, ticket);
        if IN_LINE.with(|f| f.get()) {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = held.as_mut().filter(|v| v.len() < MAX_BATCH) {
                v.push(q);
                return;
            }
        }
        self.sink.deliver_prepared(q);
    }
}

impl Sink for TcpSink {
    fn deliver(&self, bytes: ReplyBytes, ticket: Ticket) {
        self.deliver_prepared(prepare(bytes, ticket));
    }
}

impl TcpSink {
    fn deliver_prepared(&self, mut q: Queued) {
        let mut st = self.lock();
        if st.broken {
            return;
        }
        if st.queue.is_empty() {
            match self.write_some(&mut q) {
                Ok(true) => {
                    self.note_replied();
                    self.active.store(now_ms(), Ordering::Relaxed);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    self.fail(&mut st, &e);
                    return;
                }
            }
        }
        st.queue.push_back(q);
        drop(st);
        self.wake.notify_one();
    }
}

/// Serves one connection until the client leaves, the connection is asked
/// to close, or the server shuts down; then waits (at most `limits.drain`)
/// for the calls in flight to be answered.
pub(super) async fn serve(
    t: &Transports,
    stream: TcpStream,
    peer: SocketAddr,
    closed: watch::Receiver<CloseReason>,
    active: Arc<AtomicU64>,
) {
    let local = stream.local_addr().ok().map(canonical_addr);
    let (rd, wr) = stream.into_split();
    let sink = Arc::new(TcpSink {
        wr,
        state: Mutex::new(SinkState::default()),
        wake: Notify::new(),
        active: active.clone(),
        replied: AtomicU64::new(0),
    });
    let flusher = tokio::spawn(sink.clone().flush_loop().in_current_span());
    let max_inflight = t.limits.max_inflight_per_conn;
    let mut c = Conn {
        t,
        peer,
        local,
        rd: BufReader::with_capacity(READ_BUFFER, PolledRead::new(rd)),
        poller: Poller::new(t.limits.busy_poll),
        sink: sink.clone(),
        max_inflight,
        inflight: Arc::new(Semaphore::new(max_inflight)),
        budget: Arc::new(Semaphore::new(CONN_BUDGET_KIB)),
        max_kib: kib(t.limits.max_record).min(CONN_BUDGET_KIB as u32),
        calls: JoinSet::new(),
        shutdown: t.shutdown.clone(),
        closed,
        active,
        batch: None,
    };
    loop {
        if !whole_record(c.rd.buffer()) {
            c.flush_batch();
        }
        while c.calls.try_join_next().is_some() {}
        let buffered = !c.rd.buffer().is_empty();
        let answered = c.inflight.available_permits() == c.max_inflight;
        if let Some(slot) = c.poller.before_read(answered, buffered) {
            c.poller.look(c.rd.get_mut()).await;
            drop(slot);
        }
        let go_on = match c.step(false).await {
            Step::Stop => false,
            Step::Next => true,
            Step::Lone(lone) => match PollSlot::take() {
                Some(slot) => c.session(slot, lone),
                None => {
                    c.dispatch(lone).await;
                    true
                }
            },
        };
        if !go_on {
            break;
        }
    }
    c.flush_batch();
    let Conn {
        inflight,
        mut calls,
        ..
    } = c;
    // Drain: every slot comes back once its reply is written (or dropped).
    let all = u32::try_from(max_inflight).unwrap_or(u32::MAX);
    if tokio::time::timeout(t.limits.drain, inflight.acquire_many(all))
        .await
        .is_err()
    {
        info!(%peer, "calls still in flight at the drain limit; closing anyway");
        calls.abort_all();
    }
    while calls.join_next().await.is_some() {}
    sink.close();
    let _ = flusher.await;
}

/// One connection's reader and what it needs to take calls.
struct Conn<'a> {
    t: &'a Transports,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    rd: BufReader<PolledRead>,
    poller: Poller,
    sink: Arc<TcpSink>,
    max_inflight: usize,
    inflight: Arc<Semaphore>,
    budget: Arc<Semaphore>,
    max_kib: u32,
    /// Calls that wait for more than the CPU (the lock manager's) run in
    /// tasks of their own, owned here.
    calls: JoinSet<()>,
    shutdown: watch::Receiver<bool>,
    closed: watch::Receiver<CloseReason>,
    active: Arc<AtomicU64>,
    /// Replies held while more calls received together wait (`Batch`).
    batch: Option<Arc<Batch>>,
}

/// Whether `buf` begins with a whole record (one last fragment, all its
/// bytes): reading it cannot wait for the client.
fn whole_record(buf: &[u8]) -> bool {
    let Some(&[a, b, c, d]) = buf.get(..4) else {
        return false;
    };
    let mark = u32::from_be_bytes([a, b, c, d]);
    mark & LAST_FRAGMENT != 0 && buf.len() - 4 >= (mark & !LAST_FRAGMENT) as usize
}

/// What became of one call read (`Conn::step`).
enum Step {
    /// The connection is done (closed by either side, unreadable, shutting
    /// down).
    Stop,
    /// Started or answered; read the next.
    Next,
    /// Alone on a connection whose client runs in lock step: to be run in
    /// a polling session (`Conn::session`).
    Lone(Box<Lone>),
}

/// A call read but not started.
struct Lone {
    call: Call,
    program: Arc<dyn Program>,
    ticket: Ticket,
}

impl Conn<'_> {
    /// A polling session (see `poll`): this thread leaves the async
    /// workers (`block_in_place` hands its worker's other tasks to another
    /// thread) and serves the connection by itself while its client runs in
    /// lock step — runs the call (its filesystem work included, see
    /// `iopool::on_receiver`), writes the reply, looks for the next call
    /// and reads it — without a wakeup or a hand-over per call. Ends when
    /// the client falls out of lock step or is slower than the window, or
    /// after `SESSION_TURN` when another connection wants to poll.
    /// Returns whether to go on serving the connection.
    fn session(&mut self, slot: PollSlot, first: Box<Lone>) -> bool {
        self.flush_batch();
        let handle = tokio::runtime::Handle::current();
        let go_on = tokio::task::block_in_place(|| {
            crate::iopool::on_receiver(|| {
                handle.block_on(async {
                    poll::session_started();
                    self.dispatch(first).await;
                    loop {
                        while self.calls.try_join_next().is_some() {}
                        let buffered = !self.rd.buffer().is_empty();
                        let answered = self.inflight.available_permits() == self.max_inflight;
                        if !self.poller.still_lock_step(answered, buffered)
                            || slot.others_waiting()
                            || !self.poller.spin(self.rd.get_mut())
                        {
                            // Read (and sleep) on the worker as usual.
                            return true;
                        }
                        match self.step(true).await {
                            Step::Stop => return false,
                            Step::Next => poll::session_call(),
                            Step::Lone(l) => {
                                poll::session_call();
                                self.dispatch(l).await;
                            }
                        }
                    }
                })
            })
        });
        self.poller.session_ended();
        go_on
    }

    /// Where the reply to a call answered in line goes: into the open
    /// batch, or a new one when another whole call waits in the buffer;
    /// otherwise (and always in a session, which reads one call at a time)
    /// straight to the connection.
    fn reply_to(&mut self, in_session: bool) -> Arc<dyn Sink> {
        if in_session {
            return self.sink.clone();
        }
        if self
            .batch
            .as_ref()
            .is_some_and(|b| b.opened.elapsed() >= BATCH_HOLD)
        {
            self.flush_batch();
        }
        if self.batch.is_none() && whole_record(self.rd.buffer()) {
            self.batch = Some(Arc::new(Batch::new(self.sink.clone())));
        }
        match &self.batch {
            Some(b) => b.clone(),
            None => self.sink.clone(),
        }
    }

    /// Writes the batch's replies, if a batch is open, and ends it.
    fn flush_batch(&mut self) {
        if let Some(b) = self.batch.take() {
            self.sink.deliver_batch(b.take());
        }
    }

    /// Starts a call read by `step`.
    async fn dispatch(&mut self, l: Box<Lone>) {
        let to: Arc<dyn Sink> = self.sink.clone();
        let Lone {
            call,
            program,
            ticket,
        } = *l;
        self.t.dispatcher.run(call, program, to, ticket).await;
    }

    /// Reads one call and starts it (or answers it), or hands it back to
    /// run in a session: a lone call of a lock-step client, when not
    /// `in_session` already.
    async fn step(&mut self, in_session: bool) -> Step {
        let t = self.t;
        let peer = self.peer;
        let buffered = !self.rd.buffer().is_empty();
        if self.inflight.available_permits() == 0
            || self.budget.available_permits() < BASE_RESERVE_KIB as usize
        {
            // The wait below may be for what the batch holds.
            self.flush_batch();
        }
        let next = async {
            // Back-pressure before reading anything: a slot, and room for a
            // typical request and its reply.
            let permit = self.inflight.clone().acquire_owned().await.ok()?;
            let room = self
                .budget
                .clone()
                .acquire_many_owned(BASE_RESERVE_KIB)
                .await
                .ok()?;
            let mut buf = Vec::new();
            let read = tokio::time::timeout(
                t.limits.idle_timeout,
                read_record(&mut self.rd, &mut buf, t.limits.max_record),
            )
            .await;
            Some((permit, room, buf, read))
        };
        let (permit, mut room, buf, read) = tokio::select! {
            r = next => match r { Some(v) => v, None => return Step::Stop },
            _ = self.shutdown.changed() => return Step::Stop,
            _ = self.closed.changed() => {
                if *self.closed.borrow() == CloseReason::NotAdmitted {
                    info!(%peer, "closing connection: the client is no longer admitted by any export");
                } else {
                    info!(%peer, "closing connection: idlest connection at the connection limit");
                }
                return Step::Stop;
            }
        };
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Step::Stop,
            Ok(Err(RecordError::TooLarge { claimed, max })) => {
                info!(%peer, claimed, max, "record too large; closing connection");
                return Step::Stop;
            }
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "connection ended");
                return Step::Stop;
            }
            Err(_) => {
                debug!(%peer, "idle timeout");
                return Step::Stop;
            }
        }
        self.active.store(now_ms(), Ordering::Relaxed);
        self.poller.after_read(buffered, self.sink.replied());
        if buf.len() < 8 {
            // Not even an xid and a message type: nothing we can answer.
            info!(%peer, len = buf.len(), "unparseable RPC record; closing connection");
            return Step::Stop;
        }
        let request_len = buf.len();
        match t.dispatcher.parse(peer, self.local, Transport::Tcp, buf) {
            Parsed::Close => {
                info!(%peer, "unparseable RPC header; closing connection");
                return Step::Stop;
            }
            Parsed::Nothing => {}
            Parsed::Answer(head) => self.sink.deliver(
                ReplyBytes { head, tail: None },
                Ticket {
                    _inflight: permit,
                    room: Some(Room(room)),
                },
            ),
            Parsed::Call {
                mut call,
                program,
                reply_size_hint,
            } => {
                // Now that the call is known, hold what it and its reply can
                // need (a 1 MiB READ needs 1 MiB, a GETATTR a few hundred
                // bytes), so small calls keep their pipelining and large
                // ones wait for room.
                let need = kib(reply_size_hint + 1024)
                    .max(kib(request_len))
                    .min(self.max_kib);
                if need > BASE_RESERVE_KIB {
                    if self.budget.available_permits() < (need - BASE_RESERVE_KIB) as usize {
                        self.flush_batch();
                    }
                    let extra = tokio::select! {
                        p = self.budget.clone().acquire_many_owned(need - BASE_RESERVE_KIB) => p.ok(),
                        _ = self.shutdown.changed() => None,
                    };
                    let Some(extra) = extra else {
                        return Step::Stop;
                    };
                    room.merge(extra);
                }
                // Nothing else in flight and nothing more received: the
                // client waits for this reply before it sends again.
                call.ctx.alone = self.inflight.available_permits() + 1 == self.max_inflight
                    && self.rd.buffer().is_empty();
                let ticket = Ticket {
                    _inflight: permit,
                    room: Some(Room(room)),
                };
                let d = t.dispatcher.clone();
                if program.runs_in_line(&call.ctx.header) {
                    if !in_session && self.poller.wants_session(call.ctx.alone) {
                        return Step::Lone(Box::new(Lone {
                            call,
                            program,
                            ticket,
                        }));
                    }
                    let to = self.reply_to(in_session);
                    IN_LINE.with(|f| f.set(true));
                    d.run(call, program, to, ticket).await;
                    IN_LINE.with(|f| f.set(false));
                } else {
                    let to: Arc<dyn Sink> = self.sink.clone();
                    self.calls.spawn(
                        async move { d.run(call, program, to, ticket).await }.in_current_span(),
                    );
                }
            }
        }
        Step::Next
    }
}
