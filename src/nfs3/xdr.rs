//! NFSv3 data types on the wire (RFC 1813 §2.5–2.6): attribute encoding and
//! argument decoding shared by the procedures.

use crate::fs::{CreateHow, FileHandle, SetAttrs, SetTime, Stat, Time, Wcc, WccAttr};
use crate::xdr::{Reader, Writer, XdrError};

pub const NFS3_FHSIZE: u32 = 64;
/// Names longer than NAME_MAX are refused with NAMETOOLONG after decoding;
/// anything beyond this is garbage.
pub const MAX_NAME_WIRE: u32 = 4096;
pub const MAX_PATH_WIRE: u32 = 4096;

pub fn ftype(st: &Stat) -> u32 {
    match st.file_type() {
        libc::S_IFREG => 1,
        libc::S_IFDIR => 2,
        libc::S_IFBLK => 3,
        libc::S_IFCHR => 4,
        libc::S_IFLNK => 5,
        libc::S_IFSOCK => 6,
        libc::S_IFIFO => 7,
        _ => 1,
    }
}

pub fn time(w: &mut Writer, t: Time) {
    // nfstime3 seconds are unsigned 32-bit; pre-1970 times wrap as on knfsd.
    w.u32(t.sec as u32);
    w.u32(t.nsec);
}

pub fn fattr3(w: &mut Writer, st: &Stat, fsid: u64) {
    w.u32(ftype(st));
    w.u32(st.mode & 0o7777);
    w.u32(st.nlink);
    w.u32(st.uid);
    w.u32(st.gid);
    w.u64(st.size);
    w.u64(st.used);
    w.u32(st.rdev_major);
    w.u32(st.rdev_minor);
    w.u64(fsid);
    w.u64(st.ino);
    time(w, st.atime);
    time(w, st.mtime);
    time(w, st.ctime);
}

/// Encoded size of a present post_op_attr.
pub const POST_OP_ATTR_LEN: usize = 4 + 84;

pub fn post_op_attr(w: &mut Writer, st: Option<&Stat>, fsid: u64) {
    match st {
        Some(st) => {
            w.bool(true);
            fattr3(w, st, fsid);
        }
        None => w.bool(false),
    }
}

fn pre_op_attr(w: &mut Writer, a: Option<&WccAttr>) {
    match a {
        Some(a) => {
            w.bool(true);
            w.u64(a.size);
            time(w, a.mtime);
            time(w, a.ctime);
        }
        None => w.bool(false),
    }
}

pub fn wcc_data(w: &mut Writer, wcc: &Wcc, fsid: u64) {
    pre_op_attr(w, wcc.before.as_ref());
    post_op_attr(w, wcc.after.as_ref(), fsid);
}

pub fn post_op_fh(w: &mut Writer, fh: Option<&[u8]>) {
    match fh {
        Some(b) => {
            w.bool(true);
            w.opaque(b);
        }
        None => w.bool(false),
    }
}

pub fn fh_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], XdrError> {
    r.opaque(NFS3_FHSIZE)
}

pub fn nfstime(r: &mut Reader<'_>) -> Result<Time, XdrError> {
    let sec = r.u32()? as i64;
    let nsec = r.u32()?;
    if nsec >= 1_000_000_000 {
        return Err(XdrError::BadValue {
            what: "nfstime3.nseconds",
            value: nsec,
        });
    }
    Ok(Time { sec, nsec })
}

fn set_time(r: &mut Reader<'_>) -> Result<SetTime, XdrError> {
    match r.u32()? {
        0 => Ok(SetTime::DontChange),
        1 => Ok(SetTime::ServerTime),
        2 => Ok(SetTime::ClientTime(nfstime(r)?)),
        value => Err(XdrError::BadValue {
            what: "time_how",
            value,
        }),
    }
}

pub fn sattr3(r: &mut Reader<'_>) -> Result<SetAttrs, XdrError> {
    Ok(SetAttrs {
        mode: r.optional(|r| r.u32())?,
        uid: r.optional(|r| r.u32())?,
        gid: r.optional(|r| r.u32())?,
        size: r.optional(|r| r.u64())?,
        atime: set_time(r)?,
        mtime: set_time(r)?,
    })
}

pub fn createhow3(r: &mut Reader<'_>) -> Result<CreateHow, XdrError> {
    match r.u32()? {
        0 => Ok(CreateHow::Unchecked(sattr3(r)?)),
        1 => Ok(CreateHow::Guarded(sattr3(r)?)),
        2 => {
            let v = r.opaque_fixed(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(v);
            Ok(CreateHow::Exclusive(a))
        }
        value => Err(XdrError::BadValue {
            what: "createmode3",
            value,
        }),
    }
}

/// Bytes one READDIR entry adds to the reply (entry3 plus the list's
/// "value follows" word).
pub fn readdir_entry_len(name_len: usize) -> usize {
    4 + 8 + 4 + crate::xdr::padded(name_len) + 8
}

/// Bytes one READDIRPLUS entry adds (entryplus3 with attributes and handle).
pub fn readdirplus_entry_len(name_len: usize) -> usize {
    readdir_entry_len(name_len) + POST_OP_ATTR_LEN + 4 + 4 + 48
}

/// A handle with its wire bytes, as handed to the client.
pub struct WireHandle {
    pub fh: FileHandle,
    pub bytes: [u8; crate::fs::handle::HANDLE_LEN],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sattr3_round_trip_of_client_times() {
        let mut w = Writer::new();
        w.bool(true);
        w.u32(0o640);
        w.bool(false);
        w.bool(false);
        w.bool(true);
        w.u64(10);
        w.u32(1);
        w.u32(2);
        w.u32(5);
        w.u32(999_999_999);
        let a = sattr3(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(a.mode, Some(0o640));
        assert_eq!(a.size, Some(10));
        assert_eq!(a.atime, SetTime::ServerTime);
        assert_eq!(
            a.mtime,
            SetTime::ClientTime(Time {
                sec: 5,
                nsec: 999_999_999
            })
        );
    }

    #[test]
    fn bad_nanoseconds_are_garbage() {
        let mut w = Writer::new();
        w.u32(1);
        w.u32(1_000_000_000);
        assert!(nfstime(&mut Reader::new(&w.buf)).is_err());
    }
}
