//! Attributes of one object or of the filesystem: GETATTR, SETATTR, ACCESS,
//! READLINK, FSSTAT, FSINFO, PATHCONF.

use super::status;
use crate::nfs3::args::{AccessArgs, Object, SetattrArgs};
use crate::nfs3::res::{AttrRes, AttrThen, Path, WccThen, Words};
use crate::nfs3::table::{Ctx, Procedure, FS, NOWAIT, QUICK, WRITES};
use crate::xdr::Writer;

pub struct Getattr;

impl Procedure for Getattr {
    const NAME: &'static str = "GETATTR";
    const FLAGS: u8 = FS | NOWAIT | QUICK;
    type Args<'a> = Object<'a>;
    type Res = AttrRes;
    fn run(ctx: &Ctx<'_>, _: Object<'_>) -> AttrRes {
        AttrRes(ctx.fs.getattr(&ctx.fh).map_err(|e| status(ctx, e)))
    }
    fn try_nowait(ctx: &Ctx<'_>, _: &Object<'_>) -> Option<AttrRes> {
        ctx.fs.getattr_nowait(&ctx.fh).map(|st| AttrRes(Ok(st)))
    }
}

pub struct Setattr;

impl Procedure for Setattr {
    const NAME: &'static str = "SETATTR";
    const FLAGS: u8 = FS | WRITES;
    type Args<'a> = SetattrArgs<'a>;
    type Res = WccThen<()>;
    fn run(ctx: &Ctx<'_>, a: SetattrArgs<'_>) -> WccThen<()> {
        let (wcc, res) = ctx.fs.setattr(&ctx.fh, &ctx.cred, &a.attrs, a.guard);
        WccThen {
            wcc,
            res: res.map_err(|e| status(ctx, e)),
        }
    }
}

pub struct Access;

impl Procedure for Access {
    const NAME: &'static str = "ACCESS";
    const FLAGS: u8 = FS | NOWAIT | QUICK;
    type Args<'a> = AccessArgs<'a>;
    type Res = AttrThen<u32>;
    fn run(ctx: &Ctx<'_>, a: AccessArgs<'_>) -> AttrThen<u32> {
        match ctx.fs.access(&ctx.fh, &ctx.cred, ctx.read_only) {
            Ok((st, bits)) => AttrThen {
                attr: Some(st),
                res: Ok(a.want & bits),
            },
            Err(e) => AttrThen {
                attr: None,
                res: Err(status(ctx, e)),
            },
        }
    }
    fn try_nowait(ctx: &Ctx<'_>, a: &AccessArgs<'_>) -> Option<AttrThen<u32>> {
        let st = ctx.fs.getattr_nowait(&ctx.fh)?;
        let bits = crate::fs::perm::access_bits(&st, &ctx.cred, ctx.read_only);
        Some(AttrThen {
            attr: Some(st),
            res: Ok(a.want & bits),
        })
    }
}

pub struct Readlink;

impl Procedure for Readlink {
    const NAME: &'static str = "READLINK";
    const FLAGS: u8 = FS;
    type Args<'a> = Object<'a>;
    type Res = AttrThen<Path>;
    fn run(ctx: &Ctx<'_>, _: Object<'_>) -> AttrThen<Path> {
        let (attr, res) = ctx.fs.readlink(&ctx.fh);
        AttrThen {
            attr,
            res: res.map(Path).map_err(|e| status(ctx, e)),
        }
    }
}

pub struct Fsstat;

impl Procedure for Fsstat {
    const NAME: &'static str = "FSSTAT";
    const FLAGS: u8 = FS;
    type Args<'a> = Object<'a>;
    type Res = AttrThen<Words>;
    fn run(ctx: &Ctx<'_>, _: Object<'_>) -> AttrThen<Words> {
        let st = match ctx.fs.getattr(&ctx.fh) {
            Ok(st) => st,
            Err(e) => {
                return AttrThen {
                    attr: None,
                    res: Err(status(ctx, e)),
                }
            }
        };
        match ctx.fs.fsstat() {
            Ok(s) => {
                let mut w = Writer::new();
                for v in [s.tbytes, s.fbytes, s.abytes, s.tfiles, s.ffiles, s.afiles] {
                    w.u64(v);
                }
                w.u32(0); // invarsec: the volume can be resized at any time
                AttrThen {
                    attr: Some(st),
                    res: Ok(Words(w)),
                }
            }
            Err(e) => AttrThen {
                attr: Some(st),
                res: Err(status(ctx, e)),
            },
        }
    }
}

pub struct Fsinfo;

impl Procedure for Fsinfo {
    const NAME: &'static str = "FSINFO";
    const FLAGS: u8 = FS | QUICK;
    type Args<'a> = Object<'a>;
    type Res = AttrThen<Words>;
    fn run(ctx: &Ctx<'_>, _: Object<'_>) -> AttrThen<Words> {
        let st = match ctx.fs.getattr(&ctx.fh) {
            Ok(st) => st,
            Err(e) => {
                return AttrThen {
                    attr: None,
                    res: Err(status(ctx, e)),
                }
            }
        };
        let io = ctx.max_io();
        let mut w = Writer::new();
        w.u32(io); // rtmax
        w.u32(io); // rtpref
        w.u32(4096); // rtmult
        w.u32(io); // wtmax
        w.u32(io); // wtpref
        w.u32(4096); // wtmult
        w.u32(64 * 1024); // dtpref
        w.u64(i64::MAX as u64); // maxfilesize
        w.u32(0); // time_delta: nanosecond timestamps
        w.u32(1);
        // FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME
        w.u32(0x0001 | 0x0002 | 0x0008 | 0x0010);
        AttrThen {
            attr: Some(st),
            res: Ok(Words(w)),
        }
    }
}

pub struct Pathconf;

impl Procedure for Pathconf {
    const NAME: &'static str = "PATHCONF";
    const FLAGS: u8 = FS | QUICK;
    type Args<'a> = Object<'a>;
    type Res = AttrThen<Words>;
    fn run(ctx: &Ctx<'_>, _: Object<'_>) -> AttrThen<Words> {
        let st = match ctx.fs.getattr(&ctx.fh) {
            Ok(st) => st,
            Err(e) => {
                return AttrThen {
                    attr: None,
                    res: Err(status(ctx, e)),
                }
            }
        };
        let mut w = Writer::new();
        w.u32(u32::MAX); // linkmax
        w.u32(crate::fs::NAME_MAX as u32);
        w.bool(true); // no_trunc
        w.bool(true); // chown_restricted
        w.bool(false); // case_insensitive
        w.bool(true); // case_preserving
        AttrThen {
            attr: Some(st),
            res: Ok(Words(w)),
        }
    }
}
