//! Thin wrappers over `nfs3_client` calls that return the NFS status (and the value on
//! success), so each test states the status it expects.
#![allow(dead_code)]

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;

use super::harness::{dirop, Nfs};

/// Every ACCESS3 bit (READ LOOKUP MODIFY EXTEND DELETE EXECUTE).
pub const ACCESS3_ALL: u32 = 0x3f;

/// Result of a procedure: its status and, on success, what it produced.
pub type Outcome<T> = Result<T, nfsstat3>;

fn outcome<T, E, U>(r: Nfs3Result<T, E>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match r {
        Nfs3Result::Ok(v) => Ok(f(v)),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

pub fn mode(m: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(m),
        ..Default::default()
    }
}

fn created(obj: post_op_fh3, attrs: post_op_attr) -> (nfs_fh3, Option<fattr3>) {
    let fh = match obj {
        Nfs3Option::Some(fh) => fh,
        Nfs3Option::None => panic!("create-type procedure returned no handle"),
    };
    let a = match attrs {
        Nfs3Option::Some(a) => Some(a),
        Nfs3Option::None => None,
    };
    (fh, a)
}

pub async fn create(nfs: &mut Nfs, dir: &nfs_fh3, n: &str, m: u32) -> Outcome<nfs_fh3> {
    let r = nfs
        .create(&CREATE3args {
            where_: dirop(dir, n),
            how: createhow3::UNCHECKED(mode(m)),
        })
        .await
        .expect("CREATE rpc");
    outcome(r, |ok| created(ok.obj, ok.obj_attributes).0)
}

pub async fn mkdir(nfs: &mut Nfs, dir: &nfs_fh3, n: &str, m: u32) -> Outcome<nfs_fh3> {
    let r = nfs
        .mkdir(&MKDIR3args {
            where_: dirop(dir, n),
            attributes: mode(m),
        })
        .await
        .expect("MKDIR rpc");
    outcome(r, |ok| created(ok.obj, ok.obj_attributes).0)
}

pub async fn symlink(nfs: &mut Nfs, dir: &nfs_fh3, n: &str, target: &str) -> Outcome<nfs_fh3> {
    let r = nfs
        .symlink(&SYMLINK3args {
            where_: dirop(dir, n),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(Opaque::owned(target.as_bytes().to_vec())),
            },
        })
        .await
        .expect("SYMLINK rpc");
    outcome(r, |ok| created(ok.obj, ok.obj_attributes).0)
}

pub async fn mkfifo(nfs: &mut Nfs, dir: &nfs_fh3, n: &str, m: u32) -> Outcome<nfs_fh3> {
    let r = nfs
        .mknod(&MKNOD3args {
            where_: dirop(dir, n),
            what: mknoddata3::NF3FIFO(mode(m)),
        })
        .await
        .expect("MKNOD rpc");
    outcome(r, |ok| created(ok.obj, ok.obj_attributes).0)
}

pub async fn write(nfs: &mut Nfs, fh: &nfs_fh3, offset: u64, data: &[u8]) -> Outcome<u32> {
    let r = nfs
        .write(&WRITE3args {
            file: fh.clone(),
            offset,
            count: data.len() as u32,
            stable: stable_how::FILE_SYNC,
            data: Opaque::borrowed(data),
        })
        .await
        .expect("WRITE rpc");
    outcome(r, |ok| ok.count)
}

pub async fn read(nfs: &mut Nfs, fh: &nfs_fh3, count: u32) -> Outcome<Vec<u8>> {
    let r = nfs
        .read(&READ3args {
            file: fh.clone(),
            offset: 0,
            count,
        })
        .await
        .expect("READ rpc");
    outcome(r, |ok| ok.data.to_vec())
}

pub async fn setattr(nfs: &mut Nfs, fh: &nfs_fh3, attrs: sattr3) -> Outcome<()> {
    let r = nfs
        .setattr(&SETATTR3args {
            object: fh.clone(),
            new_attributes: attrs,
            guard: Nfs3Option::None,
        })
        .await
        .expect("SETATTR rpc");
    outcome(r, |_| ())
}

