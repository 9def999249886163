//! NLM v4 on the wire: the procedure table (`Program`), each call decoded,
//! run against the lock table and its result encoded.

use super::*;

fn res(w: &mut Writer, cookie: &[u8], stat: Stat) {
    w.opaque(cookie);
    w.u32(stat as u32);
}

fn test_res(w: &mut Writer, cookie: &[u8], result: Result<Option<Lock>, Stat>) {
    w.opaque(cookie);
    match result {
        Ok(None) => w.u32(Stat::Granted as u32),
        Ok(Some(holder)) => {
            w.u32(Stat::Denied as u32);
            let (offset, len) = locks::offset_len(holder.start, holder.end);
            w.bool(holder.exclusive);
            w.i32(holder.owner.svid);
            w.opaque(&holder.oh);
            w.u64(offset);
            w.u64(len);
        }
        Err(s) => w.u32(s as u32),
    }
}

/// The results of one TEST/LOCK/CANCEL/UNLOCK (sync or _MSG form).
async fn run_op(
    inner: &Arc<Inner>,
    ctx: &CallContext,
    op: u32,
    r: &mut Reader<'_>,
    w: &mut Writer,
) -> Result<(), XdrError> {
    let cookie = r.opaque(MAX_NETOBJ)?;
    match op {
        PROC_TEST => {
            let exclusive = r.bool()?;
            let wl = decode_lock(r)?;
            let result = inner.test(ctx, exclusive, &wl).await;
            test_res(w, cookie, result);
        }
        PROC_LOCK => {
            let block = r.bool()?;
            let exclusive = r.bool()?;
            let wl = decode_lock(r)?;
            let reclaim = r.bool()?;
            let _state = r.i32()?;
            let stat = inner
                .lock(ctx, cookie, block, exclusive, reclaim, &wl)
                .await;
            res(w, cookie, stat);
        }
        PROC_CANCEL => {
            let _block = r.bool()?;
            let exclusive = r.bool()?;
            let wl = decode_lock(r)?;
            let stat = inner.cancel(ctx, exclusive, &wl).await;
            res(w, cookie, stat);
        }
        _ => {
            let wl = decode_lock(r)?;
            let stat = inner.unlock(ctx, &wl).await;
            res(w, cookie, stat);
        }
    }
    Ok(())
}

#[async_trait]
impl Program for Nlm {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (VERSION, VERSION)
    }

    fn name(&self) -> &'static str {
        "nlockmgr"
    }

    /// Lock calls may wait for the file I/O pool (the object must exist)
    /// and for the lock-holder record's fsync: they run in tasks of their
    /// own, so one connection's calls do not queue behind each other.
    fn runs_in_line(&self, _: &CallHeader) -> bool {
        false
    }

    async fn call(&self, call: Call, reply: Reply) {
        let mut w = reply.results();
        match self.answer(&call.ctx, call.args(), &mut w).await {
            Ok(()) => reply.send(w),
            Err(stat) => reply.error(stat),
        }
    }
}

impl Nlm {
    async fn answer(
        &self,
        ctx: &CallContext,
        args: &[u8],
        w: &mut Writer,
    ) -> Result<(), AcceptStat> {
        let mut r = Reader::new(args);
        let g = |_| AcceptStat::GarbageArgs;
        let inner = &self.inner;
        match ctx.header.proc_ {
            0 => Ok(()),
            p @ (PROC_TEST | PROC_LOCK | PROC_CANCEL | PROC_UNLOCK) => {
                run_op(inner, ctx, p, &mut r, w).await.map_err(g)
            }
            PROC_NM_LOCK => run_op(inner, ctx, PROC_LOCK, &mut r, w).await.map_err(g),
            // The asynchronous forms: do the same, answer with a call of
            // the matching _RES procedure to the client's lock manager.
            p @ PROC_TEST_MSG..=PROC_UNLOCK_MSG => {
                let op = p - (PROC_TEST_MSG - PROC_TEST);
                let mut results = Writer::new();
                run_op(inner, ctx, op, &mut r, &mut results)
                    .await
                    .map_err(g)?;
                let (client, from) = (ctx.peer.ip(), ctx.local.map(|l| l.ip()));
                let proc_ = PROC_RES_FIRST + (op - PROC_TEST);
                inner.tasks.spawn(async move {
                    let results = results.into_inner();
                    if let Err(e) = call_registered(
                        client,
                        from,
                        CALLBACK_TIMEOUT,
                        PROGRAM,
                        VERSION,
                        proc_,
                        &results,
                    )
                    .await
                    {
                        tracing::debug!(%client, error = %crate::error_chain(&e), "NLM result callback failed");
                    }
                });
                Ok(())
            }
            // We are not a client: nothing of ours waits for a grant.
            PROC_GRANTED => {
                let cookie = r.opaque(MAX_NETOBJ).map_err(g)?;
                res(w, cookie, Stat::Denied);
                Ok(())
            }
            PROC_GRANTED_MSG | PROC_RES_FIRST..=PROC_GRANTED_RES => Ok(()),
            // DOS share reservations (PC-NFS): no Linux or illumos client
            // sends them; granted without enforcement, as a no-op.
            PROC_SHARE | PROC_UNSHARE => {
                let cookie = r.opaque(MAX_NETOBJ).map_err(g)?;
                w.opaque(cookie);
                w.u32(Stat::Granted as u32);
                w.i32(0);
                Ok(())
            }
            PROC_FREE_ALL => {
                let _name = r.string(MAX_STR).map_err(g)?;
                let _state = r.i32().map_err(g)?;
                self.client_rebooted(ctx.peer.ip());
                Ok(())
            }
            _ => Err(AcceptStat::ProcUnavail),
        }
    }
}

/// The status monitor as seen by other hosts: SM_NOTIFY from a rebooted
/// client frees its locks; we monitor nobody for anyone.
pub struct Nsm {
    pub nlm: Arc<Nlm>,
}

#[async_trait]
impl Program for Nsm {
    fn number(&self) -> u32 {
        nsm::PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (nsm::VERSION, nsm::VERSION)
    }

    fn name(&self) -> &'static str {
        "status"
    }

    async fn call(&self, call: Call, reply: Reply) {
        let mut w = reply.results();
        match self.answer(&call.ctx, call.args(), &mut w) {
            Ok(()) => reply.send(w),
            Err(stat) => reply.error(stat),
        }
    }
}

impl Nsm {
    fn answer(&self, ctx: &CallContext, args: &[u8], w: &mut Writer) -> Result<(), AcceptStat> {
        let mut r = Reader::new(args);
        let g = |_| AcceptStat::GarbageArgs;
        let state = self.nlm.inner.monitor.state();
        match ctx.header.proc_ {
            0 | 5 => Ok(()),
            // SM_STAT, SM_MON: sm_stat_res { STAT_FAIL, state }
            1 | 2 => {
                w.u32(1);
                w.u32(state);
                Ok(())
            }
            // SM_UNMON, SM_UNMON_ALL: sm_stat { state }
            3 | 4 => {
                w.u32(state);
                Ok(())
            }
            nsm::SM_NOTIFY => {
                let name = r.string(nsm::MAX_NAME).map_err(g)?;
                let _state = r.i32().map_err(g)?;
                tracing::info!(client = %ctx.peer.ip(), name = %String::from_utf8_lossy(name), "reboot notification");
                self.nlm.client_rebooted(ctx.peer.ip());
                Ok(())
            }
            _ => Err(AcceptStat::ProcUnavail),
        }
    }
}
