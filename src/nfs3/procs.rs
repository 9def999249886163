//! The NFSv3 procedures: decode arguments, call the export's filesystem,
//! encode results (RFC 1813 §3.3). Policy was applied by the dispatcher.

use crate::fs::{NfsStat, NodeKind, Stable, Stat, Wcc};
use crate::rpc::msg::AcceptStat;
use crate::rpc::Transport;
use crate::xdr::{Reader, Writer};

use super::xdr::{self as x, fh_bytes, post_op_attr, post_op_fh, wcc_data};
use super::{Nfs3, Request};

type ProcResult = Result<(), AcceptStat>;

const GARBAGE: AcceptStat = AcceptStat::GarbageArgs;

/// Largest READ/READDIR reply over TCP; UDP datagrams must stay under 64 KiB.
const TCP_MAX_IO: u32 = 1 << 20;
const UDP_MAX_IO: u32 = 32 * 1024;

fn max_io(req: &Request<'_>) -> u32 {
    match req.ctx.transport {
        Transport::Tcp => TCP_MAX_IO,
        Transport::Udp => UDP_MAX_IO,
    }
}

pub(super) async fn run(
    nfs: &Nfs3,
    proc_: usize,
    req: &Request<'_>,
    mut r: Reader<'_>,
    w: &mut Writer,
) -> ProcResult {
    match proc_ {
        1 => getattr(req, w),
        2 => setattr(req, &mut r, w),
        3 => lookup(req, &mut r, w),
        4 => access(req, &mut r, w),
        5 => readlink(req, w),
        6 => read(req, &mut r, w),
        7 => write(nfs, req, &mut r, w).await,
        8 => create(req, &mut r, w, Kind::File).await,
        9 => create(req, &mut r, w, Kind::Dir).await,
        10 => create(req, &mut r, w, Kind::Symlink).await,
        11 => create(req, &mut r, w, Kind::Node).await,
        12 => remove(req, &mut r, w, false).await,
        13 => remove(req, &mut r, w, true).await,
        14 => rename(req, &mut r, w).await,
        15 => link(req, &mut r, w).await,
        16 => readdir(req, &mut r, w, false),
        17 => readdir(req, &mut r, w, true),
        18 => fsstat(req, w),
        19 => fsinfo(req, w),
        20 => pathconf(req, w),
        21 => commit(nfs, req, &mut r, w).await,
        _ => Err(AcceptStat::ProcUnavail),
    }
}

/// Runs a filesystem call that may block for long (an fsync) on the
/// blocking pool, so the async workers keep serving other requests.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AcceptStat> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AcceptStat::SystemErr)
}

fn fsid(req: &Request<'_>) -> u64 {
    req.export.fs.fsid
}

fn status(w: &mut Writer, s: NfsStat) {
    w.u32(s as u32);
}

fn attr(w: &mut Writer, req: &Request<'_>, st: Option<&Stat>) {
    post_op_attr(w, st, fsid(req));
}

fn wcc(w: &mut Writer, req: &Request<'_>, d: &Wcc) {
    wcc_data(w, d, fsid(req));
}

/// A second handle in the arguments (RENAME target dir, LINK dir) must belong
/// to the same export.
fn same_export_handle(req: &Request<'_>, bytes: &[u8]) -> Result<crate::fs::FileHandle, NfsStat> {
    match req.export.fs.decode_handle(bytes) {
        Ok(fh) => Ok(fh),
        Err(NfsStat::BadHandle) => match crate::fs::FileHandle::peek_export_id(bytes) {
            Ok(id) if id != req.export.fs.id => Err(NfsStat::XDev),
            _ => Err(NfsStat::BadHandle),
        },
        Err(e) => Err(e),
    }
}

fn getattr(req: &Request<'_>, w: &mut Writer) -> ProcResult {
    match req.export.fs.getattr(&req.fh) {
        Ok(st) => {
            status(w, NfsStat::Ok);
            x::fattr3(w, &st, fsid(req));
        }
        Err(e) => status(w, e),
    }
    Ok(())
}

fn setattr(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let attrs = x::sattr3(r).map_err(|_| GARBAGE)?;
    let guard = r.optional(x::nfstime).map_err(|_| GARBAGE)?;
    let (d, res) = req.export.fs.setattr(&req.fh, &req.cred, &attrs, guard);
    status(w, res.err().unwrap_or(NfsStat::Ok));
    wcc(w, req, &d);
    Ok(())
}

