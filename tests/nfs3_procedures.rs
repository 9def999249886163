//! Every NFSv3 procedure of RFC 1813, driven through the independent `nfs3_client` crate
//! against the real `volnfs` binary, with the export directory checked from the server side.

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use support::{bounded, dirop, err_status, getattr, lookup, ok, Connection, Server};

const LIMIT: Duration = Duration::from_secs(60);

fn mode_attrs(mode: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode),
        ..Default::default()
    }
}

fn assert_wcc(wcc: &wcc_data, what: &str) {
    assert!(
        wcc.before.is_some(),
        "{what}: WCC pre-op attributes missing"
    );
    assert!(
        wcc.after.is_some(),
        "{what}: WCC post-op attributes missing"
    );
}

fn wcc_after(wcc: &wcc_data) -> fattr3 {
    match &wcc.after {
        Nfs3Option::Some(a) => a.clone(),
        Nfs3Option::None => panic!("WCC post-op attributes missing"),
    }
}

fn wcc_before(wcc: &wcc_data) -> wcc_attr {
    match &wcc.before {
        Nfs3Option::Some(a) => *a,
        Nfs3Option::None => panic!("WCC pre-op attributes missing"),
    }
}

async fn create_file(
    conn: &mut Connection,
    dir: &nfs_fh3,
    n: &str,
    mode: u32,
) -> (nfs_fh3, fattr3) {
    let res = conn
        .create(&CREATE3args {
            where_: dirop(dir, n),
            how: createhow3::UNCHECKED(mode_attrs(mode)),
        })
        .await
        .expect("CREATE rpc");
    let res = ok(res, &format!("CREATE {n}"));
    assert_wcc(&res.dir_wcc, "CREATE");
    let fh = match res.obj {
        Nfs3Option::Some(fh) => fh,
        Nfs3Option::None => panic!("CREATE {n}: no file handle returned"),
    };
    let attrs = match res.obj_attributes {
        Nfs3Option::Some(a) => a,
        Nfs3Option::None => panic!("CREATE {n}: no attributes returned"),
    };
    (fh, attrs)
}

async fn write(
    conn: &mut Connection,
    fh: &nfs_fh3,
    offset: u64,
    data: &[u8],
    stable: stable_how,
) -> WRITE3resok {
    let res = conn
        .write(&WRITE3args {
            file: fh.clone(),
            offset,
            count: data.len() as u32,
            stable,
            data: Opaque::borrowed(data),
        })
        .await
        .expect("WRITE rpc");
    ok(res, "WRITE")
}

async fn read(conn: &mut Connection, fh: &nfs_fh3, offset: u64, count: u32) -> READ3resok<'static> {
    let res = conn
        .read(&READ3args {
            file: fh.clone(),
            offset,
            count,
        })
        .await
        .expect("READ rpc");
    ok(res, "READ")
}

#[tokio::test]
async fn null_procedure_is_answered_by_nfs_and_mount() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        conn.null().await.expect("NFS NULL");
        conn.mount_client.null().await.expect("MOUNT NULL");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"] // chowns a file to another user
async fn getattr_reports_what_is_on_disk() {
    bounded(LIMIT, async {
        let server = Server::start();
        let path = server.export_dir().join("file.txt");
        std::fs::write(&path, b"12345").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();

        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let root_attrs = getattr(&mut conn, &root).await;
        assert_eq!(root_attrs.type_, ftype3::NF3DIR, "export root type");

        let fh = lookup(&mut conn, &root, "file.txt").await;
        let a = getattr(&mut conn, &fh).await;
        assert_eq!(a.type_, ftype3::NF3REG);
        assert_eq!(a.size, 5);
        assert_eq!(a.mode & 0o7777, 0o640, "mode bits");
        assert_eq!((a.uid, a.gid), (1234, 5678), "owner");
        assert_eq!(a.nlink, 1);
        assert_eq!(
            a.fsid, root_attrs.fsid,
            "file and root are on one filesystem"
        );
        assert_ne!(
            a.fileid, root_attrs.fileid,
            "file and root must have distinct fileids"
        );
        assert_eq!(
            (a.mtime.seconds as i64, a.mtime.nseconds as i64),
            (meta.mtime(), meta.mtime_nsec()),
            "mtime with nanoseconds as on disk"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"] // SETATTR gives a file to another owner
async fn setattr_changes_mode_size_and_owner_with_wcc_data() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, _) = create_file(&mut conn, &root, "f", 0o644).await;
        write(&mut conn, &fh, 0, b"0123456789", stable_how::FILE_SYNC).await;

        let res = conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: sattr3 {
                    mode: Nfs3Option::Some(0o600),
                    uid: Nfs3Option::Some(4242),
                    gid: Nfs3Option::Some(4343),
                    size: Nfs3Option::Some(3),
                    ..Default::default()
                },
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        let res = ok(res, "SETATTR");
        assert_wcc(&res.obj_wcc, "SETATTR");
        assert_eq!(wcc_before(&res.obj_wcc).size, 10, "pre-op size");
        let after = wcc_after(&res.obj_wcc);
        assert_eq!(
            (after.size, after.mode & 0o7777, after.uid, after.gid),
            (3, 0o600, 4242, 4343)
        );

        let meta = std::fs::metadata(server.export_dir().join("f")).unwrap();
        assert_eq!(meta.len(), 3, "size on disk");
        assert_eq!(meta.mode() & 0o7777, 0o600, "mode on disk");
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "owner on disk");
        assert_eq!(
            std::fs::read(server.export_dir().join("f")).unwrap(),
            b"012"
        );
    })
    .await;
}

