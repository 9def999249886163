//! The procedures, each a typed function from its arguments to its result
//! (RFC 1813 §3.3). Policy was applied by the dispatcher; filesystem errors
//! become `nfsstat3` here, at the edge.

mod attrs;
mod io;
mod names;
mod readdir;

pub use attrs::*;
pub use io::*;
pub use names::*;
pub use readdir::*;

use super::args::NoArgs;
use super::res::Empty;
use super::status::NfsStat;
use super::table::{Ctx, Procedure};
use crate::fs::FsError;

/// The status a filesystem error shows the client. An I/O error is also
/// logged (once per object and kind of operation, with its path): it means
/// the disk failed.
fn status(ctx: &Ctx<'_>, e: FsError) -> NfsStat {
    let s = NfsStat::from(e);
    if s == NfsStat::Io {
        ctx.nfs.log_io_error(ctx.fs, &ctx.fh, &e);
    }
    s
}

pub struct Null;

impl Procedure for Null {
    const NAME: &'static str = "NULL";
    const FLAGS: u8 = 0;
    type Args<'a> = NoArgs;
    type Res = Empty;
    fn run(_: &Ctx<'_>, _: NoArgs) -> Empty {
        Empty
    }
}
