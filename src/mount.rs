//! MOUNT protocol (program 100005, RFC 1813 appendix I).
//!
//! MNT hands out an export's root handle after the export's client rules
//! admit the caller; EXPORT and DUMP tell `showmount -e/-a` the truth.
//! Versions 1 and 2 are answered for NULL, DUMP, UMNT, UMNTALL and EXPORT
//! (their encodings are identical); MNT needs version 3 (64-byte handles).

use std::sync::Arc;

use async_trait::async_trait;

use crate::exports::ExportTable;
use crate::rpc::msg::{AcceptStat, AUTH_SYS};
use crate::rpc::{CallContext, Program};
use crate::xdr::{Reader, Writer};

pub const PROGRAM: u32 = 100005;
pub const MNTPATHLEN: u32 = 1024;

const MNT3_OK: u32 = 0;
const MNT3ERR_NOENT: u32 = 2;
const MNT3ERR_ACCES: u32 = 13;
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
    fn mnt(&self, ctx: &CallContext, path: &[u8], w: &mut Writer) {
        let peer = ctx.peer;
        let export = std::str::from_utf8(path)
            .ok()
            .map(|p| {
                if p.len() > 1 {
                    p.trim_end_matches('/')
                } else {
                    p
                }
            })
            .and_then(|p| self.exports.by_name(p));
        let Some(export) = export else {
            tracing::info!(client = %peer, path = %String::from_utf8_lossy(path), "MNT of a path that is not exported");
            w.u32(MNT3ERR_NOENT);
            return;
        };
        if export.rights_for(peer).is_none() {
            tracing::warn!(client = %peer, export = %export.fs.name, "MNT refused: no rule of the export admits this client");
            w.u32(MNT3ERR_ACCES);
            return;
        }
        match export.fs.root_handle() {
            Ok(fh) => {
                w.u32(MNT3_OK);
                w.opaque(&export.fs.encode_handle(&fh));
                w.u32(1);
                w.u32(AUTH_SYS);
                self.exports.add_mount(peer.ip(), &export.fs.name);
                tracing::info!(client = %peer, export = %export.fs.name, "mounted");
            }
            Err(e) => {
                tracing::error!(export = %export.fs.name, error = %e, "export root is not accessible");
                w.u32(MNT3ERR_SERVERFAULT);
            }
        }
    }
}
