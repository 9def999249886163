//! Names in directories: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
//! RMDIR, RENAME, LINK.

use super::status;
use crate::fs::{FsError, NewObject, Wcc};
use crate::nfs3::args::{
    CreateArgs, DirOp, LinkArgs, MkdirArgs, MknodArgs, MknodWhat, RenameArgs, SymlinkArgs,
};
use crate::nfs3::res::{LinkRes, LookupRes, NewObjRes, RenameRes, WccThen};
use crate::nfs3::status::NfsStat;
use crate::nfs3::table::{Ctx, Procedure, FS, NOWAIT, QUICK, WRITES};

pub struct Lookup;

impl Procedure for Lookup {
    const NAME: &'static str = "LOOKUP";
    const FLAGS: u8 = FS | NOWAIT | QUICK;
    type Args<'a> = DirOp<'a>;
    type Res = LookupRes;
    fn run(ctx: &Ctx<'_>, a: DirOp<'_>) -> LookupRes {
        let (dir_attr, res) = ctx.fs.lookup(&ctx.fh, a.name, &ctx.cred);
        lookup_result(ctx, dir_attr, res)
    }
    fn try_nowait(ctx: &Ctx<'_>, a: &DirOp<'_>) -> Option<LookupRes> {
        let (dir_attr, res) = ctx.fs.lookup_nowait(&ctx.fh, a.name, &ctx.cred)?;
        Some(lookup_result(ctx, dir_attr, res))
    }
}

fn lookup_result(
    ctx: &Ctx<'_>,
    dir_attr: Option<crate::fs::Stat>,
    res: Result<(crate::fs::FileHandle, crate::fs::Stat), FsError>,
) -> LookupRes {
    LookupRes {
        dir_attr,
        res: res
            .map(|(fh, st)| (ctx.wire(&fh), st))
            .map_err(|e| status(ctx, e)),
    }
}

fn new_object(ctx: &Ctx<'_>, (dir_wcc, res): (Wcc, Result<NewObject, FsError>)) -> NewObjRes {
    NewObjRes {
        dir_wcc,
        res: res
            .map(|(fh, st)| (ctx.wire(&fh), st))
            .map_err(|e| status(ctx, e)),
    }
}

pub struct Create;

impl Procedure for Create {
    const NAME: &'static str = "CREATE";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = CreateArgs<'a>;
    type Res = NewObjRes;
    fn run(ctx: &Ctx<'_>, a: CreateArgs<'_>) -> NewObjRes {
        new_object(ctx, ctx.fs.create(&ctx.fh, a.name, &ctx.cred, a.how))
    }
}

pub struct Mkdir;

impl Procedure for Mkdir {
    const NAME: &'static str = "MKDIR";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = MkdirArgs<'a>;
    type Res = NewObjRes;
    fn run(ctx: &Ctx<'_>, a: MkdirArgs<'_>) -> NewObjRes {
        new_object(ctx, ctx.fs.mkdir(&ctx.fh, a.name, &ctx.cred, &a.attrs))
    }
}

pub struct Symlink;

impl Procedure for Symlink {
    const NAME: &'static str = "SYMLINK";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = SymlinkArgs<'a>;
    type Res = NewObjRes;
    fn run(ctx: &Ctx<'_>, a: SymlinkArgs<'_>) -> NewObjRes {
        new_object(ctx, ctx.fs.symlink(&ctx.fh, a.name, a.target, &ctx.cred))
    }
}

pub struct Mknod;

impl Procedure for Mknod {
    const NAME: &'static str = "MKNOD";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = MknodArgs<'a>;
    type Res = NewObjRes;
    fn run(ctx: &Ctx<'_>, a: MknodArgs<'_>) -> NewObjRes {
        match a.what {
            MknodWhat::WrongType => NewObjRes {
                dir_wcc: Wcc::default(),
                res: Err(NfsStat::BadType),
            },
            MknodWhat::Node(kind, attrs, dev) => new_object(
                ctx,
                ctx.fs.mknod(&ctx.fh, a.name, kind, dev, &ctx.cred, &attrs),
            ),
        }
    }
}

fn remove(ctx: &Ctx<'_>, a: DirOp<'_>, rmdir: bool) -> WccThen<()> {
    let (wcc, res) = ctx.fs.remove(&ctx.fh, a.name, &ctx.cred, rmdir);
    WccThen {
        wcc,
        res: res.map_err(|e| status(ctx, e)),
    }
}

pub struct Remove;

impl Procedure for Remove {
    const NAME: &'static str = "REMOVE";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = DirOp<'a>;
    type Res = WccThen<()>;
    fn run(ctx: &Ctx<'_>, a: DirOp<'_>) -> WccThen<()> {
        remove(ctx, a, false)
    }
}

pub struct Rmdir;

impl Procedure for Rmdir {
    const NAME: &'static str = "RMDIR";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = DirOp<'a>;
    type Res = WccThen<()>;
    fn run(ctx: &Ctx<'_>, a: DirOp<'_>) -> WccThen<()> {
        remove(ctx, a, true)
    }
}

pub struct Rename;

impl Procedure for Rename {
    const NAME: &'static str = "RENAME";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = RenameArgs<'a>;
    type Res = RenameRes;
    fn run(ctx: &Ctx<'_>, a: RenameArgs<'_>) -> RenameRes {
        let to_dir = match ctx.same_export_handle(a.to_dir) {
            Ok(fh) => fh,
            Err(stat) => {
                return RenameRes {
                    stat,
                    from: Wcc::default(),
                    to: Wcc::default(),
                }
            }
        };
        let (from, to, res) = ctx.fs.rename(&ctx.fh, a.from, &to_dir, a.to, &ctx.cred);
        RenameRes {
            stat: res.err().map_or(NfsStat::Ok, |e| status(ctx, e)),
            from,
            to,
        }
    }
}

pub struct Link;

impl Procedure for Link {
    const NAME: &'static str = "LINK";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = LinkArgs<'a>;
    type Res = LinkRes;
    fn run(ctx: &Ctx<'_>, a: LinkArgs<'_>) -> LinkRes {
        let dir = match ctx.same_export_handle(a.dir) {
            Ok(fh) => fh,
            Err(stat) => {
                return LinkRes {
                    stat,
                    attr: None,
                    dir_wcc: Wcc::default(),
                }
            }
        };
        let (attr, dir_wcc, res) = ctx.fs.link(&ctx.fh, &dir, a.name, &ctx.cred);
        LinkRes {
            stat: res.err().map_or(NfsStat::Ok, |e| status(ctx, e)),
            attr,
            dir_wcc,
        }
    }
}
