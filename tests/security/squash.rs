//! Squash modes and anonymous callers: root_squash (default and with anonuid/anongid),
//! all_squash, AUTH_NONE, unknown credential flavours, and libnfs `uid=`/`gid=` URL
//! arguments.

use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_flavor, auth_stat, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::RpcError;
use serde_json::json;

use crate::creds::{chmod, chown, owner, server_with, ALICE, BOB};
use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs root"]
async fn root_squash_maps_root_to_the_anonymous_ids() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![
                ExportSpec::new(
                    "/exports/default",
                    json!([{"match": "127.0.0.1", "access": "rw"}]),
                ),
                ExportSpec::new(
                    "/exports/anon",
                    json!([{"match": "127.0.0.1", "access": "rw", "squash": "root_squash"}]),
                )
                .with(json!({"anonuid": 4321, "anongid": 4322})),
            ])
            .start();
        for (i, ids) in [(0, (65534, 65534)), (1, (4321, 4322))] {
            chmod(server.dir(i), 0o777);
            std::fs::write(server.path(i, "roots"), b"root only").unwrap();
            chmod(&server.path(i, "roots"), 0o600);
            let (mut nfs, root) = mount_as(&server, i, unix_credential(0, 0, &[0])).await;
            create(&mut nfs, &root, "by-root", 0o644)
                .await
                .expect("CREATE as squashed root");
            mkdir(&mut nfs, &root, "dir-by-root", 0o755)
                .await
                .expect("MKDIR as squashed root");
            assert_eq!(owner(&server.path(i, "by-root")), ids, "export {i}");
            assert_eq!(owner(&server.path(i, "dir-by-root")), ids, "export {i}");
            let f = ok(lookup(&mut nfs, &root, "roots").await, "LOOKUP roots");
            assert_eq!(
                read(&mut nfs, &f, 100).await,
                Err(nfsstat3::NFS3ERR_ACCES),
                "squashed root cannot read root's 0600 file"
            );
            // Group 0 is squashed too: root's group membership gives nothing.
            let g = server.path(i, "group-root");
            std::fs::write(&g, b"g").unwrap();
            chown(&g, 5, 0);
            chmod(&g, 0o060);
            let gf = ok(lookup(&mut nfs, &root, "group-root").await, "LOOKUP");
            assert_eq!(
                read(&mut nfs, &gf, 10).await,
                Err(nfsstat3::NFS3ERR_ACCES),
                "squashed root reads a group-0 file"
            );
            let r = setattr(&mut nfs, &f, mode(0o644)).await;
            assert_eq!(
                r,
                Err(nfsstat3::NFS3ERR_PERM),
                "squashed root cannot chmod root's file"
            );
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn all_squash_maps_every_user_to_the_anonymous_ids() {
    bounded(LIMIT, async {
        let server = server_with("all_squash", json!({"anonuid": 5555, "anongid": 5556}));
        let p = server.path(0, "alices");
        std::fs::write(&p, b"alice").unwrap();
        chown(&p, ALICE, 1000);
        chmod(&p, 0o600);
        let (mut nfs, root) = mount_as(&server, 0, unix_credential(ALICE, 1000, &[1000])).await;
        create(&mut nfs, &root, "new", 0o644).await.expect("CREATE");
        assert_eq!(owner(&server.path(0, "new")), (5555, 5556));
        let f = ok(lookup(&mut nfs, &root, "alices").await, "LOOKUP");
        assert_eq!(
            read(&mut nfs, &f, 10).await,
            Err(nfsstat3::NFS3ERR_ACCES),
            "under all_squash, alice is not alice"
        );
        let (mut r, _) = mount_as(&server, 0, unix_credential(0, 0, &[])).await;
        create(&mut r, &root, "new-root", 0o644)
            .await
            .expect("CREATE as root");
        assert_eq!(owner(&server.path(0, "new-root")), (5555, 5556));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn auth_none_is_the_anonymous_user_and_unknown_flavours_are_refused() {
    bounded(LIMIT, async {
        let server = server_with("no_root_squash", json!({}));
        let (mut anon, root) = mount_as(&server, 0, none()).await;
        create(&mut anon, &root, "anon", 0o644)
            .await
            .expect("CREATE with AUTH_NONE");
        assert_eq!(owner(&server.path(0, "anon")), (65534, 65534));
        std::fs::write(server.path(0, "rootfile"), b"r").unwrap();
        chmod(&server.path(0, "rootfile"), 0o600);
        let f = ok(lookup(&mut anon, &root, "rootfile").await, "LOOKUP");
        assert_eq!(read(&mut anon, &f, 10).await, Err(nfsstat3::NFS3ERR_ACCES));

        let des = opaque_auth {
            flavor: auth_flavor::AUTH_DES,
            body: Opaque::owned(vec![0; 16]),
        };
        let mut nfs = nfs_from(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), des).await;
        match nfs
            .getattr(&GETATTR3args {
                object: root.clone(),
            })
            .await
        {
            Err(RpcError::Auth(auth_stat::AUTH_BADCRED | auth_stat::AUTH_TOOWEAK)) => {}
            other => panic!("AUTH_DES credential: expected AUTH_ERROR, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn libnfs_uid_and_gid_url_arguments_are_honoured() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let scratch = tempfile::tempdir().unwrap();
        let local = scratch.path().join("in.txt");
        std::fs::write(&local, b"copied by uid 1000\n").unwrap();
        let local_s = local.to_str().unwrap();

        let dst = server.url("127.0.0.1", 0, "by-1000.txt", "uid=1000&gid=1000");
        let (st, out, err) = run_tool("nfs-cp", &[local_s, &dst], TOOL_LIMIT).await;
        assert!(st.success(), "nfs-cp to {dst}: {out}{err}");
        let p = server.path(0, "by-1000.txt");
        assert_eq!(
            owner(&p),
            (ALICE, 1000),
            "owner on disk of a file nfs-cp wrote as uid 1000"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"copied by uid 1000\n");

        // Bob's 0600 file: uid 1000 cannot copy it out, bob can.
        let secret = server.path(0, "bobs-secret");
        std::fs::write(&secret, b"bob's secret\n").unwrap();
        chown(&secret, BOB, 2000);
        chmod(&secret, 0o600);
        let out_path = scratch.path().join("out.txt");
        let out_s = out_path.to_str().unwrap();
        let src = server.url("127.0.0.1", 0, "bobs-secret", "uid=1000&gid=1000");
        let (st, _, _) = run_tool("nfs-cp", &[&src, out_s], TOOL_LIMIT).await;
        let copied = std::fs::read(&out_path).unwrap_or_default();
        assert!(
            !st.success() && copied.is_empty(),
            "uid 1000 read bob's 0600 file (exit {st:?}, {} bytes)",
            copied.len()
        );
        let _ = std::fs::remove_file(&out_path);
        let src = server.url("127.0.0.1", 0, "bobs-secret", "uid=2000&gid=2000");
        let (st, out, err) = run_tool("nfs-cp", &[&src, out_s], TOOL_LIMIT).await;
        assert!(st.success(), "bob copies his own file: {out}{err}");
        assert_eq!(std::fs::read(&out_path).unwrap(), b"bob's secret\n");

        // Default root_squash: libnfs's uid=0 writes as nobody.
        let dst = server.url("127.0.0.1", 0, "by-root.txt", "uid=0&gid=0");
        let (st, out, err) = run_tool("nfs-cp", &[local_s, &dst], TOOL_LIMIT).await;
        assert!(st.success(), "nfs-cp as root: {out}{err}");
        assert_eq!(owner(&server.path(0, "by-root.txt")), (65534, 65534));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn squash_follows_the_client_rule_that_matched() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"},
                       {"match": "127.0.0.2", "access": "rw", "squash": "root_squash"},
                       {"match": "127.0.0.3", "access": "rw", "squash": "all_squash"}]),
            )
            .with(json!({"anonuid": 777, "anongid": 778}))])
            .start();
        chmod(server.dir(0), 0o777);
        std::fs::write(server.path(0, "rootfile"), b"r").unwrap();
        chmod(&server.path(0, "rootfile"), 0o600);
        for (src, as_root, as_alice) in [
            ("127.0.0.1", (0, 0), (ALICE, 1000)),
            ("127.0.0.2", (777, 778), (ALICE, 1000)),
            ("127.0.0.3", (777, 778), (777, 778)),
        ] {
            let root = mnt(&server, ip(src), ip(V4_ALLOWED), 0)
                .await
                .unwrap_or_else(|e| panic!("MNT from {src}: {e:?}"));
            for (who, cred, expect) in [
                ("root", unix_credential(0, 0, &[]), as_root),
                ("alice", unix_credential(ALICE, 1000, &[1000]), as_alice),
            ] {
                let mut nfs = nfs_from(&server, ip(src), ip(V4_ALLOWED), cred).await;
                let name = format!("{who}-from-{src}");
                create(&mut nfs, &root, &name, 0o644)
                    .await
                    .unwrap_or_else(|s| panic!("CREATE {name}: {s:?}"));
                assert_eq!(owner(&server.path(0, &name)), expect, "{name}");
                if who == "root" {
                    let f = ok(lookup(&mut nfs, &root, "rootfile").await, "LOOKUP");
                    let granted = access(&mut nfs, &f, ACCESS3_ALL).await.unwrap();
                    let expected = if expect == (0, 0) {
                        ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND
                    } else {
                        0
                    };
                    assert_eq!(
                        granted, expected,
                        "ACCESS of root's 0600 file by root from {src}"
                    );
                }
            }
        }
    })
    .await;
}