#[tokio::test]
async fn setattr_nanosecond_times_read_back_exactly() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, _) = create_file(&mut conn, &root, "t", 0o644).await;
        let mtime = nfstime3 {
            seconds: 1_600_000_000,
            nseconds: 123_456_789,
        };
        let atime = nfstime3 {
            seconds: 1_500_000_000,
            nseconds: 987_654_321,
        };
        let res = conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: sattr3 {
                    atime: set_atime::SET_TO_CLIENT_TIME(atime),
                    mtime: set_mtime::SET_TO_CLIENT_TIME(mtime),
                    ..Default::default()
                },
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        ok(res, "SETATTR times");
        let a = getattr(&mut conn, &fh).await;
        assert_eq!(a.mtime, mtime, "mtime read back through GETATTR");
        assert_eq!(a.atime, atime, "atime read back through GETATTR");
        let meta = std::fs::metadata(server.export_dir().join("t")).unwrap();
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_600_000_000, 123_456_789),
            "mtime on disk"
        );
    })
    .await;
}

#[tokio::test]
async fn setattr_with_a_stale_ctime_guard_fails_with_not_sync() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, attrs) = create_file(&mut conn, &root, "g", 0o644).await;
        let stale = nfstime3 {
            seconds: attrs.ctime.seconds.wrapping_sub(100),
            nseconds: 1,
        };
        let res = conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: mode_attrs(0o600),
                guard: Nfs3Option::Some(stale),
            })
            .await
            .expect("SETATTR rpc");
        let (stat, _) = err_status(res, "SETATTR with stale guard");
        assert_eq!(stat, nfsstat3::NFS3ERR_NOT_SYNC);
        assert_eq!(
            getattr(&mut conn, &fh).await.mode & 0o7777,
            0o644,
            "mode must be unchanged"
        );

        let current = getattr(&mut conn, &fh).await.ctime;
        let res = conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: mode_attrs(0o600),
                guard: Nfs3Option::Some(current),
            })
            .await
            .expect("SETATTR rpc");
        ok(res, "SETATTR with matching guard");
        assert_eq!(getattr(&mut conn, &fh).await.mode & 0o7777, 0o600);
    })
    .await;
}

#[tokio::test]
async fn lookup_of_a_missing_name_fails_with_noent() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .lookup(&LOOKUP3args {
                what: dirop(&root, "nope"),
            })
            .await
            .expect("LOOKUP rpc");
        let (stat, _) = err_status(res, "LOOKUP nope");
        assert_eq!(stat, nfsstat3::NFS3ERR_NOENT);
    })
    .await;
}