fn lookup(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let name = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?;
    let (dir, res) = req.export.fs.lookup(&req.fh, name, &req.cred);
    match res {
        Ok((fh, st)) => {
            status(w, NfsStat::Ok);
            w.opaque(&req.export.fs.encode_handle(&fh));
            attr(w, req, Some(&st));
            attr(w, req, dir.as_ref());
        }
        Err(e) => {
            status(w, e);
            attr(w, req, dir.as_ref());
        }
    }
    Ok(())
}

fn access(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let want = r.u32().map_err(|_| GARBAGE)?;
    match req.export.fs.access(&req.fh, &req.cred, req.read_only) {
        Ok((st, bits)) => {
            status(w, NfsStat::Ok);
            attr(w, req, Some(&st));
            w.u32(want & bits);
        }
        Err(e) => {
            status(w, e);
            attr(w, req, None);
        }
    }
    Ok(())
}

fn readlink(req: &Request<'_>, w: &mut Writer) -> ProcResult {
    let (st, res) = req.export.fs.readlink(&req.fh, &req.cred);
    match res {
        Ok(target) => {
            status(w, NfsStat::Ok);
            attr(w, req, st.as_ref());
            w.string(&target);
        }
        Err(e) => {
            status(w, e);
            attr(w, req, st.as_ref());
        }
    }
    Ok(())
}

fn read(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let offset = r.u64().map_err(|_| GARBAGE)?;
    let count = r.u32().map_err(|_| GARBAGE)?.min(max_io(req));
    // Lay out status, attributes, count, eof and the data length, then read
    // straight into the reply buffer behind them and patch the header: the
    // data is copied once, from the page cache into the reply.
    let start = w.len();
    status(w, NfsStat::Ok);
    let attr_at = w.len();
    w.buf.resize(attr_at + x::POST_OP_ATTR_LEN + 12, 0);
    let (st, res) = req
        .export
        .fs
        .read(&req.fh, &req.cred, offset, count, &mut w.buf);
    match res {
        Ok((n, eof)) => {
            let mut head = Writer::new();
            attr(&mut head, req, st.as_ref());
            if head.len() != x::POST_OP_ATTR_LEN {
                // No attributes after a successful read cannot happen (we
                // read through an open descriptor), but never send a
                // malformed reply if it did.
                w.buf.truncate(start);
                status(w, NfsStat::Io);
                attr(w, req, None);
                return Ok(());
            }
            head.u32(n);
            head.bool(eof);
            head.u32(n);
            w.buf[attr_at..attr_at + head.len()].copy_from_slice(&head.buf);
            w.pad(n as usize);
        }
        Err(e) => {
            w.buf.truncate(start);
            status(w, e);
            attr(w, req, st.as_ref());
        }
    }
    Ok(())
}

async fn write(nfs: &Nfs3, req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let offset = r.u64().map_err(|_| GARBAGE)?;
    let count = r.u32().map_err(|_| GARBAGE)?;
    let stable = match r.u32().map_err(|_| GARBAGE)? {
        0 => Stable::Unstable,
        1 => Stable::DataSync,
        2 => Stable::FileSync,
        _ => return Err(GARBAGE),
    };
    let data = r
        .opaque(nfs.max_write.max(TCP_MAX_IO) + 4096)
        .map_err(|_| GARBAGE)?;
    if (data.len() as u64) < count as u64 {
        return Err(GARBAGE);
    }
    let data = &data[..count as usize];
    let fs = &req.export.fs;
    let (mut d, res) = fs.write(&req.fh, &req.cred, offset, data);
    let res = match res {
        Ok(n) if stable != Stable::Unstable => {
            // FILE_SYNC / DATA_SYNC: durable before we answer.
            let fs2 = fs.clone();
            let fh = req.fh;
            let data_only = stable == Stable::DataSync;
            match tokio::task::spawn_blocking(move || fs2.sync(&fh, data_only)).await {
                Ok((sd, Ok(()))) => {
                    d.after = sd.after.or(d.after);
                    Ok(n)
                }
                Ok((_, Err(e))) => Err(e),
                Err(_) => Err(NfsStat::ServerFault),
            }
        }
        other => other,
    };
    match res {
        Ok(n) => {
            status(w, NfsStat::Ok);
            wcc(w, req, &d);
            w.u32(n);
            w.u32(stable as u32);
            w.opaque_fixed(&nfs.write_verifier);
        }
        Err(e) => {
            status(w, e);
            wcc(w, req, &d);
        }
    }
    Ok(())
}

