//! RPC transports: TCP (record marking, pipelined requests) and UDP datagrams.
//!
//! Each TCP connection has one reader loop (`tcp`) that reassembles records,
//! decodes the RPC header and hands each call to its program; the program
//! answers through a [`Sink`](super::Sink) that writes the reply to the
//! socket directly from whichever thread made it (the async worker, or the
//! file I/O pool thread that did the work), falling back to the
//! connection's flusher task only when the socket is full. Requests in
//! flight per connection and the reply bytes they may hold are bounded.
//!
//! The number of connections is bounded by a server-wide semaphore; when
//! every slot is taken, a new client gets the slot of the connection that
//! has gone longest without a complete request (if quiet for at least
//! [`EVICT_AFTER_IDLE`]), so idle or stalled (slowloris) connections cannot
//! lock clients out. Connections from addresses that no export admits are
//! closed at accept time.
//!
//! Every task has an owner: a listener owns its connections (a `JoinSet`)
//! and, at shutdown, stops accepting and waits for them; a connection owns
//! its flusher and stops reading, then waits (bounded) for its in-flight
//! calls to be answered.

mod poll;
mod registry;
mod tcp;
mod udp;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use super::{canonical_addr, Dispatcher};
pub use poll::{polling_stats, PollingStats};
pub use registry::ClientRegistry;

/// A lock-step client's next call follows our reply by a client wakeup and
/// its own work: ~40 µs on loopback here, more over a network. 100 µs
/// covers both with room; a client slower than that is not polled for.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(100);

/// Largest `limits.busy_poll_us` accepted.
pub const MAX_BUSY_POLL_US: u64 = 1000;

/// The busy-poll window for a configured number of microseconds (the
/// config file's `limits.busy_poll_us`, the `--busy-poll-us` flag), or
/// what is wrong with it.
pub fn busy_poll_window(us: u64) -> Result<Duration, String> {
    if us > MAX_BUSY_POLL_US {
        return Err(format!(
            "must be between 0 (off) and {MAX_BUSY_POLL_US} microseconds"
        ));
    }
    Ok(Duration::from_micros(us))
}

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
    /// At shutdown, how long a connection waits for its calls in flight.
    pub drain: Duration,
    /// How long a connection whose client waits for each reply stays awake
    /// for its next call (`poll`); zero: never.
    pub busy_poll: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record: (1 << 20) + 64 * 1024,
            max_inflight_per_conn: 64,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(6 * 3600),
            drain: Duration::from_secs(30),
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// At the connection limit, a connection without a complete request for this
/// long may be closed to make room for a new client (the Linux NFS server
/// likewise drops its oldest connection when over its limit).
pub const EVICT_AFTER_IDLE: Duration = Duration::from_secs(5);

/// How long a client accepted at the connection limit waits for a slot.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(10);

/// What a call holds until its reply is written: its in-flight slot and,
/// over TCP, the reply bytes reserved in the connection's budget. Dropping
/// it gives both back.
pub struct Ticket {
    pub(crate) _inflight: OwnedSemaphorePermit,
    pub(crate) room: Option<tcp::Room>,
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
        let mut conns = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => break,
                // Reap finished connections as we go.
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
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
                Err(TryAcquireError::Closed) => break,
                Err(TryAcquireError::NoPermits) => {
                    let slot = tokio::select! {
                        p = self.make_room() => p,
                        _ = shutdown.changed() => break,
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
            conns.spawn(
                async move {
                    t.connection(stream, peer).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        // Stop accepting; every connection stops reading and drains.
        drop(listener);
        while conns.join_next().await.is_some() {}
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

    async fn connection(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let (id, closed, active) = self.clients.register(peer);
        tcp::serve(self, stream, peer, closed, active).await;
        self.clients.unregister(id);
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
        udp::serve(self, socket).await
    }
}
