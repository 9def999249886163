//! NFS version 3 (program 100003, RFC 1813).
//!
//! The dispatcher below is the only place where export policy is applied to
//! NFS calls: every procedure but NULL starts with a file handle, so the
//! handle is decoded and authenticated, the export's rules are checked for
//! the caller's address and port, procedures flagged as writing are refused on
//! read-only access, and the credential is squashed — all before the
//! procedure runs. No handler can forget a check it never has to make.

mod procs;
pub mod xdr;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tracing::Instrument;

use crate::exports::{read_only, Export, ExportTable};
use crate::fs::{FileHandle, NfsStat};
use crate::rpc::msg::{AcceptStat, AuthSys};
use crate::rpc::{CallContext, Program};
use crate::xdr::{Reader, Writer};

pub const PROGRAM: u32 = 100003;
pub const VERSION: u32 = 3;

/// One row of the dispatch table.
pub struct ProcInfo {
    pub name: &'static str,
    /// Modifies the export: refused with ROFS on read-only access.
    pub writes: bool,
    /// XDR words of the failure body when the call is refused before it
    /// runs (empty post_op_attr = 1 word, empty wcc_data = 2 words).
    pub fail_words: usize,
}

const fn p(name: &'static str, writes: bool, fail_words: usize) -> ProcInfo {
    ProcInfo {
        name,
        writes,
        fail_words,
    }
}

pub const PROCS: [ProcInfo; 22] = [
    p("NULL", false, 0),
    p("GETATTR", false, 0),
    p("SETATTR", true, 2),
    p("LOOKUP", false, 1),
    p("ACCESS", false, 1),
    p("READLINK", false, 1),
    p("READ", false, 1),
    p("WRITE", true, 2),
    p("CREATE", true, 2),
    p("MKDIR", true, 2),
    p("SYMLINK", true, 2),
    p("MKNOD", true, 2),
    p("REMOVE", true, 2),
    p("RMDIR", true, 2),
    p("RENAME", true, 4),
    p("LINK", true, 3),
    p("READDIR", false, 1),
    p("READDIRPLUS", false, 1),
    p("FSSTAT", false, 1),
    p("FSINFO", false, 1),
    p("PATHCONF", false, 1),
    p("COMMIT", false, 2),
];

/// A call that passed the policy checks.
pub struct Request<'a> {
    pub ctx: &'a CallContext,
    pub export: &'a Arc<Export>,
    pub fh: FileHandle,
    pub cred: AuthSys,
    pub read_only: bool,
}

pub struct Nfs3 {
    pub exports: Arc<ExportTable>,
    /// Changes every time the server starts, so clients resend data they
    /// wrote UNSTABLE and had not committed when we restarted.
    pub write_verifier: [u8; 8],
    pub max_write: u32,
    pub counters: [AtomicU64; 22],
    refused: Mutex<HashSet<IpAddr>>,
}

impl Nfs3 {
    pub fn new(exports: Arc<ExportTable>, write_verifier: [u8; 8], max_write: u32) -> Self {
        Nfs3 {
            exports,
            write_verifier,
            max_write,
            counters: Default::default(),
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// Logs a refused client once, not once per packet.
    fn log_refusal(&self, ip: IpAddr, export: &str, why: &str) {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() < 4096 && r.insert(ip) {
            tracing::warn!(client = %ip, export, "NFS access refused: {why}");
        }
    }

    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        PROCS
            .iter()
            .zip(&self.counters)
            .map(|(p, c)| (p.name, c.load(Ordering::Relaxed)))
            .collect()
    }
}

fn refuse(reply: &mut Writer, stat: NfsStat, info: &ProcInfo) {
    reply.u32(stat as u32);
    for _ in 0..info.fail_words {
        reply.u32(0);
    }
}

#[async_trait]
impl Program for Nfs3 {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (VERSION, VERSION)
    }

    /// Every procedure that changes the export is non-idempotent (knfsd caches the
    /// same set): a retransmitted REMOVE must get its original OK, not NOENT.
    fn replay_cached(&self, vers: u32, proc_: u32) -> bool {
        vers == VERSION && PROCS.get(proc_ as usize).is_some_and(|p| p.writes)
    }

    async fn call(
        &self,
        ctx: &CallContext,
        args: &[u8],
        reply: &mut Writer,
    ) -> Result<(), AcceptStat> {
        let proc_ = ctx.header.proc_ as usize;
        let info = PROCS.get(proc_).ok_or(AcceptStat::ProcUnavail)?;
        self.counters[proc_].fetch_add(1, Ordering::Relaxed);
        if proc_ == 0 {
            return Ok(());
        }
        let mut r = Reader::new(args);
        let fh_bytes = xdr::fh_bytes(&mut r).map_err(|_| AcceptStat::GarbageArgs)?;
        let (export, fh) = match self.exports.resolve_handle(fh_bytes) {
            Ok(v) => v,
            Err(stat) => {
                tracing::debug!(peer = %ctx.peer, proc = info.name, %stat, "handle refused");
                refuse(reply, stat, info);
                return Ok(());
            }
        };
        let Some(rights) = export.rights_for(ctx.peer) else {
            self.log_refusal(
                ctx.peer.ip(),
                &export.fs.name,
                "no rule of the export admits this client (or it requires a privileged port)",
            );
            refuse(reply, NfsStat::Acces, info);
            return Ok(());
        };
        let ro = read_only(&rights);
        if info.writes && ro {
            refuse(reply, NfsStat::RoFs, info);
            return Ok(());
        }
        // Held for the whole call: a rollback waits for it, and waits out
        // new calls until the dataset is back.
        let _admitted = export.gate.read().await;
        let req = Request {
            ctx,
            export,
            fh,
            cred: export.effective_cred(&ctx.header.auth, &rights),
            read_only: ro,
        };
        let span = tracing::trace_span!("nfs", xid = ctx.header.xid, proc = info.name);
        procs::run(self, proc_, &req, r, reply)
            .instrument(span)
            .await
    }
}
