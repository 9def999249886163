//! What clients see across a server restart on the same export and state directory:
//! their file handles keep working, and the write verifier changes so they know to resend
//! uncommitted (UNSTABLE) data.

mod support;

use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use support::{bounded, dirop, getattr, lookup, ok, Server};

const LIMIT: Duration = Duration::from_secs(60);

async fn unstable_write(conn: &mut support::Connection, fh: &nfs_fh3, data: &[u8]) -> writeverf3 {
    let res = conn
        .write(&WRITE3args {
            file: fh.clone(),
            offset: 0,
            count: data.len() as u32,
            stable: stable_how::UNSTABLE,
            data: Opaque::borrowed(data),
        })
        .await
        .expect("WRITE rpc");
    ok(res, "WRITE").verf
}

#[tokio::test]
async fn file_handles_survive_a_server_restart() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::create_dir_all(server.export_dir().join("a/b")).unwrap();
        std::fs::write(server.export_dir().join("a/b/file"), b"persistent").unwrap();
        let (root, dir, file, fileid) = {
            let mut conn = server.connect().await;
            let root = conn.root_nfs_fh3();
            let a = lookup(&mut conn, &root, "a").await;
            let b = lookup(&mut conn, &a, "b").await;
            let f = lookup(&mut conn, &b, "file").await;
            let id = getattr(&mut conn, &f).await.fileid;
            (root, b, f, id)
        };

        let server = tokio::task::spawn_blocking(move || server.restart())
            .await
            .unwrap();
        let mut conn = server.connect().await;
        assert_eq!(
            conn.root_nfs_fh3(),
            root,
            "MNT hands out the same root handle after restart"
        );
        assert_eq!(
            getattr(&mut conn, &file).await.fileid,
            fileid,
            "old file handle after restart"
        );
        let res = conn
            .read(&READ3args {
                file: file.clone(),
                offset: 0,
                count: 100,
            })
            .await
            .expect("READ rpc");
        assert_eq!(
            ok(res, "READ with an old handle").data.as_ref(),
            b"persistent"
        );
        let res = conn
            .lookup(&LOOKUP3args {
                what: dirop(&dir, "file"),
            })
            .await
            .expect("LOOKUP rpc");
        ok(res, "LOOKUP in an old directory handle");
    })
    .await;
}

#[tokio::test]
async fn write_verifier_changes_when_the_server_restarts() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("w"), b"").unwrap();
        let before = {
            let mut conn = server.connect().await;
            let root = conn.root_nfs_fh3();
            let fh = lookup(&mut conn, &root, "w").await;
            let v1 = unstable_write(&mut conn, &fh, b"one").await;
            assert_eq!(
                unstable_write(&mut conn, &fh, b"two").await,
                v1,
                "stable within a run"
            );
            v1
        };

        let server = tokio::task::spawn_blocking(move || server.restart())
            .await
            .unwrap();
        let mut conn = server.connect().await;
        // Look the file up again so this test depends only on the verifier, not on handles
        // surviving the restart (file_handles_survive_a_server_restart covers that).
        let root = conn.root_nfs_fh3();
        let fh = lookup(&mut conn, &root, "w").await;
        let after = unstable_write(&mut conn, &fh, b"three").await;
        assert_ne!(
            after, before,
            "write verifier must change across a restart (RFC 1813 3.3.7)"
        );
        let res = conn
            .commit(&COMMIT3args {
                file: fh,
                offset: 0,
                count: 0,
            })
            .await
            .expect("COMMIT rpc");
        assert_eq!(
            ok(res, "COMMIT").verf,
            after,
            "COMMIT verifier after restart"
        );
    })
    .await;
}
