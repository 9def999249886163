//! MOUNT protocol (program 100005, RFC 1813 appendix I).
//!
//! MNT hands out an export's root handle after the export's client rules
//! admit the caller; EXPORT and DUMP tell `showmount -e/-a` the truth.
//! Versions 1 and 2 are answered for NULL, DUMP, UMNT, UMNTALL and EXPORT
//! (their encodings are identical); MNT needs version 3 (64-byte handles).

use std::sync::Arc;

use async_trait::async_trait;

use crate::exports::{Export, ExportTable};
use crate::fs::status::NfsStat;
use crate::rpc::msg::{AcceptStat, AUTH_SYS};
use crate::rpc::{CallContext, Program};
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
}

#[async_trait]
impl Program for Mount {
    fn number(&self) -> u32 {
        PROGRAM
    }

    fn versions(&self) -> (u32, u32) {
        (1, 3)
    }

    async fn call(&self, ctx: &CallContext, args: &[u8], w: &mut Writer) -> Result<(), AcceptStat> {
        let mut r = Reader::new(args);
        match ctx.header.proc_ {
            0 => Ok(()),
            1 if ctx.header.vers == 3 => {
                let path = r.string(MNTPATHLEN).map_err(|_| AcceptStat::GarbageArgs)?;
                self.mnt(ctx, path, w);
                Ok(())
            }
            2 => {
                for m in self.exports.mounts() {
                    w.bool(true);
                    w.string(m.client.to_string().as_bytes());
                    w.string(m.export.as_bytes());
                }
                w.bool(false);
                Ok(())
            }
            3 => {
                let path = r.string(MNTPATHLEN).map_err(|_| AcceptStat::GarbageArgs)?;
                if let Ok(p) = std::str::from_utf8(path) {
                    self.exports.remove_mount(ctx.peer.ip(), p);
                }
                Ok(())
            }
            4 => {
                self.exports.remove_all_mounts(ctx.peer.ip());
                Ok(())
            }
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
                Ok(())
            }
            _ => Err(AcceptStat::ProcUnavail),
        }
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

    fn mnt(&self, ctx: &CallContext, path: &[u8], w: &mut Writer) {
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
        let mut fh = match export.fs.root_handle() {
            Ok(fh) => fh,
            Err(e) => {
                tracing::error!(export = %export.fs.name, error = %e, "export root is not accessible");
                w.u32(MNT3ERR_SERVERFAULT);
                return;
            }
        };
        // A subdirectory mount walks down with LOOKUP semantics and the caller's
        // (squashed) credential: never `..`, never through a symlink, never off the export.
        let cred = export.effective_cred(&ctx.header.auth, &rights);
        for component in &below {
            if *component == "." || *component == ".." {
                w.u32(MNT3ERR_NOENT);
                return;
            }
            match export.fs.lookup(&fh, component.as_bytes(), &cred).1 {
                Ok((next, st)) if st.is_dir() => fh = next,
                Ok(_) => {
                    w.u32(MNT3ERR_NOTDIR);
                    return;
                }
                Err(NfsStat::Acces) => {
                    w.u32(MNT3ERR_ACCES);
                    return;
                }
                Err(_) => {
                    w.u32(MNT3ERR_NOENT);
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