#[tokio::test]
async fn lookup_returns_the_object_and_directory_attributes() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::create_dir(server.export_dir().join("d")).unwrap();
        std::fs::write(server.export_dir().join("d/x"), b"xyz").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let d = lookup(&mut conn, &root, "d").await;
        let res = conn
            .lookup(&LOOKUP3args {
                what: dirop(&d, "x"),
            })
            .await
            .expect("LOOKUP rpc");
        let res = ok(res, "LOOKUP d/x");
        match (&res.obj_attributes, &res.dir_attributes) {
            (Nfs3Option::Some(o), Nfs3Option::Some(dir)) => {
                assert_eq!((o.type_, o.size), (ftype3::NF3REG, 3));
                assert_eq!(dir.type_, ftype3::NF3DIR);
            }
            other => panic!("LOOKUP should return object and directory attributes: {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn lookup_dotdot_at_the_export_root_returns_the_root() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::create_dir(server.export_dir().join("sub")).unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let root_attrs = getattr(&mut conn, &root).await;

        let up = lookup(&mut conn, &root, "..").await;
        let up_attrs = getattr(&mut conn, &up).await;
        assert_eq!(
            (up_attrs.fsid, up_attrs.fileid),
            (root_attrs.fsid, root_attrs.fileid),
            "'..' of root"
        );

        let dot = lookup(&mut conn, &root, ".").await;
        assert_eq!(
            getattr(&mut conn, &dot).await.fileid,
            root_attrs.fileid,
            "'.' of root"
        );

        let sub = lookup(&mut conn, &root, "sub").await;
        let sub_up = lookup(&mut conn, &sub, "..").await;
        assert_eq!(
            getattr(&mut conn, &sub_up).await.fileid,
            root_attrs.fileid,
            "'..' of sub"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"] // chowns a file to another user
async fn access_follows_owner_group_and_other_permission_bits() {
    bounded(LIMIT, async {
        let server = Server::start();
        let root_dir = server.export_dir();
        std::fs::set_permissions(root_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = root_dir.join("private.txt");
        std::fs::write(&path, b"secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
        let want = ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_EXECUTE;

        async fn granted(server: &Server, uid: u32, gid: u32, gids: &[u32], want: u32) -> u32 {
            let mut conn = server.connect_as(uid, gid, gids).await;
            let root = conn.root_nfs_fh3();
            let fh = lookup(&mut conn, &root, "private.txt").await;
            let res = conn
                .access(&ACCESS3args {
                    object: fh,
                    access: want,
                })
                .await
                .expect("ACCESS rpc");
            let res = ok(res, "ACCESS");
            assert!(
                res.obj_attributes.is_some(),
                "ACCESS should return attributes"
            );
            assert_eq!(
                res.access & !want,
                0,
                "ACCESS granted bits that were not asked for"
            );
            res.access
        }

        let owner = granted(&server, 1000, 1000, &[], want).await;
        assert_eq!(
            owner,
            ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND,
            "owner (rw-) of 0640 file"
        );
        let group_member = granted(&server, 3000, 3000, &[1000], want).await;
        assert_eq!(
            group_member, ACCESS3_READ,
            "supplementary group member (r--) of 0640 file"
        );
        let other = granted(&server, 4000, 4000, &[], want).await;
        assert_eq!(other, 0, "other (---) of 0640 file");
    })
    .await;
}

#[tokio::test]
async fn readlink_returns_the_target_of_a_symlink() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::os::unix::fs::symlink("some/where/else", server.export_dir().join("ln")).unwrap();
        std::fs::write(server.export_dir().join("plain"), b"p").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let ln = lookup(&mut conn, &root, "ln").await;
        assert_eq!(
            getattr(&mut conn, &ln).await.type_,
            ftype3::NF3LNK,
            "LOOKUP must not follow symlinks"
        );
        let res = conn
            .readlink(&READLINK3args { symlink: ln })
            .await
            .expect("READLINK rpc");
        assert_eq!(ok(res, "READLINK").data.as_ref(), b"some/where/else");

        let plain = lookup(&mut conn, &root, "plain").await;
        let res = conn
            .readlink(&READLINK3args { symlink: plain })
            .await
            .expect("READLINK rpc");
        let (stat, _) = err_status(res, "READLINK of a regular file");
        assert_eq!(stat, nfsstat3::NFS3ERR_INVAL);
    })
    .await;
}

#[tokio::test]
async fn read_returns_the_requested_bytes_and_signals_eof() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("digits"), b"0123456789").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let fh = lookup(&mut conn, &root, "digits").await;

        let r = read(&mut conn, &fh, 2, 4).await;
        assert_eq!((r.data.as_ref(), r.count, r.eof), (&b"2345"[..], 4, false));
        assert!(
            r.file_attributes.is_some(),
            "READ should return post-op attributes"
        );
        let r = read(&mut conn, &fh, 6, 100).await;
        assert_eq!((r.data.as_ref(), r.count, r.eof), (&b"6789"[..], 4, true));
        let r = read(&mut conn, &fh, 50, 10).await;
        assert_eq!((r.count, r.eof), (0, true), "read past the end");

        let res = conn
            .read(&READ3args {
                file: root,
                offset: 0,
                count: 10,
            })
            .await
            .expect("READ rpc");
        let (stat, _) = err_status(res, "READ of a directory");
        assert!(
            matches!(stat, nfsstat3::NFS3ERR_ISDIR | nfsstat3::NFS3ERR_INVAL),
            "READ of a directory: {stat:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn writes_at_every_stability_level_land_on_disk_under_one_verifier() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, _) = create_file(&mut conn, &root, "w", 0o644).await;

        let w1 = write(&mut conn, &fh, 0, b"aaaa", stable_how::UNSTABLE).await;
        let w2 = write(&mut conn, &fh, 4, b"bbbb", stable_how::DATA_SYNC).await;
        let w3 = write(&mut conn, &fh, 8, b"cccc", stable_how::FILE_SYNC).await;
        for (w, what) in [(&w1, "UNSTABLE"), (&w2, "DATA_SYNC"), (&w3, "FILE_SYNC")] {
            assert_eq!(w.count, 4, "{what}: count written");
            assert_wcc(&w.file_wcc, what);
        }
        assert!(
            matches!(w2.committed, stable_how::DATA_SYNC | stable_how::FILE_SYNC),
            "DATA_SYNC write answered {:?}",
            w2.committed
        );
        assert_eq!(w3.committed, stable_how::FILE_SYNC, "FILE_SYNC write");
        assert_eq!(
            wcc_before(&w2.file_wcc).size,
            4,
            "pre-op size of second write"
        );
        assert_eq!(
            wcc_after(&w3.file_wcc).size,
            12,
            "post-op size of third write"
        );
        assert_eq!(
            w1.verf, w2.verf,
            "write verifier must not change within a server run"
        );
        assert_eq!(
            w2.verf, w3.verf,
            "write verifier must not change within a server run"
        );

        let res = conn
            .commit(&COMMIT3args {
                file: fh.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .expect("COMMIT rpc");
        let c = ok(res, "COMMIT");
        assert_wcc(&c.file_wcc, "COMMIT");
        assert_eq!(c.verf, w1.verf, "COMMIT verifier equals WRITE verifier");
        assert_eq!(
            std::fs::read(server.export_dir().join("w")).unwrap(),
            b"aaaabbbbcccc"
        );

        // A second connection in the same run sees the same verifier.
        let mut other = server.connect().await;
        let w4 = write(&mut other, &fh, 12, b"d", stable_how::UNSTABLE).await;
        assert_eq!(
            w4.verf, w1.verf,
            "verifier differs between connections of one run"
        );
    })
    .await;
}

#[tokio::test]
async fn write_past_the_end_leaves_a_zero_filled_hole() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, _) = create_file(&mut conn, &root, "holey", 0o644).await;
        write(&mut conn, &fh, 5, b"x", stable_how::FILE_SYNC).await;
        let r = read(&mut conn, &fh, 0, 100).await;
        assert_eq!(r.data.as_ref(), b"\0\0\0\0\0x");
        assert!(r.eof);
    })
    .await;
}

