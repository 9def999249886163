//! The network lock manager (NLM v4, program 100021; XNFS "Protocols for
//! Interworking", chapter 10 and 14) and its status monitor (`nsm`).
//!
//! Clients mount with locking on (the Docker default): `fcntl` and `flock`
//! on the mount become NLM calls, found through our portmapper at the NFS
//! port. Locks are held in memory (`locks`); export policy applies to every
//! call that names a file, exactly as for NFS (the handle must verify and
//! the client's address must be admitted by the handle's export).
//!
//! A conflicting request that may wait gets BLOCKED and is granted in order
//! when the holder lets go; the client is then told with a GRANTED callback
//! to its own lock manager. Clients also poll a blocked request, so a lost
//! callback delays a grant, it does not lose it. A grant the client refuses
//! (its process has gone) is released at once.
//!
//! After a restart that lost locks, the clients that held them are notified
//! (`nsm`) and, for `grace`, only their reclaims are granted.

mod dispatch;
pub mod locks;
pub use dispatch::Nsm;
pub mod nsm;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::exports::ExportTable;
use crate::fs::FileHandle;
use crate::iopool::IoPool;
use crate::portmap::client::call_registered;
use crate::rpc::msg::{AcceptStat, CallHeader};
use crate::rpc::{Call, CallContext, Program, Reply};
use crate::tasks::Tasks;
use crate::xdr::{Reader, Writer, XdrError};
use locks::{Lock, LockResult, LockTable, Owner, Waiter};

pub const PROGRAM: u32 = 100021;
pub const VERSION: u32 = 4;

/// Held locks plus waiters the server keeps at most, in all and per client
/// address.
const MAX_LOCKS: usize = 64 * 1024;
const MAX_LOCKS_PER_CLIENT: usize = 8 * 1024;
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

mod wire;
pub use wire::Stat;
use wire::*;

/// What a GRANTED callback needs: the cookie and handle of the blocked
/// request, and the address the client sent it to.
#[derive(Debug, Clone)]
pub struct Callback {
    cookie: Vec<u8>,
    fh: Vec<u8>,
    server: Option<IpAddr>,
}

struct Inner {
    exports: Arc<ExportTable>,
    /// Existence checks and the lock-holder record's fsync run here.
    pool: IoPool,
    /// Callbacks, result messages and reboot notifications in flight.
    tasks: Tasks,
    table: Mutex<LockTable<FileHandle, Callback>>,
    monitor: nsm::Monitor,
    grace_until: Mutex<Option<Instant>>,
}

pub struct Nlm {
    inner: Arc<Inner>,
}

/// A decoded request that passed the policy check.
struct Request {
    key: FileHandle,
    lock: Lock,
    fh: Vec<u8>,
}

impl Nlm {
    /// `notify` are the clients to tell that we restarted; when there are
    /// any, new locks wait for `grace` while they reclaim theirs.
    pub fn new(
        exports: Arc<ExportTable>,
        pool: IoPool,
        monitor: nsm::Monitor,
        grace: Duration,
        in_grace: bool,
    ) -> Self {
        let grace_until = in_grace.then(|| Instant::now() + grace);
        Nlm {
            inner: Arc::new(Inner {
                exports,
                pool,
                tasks: Tasks::new(),
                table: Mutex::new(LockTable::new(MAX_LOCKS, MAX_LOCKS_PER_CLIENT)),
                monitor,
                grace_until: Mutex::new(grace_until),
            }),
        }
    }

