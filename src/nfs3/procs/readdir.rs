//! Directory listings: READDIR and READDIRPLUS.

use super::status;
use crate::nfs3::args::{ReaddirArgs, ReaddirplusArgs};
use crate::nfs3::res::{AttrThen, Words};
use crate::nfs3::status::NfsStat;
use crate::nfs3::table::{Ctx, Procedure, FS};
use crate::nfs3::xdr::{self as x, post_op_attr, post_op_fh};
use crate::xdr::Writer;

fn list(ctx: &Ctx<'_>, a: ReaddirArgs<'_>, plus: bool) -> AttrThen<Words> {
    let fs = ctx.fs;
    let ours = fs.cookie_verifier();
    if a.cookie != 0 && a.verf != [0u8; 8] && a.verf != ours {
        return AttrThen {
            attr: fs.getattr(&ctx.fh).ok(),
            res: Err(NfsStat::BadCookie),
        };
    }
    // Fixed part of the reply: dir attributes, verifier, list end, eof.
    let fixed = x::POST_OP_ATTR_LEN + 8 + 4 + 4;
    let budget = (a.maxcount.min(ctx.max_io()) as usize).saturating_sub(fixed);
    let cost: &dyn Fn(usize) -> usize = if plus {
        &x::readdirplus_entry_len
    } else {
        &x::readdir_entry_len
    };
    match fs.readdir(&ctx.fh, &ctx.cred, a.cookie, plus, budget, cost) {
        Ok(list) => {
            let mut w = Writer::with_buffer(Vec::with_capacity(budget.min(64 * 1024)));
            w.opaque_fixed(&ours);
            for e in &list.entries {
                w.bool(true);
                w.u64(e.fileid);
                w.string(&e.name);
                w.u64(e.cookie);
                if plus {
                    post_op_attr(&mut w, e.attr.as_ref(), ctx.fsid());
                    let fh = e.handle.as_ref().map(|h| ctx.wire(h));
                    post_op_fh(&mut w, fh.as_ref().map(|b| &b[..]));
                }
            }
            w.bool(false);
            w.bool(list.eof);
            AttrThen {
                attr: list.dir_attr,
                res: Ok(Words(w)),
            }
        }
        Err(e) => AttrThen {
            attr: fs.getattr(&ctx.fh).ok(),
            res: Err(status(ctx, e)),
        },
    }
}

pub struct Readdir;

impl Procedure for Readdir {
    const NAME: &'static str = "READDIR";
    const FLAGS: u8 = FS;
    type Args<'a> = ReaddirArgs<'a>;
    type Res = AttrThen<Words>;
    fn run(ctx: &Ctx<'_>, a: ReaddirArgs<'_>) -> AttrThen<Words> {
        list(ctx, a, false)
    }
}

pub struct Readdirplus;

impl Procedure for Readdirplus {
    const NAME: &'static str = "READDIRPLUS";
    const FLAGS: u8 = FS;
    type Args<'a> = ReaddirplusArgs<'a>;
    type Res = AttrThen<Words>;
    fn run(ctx: &Ctx<'_>, a: ReaddirplusArgs<'_>) -> AttrThen<Words> {
        list(ctx, a.0, true)
    }
}