#[tokio::test]
async fn unchecked_create_succeeds_for_a_new_and_an_existing_name() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let before = getattr(&mut conn, &root).await;
        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, "u"),
                how: createhow3::UNCHECKED(mode_attrs(0o640)),
            })
            .await
            .expect("CREATE rpc");
        let first = ok(res, "CREATE UNCHECKED (new)");
        assert_wcc(&first.dir_wcc, "CREATE");
        assert_eq!(
            wcc_before(&first.dir_wcc).mtime,
            before.mtime,
            "dir pre-op mtime is the pre-CREATE mtime"
        );
        let after = getattr(&mut conn, &root).await;
        assert_eq!(
            wcc_after(&first.dir_wcc).mtime,
            after.mtime,
            "dir post-op mtime"
        );
        let first_attrs = first.obj_attributes.unwrap();
        assert_eq!(
            (first_attrs.type_, first_attrs.mode & 0o7777),
            (ftype3::NF3REG, 0o640)
        );
        let meta = std::fs::metadata(server.export_dir().join("u")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o640, "mode on disk");

        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, "u"),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        let second = ok(res, "CREATE UNCHECKED (existing)");
        assert_eq!(
            second.obj_attributes.unwrap().fileid,
            first_attrs.fileid,
            "same file"
        );
    })
    .await;
}

#[tokio::test]
async fn guarded_create_of_an_existing_name_fails_with_exist() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let guarded = || CREATE3args {
            where_: dirop(&root, "g"),
            how: createhow3::GUARDED(mode_attrs(0o644)),
        };
        ok(
            conn.create(&guarded()).await.expect("CREATE rpc"),
            "first GUARDED CREATE",
        );
        std::fs::write(server.export_dir().join("g"), b"keep me").unwrap();
        let (stat, fail) = err_status(
            conn.create(&guarded()).await.expect("CREATE rpc"),
            "second GUARDED CREATE",
        );
        assert_eq!(stat, nfsstat3::NFS3ERR_EXIST);
        assert_wcc(&fail.dir_wcc, "failed CREATE");
        assert_eq!(
            std::fs::read(server.export_dir().join("g")).unwrap(),
            b"keep me",
            "file untouched"
        );
    })
    .await;
}

#[tokio::test]
async fn exclusive_create_with_same_verifier_is_idempotent() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let verf = createverf3(*b"volnfs01");
        let args = || CREATE3args {
            where_: dirop(&root, "x"),
            how: createhow3::EXCLUSIVE(verf),
        };
        let first = ok(
            conn.create(&args()).await.expect("CREATE rpc"),
            "first EXCLUSIVE CREATE",
        );
        let again = ok(
            conn.create(&args()).await.expect("CREATE rpc"),
            "retransmitted EXCLUSIVE CREATE",
        );
        let fh1 = first.obj.unwrap();
        let fh2 = again.obj.unwrap();
        assert_eq!(
            getattr(&mut conn, &fh1).await.fileid,
            getattr(&mut conn, &fh2).await.fileid,
            "both answers name the same file"
        );
        // The client then sets the real attributes (RFC 1813 3.3.8).
        let res = conn
            .setattr(&SETATTR3args {
                object: fh1.clone(),
                new_attributes: sattr3 {
                    mode: Nfs3Option::Some(0o600),
                    atime: set_atime::SET_TO_SERVER_TIME,
                    mtime: set_mtime::SET_TO_SERVER_TIME,
                    ..Default::default()
                },
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        ok(res, "SETATTR after EXCLUSIVE CREATE");
        assert_eq!(
            std::fs::metadata(server.export_dir().join("x"))
                .unwrap()
                .mode()
                & 0o7777,
            0o600
        );
    })
    .await;
}

#[tokio::test]
async fn exclusive_create_with_a_different_verifier_fails_with_exist() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let create = |v: &[u8; 8]| CREATE3args {
            where_: dirop(&root, "x"),
            how: createhow3::EXCLUSIVE(createverf3(*v)),
        };
        ok(
            conn.create(&create(b"verifier")).await.expect("CREATE rpc"),
            "first EXCLUSIVE CREATE",
        );
        let (stat, _) = err_status(
            conn.create(&create(b"VERIFIER")).await.expect("CREATE rpc"),
            "other verifier",
        );
        assert_eq!(stat, nfsstat3::NFS3ERR_EXIST);

        std::fs::write(server.export_dir().join("plain"), b"p").unwrap();
        let args = CREATE3args {
            where_: dirop(&root, "plain"),
            how: createhow3::EXCLUSIVE(createverf3(*b"verifier")),
        };
        let (stat, _) = err_status(
            conn.create(&args).await.expect("CREATE rpc"),
            "EXCLUSIVE over a pre-existing file",
        );
        assert_eq!(stat, nfsstat3::NFS3ERR_EXIST);
    })
    .await;
}

