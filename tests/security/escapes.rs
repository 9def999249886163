//! Escape attempts: `..` at the export root, symlinks pointing out of the export, handles
//! with flipped bytes, and handles of another export.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use serde_json::json;

use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(120);

fn one_export() -> Server {
    Server::builder()
        .listen(&["127.0.0.1"])
        .exports(vec![ExportSpec::new(
            "/exports/data",
            json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
        )])
        .start()
}

#[tokio::test]
#[ignore = "needs root"]
async fn dotdot_at_the_export_root_is_the_root() {
    bounded(LIMIT, async {
        let server = one_export();
        std::fs::create_dir(server.path(0, "sub")).unwrap();
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(0, 0, &[])).await;
        let root_attr = getattr(&mut nfs, &root).await;
        let up = ok(lookup(&mut nfs, &root, "..").await, "LOOKUP .. at the root");
        assert_eq!(
            getattr(&mut nfs, &up).await.fileid,
            root_attr.fileid,
            "`..` of the root"
        );
        assert_eq!(
            up.data.as_ref(),
            root.data.as_ref(),
            "`..` of the root is the root handle"
        );
        let mut fh = root.clone();
        for _ in 0..5 {
            fh = ok(lookup(&mut nfs, &fh, "..").await, "LOOKUP .. repeatedly");
        }
        assert_eq!(getattr(&mut nfs, &fh).await.fileid, root_attr.fileid);
        let names = readdir_status(&mut nfs, &fh).await.expect("READDIR");
        assert!(
            names.contains(&"sub".to_string()),
            "still the export: {names:?}"
        );
        // READDIRPLUS of the root: its ".." is the root too, never the directory above.
        let entries = readdirplus(&mut nfs, &root).await.expect("READDIRPLUS");
        let dotdot = entries
            .iter()
            .find(|e| e.0 == "..")
            .expect("READDIRPLUS lists ..");
        assert_eq!(dotdot.1, root_attr.fileid, "fileid of .. at the root");
        if let Some(h) = &dotdot.2 {
            assert_eq!(h.as_slice(), root.data.as_ref(), "handle of .. at the root");
        }
        let sub = ok(lookup(&mut nfs, &root, "sub").await, "LOOKUP sub");
        let parent = ok(lookup(&mut nfs, &sub, "..").await, "LOOKUP sub/..");
        assert_eq!(getattr(&mut nfs, &parent).await.fileid, root_attr.fileid);
        // Names with slashes are not paths.
        for n in ["../etc", "sub/..", "/etc"] {
            assert_ne!(
                status(&lookup(&mut nfs, &root, n).await),
                nfsstat3::NFS3_OK,
                "LOOKUP {n:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn mount_paths_outside_the_export_list_are_refused() {
    bounded(LIMIT, async {
        let server = one_export();
        std::fs::create_dir(server.path(0, "sub")).unwrap();
        for path in [
            "/exports/data/..",
            "/exports/data/../..",
            "/exports/data/../../etc",
            "/exports",
            "/",
            "/etc",
            "/exports/data/sub/../..",
            "/exports/data\0",
        ] {
            let mut m = mount_client(&server, ip(V4_ALLOWED), ip(V4_ALLOWED)).await;
            let r = m
                .mnt(nfs3_client::nfs3_types::mount::dirpath(Opaque::borrowed(
                    path.as_bytes(),
                )))
                .await;
            assert!(
                matches!(
                    r,
                    Err(nfs3_client::MountError::Denied(
                        nfs3_client::nfs3_types::mount::mountstat3::MNT3ERR_NOENT
                            | nfs3_client::nfs3_types::mount::mountstat3::MNT3ERR_ACCES
                    ))
                ),
                "MNT {path:?}: {r:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn symlinks_out_of_the_export_are_never_followed() {
    bounded(LIMIT, async {
        let server = one_export();
        // Read-only probes aim at the host's /etc; anything that could modify aims at a
        // victim directory outside the export, so a failing server damages nothing real.
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path();
        let victim = out.join("victim");
        std::fs::write(&victim, b"victim data").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let victim_meta = std::fs::metadata(&victim).unwrap();
        let out_s = out.to_str().unwrap();
        let victim_s = victim.to_str().unwrap();

        // One planted on the server side, the others made by the client.
        std::os::unix::fs::symlink("/etc", server.path(0, "etc-link")).unwrap();
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(0, 0, &[])).await;
        for (name, target) in [
            ("client-link", "/etc"),
            ("passwd-link", "/etc/passwd"),
            ("up", "../../../../.."),
            ("out-link", out_s),
            ("victim-link", victim_s),
        ] {
            symlink(&mut nfs, &root, name, target)
                .await
                .unwrap_or_else(|s| panic!("SYMLINK {name}: {s:?}"));
        }
        let passwd = std::fs::read("/etc/passwd").unwrap();

        for link in ["etc-link", "client-link", "up", "out-link"] {
            let l = ok(lookup(&mut nfs, &root, link).await, "LOOKUP link");
            assert_eq!(
                getattr(&mut nfs, &l).await.type_,
                ftype3::NF3LNK,
                "{link} is a symlink"
            );
            for name in ["passwd", "victim"] {
                let through = lookup(&mut nfs, &l, name).await;
                assert!(
                    matches!(through, Nfs3Result::Err((nfsstat3::NFS3ERR_NOTDIR, _))),
                    "LOOKUP {name} through {link}: expected NOTDIR, got {:?}",
                    status(&through)
                );
            }
            assert_eq!(
                readdir_status(&mut nfs, &l).await.err(),
                Some(nfsstat3::NFS3ERR_NOTDIR),
                "READDIR through {link}"
            );
        }
        let l = ok(lookup(&mut nfs, &root, "out-link").await, "LOOKUP out-link");
        assert_eq!(
            create(&mut nfs, &l, "planted", 0o644).await.err(),
            Some(nfsstat3::NFS3ERR_NOTDIR),
            "CREATE through out-link"
        );
        assert_eq!(
            mkdir(&mut nfs, &l, "planted-dir", 0o755).await.err(),
            Some(nfsstat3::NFS3ERR_NOTDIR),
            "MKDIR through out-link"
        );

        // The symlinks' own handles: no READ of the target, no WRITE, and SETATTR changes
        // the link (or is refused), never what it points to.
        for link in ["passwd-link", "victim-link"] {
            let l = ok(lookup(&mut nfs, &root, link).await, "LOOKUP link");
            let r = read(&mut nfs, &l, 65536).await;
            assert!(r.is_err(), "READ of the symlink {link} returned data");
        }
        let l = ok(lookup(&mut nfs, &root, "victim-link").await, "LOOKUP");
        let w = write(&mut nfs, &l, 0, b"pwned").await;
        assert!(w.is_err(), "WRITE to the symlink victim-link: {w:?}");
        let _ = setattr(&mut nfs, &l, mode(0o666)).await;
        let _ = setattr(
            &mut nfs,
            &l,
            sattr3 {
                size: Nfs3Option::Some(0),
                ..Default::default()
            },
        )
        .await;
        let _ = setattr(
            &mut nfs,
            &l,
            sattr3 {
                uid: Nfs3Option::Some(4242),
                gid: Nfs3Option::Some(4242),
                mtime: set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                    seconds: 12345,
                    nseconds: 0,
                }),
                ..Default::default()
            },
        )
        .await;
        let after = std::fs::metadata(&victim).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"victim data");
        assert_eq!(after.mode() & 0o7777, 0o600, "victim mode");
        assert_eq!(
            (after.uid(), after.gid()),
            (victim_meta.uid(), victim_meta.gid())
        );
        assert_eq!(after.mtime(), victim_meta.mtime(), "victim mtime");
        let names: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "nothing appeared outside the export");

        // READLINK just returns the text; the server never resolves it.
        let l = ok(lookup(&mut nfs, &root, "passwd-link").await, "LOOKUP");
        assert_eq!(
            readlink(&mut nfs, &l).await.as_deref(),
            Ok(&b"/etc/passwd"[..])
        );
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn handles_with_a_flipped_byte_are_refused() {
    bounded(LIMIT, async {
        let server = one_export();
        std::fs::write(server.path(0, "f"), b"data").unwrap();
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(0, 0, &[])).await;
        let f = ok(lookup(&mut nfs, &root, "f").await, "LOOKUP");
        for (what, fh) in [("root", &root), ("file", &f)] {
            let bytes = fh.data.to_vec();
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut forged = bytes.clone();
                    forged[i] ^= flip;
                    let forged = nfs_fh3 {
                        data: Opaque::owned(forged),
                    };
                    let r = getattr_status(&mut nfs, &forged).await;
                    assert!(
                        matches!(
                            r,
                            Err(nfsstat3::NFS3ERR_BADHANDLE | nfsstat3::NFS3ERR_STALE)
                        ),
                        "{what} handle with byte {i} ^ {flip:#x}: GETATTR gave {:?}",
                        r.map(|a| a.fileid)
                    );
                }
            }
            // Truncated, extended and empty handles.
            for forged in [
                bytes[..bytes.len() - 1].to_vec(),
                [&bytes[..], &[0]].concat(),
                vec![],
            ] {
                let len = forged.len();
                let r = getattr_status(
                    &mut nfs,
                    &nfs_fh3 {
                        data: Opaque::owned(forged),
                    },
                )
                .await;
                assert!(
                    matches!(
                        r,
                        Err(nfsstat3::NFS3ERR_BADHANDLE | nfsstat3::NFS3ERR_STALE)
                    ),
                    "{what} handle of {len} bytes: {:?}",
                    r.map(|a| a.fileid)
                );
            }
        }
        // The genuine handles still work.
        assert_eq!(read(&mut nfs, &f, 10).await.as_deref(), Ok(&b"data"[..]));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn a_handle_of_another_export_gets_no_rights_from_this_one() {
    bounded(LIMIT, async {
        // 127.0.0.1 may use /exports/mine only; /exports/theirs belongs to 127.0.0.2.
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![
                ExportSpec::new(
                    "/exports/mine",
                    json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
                ),
                ExportSpec::new(
                    "/exports/theirs",
                    json!([{"match": "127.0.0.2", "access": "rw", "squash": "no_root_squash"}]),
                ),
            ])
            .start();
        std::fs::write(server.path(1, "theirs.txt"), b"not yours").unwrap();
        let mine = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .unwrap();
        let refused = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 1).await;
        assert!(
            is_mnt_acces(&refused),
            "MNT /exports/theirs from 127.0.0.1: {refused:?}"
        );

        // 127.0.0.2 learns handles of its export ...
        let theirs = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 1).await.unwrap();
        let mut other = nfs_from(
            &server,
            ip(V4_OTHER),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        let file = ok(
            lookup(&mut other, &theirs, "theirs.txt").await,
            "LOOKUP theirs.txt",
        );

        // ... which 127.0.0.1 cannot use, although it is allowed on /exports/mine.
        let mut me = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        assert_eq!(
            getattr_status(&mut me, &theirs).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            read(&mut me, &file, 100).await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            write(&mut me, &file, 0, b"x").await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            status(&lookup(&mut me, &theirs, "theirs.txt").await),
            nfsstat3::NFS3ERR_ACCES
        );
        // Cross-directory procedures mixing the two exports are refused too.
        let r = link(&mut me, &file, &mine, "stolen").await;
        assert!(r.is_err(), "LINK of another export's file into mine: {r:?}");
        let r = nfs::rename_across(&mut me, &theirs, "theirs.txt", &mine, "stolen").await;
        assert!(r.is_err(), "RENAME from another export into mine: {r:?}");
        assert!(!server.path(0, "stolen").exists());
        assert!(server.path(1, "theirs.txt").exists());
        // The second handle of LINK and RENAME is checked too: nothing of mine may be put
        // into (or over) their export.
        let my_file = create(&mut me, &mine, "my.txt", 0o644)
            .await
            .expect("CREATE in mine");
        let r = link(&mut me, &my_file, &theirs, "planted-link").await;
        assert!(r.is_err(), "LINK of my file into their export: {r:?}");
        let r = nfs::rename_across(&mut me, &mine, "my.txt", &theirs, "theirs.txt").await;
        assert!(r.is_err(), "RENAME of my file over theirs: {r:?}");
        assert!(!server.path(1, "planted-link").exists());
        assert!(server.path(0, "my.txt").exists());

        // A handle of /exports/theirs relabelled with /exports/mine's export id fails its MAC.
        let mut spliced = file.data.to_vec();
        spliced[4..8].copy_from_slice(&mine.data.as_ref()[4..8]);
        let r = getattr_status(
            &mut me,
            &nfs_fh3 {
                data: Opaque::owned(spliced),
            },
        )
        .await;
        assert!(
            matches!(
                r,
                Err(nfsstat3::NFS3ERR_BADHANDLE | nfsstat3::NFS3ERR_STALE)
            ),
            "relabelled handle: {:?}",
            r.map(|a| a.fileid)
        );
        assert_eq!(
            std::fs::read(server.path(1, "theirs.txt")).unwrap(),
            b"not yours"
        );
    })
    .await;
}

mod nfs {
    use super::*;

    pub async fn rename_across(
        c: &mut Nfs,
        from_dir: &nfs_fh3,
        from: &str,
        to_dir: &nfs_fh3,
        to: &str,
    ) -> Result<(), nfsstat3> {
        let r = c
            .rename(&RENAME3args {
                from: dirop(from_dir, from),
                to: dirop(to_dir, to),
            })
            .await
            .expect("RENAME rpc");
        match r {
            Nfs3Result::Ok(_) => Ok(()),
            Nfs3Result::Err((s, _)) => Err(s),
        }
    }
}
