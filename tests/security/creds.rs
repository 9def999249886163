//! POSIX permissions for AUTH_SYS callers as a user sees them: mode 0600 files and closed
//! directories of other users, supplementary groups, sticky directories, chmod/chown/chgrp
//! and utimes rules, setuid/setgid cleared on write and truncate. Also the helpers the other
//! credential tests share.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use serde_json::json;

use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(60);

pub const ALICE: u32 = 1000;
pub const BOB: u32 = 2000;

/// One export for 127.0.0.1 with the given squash mode (and export keys); its root is 0777.
pub fn server_with(squash: &str, extra: serde_json::Value) -> Server {
    let s = Server::builder()
        .listen(&["127.0.0.1"])
        .exports(vec![ExportSpec::new(
            "/exports/data",
            json!([{"match": "127.0.0.1", "access": "rw", "squash": squash}]),
        )
        .with(extra)])
        .start();
    chmod(s.dir(0), 0o777);
    s
}

pub fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

pub fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

pub fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[tokio::test]
#[ignore = "needs root"]
async fn another_users_0600_file_cannot_be_read_or_written() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let (mut alice, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let f = create(&mut alice, &root, "private", 0o600)
            .await
            .expect("CREATE");
        write(&mut alice, &f, 0, b"alice only")
            .await
            .expect("WRITE");
        let (mut bob, _) = mount_as(&server, 0, unix_credential(BOB, 2000, &[2000, 1000])).await;
        let f_bob = ok(lookup(&mut bob, &root, "private").await, "LOOKUP by bob");
        assert_eq!(
            read(&mut bob, &f_bob, 100).await,
            Err(nfsstat3::NFS3ERR_ACCES),
            "READ"
        );
        assert_eq!(
            write(&mut bob, &f_bob, 0, b"B").await,
            Err(nfsstat3::NFS3ERR_ACCES),
            "WRITE"
        );
        let trunc = sattr3 {
            size: Nfs3Option::Some(0),
            ..Default::default()
        };
        assert_eq!(
            setattr(&mut bob, &f_bob, trunc).await,
            Err(nfsstat3::NFS3ERR_ACCES),
            "truncate"
        );
        assert_eq!(
            access(&mut bob, &f_bob, ACCESS3_ALL).await,
            Ok(0),
            "ACCESS grants bob nothing"
        );
        assert_eq!(
            access(&mut alice, &f, ACCESS3_ALL).await,
            Ok(ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND),
            "ACCESS for the owner"
        );
        assert_eq!(
            read(&mut alice, &f, 100).await.as_deref(),
            Ok(&b"alice only"[..])
        );
        assert_eq!(
            std::fs::read(server.path(0, "private")).unwrap(),
            b"alice only"
        );

        // A directory without search permission for bob hides its entries.
        let d = mkdir(&mut alice, &root, "closed", 0o700)
            .await
            .expect("MKDIR");
        create(&mut alice, &d, "inside", 0o644)
            .await
            .expect("CREATE inside");
        let d_bob = ok(lookup(&mut bob, &root, "closed").await, "LOOKUP closed");
        assert_eq!(
            status(&lookup(&mut bob, &d_bob, "inside").await),
            nfsstat3::NFS3ERR_ACCES
        );
        assert_eq!(
            readdir_status(&mut bob, &d_bob).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            create(&mut bob, &d_bob, "x", 0o644).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );

        // Supplementary groups of the credential count: bob is in group 1000, carol is not.
        let g = create(&mut alice, &root, "group-readable", 0o640)
            .await
            .expect("CREATE 0640");
        write(&mut alice, &g, 0, b"for the group")
            .await
            .expect("WRITE");
        assert_eq!(
            read(&mut bob, &g, 100).await.as_deref(),
            Ok(&b"for the group"[..]),
            "a group member reads a 0640 file"
        );
        assert_eq!(
            write(&mut bob, &g, 0, b"B").await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(access(&mut bob, &g, ACCESS3_ALL).await, Ok(ACCESS3_READ));
        let (mut carol, _) = mount_as(&server, 0, unix_credential(2500, 2500, &[2500])).await;
        assert_eq!(
            read(&mut carol, &g, 100).await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );

        // Search without read (0711): known names resolve, listing is refused.
        let d = mkdir(&mut alice, &root, "searchable", 0o711)
            .await
            .expect("MKDIR 0711");
        create(&mut alice, &d, "known", 0o644)
            .await
            .expect("CREATE");
        let d_bob = ok(lookup(&mut bob, &root, "searchable").await, "LOOKUP");
        ok(lookup(&mut bob, &d_bob, "known").await, "LOOKUP known name");
        assert_eq!(
            readdir_status(&mut bob, &d_bob).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES),
            "READDIR of a 0711 directory by another user"
        );
        assert_eq!(
            readdirplus(&mut bob, &d_bob).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES),
            "READDIRPLUS of a 0711 directory by another user"
        );
        assert_eq!(
            access(&mut bob, &d_bob, ACCESS3_ALL).await,
            Ok(ACCESS3_LOOKUP),
            "ACCESS on a 0711 directory for another user"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn another_users_directory_cannot_be_changed() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let (mut alice, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let (mut bob, _) = mount_as(&server, 0, unix_credential(BOB, 2000, &[2000])).await;
        let home = mkdir(&mut alice, &root, "alice", 0o755)
            .await
            .expect("MKDIR");
        let f = create(&mut alice, &home, "notes", 0o600)
            .await
            .expect("CREATE");
        write(&mut alice, &f, 0, b"alice's notes")
            .await
            .expect("WRITE");
        mkdir(&mut alice, &home, "sub", 0o755).await.expect("MKDIR");
        let home_b = ok(lookup(&mut bob, &root, "alice").await, "LOOKUP alice");
        let f_b = ok(lookup(&mut bob, &home_b, "notes").await, "LOOKUP notes");
        let acces = Err(nfsstat3::NFS3ERR_ACCES);
        assert_eq!(
            create(&mut bob, &home_b, "x", 0o644).await.err(),
            acces.err()
        );
        assert_eq!(
            mkdir(&mut bob, &home_b, "x", 0o755).await.err(),
            acces.err()
        );
        assert_eq!(
            symlink(&mut bob, &home_b, "x", "notes").await.err(),
            acces.err()
        );
        assert_eq!(
            mkfifo(&mut bob, &home_b, "x", 0o644).await.err(),
            acces.err()
        );
        assert_eq!(remove(&mut bob, &home_b, "notes").await, acces, "REMOVE");
        assert_eq!(rmdir(&mut bob, &home_b, "sub").await, acces, "RMDIR");
        assert_eq!(
            rename(&mut bob, &home_b, "notes", "n2").await,
            acces,
            "RENAME"
        );
        assert_eq!(link(&mut bob, &f_b, &home_b, "n3").await, acces, "LINK");
        // Re-creating an existing file (UNCHECKED) may not truncate what bob cannot write.
        let r = bob
            .create(&CREATE3args {
                where_: dirop(&root, "alice"),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        assert_ne!(status(&r), nfsstat3::NFS3_OK, "CREATE over a directory");
        let r = bob
            .create(&CREATE3args {
                where_: dirop(&home_b, "notes"),
                how: createhow3::UNCHECKED(sattr3 {
                    size: Nfs3Option::Some(0),
                    ..Default::default()
                }),
            })
            .await
            .expect("CREATE rpc");
        assert_ne!(
            status(&r),
            nfsstat3::NFS3_OK,
            "UNCHECKED CREATE size 0 of alice's file"
        );
        assert_eq!(
            std::fs::read(server.path(0, "alice/notes")).unwrap(),
            b"alice's notes"
        );
        let mut names: Vec<_> = std::fs::read_dir(server.path(0, "alice"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["notes", "sub"]);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn sticky_directory_protects_other_users_files() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let tmp = server.path(0, "tmp");
        std::fs::create_dir(&tmp).unwrap();
        chmod(&tmp, 0o1777);
        let (mut alice, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let (mut bob, _) = mount_as(&server, 0, unix_credential(BOB, 2000, &[2000])).await;
        let t = ok(lookup(&mut alice, &root, "tmp").await, "LOOKUP tmp");
        create(&mut alice, &t, "alices", 0o666)
            .await
            .expect("alice creates");
        create(&mut bob, &t, "bobs", 0o666)
            .await
            .expect("bob creates");

        let denied = |r: Result<(), nfsstat3>| {
            matches!(
                r,
                Err(nfsstat3::NFS3ERR_ACCES) | Err(nfsstat3::NFS3ERR_PERM)
            )
        };
        let r = remove(&mut bob, &t, "alices").await;
        assert!(denied(r), "bob removes alice's file in a sticky dir: {r:?}");
        let r = rename(&mut bob, &t, "alices", "stolen").await;
        assert!(denied(r), "bob renames alice's file in a sticky dir: {r:?}");
        let r = rename(&mut bob, &t, "bobs", "alices").await;
        assert!(
            denied(r),
            "bob renames over alice's file in a sticky dir: {r:?}"
        );
        assert!(tmp.join("alices").exists() && !tmp.join("stolen").exists());
        assert_eq!(owner(&tmp.join("alices")), (ALICE, 1000));

        // Each may still remove and rename their own, and bob may write alice's 0666 file.
        let a = ok(lookup(&mut bob, &t, "alices").await, "LOOKUP alices");
        assert_eq!(write(&mut bob, &a, 0, b"b").await, Ok(1));
        assert_eq!(rename(&mut bob, &t, "bobs", "bobs2").await, Ok(()));
        assert_eq!(remove(&mut bob, &t, "bobs2").await, Ok(()));
        assert_eq!(remove(&mut alice, &t, "alices").await, Ok(()));

        // The sticky directory's owner may remove anyone's entries.
        chown(&tmp, 2500, 2500);
        create(&mut alice, &t, "again", 0o644)
            .await
            .expect("alice creates");
        let (mut carol, _) = mount_as(&server, 0, unix_credential(2500, 2500, &[2500])).await;
        assert_eq!(remove(&mut carol, &t, "again").await, Ok(()));

        // Moving alice's directory to another parent rewrites its "..": bob needs write
        // permission on it, even in a world-writable, non-sticky directory.
        let (mut alice2, _) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        mkdir(&mut alice2, &root, "alices-dir", 0o755)
            .await
            .expect("MKDIR");
        let bobs = mkdir(&mut bob, &root, "bobs-dir", 0o777)
            .await
            .expect("MKDIR");
        let r = bob
            .rename(&RENAME3args {
                from: dirop(&root, "alices-dir"),
                to: dirop(&bobs, "moved"),
            })
            .await
            .expect("RENAME rpc");
        assert_eq!(
            status(&r),
            nfsstat3::NFS3ERR_ACCES,
            "bob moves alice's 0755 directory"
        );
        assert!(server.path(0, "alices-dir").is_dir());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn only_the_owner_chmods_only_root_chowns_and_owner_chgrps_to_its_groups() {
    bounded(LIMIT, async {
        let server = server_with("no_root_squash", json!({}));
        let (mut alice, root) =
            mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000, 3000])).await;
        let (mut bob, _) = mount_as(&server, 0, unix_credential(BOB, 2000, &[2000])).await;
        let (mut rootc, _) = mount_as(&server, 0, unix_credential(0, 0, &[])).await;
        let f = create(&mut alice, &root, "f", 0o666).await.expect("CREATE");
        let p = server.path(0, "f");
        let set = |m: Option<u32>, u: Option<u32>, g: Option<u32>| sattr3 {
            mode: m.map_or(Nfs3Option::None, Nfs3Option::Some),
            uid: u.map_or(Nfs3Option::None, Nfs3Option::Some),
            gid: g.map_or(Nfs3Option::None, Nfs3Option::Some),
            ..Default::default()
        };
        // Anyone who may write may set the times to "now" (touch) ...
        let now = sattr3 {
            atime: set_atime::SET_TO_SERVER_TIME,
            mtime: set_mtime::SET_TO_SERVER_TIME,
            ..Default::default()
        };
        assert_eq!(
            setattr(&mut bob, &f, now).await,
            Ok(()),
            "touch by a writer"
        );
        // chmod: not bob (even though the file is 0666), yes alice.
        assert_eq!(
            setattr(&mut bob, &f, set(Some(0o777), None, None)).await,
            Err(nfsstat3::NFS3ERR_PERM)
        );
        assert_eq!(mode_of(&p), 0o666);
        assert_eq!(
            setattr(&mut alice, &f, set(Some(0o640), None, None)).await,
            Ok(())
        );
        assert_eq!(mode_of(&p), 0o640);
        // Setting the time to an arbitrary value: owner yes, others no.
        let when = sattr3 {
            mtime: set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 1_000_000,
                nseconds: 0,
            }),
            ..Default::default()
        };
        let r = setattr(&mut bob, &f, when.clone()).await;
        assert!(
            matches!(
                r,
                Err(nfsstat3::NFS3ERR_PERM) | Err(nfsstat3::NFS3ERR_ACCES)
            ),
            "bob utimes: {r:?}"
        );
        assert_eq!(setattr(&mut alice, &f, when).await, Ok(()));
        assert_eq!(std::fs::metadata(&p).unwrap().mtime(), 1_000_000);
        // chown: not even the owner; root may.
        assert_eq!(
            setattr(&mut alice, &f, set(None, Some(BOB), None)).await,
            Err(nfsstat3::NFS3ERR_PERM)
        );
        assert_eq!(owner(&p), (ALICE, 1000));
        // chgrp: the owner to a group it belongs to, not to another.
        assert_eq!(
            setattr(&mut alice, &f, set(None, None, Some(3000))).await,
            Ok(())
        );
        assert_eq!(owner(&p), (ALICE, 3000));
        assert_eq!(
            setattr(&mut alice, &f, set(None, None, Some(4000))).await,
            Err(nfsstat3::NFS3ERR_PERM)
        );
        assert_eq!(
            setattr(&mut bob, &f, set(None, None, Some(2000))).await,
            Err(nfsstat3::NFS3ERR_PERM)
        );
        assert_eq!(owner(&p), (ALICE, 3000));
        assert_eq!(
            setattr(&mut rootc, &f, set(None, Some(BOB), Some(2000))).await,
            Ok(())
        );
        assert_eq!(owner(&p), (BOB, 2000));

        // chgrp by the (non-root) owner clears setuid and setgid, as chown(2) does.
        let s = create(&mut alice, &root, "suid", 0o755)
            .await
            .expect("CREATE");
        let sp = server.path(0, "suid");
        chmod(&sp, 0o6755);
        assert_eq!(
            setattr(&mut alice, &s, set(None, None, Some(3000))).await,
            Ok(())
        );
        assert_eq!(owner(&sp), (ALICE, 3000));
        assert_eq!(
            mode_of(&sp) & 0o6000,
            0,
            "after chgrp by the owner: {:o}",
            mode_of(&sp)
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn write_by_a_non_root_user_clears_setuid_and_setgid() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let p = server.path(0, "suid");
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        chown(&p, ALICE, 1000);
        chmod(&p, 0o6777);
        let (mut bob, root) = mount_as(&server, 0, unix_credential(BOB, 2000, &[2000])).await;
        let f = ok(lookup(&mut bob, &root, "suid").await, "LOOKUP");
        assert_eq!(write(&mut bob, &f, 0, b"#").await, Ok(1));
        assert_eq!(
            mode_of(&p) & 0o6000,
            0,
            "setuid/setgid after a write by bob: {:o}",
            mode_of(&p)
        );
        assert_eq!(mode_of(&p) & 0o777, 0o777);
        // The owner's own write clears them too (it has no CAP_FSETID either).
        chmod(&p, 0o6755);
        let (mut alice, _) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        assert_eq!(write(&mut alice, &f, 0, b"#").await, Ok(1));
        assert_eq!(
            mode_of(&p) & 0o6000,
            0,
            "after a write by the owner: {:o}",
            mode_of(&p)
        );
        // Truncation is a write too.
        chmod(&p, 0o6777);
        let trunc = sattr3 {
            size: Nfs3Option::Some(1),
            ..Default::default()
        };
        assert_eq!(setattr(&mut bob, &f, trunc).await, Ok(()));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1);
        assert_eq!(
            mode_of(&p) & 0o6000,
            0,
            "after a truncate by bob: {:o}",
            mode_of(&p)
        );
    })
    .await;
}
