//! File data: READ, WRITE, COMMIT.

use super::status;
use crate::fs::Stable;
use crate::nfs3::args::{CommitArgs, ReadArgs, WriteArgs};
use crate::nfs3::res::{AttrThen, ReadOk, Verifier, WccThen, WriteOk};
use crate::nfs3::status::NfsStat;
use crate::nfs3::table::{Ctx, Procedure, FS, WRITES};

pub struct Read;

impl Procedure for Read {
    const NAME: &'static str = "READ";
    const FLAGS: u8 = FS;
    type Args<'a> = ReadArgs<'a>;
    type Res = AttrThen<ReadOk>;
    fn run(ctx: &Ctx<'_>, a: ReadArgs<'_>) -> AttrThen<ReadOk> {
        let count = a.count.min(ctx.max_io());
        // Sized by what the file can return (fs.read never grows it past
        // that), plus the XDR padding the reply adds.
        let mut data = Vec::new();
        let (attr, res) = ctx.fs.read(&ctx.fh, &ctx.cred, a.offset, count, &mut data);
        match res {
            // We read through an open descriptor: attributes after a read
            // exist; should they not, never send a malformed reply.
            Ok(_) if attr.is_none() => AttrThen {
                attr: None,
                res: Err(NfsStat::Io),
            },
            Ok(r) => AttrThen {
                attr,
                res: Ok(ReadOk { eof: r.eof, data }),
            },
            Err(e) => AttrThen {
                attr,
                res: Err(status(ctx, e)),
            },
        }
    }
}

pub struct Write;

impl Procedure for Write {
    const NAME: &'static str = "WRITE";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = WriteArgs<'a>;
    type Res = WccThen<WriteOk>;
    fn run(ctx: &Ctx<'_>, a: WriteArgs<'_>) -> WccThen<WriteOk> {
        let (mut wcc, res) = ctx.fs.write(&ctx.fh, &ctx.cred, a.offset, a.data);
        let res = match res {
            Ok(n) if a.stable != Stable::Unstable => {
                // FILE_SYNC / DATA_SYNC: durable before we answer.
                let (sw, synced) = ctx.fs.sync(&ctx.fh, a.stable == Stable::DataSync);
                wcc.after = sw.after.or(wcc.after);
                synced.map(|()| n)
            }
            other => other,
        };
        WccThen {
            wcc,
            res: res
                .map(|count| WriteOk {
                    count,
                    committed: a.stable,
                    verf: ctx.nfs.write_verifier,
                })
                .map_err(|e| status(ctx, e)),
        }
    }
}

pub struct Commit;

impl Procedure for Commit {
    const NAME: &'static str = "COMMIT";
    const FLAGS: u8 = FS;
    type Args<'a> = CommitArgs<'a>;
    type Res = WccThen<Verifier>;
    fn run(ctx: &Ctx<'_>, _: CommitArgs<'_>) -> WccThen<Verifier> {
        let (wcc, res) = ctx.fs.sync(&ctx.fh, false);
        WccThen {
            wcc,
            res: res
                .map(|()| Verifier(ctx.nfs.write_verifier))
                .map_err(|e| status(ctx, e)),
        }
    }
}
