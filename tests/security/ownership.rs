//! Ownership of what a caller creates: files, directories, symlinks and nodes belong to the
//! AUTH_SYS uid/gid (or the setgid parent's group), create modes are kept, ownership in the
//! create attributes cannot give a file away, device nodes are refused.

use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use serde_json::json;

use crate::creds::{chmod, chown, mode_of, owner, server_with, ALICE};
use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs root"]
async fn created_files_dirs_symlinks_and_nodes_belong_to_the_caller() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let f = create(&mut nfs, &root, "file", 0o644)
            .await
            .expect("CREATE");
        write(&mut nfs, &f, 0, b"alice's data")
            .await
            .expect("WRITE");
        mkdir(&mut nfs, &root, "dir", 0o755).await.expect("MKDIR");
        symlink(&mut nfs, &root, "link", "file")
            .await
            .expect("SYMLINK");
        let fifo = mkfifo(&mut nfs, &root, "fifo", 0o644)
            .await
            .expect("MKNOD fifo");
        for n in ["file", "dir", "link", "fifo"] {
            assert_eq!(owner(&server.path(0, n)), (ALICE, 1000), "{n} on disk");
        }
        // The owner may chmod its special file (changed without following any symlink).
        assert_eq!(setattr(&mut nfs, &fifo, mode(0o600)).await, Ok(()));
        assert_eq!(mode_of(&server.path(0, "fifo")), 0o600);
        let r = nfs
            .create(&CREATE3args {
                where_: dirop(&root, "exclusive"),
                how: createhow3::EXCLUSIVE(createverf3(*b"verifier")),
            })
            .await
            .expect("CREATE rpc");
        ok(r, "EXCLUSIVE CREATE");
        assert_eq!(
            owner(&server.path(0, "exclusive")),
            (ALICE, 1000),
            "exclusive create"
        );
        // What GETATTR reports agrees with the disk.
        let a = getattr(&mut nfs, &f).await;
        assert_eq!((a.uid, a.gid), (ALICE, 1000));
        // The owner may write to a file it created read-only (open(O_CREAT, 0444) + write).
        let ro = create(&mut nfs, &root, "readonly", 0o444)
            .await
            .expect("CREATE 0444");
        assert_eq!(
            write(&mut nfs, &ro, 0, b"ok").await,
            Ok(2),
            "owner writes its new 0444 file"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn create_modes_are_kept_and_device_nodes_are_refused() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        // As on a local filesystem, a user may create a setuid file of their own.
        create(&mut nfs, &root, "suid", 0o4755)
            .await
            .expect("CREATE 04755");
        mkdir(&mut nfs, &root, "private", 0o700)
            .await
            .expect("MKDIR 0700");
        let p = server.path(0, "suid");
        assert_eq!(owner(&p), (ALICE, 1000));
        assert_eq!(
            mode_of(&p),
            0o4755,
            "mode of a file created 04755: {:o}",
            mode_of(&p)
        );
        assert_eq!(mode_of(&server.path(0, "private")), 0o700);
        // Device nodes: never made for a client (root squashed or not).
        let dev = mknoddata3::NF3CHR(devicedata3 {
            dev_attributes: mode(0o666),
            spec: specdata3 {
                specdata1: 1,
                specdata2: 3,
            },
        });
        let r = nfs
            .mknod(&MKNOD3args {
                where_: dirop(&root, "null"),
                what: dev,
            })
            .await
            .expect("MKNOD rpc");
        assert_eq!(
            status(&r),
            nfsstat3::NFS3ERR_PERM,
            "MKNOD of a character device"
        );
        assert!(!server.path(0, "null").exists());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn ownership_in_create_attributes_cannot_give_files_away() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let as_root = sattr3 {
            mode: Nfs3Option::Some(0o4755),
            uid: Nfs3Option::Some(0),
            gid: Nfs3Option::Some(0),
            ..Default::default()
        };
        let r = nfs
            .create(&CREATE3args {
                where_: dirop(&root, "f"),
                how: createhow3::GUARDED(as_root.clone()),
            })
            .await
            .expect("CREATE rpc");
        let r_mkdir = nfs
            .mkdir(&MKDIR3args {
                where_: dirop(&root, "d"),
                attributes: as_root.clone(),
            })
            .await
            .expect("MKDIR rpc");
        let r_symlink = nfs
            .symlink(&SYMLINK3args {
                where_: dirop(&root, "l"),
                symlink: symlinkdata3 {
                    symlink_attributes: as_root.clone(),
                    symlink_data: nfspath3(nfs3_client::nfs3_types::xdr_codec::Opaque::borrowed(
                        b"f",
                    )),
                },
            })
            .await
            .expect("SYMLINK rpc");
        let r_mknod = nfs
            .mknod(&MKNOD3args {
                where_: dirop(&root, "p"),
                what: mknoddata3::NF3FIFO(as_root.clone()),
            })
            .await
            .expect("MKNOD rpc");
        let statuses = [
            ("f", status(&r)),
            ("d", status(&r_mkdir)),
            ("l", status(&r_symlink)),
            ("p", status(&r_mknod)),
        ];
        for (n, st) in statuses {
            let p = server.path(0, n);
            if st == nfsstat3::NFS3_OK {
                assert_eq!(
                    owner(&p),
                    (ALICE, 1000),
                    "{n}: created with uid/gid 0 in its attributes"
                );
            } else {
                assert!(
                    !p.exists() || owner(&p) == (ALICE, 1000),
                    "{n}: {st:?}, left behind {:?}",
                    owner(&p)
                );
            }
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn setgid_directory_gives_new_entries_its_group() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let shared = server.path(0, "shared");
        std::fs::create_dir(&shared).unwrap();
        chown(&shared, 0, 4242);
        chmod(&shared, 0o2777);
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        let dir = ok(lookup(&mut nfs, &root, "shared").await, "LOOKUP shared");
        create(&mut nfs, &dir, "f", 0o644).await.expect("CREATE");
        mkdir(&mut nfs, &dir, "sub", 0o755).await.expect("MKDIR");
        symlink(&mut nfs, &dir, "l", "f").await.expect("SYMLINK");
        for n in ["f", "sub", "l"] {
            assert_eq!(owner(&shared.join(n)), (ALICE, 4242), "shared/{n}");
        }
        assert_ne!(
            mode_of(&shared.join("sub")) & 0o2000,
            0,
            "a directory made in a setgid directory is setgid too (as on a local filesystem)"
        );
    })
    .await;
}
