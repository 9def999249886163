//! RPC transports: TCP (record marking, pipelined requests) and UDP datagrams.
//!
//! Each TCP connection has a reader loop that reassembles records and spawns
//! one task per request (bounded by a per-connection semaphore, so a client
//! that pipelines gets concurrency but cannot queue unbounded work), and a
//! writer task that sends each reply with one `write_all`. The number of
//! connections is bounded by a server-wide semaphore; when every slot is
//! taken, a new client gets the slot of the connection that has gone longest
//! without a complete request (if quiet for at least [`EVICT_AFTER_IDLE`]), so
//! idle or stalled (slowloris) connections cannot lock clients out.
//! Connections from addresses that no export admits are closed at accept time.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tracing::{debug, info, warn, Instrument};

use super::record::{read_record, set_record_mark, RecordError};
use super::{canonical_addr, Dispatcher, Transport};

/// Resource bounds for the transports.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest RPC record accepted (a 1 MiB WRITE plus headers fits).
    pub max_record: usize,
    /// Requests processed concurrently per TCP connection.
    pub max_inflight_per_conn: usize,
    /// TCP connections open at once across all listeners.
    pub max_connections: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record: (1 << 20) + 64 * 1024,
            max_inflight_per_conn: 64,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(6 * 3600),
        }
    }
}

/// At the connection limit, a connection without a complete request for this
/// long may be closed to make room for a new client (the Linux NFS server
/// likewise drops its oldest connection when over its limit).
pub const EVICT_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Request and reply bytes one TCP connection may hold, in KiB. Reading a
/// request reserves the largest record (reply) it could need; once the reply
/// exists the reservation shrinks to its size, and it is returned when the
/// reply has been written. A client that stops reading its replies therefore
/// pins at most this much, not `max_inflight_per_conn` full-size replies (the
/// Linux server likewise stops reading a socket without room for a reply).
const CONN_BUDGET_KIB: usize = 8 * 1024;

/// KiB reserved before a request is read (most calls and replies fit).
const BASE_RESERVE_KIB: u32 = 16;

/// The most a reply to this call can take, in KiB, from its arguments: the
/// data-returning NFS procedures say how much they want; everything else is
/// small. Anything unparseable gets the base reservation (it will be
/// answered with an error).
fn reply_reservation_kib(msg: &[u8]) -> u32 {
    use crate::xdr::Reader;
    let Ok((h, args)) = super::msg::decode_call(msg) else {
        return BASE_RESERVE_KIB;
    };
    if h.prog != crate::nfs3::PROGRAM {
        return BASE_RESERVE_KIB;
    }
    let mut r = Reader::new(args);
    let want = (|| {
        r.opaque(64).ok()?; // file handle
        match h.proc_ {
            6 => {
                r.u64().ok()?;
                r.u32().ok()
            }
            16 => {
                r.u64().ok()?;
                r.opaque_fixed(8).ok()?;
                r.u32().ok()
            }
            17 => {
                r.u64().ok()?;
                r.opaque_fixed(8).ok()?;
                r.u32().ok()?;
                r.u32().ok()
            }
            5 => Some(4096),
            _ => None,
        }
    })();
    match want {
        Some(bytes) => (bytes.min(1 << 20) / 1024 + 1).max(BASE_RESERVE_KIB),
        None => BASE_RESERVE_KIB,
    }
}

/// Bytes a TCP connection reads ahead of the record it is parsing.
const READ_BUFFER: usize = 16 * 1024;

/// How long a client accepted at the connection limit waits for a slot.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(10);

/// Milliseconds on a process-wide monotonic clock.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Why a connection is asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    Open,
    NotAdmitted,
    Evicted,
}

/// The TCP connections currently open, so operators can list clients and a
/// reload can close the connections of addresses no longer admitted.
/// An open connection: peer, connected since, the switch that closes it, and
/// when it last completed a request or sent a reply ([`now_ms`]).
type ConnEntry = (
    SocketAddr,
    std::time::SystemTime,
    watch::Sender<CloseReason>,
    Arc<AtomicU64>,
);

#[derive(Default)]
pub struct ClientRegistry {
    next: std::sync::atomic::AtomicU64,
    conns: Mutex<std::collections::HashMap<u64, ConnEntry>>,
}

impl ClientRegistry {
    fn register(&self, peer: SocketAddr) -> (u64, watch::Receiver<CloseReason>, Arc<AtomicU64>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(CloseReason::Open);
        let active = Arc::new(AtomicU64::new(now_ms()));
        self.lock()
            .insert(id, (peer, std::time::SystemTime::now(), tx, active.clone()));
        (id, rx, active)
    }