enum Kind {
    File,
    Dir,
    Symlink,
    Node,
}

async fn create(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer, kind: Kind) -> ProcResult {
    let name = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?.to_vec();
    let fs = req.export.fs.clone();
    let (fh, cred) = (req.fh, req.cred);
    let (d, res) = match kind {
        Kind::File => {
            let how = x::createhow3(r).map_err(|_| GARBAGE)?;
            blocking(move || fs.create(&fh, &name, &cred, how)).await?
        }
        Kind::Dir => {
            let attrs = x::sattr3(r).map_err(|_| GARBAGE)?;
            blocking(move || fs.mkdir(&fh, &name, &cred, &attrs)).await?
        }
        Kind::Symlink => {
            let _attrs = x::sattr3(r).map_err(|_| GARBAGE)?;
            let target = r.string(x::MAX_PATH_WIRE).map_err(|_| GARBAGE)?.to_vec();
            blocking(move || fs.symlink(&fh, &name, &target, &cred)).await?
        }
        Kind::Node => {
            let t = r.u32().map_err(|_| GARBAGE)?;
            let (kind, attrs) = match t {
                3 | 4 => {
                    let a = x::sattr3(r).map_err(|_| GARBAGE)?;
                    let _major = r.u32().map_err(|_| GARBAGE)?;
                    let _minor = r.u32().map_err(|_| GARBAGE)?;
                    (
                        if t == 3 {
                            NodeKind::BlockDevice
                        } else {
                            NodeKind::CharDevice
                        },
                        a,
                    )
                }
                6 => (NodeKind::Socket, x::sattr3(r).map_err(|_| GARBAGE)?),
                7 => (NodeKind::Fifo, x::sattr3(r).map_err(|_| GARBAGE)?),
                1 | 2 | 5 => {
                    status(w, NfsStat::BadType);
                    wcc(w, req, &Wcc::default());
                    return Ok(());
                }
                _ => return Err(GARBAGE),
            };
            blocking(move || fs.mknod(&fh, &name, kind, &cred, &attrs)).await?
        }
    };
    match res {
        Ok((fh, st)) => {
            status(w, NfsStat::Ok);
            post_op_fh(w, Some(&req.export.fs.encode_handle(&fh)));
            attr(w, req, Some(&st));
            wcc(w, req, &d);
        }
        Err(e) => {
            status(w, e);
            wcc(w, req, &d);
        }
    }
    Ok(())
}

async fn remove(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer, rmdir: bool) -> ProcResult {
    let name = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?.to_vec();
    let fs = req.export.fs.clone();
    let (fh, cred) = (req.fh, req.cred);
    let (d, res) = blocking(move || fs.remove(&fh, &name, &cred, rmdir)).await?;
    status(w, res.err().unwrap_or(NfsStat::Ok));
    wcc(w, req, &d);
    Ok(())
}

async fn rename(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let from = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?.to_vec();
    let to_dir = fh_bytes(r).map_err(|_| GARBAGE)?;
    let to = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?.to_vec();
    let (fw, tw, res) = match same_export_handle(req, to_dir) {
        Ok(to_fh) => {
            let fs = req.export.fs.clone();
            let (fh, cred) = (req.fh, req.cred);
            blocking(move || fs.rename(&fh, &from, &to_fh, &to, &cred)).await?
        }
        Err(e) => (Wcc::default(), Wcc::default(), Err(e)),
    };
    status(w, res.err().unwrap_or(NfsStat::Ok));
    wcc(w, req, &fw);
    wcc(w, req, &tw);
    Ok(())
}

async fn link(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let dir = fh_bytes(r).map_err(|_| GARBAGE)?;
    let name = r.string(x::MAX_NAME_WIRE).map_err(|_| GARBAGE)?.to_vec();
    let (st, d, res) = match same_export_handle(req, dir) {
        Ok(dir_fh) => {
            let fs = req.export.fs.clone();
            let (fh, cred) = (req.fh, req.cred);
            blocking(move || fs.link(&fh, &dir_fh, &name, &cred)).await?
        }
        Err(e) => (None, Wcc::default(), Err(e)),
    };
    status(w, res.err().unwrap_or(NfsStat::Ok));
    attr(w, req, st.as_ref());
    wcc(w, req, &d);
    Ok(())
}