#[tokio::test]
async fn mkdir_creates_a_directory_and_refuses_an_existing_name() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let args = || MKDIR3args {
            where_: dirop(&root, "newdir"),
            attributes: mode_attrs(0o750),
        };
        let res = ok(conn.mkdir(&args()).await.expect("MKDIR rpc"), "MKDIR");
        assert_wcc(&res.dir_wcc, "MKDIR");
        let attrs = res.obj_attributes.unwrap();
        assert_eq!((attrs.type_, attrs.mode & 0o7777), (ftype3::NF3DIR, 0o750));
        assert!(res.obj.is_some(), "MKDIR should return the new handle");
        let meta = std::fs::metadata(server.export_dir().join("newdir")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o750, "mode on disk");

        let (stat, fail) = err_status(
            conn.mkdir(&args()).await.expect("MKDIR rpc"),
            "second MKDIR",
        );
        assert_eq!(stat, nfsstat3::NFS3ERR_EXIST);
        assert_wcc(&fail.dir_wcc, "failed MKDIR");
    })
    .await;
}

#[tokio::test]
async fn symlink_creates_a_link_that_readlink_returns() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .symlink(&SYMLINK3args {
                where_: dirop(&root, "sl"),
                symlink: symlinkdata3 {
                    symlink_attributes: sattr3::default(),
                    symlink_data: nfspath3(Opaque::borrowed(b"../outside/target")),
                },
            })
            .await
            .expect("SYMLINK rpc");
        let res = ok(res, "SYMLINK");
        assert_wcc(&res.dir_wcc, "SYMLINK");
        let fh = res.obj.unwrap();
        assert_eq!(getattr(&mut conn, &fh).await.type_, ftype3::NF3LNK);
        let link = ok(
            conn.readlink(&READLINK3args { symlink: fh })
                .await
                .expect("READLINK rpc"),
            "READLINK",
        );
        assert_eq!(link.data.as_ref(), b"../outside/target");
        let on_disk = std::fs::read_link(server.export_dir().join("sl")).unwrap();
        assert_eq!(on_disk.to_str(), Some("../outside/target"));
    })
    .await;
}

#[tokio::test]
async fn mknod_creates_a_fifo() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .mknod(&MKNOD3args {
                where_: dirop(&root, "pipe"),
                what: mknoddata3::NF3FIFO(mode_attrs(0o620)),
            })
            .await
            .expect("MKNOD rpc");
        let res = ok(res, "MKNOD FIFO");
        assert_wcc(&res.dir_wcc, "MKNOD");
        let fh = res.obj.unwrap();
        assert_eq!(getattr(&mut conn, &fh).await.type_, ftype3::NF3FIFO);
        let meta = std::fs::symlink_metadata(server.export_dir().join("pipe")).unwrap();
        assert!(meta.file_type().is_fifo(), "a FIFO exists on disk");
        assert_eq!(meta.mode() & 0o7777, 0o620, "FIFO mode on disk");
    })
    .await;
}

/// A socket cannot be opened, so its mode is changed by name (`sys::chmod_at_nofollow`:
/// AT_SYMLINK_NOFOLLOW on Linux; re-check then fchmodat on illumos, which refuses the
/// flag): the mode lands on the socket itself.
#[tokio::test]
async fn setattr_mode_of_a_socket_changes_the_socket() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .mknod(&MKNOD3args {
                where_: dirop(&root, "sock"),
                what: mknoddata3::NF3SOCK(mode_attrs(0o600)),
            })
            .await
            .expect("MKNOD rpc");
        let fh = ok(res, "MKNOD socket").obj.unwrap();
        let res = conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: mode_attrs(0o640),
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        let res = ok(res, "SETATTR mode of a socket");
        assert_eq!(wcc_after(&res.obj_wcc).mode & 0o7777, 0o640);
        let meta = std::fs::symlink_metadata(server.export_dir().join("sock")).unwrap();
        assert!(meta.file_type().is_socket(), "still a socket on disk");
        assert_eq!(meta.mode() & 0o7777, 0o640, "socket mode on disk");
    })
    .await;
}

// MKNOD of character and block devices: tests/device_nodes.rs (emulated by
// default, refused with `device_nodes: "refuse"`).

#[tokio::test]
async fn remove_deletes_a_file_and_a_second_remove_fails_with_noent() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("doomed"), b"bye").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let fh = lookup(&mut conn, &root, "doomed").await;
        let res = ok(
            conn.remove(&REMOVE3args {
                object: dirop(&root, "doomed"),
            })
            .await
            .expect("REMOVE rpc"),
            "REMOVE",
        );
        assert_wcc(&res.dir_wcc, "REMOVE");
        assert!(
            !server.export_dir().join("doomed").exists(),
            "file still on disk"
        );

        let res = conn
            .remove(&REMOVE3args {
                object: dirop(&root, "doomed"),
            })
            .await
            .expect("REMOVE rpc");
        assert_eq!(err_status(res, "second REMOVE").0, nfsstat3::NFS3ERR_NOENT);

        let res = conn
            .getattr(&GETATTR3args { object: fh })
            .await
            .expect("GETATTR rpc");
        assert_eq!(
            err_status(res, "GETATTR of a removed file").0,
            nfsstat3::NFS3ERR_STALE
        );
    })
    .await;
}

#[tokio::test]
async fn rmdir_of_a_non_empty_directory_fails_with_notempty() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::create_dir(server.export_dir().join("full")).unwrap();
        std::fs::write(server.export_dir().join("full/child"), b"c").unwrap();
        std::fs::create_dir(server.export_dir().join("empty")).unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();

        let res = conn
            .rmdir(&RMDIR3args {
                object: dirop(&root, "full"),
            })
            .await
            .expect("RMDIR rpc");
        let (stat, fail) = err_status(res, "RMDIR full");
        assert_eq!(stat, nfsstat3::NFS3ERR_NOTEMPTY);
        assert_wcc(&fail.dir_wcc, "failed RMDIR");
        assert!(server.export_dir().join("full/child").exists());

        let res = ok(
            conn.rmdir(&RMDIR3args {
                object: dirop(&root, "empty"),
            })
            .await
            .expect("RMDIR rpc"),
            "RMDIR empty",
        );
        assert_wcc(&res.dir_wcc, "RMDIR");
        assert!(
            !server.export_dir().join("empty").exists(),
            "empty dir still on disk"
        );
    })
    .await;
}