pub async fn remove(nfs: &mut Nfs, dir: &nfs_fh3, n: &str) -> Outcome<()> {
    let r = nfs
        .remove(&REMOVE3args {
            object: dirop(dir, n),
        })
        .await
        .expect("REMOVE rpc");
    outcome(r, |_| ())
}

pub async fn rmdir(nfs: &mut Nfs, dir: &nfs_fh3, n: &str) -> Outcome<()> {
    let r = nfs
        .rmdir(&RMDIR3args {
            object: dirop(dir, n),
        })
        .await
        .expect("RMDIR rpc");
    outcome(r, |_| ())
}

pub async fn rename(nfs: &mut Nfs, dir: &nfs_fh3, from: &str, to: &str) -> Outcome<()> {
    let r = nfs
        .rename(&RENAME3args {
            from: dirop(dir, from),
            to: dirop(dir, to),
        })
        .await
        .expect("RENAME rpc");
    outcome(r, |_| ())
}

pub async fn link(nfs: &mut Nfs, fh: &nfs_fh3, dir: &nfs_fh3, n: &str) -> Outcome<()> {
    let r = nfs
        .link(&LINK3args {
            file: fh.clone(),
            link: dirop(dir, n),
        })
        .await
        .expect("LINK rpc");
    outcome(r, |_| ())
}

pub async fn access(nfs: &mut Nfs, fh: &nfs_fh3, want: u32) -> Outcome<u32> {
    let r = nfs
        .access(&ACCESS3args {
            object: fh.clone(),
            access: want,
        })
        .await
        .expect("ACCESS rpc");
    outcome(r, |ok| ok.access)
}

pub async fn getattr_status(nfs: &mut Nfs, fh: &nfs_fh3) -> Outcome<fattr3> {
    let r = nfs
        .getattr(&GETATTR3args { object: fh.clone() })
        .await
        .expect("GETATTR rpc");
    outcome(r, |ok| ok.obj_attributes)
}

pub async fn readdir_status(nfs: &mut Nfs, dir: &nfs_fh3) -> Outcome<Vec<String>> {
    let r = nfs
        .readdir(&READDIR3args {
            dir: dir.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            count: 8192,
        })
        .await
        .expect("READDIR rpc");
    outcome(r, |ok| {
        ok.reply
            .entries
            .0
            .iter()
            .map(|e| String::from_utf8_lossy(e.name.as_ref()).into_owned())
            .collect()
    })
}

pub async fn readlink(nfs: &mut Nfs, fh: &nfs_fh3) -> Outcome<Vec<u8>> {
    let r = nfs
        .readlink(&READLINK3args {
            symlink: fh.clone(),
        })
        .await
        .expect("READLINK rpc");
    outcome(r, |ok| ok.data.0.to_vec())
}

/// One READDIRPLUS entry: name, fileid and the handle if the server sent one.
pub type PlusEntry = (String, u64, Option<Vec<u8>>);

pub async fn readdirplus(nfs: &mut Nfs, dir: &nfs_fh3) -> Outcome<Vec<PlusEntry>> {
    let r = nfs
        .readdirplus(&READDIRPLUS3args {
            dir: dir.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            dircount: 8192,
            maxcount: 65536,
        })
        .await
        .expect("READDIRPLUS rpc");
    outcome(r, |ok| {
        ok.reply
            .entries
            .0
            .iter()
            .map(|e| {
                let handle = match &e.name_handle {
                    Nfs3Option::Some(fh) => Some(fh.data.to_vec()),
                    Nfs3Option::None => None,
                };
                (
                    String::from_utf8_lossy(e.name.as_ref()).into_owned(),
                    e.fileid,
                    handle,
                )
            })
            .collect()
    })
}

/// LOOKUP: the handle, or the status (unlike `support::lookup`, which must succeed).
pub async fn lookup(nfs: &mut Nfs, dir: &nfs_fh3, n: &str) -> Nfs3Result<nfs_fh3, ()> {
    let r = nfs
        .lookup(&LOOKUP3args {
            what: dirop(dir, n),
        })
        .await
        .expect("LOOKUP rpc");
    match r {
        Nfs3Result::Ok(ok) => Nfs3Result::Ok(ok.object),
        Nfs3Result::Err((s, _)) => Nfs3Result::Err((s, ())),
    }
}
