//! NFS version 3 (program 100003, RFC 1813).
//!
//! The dispatcher below is the only place where export policy is applied to
//! NFS calls: every procedure but NULL starts with a file handle, so the
//! handle is authenticated, the export's rules are checked for the caller's
//! address and port, procedures flagged as writing are refused on read-only
//! access, and the credential is squashed, once for every row of the table
//! (`table`). A refused call is answered at once (no disk is touched); an
//! admitted one waits for the export's gate (a rollback holds it), then
//! runs on the file I/O pool, which writes its reply to the connection.

mod args;
mod procs;
mod res;
pub mod status;
pub mod table;
pub mod xdr;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;

use crate::exports::{read_only, Export, ExportTable};
use crate::fs::handle::Refusal;
use crate::fs::{Cred, FileHandle, FsError};
use crate::iopool::IoPool;
use crate::rpc::msg::{AcceptStat, CallHeader};
use crate::rpc::{Call, CallContext, Program, Reply};
use crate::xdr::Writer;
use status::NfsStat;
use table::{Ctx, Row, TABLE};

pub const PROGRAM: u32 = 100003;
pub const VERSION: u32 = 3;

pub struct Nfs3 {
    pub exports: Arc<ExportTable>,
    /// Changes every time the server starts, so clients resend data they
    /// wrote UNSTABLE and had not committed when we restarted.
    pub write_verifier: [u8; 8],
    pub counters: [AtomicU64; 22],
    /// Calls answered by an async worker without the pool (`NOWAIT` rows).
    pub answered_in_line: AtomicU64,
    pool: IoPool,
    /// This program itself, for the jobs it hands to the pool.
    me: Weak<Nfs3>,
    refused: Mutex<HashSet<IpAddr>>,
    /// (export id, object, kind of operation) whose I/O error was logged.
    io_errors: Mutex<HashSet<(u32, u64, &'static str)>>,
}

/// Distinct failing objects logged before the log says "and more".
const IO_ERRORS_LOGGED: usize = 1024;

/// A call that passed the policy checks.
struct Admitted {
    export: Arc<Export>,
    /// The tree the handle is in: the live export or one of its snapshots.
    fs: Arc<crate::fs::ExportFs>,
    fh: FileHandle,
    cred: Cred,
    read_only: bool,
}

impl Nfs3 {
    pub fn new(exports: Arc<ExportTable>, write_verifier: [u8; 8], pool: IoPool) -> Arc<Self> {
        Arc::new_cyclic(|me| Nfs3 {
            exports,
            write_verifier,
            counters: Default::default(),
            answered_in_line: AtomicU64::new(0),
            pool,
            me: me.clone(),
            refused: Mutex::new(HashSet::new()),
            io_errors: Mutex::new(HashSet::new()),
        })
    }

    /// Logs a refused client once, not once per packet.
    fn log_refusal(&self, ip: IpAddr, export: &str, why: &str) {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() < 4096 && r.insert(ip) {
            tracing::warn!(client = %ip, export, "NFS access refused: {why}");
        }
    }