    /// Asks the connection that has been quiet longest to close, if it has
    /// been quiet for at least `min_idle`. Returns its peer if one was asked.
    fn evict_idlest(&self, min_idle: Duration) -> Option<SocketAddr> {
        let g = self.lock();
        let (peer, _, tx, active) = g
            .values()
            .filter(|e| *e.2.borrow() == CloseReason::Open)
            .min_by_key(|e| e.3.load(Ordering::Relaxed))?;
        let quiet = now_ms().saturating_sub(active.load(Ordering::Relaxed));
        if quiet < min_idle.as_millis() as u64 {
            return None;
        }
        let _ = tx.send(CloseReason::Evicted);
        Some(*peer)
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, ConnEntry>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (peer, connected since) of every open connection.
    pub fn list(&self) -> Vec<(SocketAddr, std::time::SystemTime)> {
        self.lock().values().map(|(p, t, _, _)| (*p, *t)).collect()
    }

    /// Closes every connection whose address `keep` rejects; returns how many.
    pub fn close_unless(&self, keep: impl Fn(IpAddr) -> bool) -> usize {
        let g = self.lock();
        let mut n = 0;
        for (peer, _, tx, _) in g.values() {
            if !keep(peer.ip()) {
                let _ = tx.send(CloseReason::NotAdmitted);
                n += 1;
            }
        }
        n
    }
}

/// Decides at accept time whether a client address may talk to us at all.
pub type Admission = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Shared state of all listeners of one server.
#[derive(Clone)]
pub struct Transports {
    pub dispatcher: Dispatcher,
    pub limits: Limits,
    pub admit: Admission,
    pub connections: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    /// Addresses already logged as refused.
    pub refused: Arc<Mutex<HashSet<IpAddr>>>,
    pub clients: Arc<ClientRegistry>,
}

impl Transports {
    pub async fn serve_tcp(self, listener: TcpListener) {
        let local = listener.local_addr().ok();
        let mut shutdown = self.shutdown.clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(v) => v,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, ?local, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let peer = canonical_addr(peer);
            if !(self.admit)(peer.ip()) {
                self.log_refusal(peer);
                drop(stream);
                continue;
            }
            let permit = match self.connections.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(TryAcquireError::Closed) => return,
                Err(TryAcquireError::NoPermits) => {
                    let slot = tokio::select! {
                        p = self.make_room() => p,
                        _ = shutdown.changed() => return,
                    };
                    match slot {
                        Some(p) => p,
                        None => {
                            warn!(%peer, "connection limit reached and no connection idle enough to close; refusing");
                            drop(stream);
                            continue;
                        }
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            let t = self.clone();
            let span = tracing::debug_span!("conn", %peer);
            tokio::spawn(
                async move {
                    t.connection(stream, peer).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }

    /// At the connection limit: closes the idlest connection (once it has
    /// been quiet long enough) and waits for its slot, for up to
    /// [`WAIT_FOR_SLOT`].
    async fn make_room(&self) -> Option<OwnedSemaphorePermit> {
        let deadline = Instant::now() + WAIT_FOR_SLOT;
        while Instant::now() < deadline {
            if let Some(victim) = self.clients.evict_idlest(EVICT_AFTER_IDLE) {
                info!(%victim, "connection limit reached: closing the idlest connection");
            }
            match tokio::time::timeout(
                Duration::from_millis(500),
                self.connections.clone().acquire_owned(),
            )
            .await
            {
                Ok(Ok(p)) => return Some(p),
                Ok(Err(_)) => return None,
                Err(_) => {}
            }
        }
        None
    }

    async fn connection(&self, stream: TcpStream, peer: SocketAddr) {
        let (id, closed, active) = self.clients.register(peer);
        self.serve_connection(stream, peer, closed, active).await;
        self.clients.unregister(id);
    }

    async fn serve_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mut closed: watch::Receiver<CloseReason>,
        active: Arc<AtomicU64>,
    ) {
        let local = stream.local_addr().ok().map(canonical_addr);
        let (rd, mut wr) = stream.into_split();
        // Small calls arrive whole (record mark and body) in one receive
        // instead of one for the mark and one for the body; payloads larger
        // than the buffer are read straight into the record.
        let mut rd = tokio::io::BufReader::with_capacity(READ_BUFFER, rd);
        // (reply, KiB of the connection's budget it holds)
        let (tx, mut rx) = mpsc::channel::<(Vec<u8>, u32)>(self.limits.max_inflight_per_conn);
        let budget = Arc::new(Semaphore::new(CONN_BUDGET_KIB));
        let max_kib = self.limits.max_record.div_ceil(1024).min(CONN_BUDGET_KIB) as u32;
        let written = active.clone();
        let returned = budget.clone();
        let writer = tokio::spawn(async move {
            while let Some((mut reply, held)) = rx.recv().await {
                set_record_mark(&mut reply);
                let sent = wr.write_all(&reply).await;
                drop(reply);
                returned.add_permits(held as usize);
                if let Err(e) = sent {
                    debug!(error = %e, "write failed; closing");
                    break;
                }
                written.store(now_ms(), Ordering::Relaxed);
            }
            let _ = wr.shutdown().await;
        });
        let inflight = Arc::new(Semaphore::new(self.limits.max_inflight_per_conn));
        let mut shutdown = self.shutdown.clone();
        loop {
            let Ok(permit) = inflight.clone().acquire_owned().await else {
                break;
            };
            let mut buf = Vec::new();
            let next = async {
                // Room for a typical request and its reply first:
                // back-pressure before reading anything.
                let room = budget
                    .clone()
                    .acquire_many_owned(BASE_RESERVE_KIB)
                    .await
                    .ok();
                let r = tokio::time::timeout(
                    self.limits.idle_timeout,
                    read_record(&mut rd, &mut buf, self.limits.max_record),
                )
                .await;
                (room, r)
            };
            let (room, read) = tokio::select! {
                r = next => r,
                _ = shutdown.changed() => break,
                _ = closed.changed() => {
                    if *closed.borrow() == CloseReason::NotAdmitted {
                        info!(%peer, "closing connection: the client is no longer admitted by any export");
                    } else {
                        info!(%peer, "closing connection: idlest connection at the connection limit");
                    }
                    break;
                }
            };
            match read {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => break,
                Ok(Err(RecordError::TooLarge { claimed, max })) => {
                    info!(%peer, claimed, max, "record too large; closing connection");
                    break;
                }
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "connection ended");
                    break;
                }
                Err(_) => {
                    debug!(%peer, "idle timeout");
                    break;
                }
            }
            let Some(mut room) = room else { break };
            // Now that the call is known, hold what its reply can need (a
            // 1 MiB READ needs 1 MiB, a GETATTR a few hundred bytes), so
            // small calls keep their pipelining and large ones wait for room.
            let need = reply_reservation_kib(&buf)
                .max(buf.len().div_ceil(1024) as u32)
                .min(max_kib);
            if need > BASE_RESERVE_KIB {
                let extra = tokio::select! {
                    p = budget.clone().acquire_many_owned(need - BASE_RESERVE_KIB) => p.ok(),
                    _ = shutdown.changed() => break,
                };
                let Some(extra) = extra else { break };
                room.merge(extra);
            }
            let reserve = room.num_permits() as u32;
            active.store(now_ms(), Ordering::Relaxed);
            if buf.len() < 8 {
                // Not even an xid and a message type: nothing we can answer.
                info!(%peer, len = buf.len(), "unparseable RPC record; closing connection");
                break;
            }
            let d = self.dispatcher.clone();
            let tx = tx.clone();
            let budget = budget.clone();
            tokio::spawn(
                async move {
                    let reply = d.dispatch(peer, local, Transport::Tcp, &buf).await;
                    drop(buf);
                    if let Ok(Some(reply)) = reply {
                        // Keep only what the reply needs until it is written.
                        let held = (reply.len().div_ceil(1024) as u32).min(reserve);
                        room.forget();
                        budget.add_permits((reserve - held) as usize);
                        if let Err(mpsc::error::SendError((_, held))) = tx.send((reply, held)).await
                        {
                            budget.add_permits(held as usize);
                        }
                    }
                    drop(permit);
                }
                .in_current_span(),
            );
        }
        drop(tx);
        let _ = writer.await;
    }

    /// Logs a refused client once per address (bounded), not once per packet.
    fn log_refusal(&self, peer: SocketAddr) {
        let mut seen = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() < 4096 && seen.insert(peer.ip()) {
            warn!(client = %peer.ip(), "connection refused: no export admits this address (further refusals of it are not logged)");
        } else {
            debug!(%peer, "connection refused");
        }
    }

    pub async fn serve_udp(self, socket: UdpSocket) {
        let socket = Arc::new(socket);
        let local = socket.local_addr().ok().map(canonical_addr);
        let inflight = Arc::new(Semaphore::new(self.limits.max_inflight_per_conn));
        let mut shutdown = self.shutdown.clone();
        loop {
            let Ok(permit) = inflight.clone().acquire_owned().await else {
                return;
            };
            let mut buf = vec![0u8; 65536];
            let received = tokio::select! {
                r = socket.recv_from(&mut buf) => r,
                _ = shutdown.changed() => return,
            };
            let (n, peer) = match received {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            let peer_c = canonical_addr(peer);
            if n < 8 {
                continue;
            }
            if !(self.admit)(peer_c.ip()) {
                self.log_refusal(peer_c);
                continue;
            }
            buf.truncate(n);
            let d = self.dispatcher.clone();
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(Some(reply)) = d.dispatch(peer_c, local, Transport::Udp, &buf).await {
                    if let Err(e) = socket.send_to(&reply[4..], peer).await {
                        debug!(%peer, error = %e, "udp send failed");
                    }
                }
                drop(permit);
            });
        }
    }
}
