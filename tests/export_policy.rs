//! Export policy as a client sees it: read-only exports, the --allow list, squashing, and
//! permission errors reported as ACCES (never SERVERFAULT).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use support::{bounded, decode_reply, dirop, err_status, lookup, ok, Server, UdpRpc};

const LIMIT: Duration = Duration::from_secs(60);

fn with_args(args: &[&str]) -> Server {
    Server::builder().args(args).start()
}

#[tokio::test]
async fn read_only_export_serves_reads_and_refuses_writes_with_rofs() {
    bounded(LIMIT, async {
        let server = with_args(&["--ro"]);
        std::fs::write(server.export_dir().join("f"), b"read me").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let f = lookup(&mut conn, &root, "f").await;
        let r = conn
            .read(&READ3args {
                file: f.clone(),
                offset: 0,
                count: 100,
            })
            .await
            .expect("READ rpc");
        assert_eq!(
            ok(r, "READ on a read-only export").data.as_ref(),
            b"read me"
        );

        let res = conn
            .write(&WRITE3args {
                file: f.clone(),
                offset: 0,
                count: 1,
                stable: stable_how::FILE_SYNC,
                data: Opaque::borrowed(b"x"),
            })
            .await
            .expect("WRITE rpc");
        assert_eq!(err_status(res, "WRITE").0, nfsstat3::NFS3ERR_ROFS);
        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, "new"),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        assert_eq!(err_status(res, "CREATE").0, nfsstat3::NFS3ERR_ROFS);
        let res = conn
            .remove(&REMOVE3args {
                object: dirop(&root, "f"),
            })
            .await
            .expect("REMOVE rpc");
        assert_eq!(err_status(res, "REMOVE").0, nfsstat3::NFS3ERR_ROFS);
        let res = conn
            .setattr(&SETATTR3args {
                object: f.clone(),
                new_attributes: sattr3 {
                    mode: Nfs3Option::Some(0o600),
                    ..Default::default()
                },
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        assert_eq!(err_status(res, "SETATTR").0, nfsstat3::NFS3ERR_ROFS);

        let want = ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND;
        let a = ok(
            conn.access(&ACCESS3args {
                object: f,
                access: want,
            })
            .await
            .expect("ACCESS rpc"),
            "ACCESS",
        );
        assert_eq!(
            a.access, ACCESS3_READ,
            "a read-only export grants only READ"
        );
        assert_eq!(
            std::fs::read(server.export_dir().join("f")).unwrap(),
            b"read me"
        );
    })
    .await;
}

#[tokio::test]
async fn client_outside_the_allow_list_cannot_mount_or_use_a_handle() {
    bounded(LIMIT, async {
        // A handle obtained while allowed...
        let open = Server::start();
        let handle = open.connect().await.root_nfs_fh3();
        drop(open);

        let server = with_args(&["--allow", "10.0.0.0/8"]);
        // Raw calls: nfs3_client spins forever on a connection the server closes.
        use nfs3_client::nfs3_types::mount;
        let mnt = UdpRpc::encode_call(7, mount::PROGRAM, 3, 1, &support::dirpath_of(&server.name));
        match support::tcp_exchange(server.mount_port, &mnt).await {
            Err(_) => {} // closed at accept
            Ok(reply) => match decode_reply::<mount::mountres3>(&reply) {
                mount::mountres3::Ok(_) => {
                    panic!("MNT from 127.0.0.1 succeeded with only 10.0.0.0/8 allowed")
                }
                mount::mountres3::Err(_) => {}
            },
        }
        // ...and NFS calls straight to the NFS port with a handle are refused too.
        let get = UdpRpc::encode_call(8, PROGRAM, 3, 1, &GETATTR3args { object: handle });
        if let Ok(reply) = support::tcp_exchange(server.nfs_port, &get).await {
            let res = decode_reply::<GETATTR3res>(&reply);
            assert!(
                matches!(res, Nfs3Result::Err(_)),
                "refused client got attributes: {res:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn root_squash_creates_files_as_the_anonymous_user() {
    bounded(LIMIT, async {
        let server = with_args(&["--squash", "root-squash"]);
        std::fs::set_permissions(server.export_dir(), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, "squashed"),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        let attrs = ok(res, "CREATE as squashed root").obj_attributes.unwrap();
        assert_eq!(
            (attrs.uid, attrs.gid),
            (65534, 65534),
            "owner reported over NFS"
        );
        let meta = std::fs::metadata(server.export_dir().join("squashed")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "owner on disk");
    })
    .await;
}

#[tokio::test]
async fn permission_denied_is_reported_as_acces() {
    bounded(LIMIT, async {
        let server = Server::start();
        let dir = server.export_dir();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o600))
            .unwrap();

        let mut conn = server.connect_as(1000, 1000, &[]).await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .create(&CREATE3args {
                where_: dirop(&root, "mine"),
                how: createhow3::UNCHECKED(sattr3::default()),
            })
            .await
            .expect("CREATE rpc");
        assert_eq!(
            err_status(res, "CREATE in a root-owned 0755 dir").0,
            nfsstat3::NFS3ERR_ACCES
        );
        assert!(!dir.join("mine").exists());

        let secret = lookup(&mut conn, &root, "secret").await;
        let res = conn
            .read(&READ3args {
                file: secret,
                offset: 0,
                count: 10,
            })
            .await
            .expect("READ rpc");
        assert_eq!(
            err_status(res, "READ of a root-owned 0600 file").0,
            nfsstat3::NFS3ERR_ACCES
        );

        let res = conn
            .remove(&REMOVE3args {
                object: dirop(&root, "secret"),
            })
            .await
            .expect("REMOVE rpc");
        assert_eq!(
            err_status(res, "REMOVE in a root-owned 0755 dir").0,
            nfsstat3::NFS3ERR_ACCES
        );
        assert!(dir.join("secret").exists());
    })
    .await;
}