    /// Logs an I/O error of the export's disk once per object and kind of
    /// operation (read, write, commit, metadata), with the object's path:
    /// a failing sector answers every retry of a client with the same error,
    /// and one line per call would bury the next file that fails.
    pub(crate) fn log_io_error(&self, fs: &crate::fs::ExportFs, fh: &FileHandle, e: &FsError) {
        let op: &'static str = match e.op {
            crate::fs::Op::Read => "read",
            crate::fs::Op::Write => "write",
            crate::fs::Op::Commit => "commit",
            _ => "metadata",
        };
        let mut seen = self.io_errors.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > IO_ERRORS_LOGGED || !seen.insert((fs.id, fh.ino, op)) {
            return;
        }
        if seen.len() > IO_ERRORS_LOGGED {
            drop(seen);
            tracing::error!(export = %fs.name, "more than {IO_ERRORS_LOGGED} objects failed with I/O errors: further ones are not logged (the disk is failing: check it)");
            return;
        }
        drop(seen);
        // The path as the index knows it: where an operator looks.
        let path = fs
            .path_of(fh.ino)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(path not known)".into());
        tracing::error!(export = %fs.name, path, object = fh.ino, op, error = %e,
            "I/O error from the export's disk; clients get NFS3ERR_IO (further {op} errors of this object are not logged)");
    }

    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        TABLE
            .iter()
            .zip(&self.counters)
            .map(|(p, c)| (p.name, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// The policy checks, on the call's first handle: authentic and of a
    /// served export, the client admitted by that export's rules (address
    /// and port), write procedures refused on read-only access, the
    /// credential squashed. Touches no disk.
    fn admit(&self, ctx: &CallContext, row: &Row, fh_bytes: &[u8]) -> Result<Admitted, NfsStat> {
        let (export, fs, fh) = self.exports.resolve_handle(fh_bytes).map_err(|r| match r {
            Refusal::Bad => NfsStat::BadHandle,
            Refusal::Stale => NfsStat::Stale,
        })?;
        let Some(rights) = export.rights_for(ctx.peer) else {
            self.log_refusal(
                ctx.peer.ip(),
                &export.fs.name,
                "no rule of the export admits this client (or it requires a privileged port)",
            );
            return Err(NfsStat::Acces);
        };
        // Snapshots and the .zfs control directory are read-only for all.
        let ro = read_only(&rights) || fs.read_only() || export.fs.is_control(fh.ino);
        if row.writes() && ro {
            return Err(NfsStat::RoFs);
        }
        Ok(Admitted {
            cred: export.effective_cred(&ctx.header.auth, &rights),
            export: export.clone(),
            fs,
            fh,
            read_only: ro,
        })
    }
}

/// Answers with what a row produced.
fn answer(reply: Reply, w: Writer, res: Result<table::Tail, crate::xdr::XdrError>) {
    match res {
        Ok(None) => reply.send(w),
        Ok(Some(tail)) => reply.send_with_tail(w, tail),
        Err(_) => reply.error(AcceptStat::GarbageArgs),
    }
}

#[async_trait]
impl Program for Nfs3 {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn name(&self) -> &'static str {
        "nfs"
    }

    fn versions(&self) -> (u32, u32) {
        (VERSION, VERSION)
    }

    fn replay_cached(&self, vers: u32, proc_: u32) -> bool {
        vers == VERSION && TABLE.get(proc_ as usize).is_some_and(Row::writes)
    }

    fn reply_size_hint(&self, header: &CallHeader, args: &[u8]) -> usize {
        args::reply_size_hint(header.proc_, args)
    }

    async fn call(&self, call: Call, reply: Reply) {
        let proc_ = call.ctx.header.proc_ as usize;
        let Some(row) = TABLE.get(proc_) else {
            reply.error(AcceptStat::ProcUnavail);
            return;
        };
        self.counters[proc_].fetch_add(1, Ordering::Relaxed);
        if !row.touches_fs() {
            let w = reply.results();
            reply.send(w);
            return;
        }
        // Every argument first: a malformed one is GARBAGE_ARGS whatever
        // the handle says. Then policy, on the first handle.
        let fh_bytes = match (row.check)(call.args()) {
            Ok(fh) => fh,
            Err(_) => return reply.error(AcceptStat::GarbageArgs),
        };
        let adm = match self.admit(&call.ctx, row, fh_bytes) {
            Ok(a) => a,
            Err(stat) => {
                tracing::debug!(peer = %call.ctx.peer, proc = row.name, %stat, "call refused");
                let mut w = reply.results();
                let tail = (row.refuse)(stat, &mut w);
                answer(reply, w, Ok(tail));
                return;
            }
        };
        // Held for the whole call: a rollback waits for it, and waits out
        // new calls until the dataset is back.
        let gate = adm.export.gate.clone();
        let admitted = match gate.clone().try_read_owned() {
            Ok(g) => g,
            Err(_) => gate.read_owned().await,
        };
        // Whether the call, run on the pool, usually waits for nothing (see
        // `table::QUICK`): not on FUSE or a network filesystem (any GETATTR
        // there may wait for a daemon or a server), not while a handle miss
        // would walk the tree to rebuild the index, nor in `.zfs` (a
        // snapshot mounts on first use). Only a lone call asks
        // (`IoPool::submit_call`), so only a lone call decodes its arguments
        // a second time to answer.
        let mut quick =
            call.ctx.alone && adm.fs.local && adm.fs.settled(&adm.fh) && (row.quick)(call.args());
        // What a cached descriptor and the page cache can answer now needs
        // no thread hop (and cannot block: see fs::ops::nowait).
        if row.may_answer_in_line() && adm.fs.nowait {
            let ctx = Ctx {
                nfs: self,
                fs: &adm.fs,
                fh: adm.fh,
                cred: adm.cred,
                read_only: adm.read_only,
                transport: call.ctx.transport,
            };
            let mut w = reply.results();
            if let Some(tail) = (row.nowait)(&ctx, call.args(), &mut w) {
                drop(admitted);
                self.answered_in_line.fetch_add(1, Ordering::Relaxed);
                return answer(reply, w, Ok(tail));
            }
            // Refused: our caches or the kernel said it would wait (a cold
            // inode, a page not cached) — unless the filesystem refuses all
            // such WRITEs (ext4 takes no RWF_NOWAIT writes), which says
            // nothing about this one.
            quick &= row.writes() && !adm.fs.takes_nowait_writes();
        }
        let nfs = self.me.clone();
        let client = call.ctx.peer.ip();
        self.pool.submit_call(
            client,
            call.ctx.alone,
            quick,
            Box::new(move || {
                let _admitted = admitted;
                let Some(nfs) = nfs.upgrade() else { return };
                let ctx = Ctx {
                    nfs: &nfs,
                    fs: &adm.fs,
                    fh: adm.fh,
                    cred: adm.cred,
                    read_only: adm.read_only,
                    transport: call.ctx.transport,
                };
                let _span = tracing::trace_span!("nfs", xid = call.ctx.header.xid, proc = row.name)
                    .entered();
                let mut w = reply.results();
                let res = (row.run)(&ctx, call.args(), &mut w);
                answer(reply, w, res);
            }),
        );
    }
}
