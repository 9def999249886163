//! Export policy beyond one TCP client: UDP calls, SIGHUP reloads of the client rules,
//! and libnfs's own tools from a second source address (in a private network namespace).

use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::RpcError;
use serde_json::json;

use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs root"]
async fn udp_calls_get_the_same_policy() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![
                ExportSpec::new(
                    "/exports/data",
                    json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"},
                           {"match": "127.0.0.2", "access": "ro", "squash": "no_root_squash"}]),
                ),
                ExportSpec::new(
                    "/exports/other",
                    json!([{"match": "127.0.0.3", "access": "rw", "squash": "no_root_squash"}]),
                ),
            ])
            .start();
        std::fs::write(server.path(0, "f"), b"data").unwrap();
        let root = mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .unwrap();
        let mut nfs = nfs_from(
            &server,
            ip(V4_ALLOWED),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        let f = ok(lookup(&mut nfs, &root, "f").await, "LOOKUP f");
        let dst = server.nfs_addr_at(ip(V4_ALLOWED));
        let root_cred = unix_credential(0, 0, &[]);
        const GETATTR: (u32, u32, u32) = (100003, 3, 1);
        const WRITE: (u32, u32, u32) = (100003, 3, 7);
        let getattr_args = GETATTR3args { object: f.clone() };
        let write_args = WRITE3args {
            file: f.clone(),
            offset: 0,
            count: 1,
            stable: stable_how::FILE_SYNC,
            data: nfs3_client::nfs3_types::xdr_codec::Opaque::borrowed(b"X"),
        };

        // 127.0.0.2 (ro): reads work over UDP, writes are ROFS.
        let r: Option<GETATTR3res> =
            udp_call_from(ip("127.0.0.2"), dst, GETATTR, &root_cred, &getattr_args)
                .await
                .unwrap();
        assert_eq!(
            r.map(|r| status(&r)),
            Some(nfsstat3::NFS3_OK),
            "UDP GETATTR from ro client"
        );
        let r: Option<WRITE3res> =
            udp_call_from(ip("127.0.0.2"), dst, WRITE, &root_cred, &write_args)
                .await
                .unwrap();
        assert_eq!(
            r.map(|r| status(&r)),
            Some(nfsstat3::NFS3ERR_ROFS),
            "UDP WRITE from ro client"
        );
        // 127.0.0.3 (admitted on the other export only): ACCES with a learned handle.
        let r: Option<WRITE3res> =
            udp_call_from(ip("127.0.0.3"), dst, WRITE, &root_cred, &write_args)
                .await
                .unwrap();
        assert_eq!(
            r.map(|r| status(&r)),
            Some(nfsstat3::NFS3ERR_ACCES),
            "UDP WRITE from 127.0.0.3"
        );
        let r: Option<GETATTR3res> =
            udp_call_from(ip("127.0.0.3"), dst, GETATTR, &root_cred, &getattr_args)
                .await
                .unwrap();
        assert_eq!(
            r.map(|r| status(&r)),
            Some(nfsstat3::NFS3ERR_ACCES),
            "UDP GETATTR from 127.0.0.3"
        );
        // Every procedure that takes a handle (all but NULL) is refused before it runs.
        // The arguments are well-formed (zeros: empty names, UNCHECKED, no attributes; for
        // MKNOD a FIFO): they are all decoded before the policy is applied.
        let mut raw = Vec::new();
        nfs3_client::nfs3_types::xdr_codec::Pack::pack(&f, &mut raw).unwrap();
        let args_for = |proc_: u32| {
            let mut a = raw.clone();
            if proc_ == 11 {
                a.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]); // name "", NF3FIFO
            }
            a.extend_from_slice(&[0u8; 64]);
            RawArgs(a)
        };
        for proc_ in 1..=21u32 {
            let r: Option<nfsstat3> = udp_call_from(
                ip("127.0.0.3"),
                dst,
                (100003, 3, proc_),
                &root_cred,
                &args_for(proc_),
            )
            .await
            .unwrap_or_else(|e| panic!("procedure {proc_}: {e}"));
            assert_eq!(
                r,
                Some(nfsstat3::NFS3ERR_ACCES),
                "procedure {proc_} from 127.0.0.3 with a handle of /exports/data"
            );
        }
        // And from the read-only client every writing procedure is ROFS, whatever follows.
        for proc_ in [2u32, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
            let r: Option<nfsstat3> = udp_call_from(
                ip("127.0.0.2"),
                dst,
                (100003, 3, proc_),
                &root_cred,
                &args_for(proc_),
            )
            .await
            .unwrap_or_else(|e| panic!("procedure {proc_}: {e}"));
            assert_eq!(
                r,
                Some(nfsstat3::NFS3ERR_ROFS),
                "procedure {proc_} from the read-only 127.0.0.2"
            );
        }
        // A malformed argument behind the handle is GARBAGE_ARGS, refused client or not:
        // the whole call is decoded before policy (MKNOD of ftype 0 is no ftype3).
        let mut bad = raw.clone();
        bad.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let r: Result<Option<nfsstat3>, _> = udp_call_from(
            ip("127.0.0.3"),
            dst,
            (100003, 3, 11),
            &root_cred,
            &RawArgs(bad),
        )
        .await;
        let e = r.expect_err("a malformed MKNOD must not get an NFS status");
        assert!(e.to_string().contains("GARBAGE_ARGS"), "{e}");
        // 127.0.0.4 matches no export: not even an answer.
        let r: Option<GETATTR3res> =
            udp_call_from(ip("127.0.0.4"), dst, GETATTR, &root_cred, &getattr_args)
                .await
                .unwrap();
        assert!(
            r.is_none(),
            "UDP from an address no export admits got an answer"
        );
        assert_eq!(std::fs::read(server.path(0, "f")).unwrap(), b"data");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn sighup_applies_new_client_rules_to_the_next_request() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .listen(&["127.0.0.1"])
            .exports(vec![ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.0/8", "access": "rw", "squash": "no_root_squash"}]),
            )])
            .start();
        let root = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 0).await.unwrap();
        let mut nfs = nfs_from(
            &server,
            ip(V4_OTHER),
            ip(V4_ALLOWED),
            unix_credential(0, 0, &[]),
        )
        .await;
        create(&mut nfs, &root, "before", 0o644)
            .await
            .expect("CREATE while rw");

        // 127.0.0.2 becomes read-only; the open connection is subject to the new rule.
        server.reload_rules(
            0,
            json!([{"match": "127.0.0.0/8", "access": "rw", "squash": "no_root_squash"},
                   {"match": "127.0.0.2", "access": "ro", "squash": "no_root_squash"}]),
        );
        // The signal is asynchronous: wait (bounded) for the first refused write.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        loop {
            match create(&mut nfs, &root, &format!("probe{n}"), 0o644).await {
                Err(nfsstat3::NFS3ERR_ROFS) => break,
                Ok(_) if std::time::Instant::now() < deadline => {
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("CREATE after the reload: {other:?}"),
            }
        }
        assert!(!server.path(0, &format!("probe{n}")).exists());

        // Then it is removed altogether: its open connection either gets ACCES for the
        // handle or is closed by the server; either way nothing more is served to it.
        server.reload_rules(
            0,
            json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let args = GETATTR3args {
                object: root.clone(),
            };
            match nfs.getattr(&args).await {
                Ok(Nfs3Result::Err((nfsstat3::NFS3ERR_ACCES, _))) | Err(RpcError::Io(_)) => break,
                Ok(Nfs3Result::Ok(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Nfs3Result::Ok(_)) => panic!("GETATTR still served 20 s after the reload"),
                Ok(Nfs3Result::Err((s, _))) => panic!("GETATTR after the second reload: {s:?}"),
                Err(e) => panic!("GETATTR after the second reload: {e:?}"),
            }
        }
        // 127.0.0.2 now matches no export at all: its new connections are closed at accept.
        let refused = mnt(&server, ip(V4_OTHER), ip(V4_ALLOWED), 0).await;
        assert!(
            matches!(refused, Err(nfs3_client::MountError::Rpc(RpcError::Io(_)))),
            "MNT after the reload: {refused:?}"
        );
        mnt(&server, ip(V4_ALLOWED), ip(V4_ALLOWED), 0)
            .await
            .expect("127.0.0.1 still mounts");
    })
    .await;
}

