//! The control channel (RFD 69): volnfs connects *out* to a unix socket the
//! global zone's agent created (`control_connect`, e.g.
//! `/.zonecontrol/volnfs.sock`, a read-only lofs mount of
//! `/zones/zonecontrol/<uuid>/`) and serves the control protocol over it:
//! the agent sends requests, volnfs replies. The agent thus never creates
//! or opens anything inside the zone's root, and needs no zsock.
//!
//! Owns the connection's life: connect (`socket`: no symlinks, the peer
//! must be root), reconnect with capped backoff or at once when a new
//! socket file appears (`policy`), one `session` per connection, and the
//! requests, which outlive connections (`results`: a rollback finishes and
//! its reply can be asked for on the next connection). It does not parse or
//! run operations: that is `protocol` (`parse_request`, `execute`), shared
//! with the local control socket, which keeps serving `volnfs ctl`.
//!
//! NFS never waits for the channel: without an agent the server serves
//! anyway, logging the absence once per outage and each reconnection.

mod policy;
mod results;
mod session;
mod socket;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::service::ServerState;
use crate::tasks::Tasks;
pub use policy::{Backoff, Identity, Outage};
pub use results::{Results, REMEMBER, REMEMBER_FOR};
pub use session::hello;
use session::End;

/// The channel-only operation: how an earlier request ended.
pub const RESULT_OP: &str = "result";
/// Requests running at once (over all connections); past it, reading waits.
pub const MAX_IN_FLIGHT: usize = 16;
/// At shutdown, how long running requests may take to finish and reply.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("control channel {path}: no socket there (the agent creates it; volnfs keeps trying)")]
    Absent { path: PathBuf },
    #[error("control channel {path} is a symlink: refused (the agent must create the socket at that very path)")]
    Symlink { path: PathBuf },
    #[error("control channel {path} is a {kind}, not a socket: refused (check control_connect)")]
    NotASocket { path: PathBuf, kind: &'static str },
    #[error("control channel {path}: looking at it failed")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control channel {path}: connecting failed (is the agent listening?)")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control channel {path}: the socket was replaced while connecting; trying again")]
    Raced { path: PathBuf },
    #[error(
        "control channel {path}: the listening process runs as uid {uid:?}, not root: refused"
    )]
    PeerNotRoot { path: PathBuf, uid: Option<u32> },
}

impl ChannelError {
    /// The failure's reason, for "log once per outage and reason".
    pub fn reason(&self) -> &'static str {
        match self {
            ChannelError::Absent { .. } => "absent",
            ChannelError::Symlink { .. } => "symlink",
            ChannelError::NotASocket { .. } => "not_a_socket",
            ChannelError::Stat { .. } => "stat",
            ChannelError::Connect { .. } => "connect",
            ChannelError::Raced { .. } => "raced",
            ChannelError::PeerNotRoot { .. } => "peer_not_root",
        }
    }
}

/// What the channel's sessions and request tasks share.
pub(crate) struct Shared {
    path: PathBuf,
    state: Arc<ServerState>,
    results: Mutex<Results>,
    inflight: Arc<Semaphore>,
    /// The request tasks: they outlive connections, not the channel.
    tasks: Tasks,
}

impl Shared {
    fn results(&self) -> MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the channel to `path` until `shutdown`, then lets running requests
/// finish (at most [`DRAIN_LIMIT`]) and ends their tasks.
pub async fn run(path: PathBuf, state: Arc<ServerState>, shutdown: watch::Receiver<bool>) {
    let span = tracing::info_span!("control_channel", socket = %path.display());
    let shared = Arc::new(Shared {
        path,
        state,
        results: Mutex::new(Results::default()),
        inflight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        tasks: Tasks::new(),
    });
    async move {
        let deadline = connect_and_serve(&shared, shutdown).await;
        let all = MAX_IN_FLIGHT as u32;
        if tokio::time::timeout_at(deadline, shared.inflight.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                running = shared.results().running().len(),
                "control channel: requests still running at the drain limit are abandoned"
            );
        }
        shared.tasks.shutdown().await;
    }
    .instrument(span)
    .await
}

/// The connect / serve / back off loop; returns the drain deadline once
/// shutdown is asked for.
async fn connect_and_serve(
    shared: &Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::time::Instant {
    let stop = || tokio::time::Instant::now() + DRAIN_LIMIT;
    let mut backoff = Backoff::default();
    let mut outage = Outage::default();
    loop {
        if *shutdown.borrow() {
            return stop();
        }
        let attempt = tokio::select! {
            a = socket::connect(&shared.path) => a,
            _ = shutdown.changed() => return stop(),
        };
        match attempt {
            Ok((stream, identity)) => {
                let failed = outage.connected();
                backoff.reset();
                tracing::info!(
                    failed_attempts = failed,
                    "control channel: connected to the agent"
                );
                match session::serve(stream, identity, shared, &mut shutdown).await {
                    End::Shutdown { deadline } => return deadline,
                    End::Closed => {
                        tracing::info!("control channel: the agent closed the connection; reconnecting")
                    }
                    End::Lost(e) => {
                        tracing::warn!(error = %e, "control channel: connection lost; reconnecting")
                    }
                    End::Replaced => tracing::info!(
                        "control channel: the agent's socket was replaced; connecting to the new one"
                    ),
                }
            }
            Err(e) => {
                if outage.failed(e.reason()) {
                    tracing::warn!(
                        error = %crate::error_chain(&e),
                        "control channel: no agent to talk to; NFS is served meanwhile and volnfs keeps trying (logged again only if the reason changes)"
                    );
                } else {
                    tracing::debug!(error = %crate::error_chain(&e), "control channel: attempt failed");
                }
                let failed_on = socket::look(&shared.path).ok().flatten();
                let wait = backoff.next_delay();
                tokio::select! {
                    () = socket::new_socket_or(&shared.path, failed_on, wait) => {}
                    _ = shutdown.changed() => return stop(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