#[tokio::test]
async fn rmdir_of_a_regular_file_fails_with_notdir() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("file"), b"f").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .rmdir(&RMDIR3args {
                object: dirop(&root, "file"),
            })
            .await
            .expect("RMDIR rpc");
        assert_eq!(
            err_status(res, "RMDIR of a file").0,
            nfsstat3::NFS3ERR_NOTDIR
        );
        assert!(server.export_dir().join("file").exists());
    })
    .await;
}

#[tokio::test]
async fn rename_moves_a_file_across_directories_and_keeps_its_handle() {
    bounded(LIMIT, async {
        let server = Server::start();
        let dir = server.export_dir();
        std::fs::create_dir(dir.join("a")).unwrap();
        std::fs::create_dir(dir.join("b")).unwrap();
        std::fs::write(dir.join("a/f"), b"moving").unwrap();
        std::fs::write(dir.join("b/old"), b"replaced").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let a = lookup(&mut conn, &root, "a").await;
        let b = lookup(&mut conn, &root, "b").await;
        let f = lookup(&mut conn, &a, "f").await;
        let fileid = getattr(&mut conn, &f).await.fileid;

        let res = conn
            .rename(&RENAME3args {
                from: dirop(&a, "f"),
                to: dirop(&b, "g"),
            })
            .await
            .expect("RENAME rpc");
        let res = ok(res, "RENAME a/f -> b/g");
        assert_wcc(&res.fromdir_wcc, "RENAME fromdir");
        assert_wcc(&res.todir_wcc, "RENAME todir");
        assert!(!dir.join("a/f").exists());
        assert_eq!(std::fs::read(dir.join("b/g")).unwrap(), b"moving");
        assert_eq!(
            getattr(&mut conn, &f).await.fileid,
            fileid,
            "handle still valid after rename"
        );
        let g = lookup(&mut conn, &b, "g").await;
        assert_eq!(
            getattr(&mut conn, &g).await.fileid,
            fileid,
            "fileid under the new name"
        );

        // Renaming onto an existing file replaces it.
        let res = conn
            .rename(&RENAME3args {
                from: dirop(&b, "g"),
                to: dirop(&b, "old"),
            })
            .await
            .expect("RENAME rpc");
        ok(res, "RENAME b/g -> b/old");
        assert_eq!(std::fs::read(dir.join("b/old")).unwrap(), b"moving");

        let res = conn
            .rename(&RENAME3args {
                from: dirop(&a, "missing"),
                to: dirop(&b, "x"),
            })
            .await
            .expect("RENAME rpc");
        let (stat, fail) = err_status(res, "RENAME of a missing name");
        assert_eq!(stat, nfsstat3::NFS3ERR_NOENT);
        assert_wcc(&fail.fromdir_wcc, "failed RENAME fromdir");
    })
    .await;
}

#[tokio::test]
async fn renaming_a_directory_keeps_handles_below_it_valid() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::create_dir_all(server.export_dir().join("top/mid")).unwrap();
        std::fs::write(server.export_dir().join("top/mid/leaf"), b"leaf").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let top = lookup(&mut conn, &root, "top").await;
        let mid = lookup(&mut conn, &top, "mid").await;
        let leaf = lookup(&mut conn, &mid, "leaf").await;
        let res = conn
            .rename(&RENAME3args {
                from: dirop(&root, "top"),
                to: dirop(&root, "renamed"),
            })
            .await;
        ok(res.expect("RENAME rpc"), "RENAME top -> renamed");
        let r = read(&mut conn, &leaf, 0, 10).await;
        assert_eq!(
            r.data.as_ref(),
            b"leaf",
            "leaf handle after its grandparent was renamed"
        );
        ok(
            conn.lookup(&LOOKUP3args {
                what: dirop(&mid, "leaf"),
            })
            .await
            .expect("LOOKUP rpc"),
            "LOOKUP in mid",
        );
    })
    .await;
}

#[tokio::test]
async fn link_gives_a_second_name_with_the_same_fileid_and_nlink_2() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("orig"), b"shared").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let orig = lookup(&mut conn, &root, "orig").await;
        let res = conn
            .link(&LINK3args {
                file: orig.clone(),
                link: dirop(&root, "alias"),
            })
            .await
            .expect("LINK rpc");
        let res = ok(res, "LINK");
        assert_wcc(&res.linkdir_wcc, "LINK");
        match &res.file_attributes {
            Nfs3Option::Some(a) => assert_eq!(a.nlink, 2, "LINK post-op nlink"),
            Nfs3Option::None => panic!("LINK should return the file's attributes"),
        }
        let alias = lookup(&mut conn, &root, "alias").await;
        let (a1, a2) = (
            getattr(&mut conn, &orig).await,
            getattr(&mut conn, &alias).await,
        );
        assert_eq!(a1.fileid, a2.fileid, "both names are one file");
        assert_eq!((a1.nlink, a2.nlink), (2, 2));
        let m1 = std::fs::metadata(server.export_dir().join("orig")).unwrap();
        let m2 = std::fs::metadata(server.export_dir().join("alias")).unwrap();
        assert_eq!(m1.ino(), m2.ino(), "hard link on disk");

        let res = conn
            .link(&LINK3args {
                file: orig,
                link: dirop(&root, "alias"),
            })
            .await
            .expect("LINK rpc");
        assert_eq!(
            err_status(res, "LINK onto an existing name").0,
            nfsstat3::NFS3ERR_EXIST
        );
    })
    .await;
}