fn readdir(req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer, plus: bool) -> ProcResult {
    let cookie = r.u64().map_err(|_| GARBAGE)?;
    let verf = r.opaque_fixed(8).map_err(|_| GARBAGE)?;
    let count = if plus {
        let _dircount = r.u32().map_err(|_| GARBAGE)?;
        r.u32().map_err(|_| GARBAGE)?
    } else {
        r.u32().map_err(|_| GARBAGE)?
    };
    let fs = &req.export.fs;
    // Cookies are directory offsets, valid for as long as the filesystem is
    // the same one: the verifier names the filesystem.
    let our_verf = fs.fsid.to_be_bytes();
    if cookie != 0 && verf != [0u8; 8] && verf != our_verf {
        status(w, NfsStat::BadCookie);
        attr(w, req, fs.getattr(&req.fh).ok().as_ref());
        return Ok(());
    }
    // Fixed part of the reply: dir attributes, verifier, list end, eof.
    let fixed = x::POST_OP_ATTR_LEN + 8 + 4 + 4;
    let count = (count.min(max_io(req)) as usize).saturating_sub(fixed);
    let cost: &dyn Fn(usize) -> usize = if plus {
        &x::readdirplus_entry_len
    } else {
        &x::readdir_entry_len
    };
    match fs.readdir(&req.fh, &req.cred, cookie, plus, count, cost) {
        Ok(list) => {
            status(w, NfsStat::Ok);
            attr(w, req, list.dir_attr.as_ref());
            w.opaque_fixed(&our_verf);
            for e in &list.entries {
                w.bool(true);
                w.u64(e.fileid);
                w.string(&e.name);
                w.u64(e.cookie);
                if plus {
                    attr(w, req, e.attr.as_ref());
                    post_op_fh(
                        w,
                        e.handle
                            .as_ref()
                            .map(|h| fs.encode_handle(h))
                            .as_ref()
                            .map(|b| &b[..]),
                    );
                }
            }
            w.bool(false);
            w.bool(list.eof);
        }
        Err(e) => {
            status(w, e);
            attr(w, req, fs.getattr(&req.fh).ok().as_ref());
        }
    }
    Ok(())
}

fn fsstat(req: &Request<'_>, w: &mut Writer) -> ProcResult {
    let fs = &req.export.fs;
    let st = fs.getattr(&req.fh);
    match (st, fs.fsstat()) {
        (Ok(st), Ok(s)) => {
            status(w, NfsStat::Ok);
            attr(w, req, Some(&st));
            for v in [s.tbytes, s.fbytes, s.abytes, s.tfiles, s.ffiles, s.afiles] {
                w.u64(v);
            }
            w.u32(0); // invarsec: the volume can be resized at any time
        }
        (Err(e), _) | (_, Err(e)) => {
            status(w, e);
            attr(w, req, None);
        }
    }
    Ok(())
}

fn fsinfo(req: &Request<'_>, w: &mut Writer) -> ProcResult {
    match req.export.fs.getattr(&req.fh) {
        Ok(st) => {
            let io = max_io(req);
            status(w, NfsStat::Ok);
            attr(w, req, Some(&st));
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
        }
        Err(e) => {
            status(w, e);
            attr(w, req, None);
        }
    }
    Ok(())
}

fn pathconf(req: &Request<'_>, w: &mut Writer) -> ProcResult {
    match req.export.fs.getattr(&req.fh) {
        Ok(st) => {
            status(w, NfsStat::Ok);
            attr(w, req, Some(&st));
            w.u32(u32::MAX); // linkmax
            w.u32(crate::fs::NAME_MAX as u32);
            w.bool(true); // no_trunc
            w.bool(true); // chown_restricted
            w.bool(false); // case_insensitive
            w.bool(true); // case_preserving
        }
        Err(e) => {
            status(w, e);
            attr(w, req, None);
        }
    }
    Ok(())
}

async fn commit(nfs: &Nfs3, req: &Request<'_>, r: &mut Reader<'_>, w: &mut Writer) -> ProcResult {
    let _offset = r.u64().map_err(|_| GARBAGE)?;
    let _count = r.u32().map_err(|_| GARBAGE)?;
    let fs = req.export.fs.clone();
    let fh = req.fh;
    let (d, res) = match tokio::task::spawn_blocking(move || fs.sync(&fh, false)).await {
        Ok(v) => v,
        Err(_) => (Wcc::default(), Err(NfsStat::ServerFault)),
    };
    match res {
        Ok(()) => {
            status(w, NfsStat::Ok);
            wcc(w, req, &d);
            w.opaque_fixed(&nfs.write_verifier);
        }
        Err(e) => {
            status(w, e);
            wcc(w, req, &d);
        }
    }
    Ok(())
}
