//! The results of the 22 procedures as typed values and their encoding
//! (RFC 1813 §3.3). Every result type knows its own failure shape, so a
//! call refused before it runs (bad handle, export rules, read-only) gets
//! exactly the body its procedure's `resfail` arm has.

use crate::fs::{Stat, Wcc};
use crate::xdr::Writer;

use super::status::NfsStat;
use super::xdr::{fattr3, post_op_attr, post_op_fh, wcc_data};

/// A result that can be written after the RPC reply header. Returns bulk
/// data that must follow the written bytes on the wire (READ's data).
pub trait Encode {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>>;
}

/// The body of a call refused before it ran.
pub trait Refused {
    fn refused(stat: NfsStat) -> Self;
}

/// The part of a successful result after the status and the attributes.
pub trait OkBody {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>>;
}

impl OkBody for () {
    fn encode(self, _: &mut Writer) -> Option<Vec<u8>> {
        None
    }
}

impl OkBody for u32 {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        w.u32(self);
        None
    }
}

/// A status and nothing else (NULL has not even that: see [`Empty`]).
pub struct Empty;

impl Encode for Empty {
    fn encode(self, _: &mut Writer, _: u64) -> Option<Vec<u8>> {
        None
    }
}

impl Refused for Empty {
    fn refused(_: NfsStat) -> Self {
        Empty
    }
}

/// GETATTR: fattr3 on success, nothing on failure.
pub struct AttrRes(pub Result<Stat, NfsStat>);

impl Encode for AttrRes {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        match self.0 {
            Ok(st) => {
                w.u32(NfsStat::Ok as u32);
                fattr3(w, &st, fsid);
            }
            Err(s) => w.u32(s as u32),
        }
        None
    }
}

impl Refused for AttrRes {
    fn refused(stat: NfsStat) -> Self {
        AttrRes(Err(stat))
    }
}

/// post_op_attr, then (on success) `T`: ACCESS, READLINK, READ, READDIR,
/// FSSTAT, FSINFO, PATHCONF.
pub struct AttrThen<T> {
    pub attr: Option<Stat>,
    pub res: Result<T, NfsStat>,
}

impl<T: OkBody> Encode for AttrThen<T> {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        w.u32(self.res.as_ref().err().copied().unwrap_or(NfsStat::Ok) as u32);
        post_op_attr(w, self.attr.as_ref(), fsid);
        match self.res {
            Ok(t) => t.encode(w),
            Err(_) => None,
        }
    }
}

impl<T> Refused for AttrThen<T> {
    fn refused(stat: NfsStat) -> Self {
        AttrThen {
            attr: None,
            res: Err(stat),
        }
    }
}

/// wcc_data, then (on success) `T`: SETATTR, REMOVE, RMDIR (`()`), WRITE,
/// COMMIT.
pub struct WccThen<T> {
    pub wcc: Wcc,
    pub res: Result<T, NfsStat>,
}

impl<T: OkBody> Encode for WccThen<T> {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        w.u32(self.res.as_ref().err().copied().unwrap_or(NfsStat::Ok) as u32);
        wcc_data(w, &self.wcc, fsid);
        match self.res {
            Ok(t) => t.encode(w),
            Err(_) => None,
        }
    }
}

impl<T> Refused for WccThen<T> {
    fn refused(stat: NfsStat) -> Self {
        WccThen {
            wcc: Wcc::default(),
            res: Err(stat),
        }
    }
}

/// A handle as the client gets it.
pub type WireFh = [u8; crate::fs::handle::HANDLE_LEN];

/// LOOKUP: the object's handle and attributes, then the directory's.
pub struct LookupRes {
    pub dir_attr: Option<Stat>,
    pub res: Result<(WireFh, Stat), NfsStat>,
}

impl Encode for LookupRes {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        match self.res {
            Ok((fh, st)) => {
                w.u32(NfsStat::Ok as u32);
                w.opaque(&fh);
                post_op_attr(w, Some(&st), fsid);
            }
            Err(s) => w.u32(s as u32),
        }
        post_op_attr(w, self.dir_attr.as_ref(), fsid);
        None
    }
}