fn populate(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..20 {
        let n = format!("file-{i:02}");
        std::fs::write(dir.join(&n), vec![b'x'; i]).unwrap();
        names.push(n);
    }
    std::fs::create_dir(dir.join("subdir")).unwrap();
    std::os::unix::fs::symlink("file-00", dir.join("link")).unwrap();
    names.push("subdir".into());
    names.push("link".into());
    names.sort();
    names
}

#[tokio::test]
async fn readdir_lists_every_entry_with_the_fileids_getattr_reports() {
    bounded(LIMIT, async {
        let server = Server::start();
        let expected = populate(server.export_dir());
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let mut seen = Vec::new();
        let (mut cookie, mut verf) = (0u64, cookieverf3::default());
        loop {
            let res = conn
                .readdir(&READDIR3args {
                    dir: root.clone(),
                    cookie,
                    cookieverf: verf,
                    count: 8192,
                })
                .await
                .expect("READDIR rpc");
            let res = ok(res, "READDIR");
            assert!(
                res.dir_attributes.is_some(),
                "READDIR should return directory attributes"
            );
            verf = res.cookieverf;
            for e in &res.reply.entries.0 {
                cookie = e.cookie;
                seen.push((String::from_utf8(e.name.0.to_vec()).unwrap(), e.fileid));
            }
            if res.reply.eof {
                break;
            }
        }
        let mut names: Vec<String> = seen
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        assert_eq!(names, expected, "READDIR names");
        for (n, fileid) in &seen {
            let fh = lookup(&mut conn, &root, n).await;
            assert_eq!(
                getattr(&mut conn, &fh).await.fileid,
                *fileid,
                "READDIR fileid of {n} vs GETATTR"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn readdirplus_returns_handles_and_attributes_matching_getattr() {
    bounded(LIMIT, async {
        let server = Server::start();
        let expected = populate(server.export_dir());
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .readdirplus(&READDIRPLUS3args {
                dir: root.clone(),
                cookie: 0,
                cookieverf: cookieverf3::default(),
                dircount: 65536,
                maxcount: 65536,
            })
            .await
            .expect("READDIRPLUS rpc");
        let res = ok(res, "READDIRPLUS");
        assert!(
            res.reply.eof,
            "a small directory fits one READDIRPLUS reply"
        );
        let mut names = Vec::new();
        for e in res.reply.entries.0 {
            let n = String::from_utf8(e.name.0.to_vec()).unwrap();
            if n == "." || n == ".." {
                continue;
            }
            let attrs = match e.name_attributes {
                Nfs3Option::Some(a) => a,
                Nfs3Option::None => panic!("READDIRPLUS entry {n} has no attributes"),
            };
            let fh = match e.name_handle {
                Nfs3Option::Some(fh) => fh,
                Nfs3Option::None => panic!("READDIRPLUS entry {n} has no handle"),
            };
            assert_eq!(
                attrs.fileid, e.fileid,
                "{n}: entry fileid vs its attributes"
            );
            let via_handle = getattr(&mut conn, &fh).await;
            assert_eq!(
                via_handle.fileid, e.fileid,
                "{n}: GETATTR on the returned handle"
            );
            assert_eq!(
                (via_handle.type_, via_handle.size),
                (attrs.type_, attrs.size),
                "{n}: type/size"
            );
            names.push(n);
        }
        names.sort();
        assert_eq!(names, expected, "READDIRPLUS names");
    })
    .await;
}

#[tokio::test]
async fn readdir_of_a_file_fails_with_notdir() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("f"), b"f").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let f = lookup(&mut conn, &root, "f").await;
        let res = conn
            .readdir(&READDIR3args {
                dir: f,
                cookie: 0,
                cookieverf: cookieverf3::default(),
                count: 4096,
            })
            .await
            .expect("READDIR rpc");
        assert_eq!(
            err_status(res, "READDIR of a file").0,
            nfsstat3::NFS3ERR_NOTDIR
        );
    })
    .await;
}

#[tokio::test]
async fn fsstat_reports_consistent_space_and_file_counts() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let s = ok(
            conn.fsstat(&FSSTAT3args { fsroot: root })
                .await
                .expect("FSSTAT rpc"),
            "FSSTAT",
        );
        assert!(
            s.obj_attributes.is_some(),
            "FSSTAT should return attributes"
        );
        assert!(s.tbytes > 0, "total bytes");
        assert!(
            s.fbytes <= s.tbytes && s.abytes <= s.fbytes,
            "free/avail bytes: {s:?}"
        );
        assert!(
            s.ffiles <= s.tfiles && s.afiles <= s.ffiles,
            "free/avail files: {s:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn fsinfo_advertises_sane_limits_and_properties() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let i = ok(
            conn.fsinfo(&FSINFO3args { fsroot: root })
                .await
                .expect("FSINFO rpc"),
            "FSINFO",
        );
        assert!(i.rtmax >= i.rtpref && i.rtpref >= 4096, "read sizes: {i:?}");
        assert!(
            i.wtmax >= i.wtpref && i.wtpref >= 4096,
            "write sizes: {i:?}"
        );
        assert!(i.dtpref >= 512, "dtpref: {i:?}");
        assert!(i.maxfilesize >= 1 << 40, "maxfilesize: {i:?}");
        assert!(
            i.time_delta.seconds == 0 && i.time_delta.nseconds <= 1_000,
            "server keeps (near) nanosecond times: {:?}",
            i.time_delta
        );
        let want = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
        assert_eq!(i.properties & want, want, "properties {:#x}", i.properties);
    })
    .await;
}

