//! MOUNT protocol (program 100005, RFC 1813 appendix I).
//!
//! MNT hands out an export's root handle after the export's client rules
//! admit the caller; EXPORT and DUMP tell `showmount -e/-a` the truth.
//! Versions 1 and 2 are answered for NULL, DUMP, UMNT, UMNTALL and EXPORT
//! (their encodings are identical); MNT needs version 3 (64-byte handles).

use std::sync::Arc;

use async_trait::async_trait;

use crate::exports::{Export, ExportTable};
use crate::fs::Kind;
use crate::iopool::IoPool;
use crate::rpc::msg::{AcceptStat, AUTH_SYS};
use crate::rpc::{Call, CallContext, Program, Reply};
use crate::xdr::{Reader, Writer};

pub const PROGRAM: u32 = 100005;
pub const MNTPATHLEN: u32 = 1024;

const MNT3_OK: u32 = 0;
const MNT3ERR_NOENT: u32 = 2;
const MNT3ERR_ACCES: u32 = 13;
const MNT3ERR_NOTDIR: u32 = 20;
const MNT3ERR_SERVERFAULT: u32 = 10006;

pub struct Mount {
    pub exports: Arc<ExportTable>,
    /// Walks below an export root (subdirectory mounts) run here.
    pub pool: IoPool,
}

#[async_trait]
impl Program for Mount {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (1, 3)
    }

    fn name(&self) -> &'static str {
        "mountd"
    }

    async fn call(&self, call: Call, reply: Reply) {
        let ctx = &call.ctx;
        let mut r = Reader::new(call.args());
        let mut w = reply.results();
        match ctx.header.proc_ {
            0 => {}
            1 if ctx.header.vers == 3 => {
                let Ok(path) = r.string(MNTPATHLEN) else {
                    return reply.error(AcceptStat::GarbageArgs);
                };
                self.mnt(ctx, path, &mut w).await;
            }
            2 => {
                for m in self.exports.mounts() {
                    w.bool(true);
                    w.string(m.client.to_string().as_bytes());
                    w.string(m.export.as_bytes());
                }
                w.bool(false);
            }
            3 => {
                let Ok(path) = r.string(MNTPATHLEN) else {
                    return reply.error(AcceptStat::GarbageArgs);
                };
                if let Ok(p) = std::str::from_utf8(path) {
                    self.exports.remove_mount(ctx.peer.ip(), p);
                }
            }
            4 => self.exports.remove_all_mounts(ctx.peer.ip()),
            5 => {
                for e in self.exports.all() {
                    w.bool(true);
                    w.string(e.fs.name.as_bytes());
                    let policy = e.policy.read().unwrap_or_else(|p| p.into_inner()).clone();
                    for rule in &policy.rules {
                        w.bool(true);
                        w.string(rule.cidr.to_string().as_bytes());
                    }
                    w.bool(false);
                }
                w.bool(false);
            }
            _ => return reply.error(AcceptStat::ProcUnavail),
        }
        reply.send(w);
    }
}

impl Mount {
    /// Finds the export a MNT path names: the export itself, or a directory below it
    /// (`/exports/data/sub`, as libnfs URLs and `mount host:/exports/data/sub` ask for).
    /// Returns the export and the path components below its root.
    fn export_for_path<'a>(&self, path: &'a str) -> Option<(&Arc<Export>, Vec<&'a str>)> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        if let Some(export) = self.exports.by_name(path) {
            return Some((export, Vec::new()));
        }
        // The longest export name that is a whole-component prefix of the path.
        self.exports
            .all()
            .iter()
            .filter_map(|e| {
                let name = e.fs.name.as_str();
                let rest = if name == "/" {
                    path.strip_prefix('/')
                } else {
                    path.strip_prefix(name).and_then(|r| r.strip_prefix('/'))
                }?;
                Some((name.len(), e, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, e, rest)| (e, rest.split('/').filter(|c| !c.is_empty()).collect()))
    }

    async fn mnt(&self, ctx: &CallContext, path: &[u8], w: &mut Writer) {
        let peer = ctx.peer;
        let path_str = std::str::from_utf8(path).ok();
        let Some((export, below)) = path_str.and_then(|p| self.export_for_path(p)) else {
            tracing::info!(client = %peer, path = %String::from_utf8_lossy(path), "MNT of a path that is not exported");
            w.u32(MNT3ERR_NOENT);
            return;
        };
        let Some(rights) = export.rights_for(peer) else {
            if self.exports.first_mnt_refusal(peer.ip()) {
                tracing::warn!(client = %peer, export = %export.fs.name, "MNT refused: no rule of the export admits this client (further refusals of it are not logged)");
            } else {
                tracing::debug!(client = %peer, export = %export.fs.name, "MNT refused");
            }
            w.u32(MNT3ERR_ACCES);
            return;
        };
        // The root handle is known without touching the disk; a
        // subdirectory mount walks down with LOOKUP semantics and the
        // caller's (squashed) credential, on the file I/O pool: never `..`,
        // never through a symlink, never off the export.
        let mut fh = export.fs.root_handle();
        if !below.is_empty() {
            if below.iter().any(|c| *c == "." || *c == "..") {
                w.u32(MNT3ERR_NOENT);
                return;
            }
            let cred = export.effective_cred(&ctx.header.auth, &rights);
            let fs = export.fs.clone();
            let parts: Vec<Vec<u8>> = below.iter().map(|c| c.as_bytes().to_vec()).collect();
            let walked = self
                .pool
                .run(ctx.peer.ip(), move || {
                    let mut fh = fs.root_handle();
                    for c in &parts {
                        match fs.lookup(&fh, c, &cred).1 {
                            Ok((next, st)) if st.is_dir() => fh = next,
                            Ok(_) => return Err(MNT3ERR_NOTDIR),
                            Err(e) if e.kind == Kind::Os(nix::errno::Errno::EACCES) => {
                                return Err(MNT3ERR_ACCES)
                            }
                            Err(_) => return Err(MNT3ERR_NOENT),
                        }
                    }
                    Ok(fh)
                })
                .await
                .unwrap_or(Err(MNT3ERR_SERVERFAULT));
            match walked {
                Ok(f) => fh = f,
                Err(code) => {
                    w.u32(code);
                    return;
                }
            }
        }
        let mounted = if below.is_empty() {
            export.fs.name.clone()
        } else {
            path_str
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string()
        };
        w.u32(MNT3_OK);
        w.opaque(&export.fs.encode_handle(&fh));
        w.u32(1);
        w.u32(AUTH_SYS);
        self.exports.add_mount(peer.ip(), &mounted);
        tracing::info!(client = %peer, export = %export.fs.name, path = %mounted, "mounted");
    }
}
