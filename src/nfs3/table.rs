//! The dispatch table: one row per procedure with its name, its flags and
//! the typed procedure behind it (ganesha's `nfs_function_desc` table).
//!
//! A row's `run` decodes every argument into the procedure's typed
//! arguments (GARBAGE_ARGS on any malformed field), runs the procedure and
//! encodes its typed result once; `refuse` decodes the same way and encodes
//! the procedure's own failure body. Policy is not here: the dispatcher
//! (`nfs3::Nfs3`) applies it to every row the same way before either runs.

use crate::fs::{Cred, ExportFs, FileHandle};
use crate::rpc::Transport;
use crate::xdr::{Reader, Writer, XdrError};

use super::args::Args;
use super::res::{Encode, Refused};
use super::status::NfsStat;
use super::Nfs3;

/// The procedure changes the export: refused with ROFS on read-only access,
/// and its retransmissions are answered from the duplicate-request cache
/// (knfsd caches the same set: a retransmitted REMOVE must get its
/// original OK, not NOENT).
pub const WRITES: u8 = 1;
/// The procedure touches the filesystem, which may block on the disk: it
/// runs on the file I/O pool, never on an async worker.
pub const FS: u8 = 2;
/// The procedure may be answered in line when what it needs is cached and
/// the kernel says it will not wait (`Procedure::try_nowait`).
pub const NOWAIT: u8 = 4;

/// The procedure, run on the pool, usually waits for nothing but the CPU
/// and cached metadata: no commit, no bulk read the page cache refused
/// (`Procedure::quick`). A lone call of a connection in a polling session
/// runs on the session's thread only if so, and only on a local filesystem
/// (`ExportFs::local`; `IoPool::submit_call`).
pub const QUICK: u8 = 8;

/// What a procedure runs with: everything the dispatcher established.
pub struct Ctx<'a> {
    pub nfs: &'a Nfs3,
    pub fs: &'a ExportFs,
    /// The call's first handle, authenticated for this export.
    pub fh: FileHandle,
    pub cred: Cred,
    pub read_only: bool,
    pub transport: Transport,
}

/// Largest READ/READDIR reply over TCP; UDP datagrams must stay under 64 KiB.
pub const TCP_MAX_IO: u32 = 1 << 20;
pub const UDP_MAX_IO: u32 = 32 * 1024;

impl Ctx<'_> {
    pub fn fsid(&self) -> u64 {
        self.fs.fsid
    }

    pub fn max_io(&self) -> u32 {
        match self.transport {
            Transport::Tcp => TCP_MAX_IO,
            Transport::Udp => UDP_MAX_IO,
        }
    }

    /// A second handle in the arguments (RENAME's target directory, LINK's
    /// directory): it must belong to the same export (XDEV otherwise).
    pub fn same_export_handle(&self, bytes: &[u8]) -> Result<FileHandle, NfsStat> {
        use crate::fs::handle::Refusal;
        match self.fs.decode_handle(bytes) {
            // Never into .zfs (a rename there would rename a snapshot).
            Ok(fh) if self.fs.is_control(fh.ino) => Err(NfsStat::RoFs),
            Ok(fh) => Ok(fh),
            Err(Refusal::Bad) => match FileHandle::peek_export_id(bytes) {
                Ok(id) if id != self.fs.id => Err(NfsStat::XDev),
                _ => Err(NfsStat::BadHandle),
            },
            Err(Refusal::Stale) => Err(NfsStat::Stale),
        }
    }

    pub fn wire(&self, fh: &FileHandle) -> super::res::WireFh {
        self.fs.encode_handle(fh)
    }
}

/// One NFSv3 procedure: typed arguments in, typed result out.
pub trait Procedure {
    const NAME: &'static str;
    const FLAGS: u8;
    type Args<'a>: Args<'a>;
    type Res: Encode + Refused;
    fn run(ctx: &Ctx<'_>, args: Self::Args<'_>) -> Self::Res;
    /// The same result without waiting for anything (cached descriptors,
    /// the page cache), or `None`: then `run` on the pool. Only rows
    /// flagged NOWAIT are asked.
    fn try_nowait(_ctx: &Ctx<'_>, _args: &Self::Args<'_>) -> Option<Self::Res> {
        None
    }
    /// Whether this call is QUICK (see the flag); a procedure whose answer
    /// depends on its arguments says so here.
    fn quick(_args: &Self::Args<'_>) -> bool {
        Self::FLAGS & QUICK != 0
    }
}

/// Bulk data to send behind the encoded result (READ).
pub type Tail = Option<Vec<u8>>;

