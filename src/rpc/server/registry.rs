//! The open TCP connections: who is connected since when, the switch that
//! closes each one, and when each last made progress, so operators can list
//! clients, a reload can close the connections of addresses no longer
//! admitted, and a full server can close its idlest connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Milliseconds on a process-wide monotonic clock.
pub(super) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Why a connection is asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseReason {
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
    pub(super) fn register(
        &self,
        peer: SocketAddr,
    ) -> (u64, watch::Receiver<CloseReason>, Arc<AtomicU64>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(CloseReason::Open);
        let active = Arc::new(AtomicU64::new(now_ms()));
        self.lock()
            .insert(id, (peer, std::time::SystemTime::now(), tx, active.clone()));
        (id, rx, active)
    }

    /// Asks the connection that has been quiet longest to close, if it has
    /// been quiet for at least `min_idle`. Returns its peer if one was asked.
    pub(super) fn evict_idlest(&self, min_idle: Duration) -> Option<SocketAddr> {
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

    pub(super) fn unregister(&self, id: u64) {
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
