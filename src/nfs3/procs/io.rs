//! File data: READ, WRITE, COMMIT.

use super::status;
use crate::fs::Stable;
use crate::nfs3::args::{CommitArgs, ReadArgs, WriteArgs};
use crate::nfs3::res::{AttrThen, ReadOk, Verifier, WccThen, WriteOk};
use crate::nfs3::status::NfsStat;
use crate::nfs3::table::{Ctx, Procedure, FS, NOWAIT, WRITES};

pub struct Read;

impl Procedure for Read {
    const NAME: &'static str = "READ";
    const FLAGS: u8 = FS | NOWAIT;
    type Args<'a> = ReadArgs<'a>;
    type Res = AttrThen<ReadOk>;
    fn run(ctx: &Ctx<'_>, a: ReadArgs<'_>) -> AttrThen<ReadOk> {
        // Sized by what the file can return (fs.read never grows it past
        // that), plus the XDR padding the reply adds.
        let mut data = Vec::new();
        let (attr, res) = ctx.fs.read(
            &ctx.fh,
            &ctx.cred,
            a.offset,
            a.count.min(ctx.max_io()),
            &mut data,
        );
        read_result(ctx, attr, res, data)
    }
    fn try_nowait(ctx: &Ctx<'_>, a: &ReadArgs<'_>) -> Option<AttrThen<ReadOk>> {
        let mut data = Vec::new();
        let (attr, res) = ctx.fs.read_nowait(
            &ctx.fh,
            &ctx.cred,
            a.offset,
            a.count.min(ctx.max_io()),
            &mut data,
        )?;
        Some(read_result(ctx, attr, res, data))
    }
}

fn read_result(
    ctx: &Ctx<'_>,
    attr: Option<crate::fs::Stat>,
    res: Result<crate::fs::ReadResult, crate::fs::FsError>,
    data: Vec<u8>,
) -> AttrThen<ReadOk> {
    {
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
    const FLAGS: u8 = FS | WRITES | NOWAIT;
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
        write_result(ctx, wcc, res, a.stable)
    }
    /// UNSTABLE writes: stable ones wait for the disk by definition.
    fn quick(a: &WriteArgs<'_>) -> bool {
        a.stable == Stable::Unstable
    }
    /// UNSTABLE writes only: stable ones wait for the disk by definition.
    fn try_nowait(ctx: &Ctx<'_>, a: &WriteArgs<'_>) -> Option<WccThen<WriteOk>> {
        if a.stable != Stable::Unstable {
            return None;
        }
        let (wcc, res) = ctx.fs.write_nowait(&ctx.fh, &ctx.cred, a.offset, a.data)?;
        Some(write_result(ctx, wcc, res, a.stable))
    }
}

fn write_result(
    ctx: &Ctx<'_>,
    wcc: crate::fs::Wcc,
    res: Result<u32, crate::fs::FsError>,
    committed: Stable,
) -> WccThen<WriteOk> {
    WccThen {
        wcc,
        res: res
            .map(|count| WriteOk {
                count,
                committed,
                verf: ctx.nfs.write_verifier,
            })
            .map_err(|e| status(ctx, e)),
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