pub struct Row {
    pub name: &'static str,
    pub flags: u8,
    /// Decodes every argument; returns the first handle's bytes.
    pub check: for<'a> fn(&'a [u8]) -> Result<&'a [u8], XdrError>,
    pub run: fn(&Ctx<'_>, &[u8], &mut Writer) -> Result<Tail, XdrError>,
    /// `try_nowait`, encoded; `None` = go to the pool.
    pub nowait: fn(&Ctx<'_>, &[u8], &mut Writer) -> Option<Tail>,
    /// The procedure's failure body for a call refused before it ran.
    pub refuse: fn(NfsStat, &mut Writer) -> Tail,
    /// `Procedure::quick` (false for arguments that do not decode).
    pub quick: fn(&[u8]) -> bool,
}

impl Row {
    pub fn writes(&self) -> bool {
        self.flags & WRITES != 0
    }
    pub fn touches_fs(&self) -> bool {
        self.flags & FS != 0
    }
    pub fn may_answer_in_line(&self) -> bool {
        self.flags & NOWAIT != 0
    }
}

fn run<P: Procedure>(ctx: &Ctx<'_>, args: &[u8], w: &mut Writer) -> Result<Tail, XdrError> {
    let a = <P::Args<'_> as Args>::decode(&mut Reader::new(args))?;
    Ok(P::run(ctx, a).encode(w, ctx.fsid()))
}

fn nowait<P: Procedure>(ctx: &Ctx<'_>, args: &[u8], w: &mut Writer) -> Option<Tail> {
    let a = <P::Args<'_> as Args>::decode(&mut Reader::new(args)).ok()?;
    Some(P::try_nowait(ctx, &a)?.encode(w, ctx.fsid()))
}

fn check<P: Procedure>(args: &[u8]) -> Result<&[u8], XdrError> {
    Ok(<P::Args<'_> as Args>::decode(&mut Reader::new(args))?.primary())
}

fn quick<P: Procedure>(args: &[u8]) -> bool {
    <P::Args<'_> as Args>::decode(&mut Reader::new(args)).is_ok_and(|a| P::quick(&a))
}

fn refuse<P: Procedure>(stat: NfsStat, w: &mut Writer) -> Tail {
    P::Res::refused(stat).encode(w, 0)
}

const fn row<P: Procedure>() -> Row {
    Row {
        name: P::NAME,
        flags: P::FLAGS,
        check: check::<P>,
        run: run::<P>,
        nowait: nowait::<P>,
        refuse: refuse::<P>,
        quick: quick::<P>,
    }
}

use super::procs::*;

pub static TABLE: [Row; 22] = [
    row::<Null>(),
    row::<Getattr>(),
    row::<Setattr>(),
    row::<Lookup>(),
    row::<Access>(),
    row::<Readlink>(),
    row::<Read>(),
    row::<Write>(),
    row::<Create>(),
    row::<Mkdir>(),
    row::<Symlink>(),
    row::<Mknod>(),
    row::<Remove>(),
    row::<Rmdir>(),
    row::<Rename>(),
    row::<Link>(),
    row::<Readdir>(),
    row::<Readdirplus>(),
    row::<Fsstat>(),
    row::<Fsinfo>(),
    row::<Pathconf>(),
    row::<Commit>(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_procedure_order_with_the_rfc_names() {
        let names: Vec<&str> = TABLE.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "NULL",
                "GETATTR",
                "SETATTR",
                "LOOKUP",
                "ACCESS",
                "READLINK",
                "READ",
                "WRITE",
                "CREATE",
                "MKDIR",
                "SYMLINK",
                "MKNOD",
                "REMOVE",
                "RMDIR",
                "RENAME",
                "LINK",
                "READDIR",
                "READDIRPLUS",
                "FSSTAT",
                "FSINFO",
                "PATHCONF",
                "COMMIT"
            ]
        );
        let writes: Vec<&str> = TABLE
            .iter()
            .filter(|r| r.writes())
            .map(|r| r.name)
            .collect();
        assert_eq!(
            writes,
            [
                "SETATTR", "WRITE", "CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR",
                "RENAME", "LINK"
            ]
        );
        assert!(
            TABLE.iter().skip(1).all(Row::touches_fs),
            "every procedure but NULL runs on the pool"
        );
        assert!(!TABLE[0].touches_fs());
    }

    #[test]
    fn a_refusal_has_its_procedures_failure_shape() {
        // LOOKUP3resfail: status + dir post_op_attr (absent) = 2 words.
        let mut w = Writer::new();
        (TABLE[3].refuse)(NfsStat::Stale, &mut w);
        assert_eq!(w.buf, [0, 0, 0, 70, 0, 0, 0, 0]);
        // RENAME3resfail: status + two wcc_data (2 words each).
        let mut w = Writer::new();
        (TABLE[14].refuse)(NfsStat::Acces, &mut w);
        assert_eq!(w.len(), 4 * 5);
        // GETATTR3resfail: the status alone.
        let mut w = Writer::new();
        (TABLE[1].refuse)(NfsStat::BadHandle, &mut w);
        assert_eq!(w.buf, 10001u32.to_be_bytes());
    }

    #[test]
    fn every_argument_is_decoded_before_the_handle_counts() {
        // A handle, then a name whose length runs past the end: garbage,
        // whatever the handle is.
        let mut args = Writer::new();
        args.opaque(&[7u8; 48]);
        args.u32(1000);
        assert!((TABLE[3].check)(&args.buf).is_err());
        let mut args = Writer::new();
        args.opaque(&[7u8; 48]);
        args.string(b"name");
        assert_eq!((TABLE[3].check)(&args.buf).unwrap(), &[7u8; 48]);
        // RENAME's policy handle is the source directory's.
        let mut args = Writer::new();
        args.opaque(&[1u8; 48]);
        args.string(b"a");
        args.opaque(&[2u8; 48]);
        args.string(b"b");
        assert_eq!((TABLE[14].check)(&args.buf).unwrap(), &[1u8; 48]);
    }
}