    /// Sends SM_NOTIFY to every client that held locks before the restart,
    /// and ends the grace period's bookkeeping when it is over. The tasks
    /// end by themselves (bounded retries).
    pub fn start_recovery(&self, notify: Vec<nsm::Peer>, grace: Duration) {
        if notify.is_empty() {
            return;
        }
        tracing::info!(clients = notify.len(), grace_seconds = grace.as_secs(), "lock recovery: notifying the clients that held locks; new locks wait for the grace period");
        let state = self.inner.monitor.state();
        for peer in notify {
            self.inner.tasks.spawn(async move {
                let args = nsm::notify_args(&peer.server.to_string(), state);
                for attempt in 0..5u32 {
                    match call_registered(
                        peer.client,
                        Some(peer.server),
                        CALLBACK_TIMEOUT,
                        nsm::PROGRAM,
                        nsm::VERSION,
                        nsm::SM_NOTIFY,
                        &args,
                    )
                    .await
                    {
                        Ok(_) => {
                            tracing::info!(client = %peer.client, name = %peer.name, "told the client to reclaim its locks");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(client = %peer.client, attempt, error = %crate::error_chain(&e), "reboot notification failed; will retry");
                            tokio::time::sleep(Duration::from_secs(2 << attempt)).await;
                        }
                    }
                }
                tracing::error!(client = %peer.client, name = %peer.name, "could not tell the client that volnfs restarted: its processes may believe they still hold locks the server no longer has (is the client's rpcbind/rpc.statd reachable?)");
            });
        }
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            tokio::time::sleep(grace).await;
            *inner.grace_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let holders = inner.table().holders();
            inner.monitor.retain(&holders);
            tracing::info!(holders = holders.len(), "lock recovery grace period over");
        });
    }

    /// Locks held now (for status).
    pub fn held(&self) -> usize {
        self.inner.table().held()
    }

    /// Called at a clean shutdown: only clients holding locks now need to
    /// be told at the next start.
    pub async fn shutdown(&self) {
        self.inner.tasks.shutdown().await;
        let holders = self.inner.table().holders();
        self.inner.monitor.retain(&holders);
    }

    /// After a reload: clients that no export admits any more cannot reach
    /// us to unlock, so their locks and waiters are released. Returns how
    /// many clients lost locks.
    pub fn release_unless(&self, admitted: impl Fn(IpAddr) -> bool) -> usize {
        let gone: Vec<IpAddr> = self
            .inner
            .table()
            .clients()
            .into_iter()
            .filter(|ip| !admitted(*ip))
            .collect();
        for &client in &gone {
            let woken = self.inner.table().release_client(client);
            tracing::info!(%client, "client no longer admitted: its locks are released");
            deliver(&self.inner, woken);
        }
        if !gone.is_empty() {
            self.inner.monitor.retain(&self.inner.table().holders());
        }
        gone.len()
    }

    /// A client rebooted (SM_NOTIFY) or said FREE_ALL: drop its locks.
    pub fn client_rebooted(&self, client: IpAddr) {
        let woken = self.inner.table().release_client(client);
        tracing::info!(%client, "client rebooted: its locks are released");
        self.inner.monitor.retain(&self.inner.table().holders());
        deliver(&self.inner, woken);
    }
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, LockTable<FileHandle, Callback>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_grace(&self) -> bool {
        let mut g = self.grace_until.lock().unwrap_or_else(|p| p.into_inner());
        match *g {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *g = None;
                false
            }
            None => false,
        }
    }

    /// Applies export policy to a lock request and builds the table's view
    /// of it. The handle must verify, the caller must be admitted by the
    /// handle's export, and (to take or test a lock) the object must exist;
    /// letting go of a lock works on a removed file too.
    async fn admit(
        &self,
        ctx: &CallContext,
        wl: &WireLock<'_>,
        exclusive: bool,
        must_exist: bool,
    ) -> Result<Request, Stat> {
        let (export, tree, fh) = self
            .exports
            .resolve_handle(wl.fh)
            .map_err(|_| Stat::StaleFh)?;
        if export.rights_for(ctx.peer).is_none() {
            tracing::debug!(peer = %ctx.peer, export = %export.fs.name, "NLM call refused by the export's client rules");
            return Err(Stat::Failed);
        }
        if must_exist {
            let fs = tree;
            let exists = self
                .pool
                .run(ctx.peer.ip(), move || fs.getattr(&fh).is_ok())
                .await
                .unwrap_or(false);
            if !exists {
                return Err(Stat::StaleFh);
            }
        }
        let (start, end) = locks::range(wl.offset, wl.len);
        Ok(Request {
            key: fh,
            fh: wl.fh.to_vec(),
            lock: Lock {
                owner: Owner {
                    client: ctx.peer.ip(),
                    caller: wl.caller.to_vec(),
                    svid: wl.svid,
                },
                oh: wl.oh.to_vec(),
                exclusive,
                start,
                end,
                unconfirmed: false,
            },
        })
    }

    async fn test(
        &self,
        ctx: &CallContext,
        exclusive: bool,
        wl: &WireLock<'_>,
    ) -> Result<Option<Lock>, Stat> {
        if self.in_grace() {
            return Err(Stat::DeniedGracePeriod);
        }
        let req = self.admit(ctx, wl, exclusive, true).await?;
        Ok(self.table().test(&req.key, &req.lock))
    }

    async fn lock(
        self: &Arc<Self>,
        ctx: &CallContext,
        cookie: &[u8],
        block: bool,
        exclusive: bool,
        reclaim: bool,
        wl: &WireLock<'_>,
    ) -> Stat {
        if !reclaim && self.in_grace() {
            return Stat::DeniedGracePeriod;
        }
        let req = match self.admit(ctx, wl, exclusive, true).await {
            Ok(r) => r,
            Err(s) => return s,
        };
        // A request that will be refused holds nothing: no need to record it.
        let will_hold = block || self.table().test(&req.key, &req.lock).is_none();
        // Written down before the grant, so a crash right after still
        // leads to this client being told to reclaim.
        let peer = nsm::Peer {
            client: ctx.peer.ip(),
            server: ctx.local.map(|l| l.ip()).unwrap_or(ctx.peer.ip()),
            name: String::from_utf8_lossy(wl.caller).into_owned(),
        };
        let recorded = if will_hold {
            let inner = self.clone();
            self.pool
                .run(ctx.peer.ip(), move || inner.monitor.record(peer))
                .await
        } else {
            Some(Ok(()))
        };
        match recorded {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::error!(error = %crate::error_chain(&e), "lock refused: cannot record the lock holder for recovery (is state_dir writable?)");
                return Stat::DeniedNoLocks;
            }
            None => {
                tracing::error!(
                    "lock refused: recording the lock holder failed (a bug: its job panicked)"
                );
                return Stat::DeniedNoLocks;
            }
        }
        let wait = block.then(|| Callback {
            cookie: cookie.to_vec(),
            fh: req.fh.clone(),
            server: ctx.local.map(|l| l.ip()),
        });
        let (result, woken) = self.table().lock(&req.key, req.lock, wait);
        deliver(self, woken);
        match result {
            LockResult::Granted => Stat::Granted,
            LockResult::Denied(_) => Stat::Denied,
            LockResult::Blocked => Stat::Blocked,
            LockResult::NoLocks => {
                tracing::warn!(peer = %ctx.peer, max = MAX_LOCKS, max_per_client = MAX_LOCKS_PER_CLIENT, "lock table full (for this client): lock refused");
                Stat::DeniedNoLocks
            }
        }
    }

    async fn cancel(
        self: &Arc<Self>,
        ctx: &CallContext,
        exclusive: bool,
        wl: &WireLock<'_>,
    ) -> Stat {
        let req = match self.admit(ctx, wl, exclusive, false).await {
            Ok(r) => r,
            Err(s) => return s,
        };
        let (found, woken) = self.table().cancel(&req.key, &req.lock);
        deliver(self, woken);
        if found {
            Stat::Granted
        } else {
            Stat::Denied
        }
    }

    async fn unlock(self: &Arc<Self>, ctx: &CallContext, wl: &WireLock<'_>) -> Stat {
        let req = match self.admit(ctx, wl, false, false).await {
            Ok(r) => r,
            Err(s) => return s,
        };
        let woken = self
            .table()
            .unlock(&req.key, &req.lock.owner, req.lock.start, req.lock.end);
        deliver(self, woken);
        Stat::Granted
    }
}