impl Refused for LookupRes {
    fn refused(stat: NfsStat) -> Self {
        LookupRes {
            dir_attr: None,
            res: Err(stat),
        }
    }
}

/// CREATE, MKDIR, SYMLINK, MKNOD: the new object, then the directory's WCC.
pub struct NewObjRes {
    pub dir_wcc: Wcc,
    pub res: Result<(WireFh, Stat), NfsStat>,
}

impl Encode for NewObjRes {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        match self.res {
            Ok((fh, st)) => {
                w.u32(NfsStat::Ok as u32);
                post_op_fh(w, Some(&fh));
                post_op_attr(w, Some(&st), fsid);
            }
            Err(s) => w.u32(s as u32),
        }
        wcc_data(w, &self.dir_wcc, fsid);
        None
    }
}

impl Refused for NewObjRes {
    fn refused(stat: NfsStat) -> Self {
        NewObjRes {
            dir_wcc: Wcc::default(),
            res: Err(stat),
        }
    }
}

/// RENAME: both directories' WCC data, success or not.
pub struct RenameRes {
    pub stat: NfsStat,
    pub from: Wcc,
    pub to: Wcc,
}

impl Encode for RenameRes {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        w.u32(self.stat as u32);
        wcc_data(w, &self.from, fsid);
        wcc_data(w, &self.to, fsid);
        None
    }
}

impl Refused for RenameRes {
    fn refused(stat: NfsStat) -> Self {
        RenameRes {
            stat,
            from: Wcc::default(),
            to: Wcc::default(),
        }
    }
}

/// LINK: the file's attributes and the directory's WCC, success or not.
pub struct LinkRes {
    pub stat: NfsStat,
    pub attr: Option<Stat>,
    pub dir_wcc: Wcc,
}

impl Encode for LinkRes {
    fn encode(self, w: &mut Writer, fsid: u64) -> Option<Vec<u8>> {
        w.u32(self.stat as u32);
        post_op_attr(w, self.attr.as_ref(), fsid);
        wcc_data(w, &self.dir_wcc, fsid);
        None
    }
}

impl Refused for LinkRes {
    fn refused(stat: NfsStat) -> Self {
        LinkRes {
            stat,
            attr: None,
            dir_wcc: Wcc::default(),
        }
    }
}

/// READ's success part: the data goes out behind the header, uncopied.
pub struct ReadOk {
    pub eof: bool,
    pub data: Vec<u8>,
}

impl OkBody for ReadOk {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        let n = self.data.len() as u32;
        w.u32(n);
        w.bool(self.eof);
        w.u32(n);
        let mut data = self.data;
        let pad = crate::xdr::padded(data.len()) - data.len();
        data.extend_from_slice(&[0u8; 3][..pad]);
        Some(data)
    }
}

/// WRITE's success part.
pub struct WriteOk {
    pub count: u32,
    pub committed: crate::fs::Stable,
    pub verf: [u8; 8],
}

impl OkBody for WriteOk {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        w.u32(self.count);
        w.u32(self.committed as u32);
        w.opaque_fixed(&self.verf);
        None
    }
}

/// COMMIT's success part: the write verifier.
pub struct Verifier(pub [u8; 8]);

impl OkBody for Verifier {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        w.opaque_fixed(&self.0);
        None
    }
}

/// READLINK's success part.
pub struct Path(pub Vec<u8>);

impl OkBody for Path {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        w.string(&self.0);
        None
    }
}

/// Already-encoded words that end the result (FSSTAT, FSINFO, PATHCONF,
/// READDIR entries), built by the procedure. A long list goes out behind
/// the header as it is, instead of being copied after it.
pub struct Words(pub Writer);

impl OkBody for Words {
    fn encode(self, w: &mut Writer) -> Option<Vec<u8>> {
        if self.0.len() > 4096 {
            return Some(self.0.into_inner());
        }
        w.buf.extend_from_slice(&self.0.buf);
        None
    }
}