#[tokio::test]
async fn pathconf_reports_name_and_link_limits() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let p = ok(
            conn.pathconf(&PATHCONF3args { object: root })
                .await
                .expect("PATHCONF rpc"),
            "PATHCONF",
        );
        assert!(p.linkmax >= 2, "linkmax: {p:?}");
        assert!(p.name_max >= 255, "name_max: {p:?}");
        assert!(p.no_trunc, "long names must be refused, not truncated");
        assert!(p.case_preserving && !p.case_insensitive, "{p:?}");
    })
    .await;
}

#[tokio::test]
async fn commit_returns_the_write_verifier_and_wcc_data() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let (fh, _) = create_file(&mut conn, &root, "c", 0o644).await;
        let data = support::pattern_bytes(3, 64 * 1024);
        let mut verf = None;
        for (i, chunk) in data.chunks(16 * 1024).enumerate() {
            let w = write(
                &mut conn,
                &fh,
                (i * 16 * 1024) as u64,
                chunk,
                stable_how::UNSTABLE,
            )
            .await;
            assert_eq!(
                *verf.get_or_insert(w.verf),
                w.verf,
                "verifier changed between writes"
            );
        }
        let res = conn
            .commit(&COMMIT3args {
                file: fh.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .expect("COMMIT rpc");
        let c = ok(res, "COMMIT");
        assert_wcc(&c.file_wcc, "COMMIT");
        assert_eq!(Some(c.verf), verf, "COMMIT verifier");
        assert_eq!(wcc_after(&c.file_wcc).size, data.len() as u64);
        assert!(
            std::fs::read(server.export_dir().join("c")).unwrap() == data,
            "data on disk after COMMIT"
        );
    })
    .await;
}

#[tokio::test]
async fn long_names_are_refused_with_nametoolong() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let long = "n".repeat(300);
        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, &long),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        assert_eq!(
            err_status(res, "CREATE with a 300-byte name").0,
            nfsstat3::NFS3ERR_NAMETOOLONG
        );
    })
    .await;
}

#[tokio::test]
async fn transfers_of_the_advertised_maximum_size_work_and_larger_reads_are_capped() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let info = ok(
            conn.fsinfo(&FSINFO3args {
                fsroot: root.clone(),
            })
            .await
            .expect("FSINFO rpc"),
            "FSINFO",
        );
        let (fh, _) = create_file(&mut conn, &root, "max", 0o644).await;
        let data = support::pattern_bytes(11, info.wtmax as usize);
        let w = write(&mut conn, &fh, 0, &data, stable_how::FILE_SYNC).await;
        assert_eq!(w.count, info.wtmax, "a WRITE of wtmax bytes is taken whole");
        let tail = support::pattern_bytes(12, 1000);
        write(
            &mut conn,
            &fh,
            u64::from(info.wtmax),
            &tail,
            stable_how::FILE_SYNC,
        )
        .await;

        let r = read(&mut conn, &fh, 0, info.rtmax.saturating_mul(2)).await;
        assert!(
            r.count <= info.rtmax,
            "READ returned {} bytes, rtmax is {}",
            r.count,
            info.rtmax
        );
        assert_eq!(
            r.count as usize,
            r.data.len(),
            "count matches the data length"
        );
        let mut expected = data.clone();
        expected.extend_from_slice(&tail);
        assert!(
            r.data.as_ref() == &expected[..r.data.len()],
            "READ data differs"
        );
        assert!(
            !r.eof || r.data.len() == expected.len(),
            "eof before the end of the file"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_writing_different_files_do_not_interfere() {
    bounded(LIMIT, async {
        let server = std::sync::Arc::new(Server::start());
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = server.connect().await;
                let root = conn.root_nfs_fh3();
                let (fh, _) = create_file(&mut conn, &root, &format!("c{i}"), 0o644).await;
                let data = support::pattern_bytes(100 + i, 512 * 1024 + i as usize);
                for (k, chunk) in data.chunks(32 * 1024).enumerate() {
                    write(
                        &mut conn,
                        &fh,
                        (k * 32 * 1024) as u64,
                        chunk,
                        stable_how::UNSTABLE,
                    )
                    .await;
                }
                let res = conn
                    .commit(&COMMIT3args {
                        file: fh.clone(),
                        offset: 0,
                        count: 0,
                    })
                    .await
                    .expect("COMMIT rpc");
                ok(res, "COMMIT");
                data
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let data = t.await.expect("client task");
            let on_disk = std::fs::read(server.export_dir().join(format!("c{i}"))).unwrap();
            assert!(
                on_disk == data,
                "file c{i} differs from what its client wrote"
            );
        }
    })
    .await;
}