/// Tells the clients whose blocked requests were just granted, each in its
/// own task; a refused grant is released (which may grant the next).
fn deliver(inner: &Arc<Inner>, woken: Vec<(FileHandle, Waiter<Callback>)>) {
    for (key, w) in woken {
        let task_inner = inner.clone();
        inner.tasks.spawn(async move {
            let inner = task_inner;
            let mut args = Writer::new();
            args.opaque(&w.token.cookie);
            args.bool(w.lock.exclusive);
            encode_lock(&mut args, &w.lock, &w.token.fh);
            let args = args.into_inner();
            for attempt in 0..3u32 {
                let res = call_registered(
                    w.lock.owner.client,
                    w.token.server,
                    CALLBACK_TIMEOUT,
                    PROGRAM,
                    VERSION,
                    PROC_GRANTED,
                    &args,
                )
                .await;
                match res {
                    Ok(body) => {
                        let mut r = Reader::new(&body);
                        let stat = r.opaque(MAX_NETOBJ).and_then(|_| r.u32());
                        let accepted = stat == Ok(Stat::Granted as u32);
                        if !accepted {
                            tracing::debug!(client = %w.lock.owner.client, ?stat, "client refused a granted lock; releasing it");
                        }
                        let woken = inner.table().confirm(&key, &w.lock, accepted);
                        deliver(&inner, woken);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(client = %w.lock.owner.client, attempt, error = %crate::error_chain(&e), "GRANTED callback failed (the client will poll)");
                        tokio::time::sleep(Duration::from_secs(2 << attempt)).await;
                    }
                }
            }
        });
    }
}