/// libnfs itself cannot choose a source address; in a private network namespace whose
/// loopback route prefers 127.0.0.2 as source for every 127/8 destination but 127.0.0.1,
/// `nfs-ls nfs://127.0.0.3/...` comes from 127.0.0.2.
#[test]
#[ignore = "needs root"]
fn libnfs_from_a_denied_address_cannot_list_the_export() {
    in_private_netns(|| {
        let args = [
            "route",
            "replace",
            "local",
            "127.0.0.0/8",
            "dev",
            "lo",
            "proto",
            "kernel",
            "scope",
            "host",
            "src",
            "127.0.0.2",
            "table",
            "local",
        ];
        let st = std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("run ip");
        assert!(st.success(), "ip {args:?} failed");
        let server = Server::builder()
            .listen(&["0.0.0.0"])
            .exports(vec![
                ExportSpec::new(
                    "/exports/data",
                    json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
                ),
                ExportSpec::new(
                    "/exports/other",
                    json!([{"match": "127.0.0.2", "access": "rw", "squash": "no_root_squash"}]),
                ),
            ])
            .start();
        std::fs::write(server.path(0, "visible-to-127.0.0.1"), b"x").unwrap();
        let ls = |url: &str| {
            let out = std::process::Command::new("nfs-ls")
                .arg(url)
                .output()
                .expect("run nfs-ls (libnfs-utils)");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        let (ok1, out1) = ls(&server.url("127.0.0.1", 0, "", ""));
        assert!(
            ok1 && out1.contains("visible-to-127.0.0.1"),
            "allowed: {out1}"
        );
        let (ok2, out2) = ls(&server.url("127.0.0.3", 0, "", ""));
        assert!(
            !ok2 && !out2.contains("visible-to-127.0.0.1"),
            "denied: {out2}"
        );
        let (ok3, out3) = ls(&server.url("127.0.0.3", 1, "", ""));
        assert!(ok3, "127.0.0.2 may list its own export: {out3}");
        let log = server.log();
        assert!(
            log.contains("127.0.0.2"),
            "the refusal is logged with the client address:\n{log}"
        );
    });
}
