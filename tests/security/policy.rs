//! Export policy by client address: allowed addresses mount and write; a denied address gets
//! MNT3ERR_ACCES, NFS3ERR_ACCES with a handle it learned elsewhere, or no connection at all
//! when no export admits it; `ro` rules get ROFS on every writing procedure; `secure`.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::{Nfs3Client, RpcError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(60);

/// `/exports/data` admits 127.0.0.1 and ::1; `/exports/other` admits only 127.0.0.2, so
/// 127.0.0.2 passes the accept-time check but has no rights on `/exports/data`.
fn two_export_server() -> Server {
    Server::builder()
        .listen(&loopback_listen())
        .exports(vec![
            ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"},
                       {"match": "::1", "access": "rw", "squash": "no_root_squash"}]),
            ),
            ExportSpec::new(
                "/exports/other",
                json!([{"match": "127.0.0.2", "access": "rw", "squash": "no_root_squash"}]),
            ),
        ])
        .start()
}

#[tokio::test]
#[ignore = "needs root"]
async fn allowed_ipv4_and_ipv6_clients_mount_and_write() {
    bounded(LIMIT, async {
        let server = two_export_server();
        for src in loopback_listen() {
            let file = format!("from-{src}");
            let file = file.as_str();
            let root = mnt(&server, ip(src), ip(src), 0)
                .await
                .unwrap_or_else(|e| panic!("MNT from {src}: {e:?}"));
            let mut nfs = nfs_from(&server, ip(src), ip(src), unix_credential(0, 0, &[])).await;
            let fh = create(&mut nfs, &root, file, 0o644)
                .await
                .unwrap_or_else(|s| panic!("CREATE from {src}: {s:?}"));
            assert_eq!(
                write(&mut nfs, &fh, 0, src.as_bytes()).await,
                Ok(src.len() as u32)
            );
            assert_eq!(
                std::fs::read(server.path(0, file)).unwrap(),
                src.as_bytes(),
                "data written from {src} is on disk"
            );
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn denied_address_cannot_mount_nor_use_a_learned_handle() {
    bounded(LIMIT, async {
        let server = two_export_server();
        std::fs::write(server.path(0, "secret"), b"top secret").unwrap();
        // 127.0.0.2 may mount its own export (so its connections are accepted) ...
        mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 1)
            .await
            .expect("127.0.0.2 mounts /exports/other");
        // ... but not /exports/data.
        let refused = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 0).await;
        assert!(
            is_mnt_acces(&refused),
            "MNT of /exports/data from 127.0.0.2: expected MNT3ERR_ACCES, got {refused:?}"
        );

        // The allowed client learns the root handle and a file handle ...
        let root = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .unwrap();
        let mut good = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        let file = ok(lookup(&mut good, &root, "secret").await, "LOOKUP secret");

        // ... which are worthless from 127.0.0.2, whatever the procedure.
        let mut bad = nfs_from(
            &server,
            ip(V4_OTHER),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        assert_eq!(
            getattr_status(&mut bad, &root).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            status(&lookup(&mut bad, &root, "secret").await),
            nfsstat3::NFS3ERR_ACCES
        );
        assert_eq!(
            read(&mut bad, &file, 100).await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            write(&mut bad, &file, 0, b"x").await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            create(&mut bad, &root, "planted", 0o644).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            readdir_status(&mut bad, &root).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            remove(&mut bad, &root, "secret").await,
            Err(nfsstat3::NFS3ERR_ACCES)
        );
        assert_eq!(
            std::fs::read(server.path(0, "secret")).unwrap(),
            b"top secret"
        );
        assert!(!server.path(0, "planted").exists());

        // Refusals are logged with the client address, once per client, not once per call.
        for _ in 0..5 {
            let again = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 0).await;
            assert!(is_mnt_acces(&again), "{again:?}");
            assert_eq!(
                getattr_status(&mut bad, &root).await.err(),
                Some(nfsstat3::NFS3ERR_ACCES)
            );
        }
        let nfs_lines = server.log_lines_about("127.0.0.2", "NFS access refused");
        assert_eq!(
            nfs_lines.len(),
            1,
            "NFS refusals of 127.0.0.2 logged: {nfs_lines:#?}"
        );
        let mnt_lines = server.log_lines_about("127.0.0.2", "MNT refused");
        assert_eq!(
            mnt_lines.len(),
            1,
            "MNT refusals of 127.0.0.2 logged: {mnt_lines:#?}"
        );
    })
    .await;
}

/// Reads from a connection the server should have closed: EOF or a reset, within a bound.
async fn assert_closed_by_server(mut s: tokio::net::TcpStream, what: &str) {
    // Send a NULL call so a server that did keep the connection would answer.
    let null_call: [u8; 44] = {
        let mut b = [0u8; 44];
        b[0..4].copy_from_slice(&(0x8000_0000u32 | 40).to_be_bytes());
        b[4..8].copy_from_slice(&1u32.to_be_bytes()); // xid
        b[8..12].copy_from_slice(&0u32.to_be_bytes()); // CALL
        b[12..16].copy_from_slice(&2u32.to_be_bytes()); // RPC v2
        b[16..20].copy_from_slice(&100003u32.to_be_bytes());
        b[20..24].copy_from_slice(&3u32.to_be_bytes());
        // proc 0, AUTH_NONE cred and verifier: all zero.
        b
    };
    let _ = s.write_all(&null_call).await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{what}: server answered {n} bytes instead of closing the connection"),
        Err(_) => panic!("{what}: connection still open after 10 s"),
    }
}

#[tokio::test]
#[ignore = "needs root"]
async fn address_matching_no_export_is_disconnected_at_accept() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&loopback_listen())
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
            )])
            .start();
        let root = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .unwrap();

        let mut denied = vec![(V4_OTHER, V4_ALLOWED)];
        if loopback_listen().contains(&V6_LOOPBACK) {
            denied.push((V6_LOOPBACK, V6_LOOPBACK));
        }
        for &(src, dst) in &denied {
            for port in [server.nfs_port, server.mount_port] {
                let s = tcp_from(ip(src), 0, SocketAddr::new(ip(dst), port))
                    .await
                    .expect("the kernel completes the handshake");
                assert_closed_by_server(s, &format!("{src} -> port {port}")).await;
            }
            // A real client with a handle learned elsewhere gets nowhere either.
            let s = tcp_from(ip(src), 0, server.nfs_addr_at(ip(dst)))
                .await
                .unwrap();
            let mut nfs = Nfs3Client::new_with_auth(Io(s), unix_credential(0, 0, &[]), none());
            let args = GETATTR3args {
                object: root.clone(),
            };
            let call = nfs.getattr(&args);
            match tokio::time::timeout(Duration::from_secs(10), call).await {
                Err(_) => panic!("GETATTR from {src}: no answer and no close within 10 s"),
                Ok(Err(RpcError::Io(_))) => {}
                other => panic!("GETATTR from {src} on a closed connection: {other:?}"),
            }
            let mut m = mount_client(&server, ip(src), ip(dst)).await;
            match tokio::time::timeout(Duration::from_secs(10), m.null()).await {
                Err(_) => panic!("MOUNT NULL from {src}: no answer and no close within 10 s"),
                Ok(Err(RpcError::Io(_))) => {}
                other => {
                    panic!("MOUNT NULL from {src}: expected a closed connection, got {other:?}")
                }
            }
        }
        // Each refused address is logged (with the address), once.
        for (src, _) in &denied {
            let lines = server.log_lines_about(&format!("client={src}"), "refused");
            assert_eq!(
                lines.len(),
                1,
                "log lines about {src} after 4 refused connections: {lines:#?}"
            );
        }
        // The allowed address still works after all that.
        let mut nfs = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        assert_eq!(getattr(&mut nfs, &root).await.type_, ftype3::NF3DIR);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn read_only_rule_refuses_every_writing_procedure_with_rofs() {
    bounded(LIMIT, async {
        // Most specific rule wins: 127.0.0.2/32 is read-only inside a read-write /8.
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.0/8", "access": "rw", "squash": "no_root_squash"},
                       {"match": "127.0.0.2", "access": "ro", "squash": "no_root_squash"}]),
            )])
            .start();
        let dir = server.dir(0);
        std::fs::write(dir.join("f"), b"original").unwrap();
        std::fs::set_permissions(
            dir.join("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        std::fs::create_dir(dir.join("d")).unwrap();

        let root = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 0)
            .await
            .expect("a ro client may mount");
        let mut ro = nfs_from(
            &server,
            ip(V4_OTHER),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        let f = ok(lookup(&mut ro, &root, "f").await, "LOOKUP f");
        let d = ok(lookup(&mut ro, &root, "d").await, "LOOKUP d");
        assert_eq!(
            read(&mut ro, &f, 100).await.as_deref(),
            Ok(&b"original"[..]),
            "ro may read"
        );

        let rofs = Err(nfsstat3::NFS3ERR_ROFS);
        assert_eq!(setattr(&mut ro, &f, mode(0o600)).await, rofs, "SETATTR");
        assert_eq!(write(&mut ro, &f, 0, b"X").await.map(|_| ()), rofs, "WRITE");
        assert_eq!(
            create(&mut ro, &root, "new", 0o644).await.map(|_| ()),
            rofs,
            "CREATE"
        );
        assert_eq!(
            mkdir(&mut ro, &root, "newdir", 0o755).await.map(|_| ()),
            rofs,
            "MKDIR"
        );
        assert_eq!(
            symlink(&mut ro, &root, "sl", "f").await.map(|_| ()),
            rofs,
            "SYMLINK"
        );
        assert_eq!(
            mkfifo(&mut ro, &root, "fifo", 0o644).await.map(|_| ()),
            rofs,
            "MKNOD"
        );
        assert_eq!(remove(&mut ro, &root, "f").await, rofs, "REMOVE");
        assert_eq!(rmdir(&mut ro, &root, "d").await, rofs, "RMDIR");
        assert_eq!(rename(&mut ro, &root, "f", "g").await, rofs, "RENAME");
        assert_eq!(link(&mut ro, &f, &root, "hard").await, rofs, "LINK");

        // ACCESS reflects the read-only rule: no MODIFY/EXTEND/DELETE even for root.
        let granted = access(&mut ro, &f, ACCESS3_ALL).await.expect("ACCESS file");
        assert_eq!(
            granted & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE),
            0,
            "file: {granted:#x}"
        );
        assert_ne!(granted & ACCESS3_READ, 0, "file READ: {granted:#x}");
        for (what, fh) in [("root", &root), ("dir", &d)] {
            let granted = access(&mut ro, fh, ACCESS3_ALL).await.expect("ACCESS dir");
            assert_eq!(
                granted & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE),
                0,
                "{what}: {granted:#x}"
            );
            assert_ne!(granted & ACCESS3_LOOKUP, 0, "{what} LOOKUP: {granted:#x}");
        }

        // Nothing changed on disk.
        let meta = std::fs::metadata(dir.join("f")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o666);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"original");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["d", "f"]);

        // The read-write client under the same /8 does get MODIFY and can write.
        let root_rw = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .unwrap();
        let mut rw = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        let granted = access(&mut rw, &f, ACCESS3_ALL).await.unwrap();
        assert_ne!(granted & ACCESS3_MODIFY, 0, "rw client: {granted:#x}");
        let f_rw = ok(lookup(&mut rw, &root_rw, "f").await, "LOOKUP f");
        assert_eq!(write(&mut rw, &f_rw, 0, b"X").await, Ok(1));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn secure_export_requires_a_privileged_source_port() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
            )
            .with(json!({"secure": true}))])
            .start();
        let refused = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0).await;
        assert!(
            is_mnt_acces(&refused),
            "MNT from an unprivileged port: expected MNT3ERR_ACCES, got {refused:?}"
        );
        let priv_mount = tcp_from_privileged(
            ip(V4_ALLOWED),
            SocketAddr::new(ip(V4_ALLOWED), server.mount_port),
        )
        .await
        .expect("privileged port");
        let mut m = nfs3_client::MountClient::new_with_auth(
            Io(priv_mount),
            unix_credential(0, 0, &[]),
            none(),
        );
        let root = m
            .mnt(nfs3_client::nfs3_types::mount::dirpath(
                nfs3_client::nfs3_types::xdr_codec::Opaque::borrowed(b"/exports/data"),
            ))
            .await
            .expect("MNT from a privileged port");
        let root = nfs_fh3 {
            data: nfs3_client::nfs3_types::xdr_codec::Opaque::owned(root.fhandle.0.to_vec()),
        };
        let mut unpriv = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        assert_eq!(
            getattr_status(&mut unpriv, &root).await.err(),
            Some(nfsstat3::NFS3ERR_ACCES)
        );
        let s = tcp_from_privileged(ip(V4_ALLOWED), server.nfs_addr_at(ip(V4_ALLOWED)))
            .await
            .unwrap();
        let mut privileged = Nfs3Client::new_with_auth(Io(s), unix_credential(0, 0, &[]), none());
        assert_eq!(getattr(&mut privileged, &root).await.type_, ftype3::NF3DIR);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn an_ipv4_mapped_rule_matches_the_ipv4_client() {
    bounded(LIMIT, async {
        // Listeners are IPv6-only, so IPv4 clients always arrive as IPv4; a rule written in
        // the mapped form must still match them (and only them).
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "::ffff:127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
            )])
            .start();
        let root = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .expect("127.0.0.1 matches the rule ::ffff:127.0.0.1");
        let mut nfs = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        assert_eq!(getattr(&mut nfs, &root).await.type_, ftype3::NF3DIR);
        let s = tcp_from(ip(V4_OTHER), 0, server.nfs_addr_at(ip(V4_ALLOWED)))
            .await
            .unwrap();
        assert_closed_by_server(s, "127.0.0.2 with only a ::ffff:127.0.0.1 rule").await;
    })
    .await;
}
