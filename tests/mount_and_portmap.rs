//! The MOUNT v3 and portmap side of the server, and the process contract (ready line,
//! every port serving every program on TCP and UDP, clean SIGTERM), via `nfs3_client`.

mod support;

use std::time::Duration;

use nfs3_client::nfs3_types::mount::{self, mountres3};
use nfs3_client::nfs3_types::nfs3;
use nfs3_client::nfs3_types::portmap::{self, mapping, IPPROTO_TCP, IPPROTO_UDP};
use nfs3_client::nfs3_types::xdr_codec::Void;
use nfs3_client::tokio::TokioIo;
use nfs3_client::{MountError, PortmapperClient};
use support::{bounded, dirpath_of, udp_call, Server, EXPORT_NAME};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(60);

fn bytes_to_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn mount_export_lists_the_export_and_its_allowed_clients() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut mnt = server.mount_client().await;
        let exports = mnt.export().await.expect("MOUNT EXPORT").into_inner();
        let dirs: Vec<String> = exports
            .iter()
            .map(|e| bytes_to_string(&e.ex_dir.0))
            .collect();
        assert_eq!(dirs, vec![EXPORT_NAME.to_string()], "EXPORT list");
        let groups: Vec<String> = exports[0]
            .ex_groups
            .0
            .iter()
            .map(|g| bytes_to_string(&g.0))
            .collect();
        assert!(!groups.is_empty(), "EXPORT should name the allowed clients");
        assert!(
            groups.iter().any(|g| g.starts_with("127.")),
            "loopback should be allowed by default: {groups:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn mount_mnt_dump_and_umnt_track_the_mount_table() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut mnt = server.mount_client().await;
        assert!(
            mnt.dump().await.expect("DUMP").into_inner().is_empty(),
            "no mounts yet"
        );

        let ok = mnt
            .mnt(dirpath_of(EXPORT_NAME))
            .await
            .expect("MNT of the export");
        assert!(
            !ok.fhandle.0.is_empty() && ok.fhandle.0.len() <= 64,
            "root handle length {}",
            ok.fhandle.0.len()
        );
        assert!(
            ok.auth_flavors.contains(&1),
            "AUTH_UNIX (1) must be offered: {:?}",
            ok.auth_flavors
        );

        let dump = mnt.dump().await.expect("DUMP").into_inner();
        let entries: Vec<(String, String)> = dump
            .iter()
            .map(|m| {
                (
                    bytes_to_string(&m.ml_hostname.0),
                    bytes_to_string(&m.ml_directory.0),
                )
            })
            .collect();
        assert_eq!(entries.len(), 1, "one mount recorded: {entries:?}");
        assert_eq!(entries[0].1, EXPORT_NAME, "mounted directory");
        assert!(!entries[0].0.is_empty(), "mount table names the client");

        mnt.umnt(dirpath_of(EXPORT_NAME)).await.expect("UMNT");
        assert!(
            mnt.dump().await.expect("DUMP").into_inner().is_empty(),
            "UMNT removes the entry"
        );

        mnt.mnt(dirpath_of(EXPORT_NAME)).await.expect("MNT again");
        mnt.umntall().await.expect("UMNTALL");
        assert!(
            mnt.dump().await.expect("DUMP").into_inner().is_empty(),
            "UMNTALL removes every entry"
        );
    })
    .await;
}

#[tokio::test]
async fn mnt_of_an_unknown_path_is_refused() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut mnt = server.mount_client().await;
        match mnt.mnt(dirpath_of("/exports/nonexistent")).await {
            Err(MountError::Denied(stat)) => assert!(
                matches!(
                    stat,
                    mount::mountstat3::MNT3ERR_NOENT | mount::mountstat3::MNT3ERR_ACCES
                ),
                "unexpected MNT status {stat:?}"
            ),
            other => panic!("MNT of an unknown export should be denied, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn mnt_handle_is_the_root_that_nfs_serves() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("marker"), b"m").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .lookup(&nfs3::LOOKUP3args {
                what: support::dirop(&root, "marker"),
            })
            .await
            .expect("LOOKUP rpc");
        support::ok(res, "LOOKUP marker in the mounted root");
        conn.unmount().await.expect("UMNT");
    })
    .await;
}

#[tokio::test]
async fn portmap_getport_reports_the_nfs_and_mount_ports_on_tcp() {
    bounded(LIMIT, async {
        let server = Server::start();
        assert_ne!(server.portmap_port, 0, "portmap should be running");
        let stream = TcpStream::connect(("127.0.0.1", server.portmap_port))
            .await
            .unwrap();
        let mut pm = PortmapperClient::new(TokioIo::new(stream));
        pm.null().await.expect("PMAP NULL");
        for (prog, want, what) in [
            (nfs3::PROGRAM, server.nfs_port, "nfs"),
            (mount::PROGRAM, server.mount_port, "mountd"),
        ] {
            for prot in [IPPROTO_TCP, IPPROTO_UDP] {
                let got = pm
                    .getport(prog, 3, prot)
                    .await
                    .unwrap_or_else(|e| panic!("GETPORT {what}/{prot}: {e:?}"));
                assert_eq!(got, want, "GETPORT {what} v3 proto {prot}");
            }
        }
        assert!(
            pm.getport(100_021 + 7, 1, IPPROTO_TCP).await.is_err(),
            "unknown program must map to port 0"
        );

        let dump = pm.dump().await.expect("PMAP DUMP");
        let has = |prog: u32, prot: u32, port: u16| {
            dump.iter().any(|m| {
                m.prog == prog && m.vers == 3 && m.prot == prot && m.port == u32::from(port)
            })
        };
        for prot in [IPPROTO_TCP, IPPROTO_UDP] {
            assert!(
                has(nfs3::PROGRAM, prot, server.nfs_port),
                "DUMP lacks nfs v3/{prot}: {dump:?}"
            );
            assert!(
                has(mount::PROGRAM, prot, server.mount_port),
                "DUMP lacks mountd v3/{prot}: {dump:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn every_port_answers_every_program_over_tcp_and_udp() {
    bounded(LIMIT, async {
        let server = Server::start();
        let ports = [
            ("nfs", server.nfs_port),
            ("mount", server.mount_port),
            ("portmap", server.portmap_port),
        ];
        for (what, port) in ports {
            // TCP: NULL of each program, plus a real call of each.
            let mut rpc = nfs3_client::rpc::RpcClient::new(TokioIo::new(
                TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            ));
            for (prog, vers) in [
                (portmap::PROGRAM, 2),
                (mount::PROGRAM, 3),
                (nfs3::PROGRAM, 3),
            ] {
                rpc.call::<Void, Void>(prog, vers, 0, &Void)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("TCP NULL prog {prog} v{vers} on the {what} port: {e:?}")
                    });
            }
            let args = mapping {
                prog: nfs3::PROGRAM,
                vers: 3,
                prot: IPPROTO_TCP,
                port: 0,
            };
            let got: u32 = rpc
                .call(portmap::PROGRAM, 2, 3, &args)
                .await
                .expect("TCP GETPORT");
            assert_eq!(
                got,
                u32::from(server.nfs_port),
                "TCP GETPORT nfs on the {what} port"
            );
            let res: mountres3 = rpc
                .call(mount::PROGRAM, 3, 1, &dirpath_of(EXPORT_NAME))
                .await
                .expect("TCP MNT");
            assert!(
                matches!(res, mountres3::Ok(_)),
                "TCP MNT on the {what} port: {res:?}"
            );

            // UDP: the same set.
            for (prog, vers) in [
                (portmap::PROGRAM, 2),
                (mount::PROGRAM, 3),
                (nfs3::PROGRAM, 3),
            ] {
                udp_call::<Void, Void>(port, prog, vers, 0, &Void)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("UDP NULL prog {prog} v{vers} on the {what} port: {e}")
                    });
            }
            let args = mapping {
                prog: mount::PROGRAM,
                vers: 3,
                prot: IPPROTO_UDP,
                port: 0,
            };
            let got: u32 = udp_call(port, portmap::PROGRAM, 2, 3, &args)
                .await
                .expect("UDP GETPORT");
            assert_eq!(
                got,
                u32::from(server.mount_port),
                "UDP GETPORT mountd on the {what} port"
            );
            let res: mountres3 = udp_call(port, mount::PROGRAM, 3, 1, &dirpath_of(EXPORT_NAME))
                .await
                .expect("UDP MNT");
            let fh = match res {
                mountres3::Ok(ok) => ok.fhandle.0.to_vec(),
                mountres3::Err(e) => panic!("UDP MNT on the {what} port: {e:?}"),
            };
            let args = nfs3::GETATTR3args {
                object: nfs3::nfs_fh3 { data: fh.into() },
            };
            let res: nfs3::GETATTR3res = udp_call(port, nfs3::PROGRAM, 3, 1, &args)
                .await
                .expect("UDP GETATTR");
            let attrs = support::ok(res, "UDP GETATTR of the root").obj_attributes;
            assert_eq!(attrs.type_, nfs3::ftype3::NF3DIR);
        }
    })
    .await;
}

#[tokio::test]
async fn unsupported_program_version_is_answered_with_prog_mismatch() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut rpc = nfs3_client::rpc::RpcClient::new(TokioIo::new(
            TcpStream::connect(("127.0.0.1", server.nfs_port))
                .await
                .unwrap(),
        ));
        match rpc.call::<Void, Void>(nfs3::PROGRAM, 4, 0, &Void).await {
            Err(nfs3_client::RpcError::ProgMismatch { low, high }) => {
                assert!(
                    low <= 3 && 3 <= high,
                    "mismatch range {low}..{high} should include 3"
                )
            }
            other => panic!("NFS v4 NULL should be PROG_MISMATCH, got {other:?}"),
        }
        match rpc.call::<Void, Void>(100_099, 1, 0, &Void).await {
            Err(nfs3_client::RpcError::ProgUnavail) => {}
            other => panic!("unknown program should be PROG_UNAVAIL, got {other:?}"),
        }
        // The connection is still usable afterwards.
        rpc.call::<Void, Void>(nfs3::PROGRAM, 3, 0, &Void)
            .await
            .expect("NULL after errors");
    })
    .await;
}

#[tokio::test]
async fn no_portmap_flag_reports_port_zero_and_nfs_still_works() {
    bounded(LIMIT, async {
        let server = Server::builder().no_portmap().start();
        assert_eq!(server.portmap_port, 0);
        let mut conn = server.connect().await;
        conn.null().await.expect("NFS NULL");
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        conn.null().await.expect("NFS NULL before SIGTERM");
        let nfs_port = server.nfs_port;
        let status = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        assert!(
            status.success(),
            "volnfs should exit 0 on SIGTERM, got {status}"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", nfs_port)).await.is_err(),
            "nfs port still accepting after exit"
        );
    })
    .await;
}

#[tokio::test]
async fn default_name_is_the_absolute_export_path() {
    bounded(LIMIT, async {
        // Started without --name: the export is published under its absolute path.
        let server = Server::builder().default_name().no_portmap().start();
        let path = server.export_dir().canonicalize().unwrap();
        let mut mnt = server.mount_client().await;
        let exports = mnt.export().await.expect("EXPORT").into_inner();
        let dirs: Vec<String> = exports
            .iter()
            .map(|e| bytes_to_string(&e.ex_dir.0))
            .collect();
        assert_eq!(dirs, vec![path.to_string_lossy().into_owned()]);
        mnt.mnt(dirpath_of(&path.to_string_lossy()))
            .await
            .expect("MNT by the default name");
    })
    .await;
}

#[tokio::test]
async fn mnt_of_a_subdirectory_returns_its_handle_and_never_leaves_the_export() {
    bounded(LIMIT, async {
        let server = Server::start();
        let dir = server.export_dir();
        std::fs::create_dir_all(dir.join("sub/inner")).unwrap();
        std::fs::write(dir.join("sub/inner/f"), b"f").unwrap();
        std::fs::write(dir.join("plain"), b"p").unwrap();
        std::os::unix::fs::symlink("/", dir.join("escape")).unwrap();

        let mut mnt = server.mount_client().await;
        let ok = mnt
            .mnt(dirpath_of(&format!("{EXPORT_NAME}/sub/inner")))
            .await
            .expect("MNT of a subdirectory");
        let sub_fh = nfs3::nfs_fh3 {
            data: ok.fhandle.0.to_vec().into(),
        };

        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let sub = support::lookup(&mut conn, &root, "sub").await;
        let inner = support::lookup(&mut conn, &sub, "inner").await;
        let want = support::getattr(&mut conn, &inner).await.fileid;
        assert_eq!(
            support::getattr(&mut conn, &sub_fh).await.fileid,
            want,
            "MNT handle names sub/inner"
        );
        support::lookup(&mut conn, &sub_fh, "f").await;

        for (path, what) in [
            (format!("{EXPORT_NAME}/plain"), "a regular file"),
            (
                format!("{EXPORT_NAME}/escape"),
                "a symlink out of the export",
            ),
            (format!("{EXPORT_NAME}/../../etc"), "a path with .."),
            (format!("{EXPORT_NAME}/missing"), "a missing directory"),
            (
                format!("{EXPORT_NAME}x"),
                "a sibling name sharing the prefix",
            ),
        ] {
            match mnt.mnt(dirpath_of(&path)).await {
                Err(MountError::Denied(_)) => {}
                other => panic!("MNT of {what} ({path}) should be denied, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn serves_clients_on_the_ipv6_loopback() {
    bounded(LIMIT, async {
        let server = Server::builder().listen(&["::1"]).start();
        std::fs::write(server.export_dir().join("v6"), b"six").unwrap();
        let mut conn = nfs3_client::Nfs3ConnectionBuilder::new(
            nfs3_client::tokio::TokioConnector,
            "::1",
            EXPORT_NAME,
        )
        .mount_port(server.mount_port)
        .nfs3_port(server.nfs_port)
        .connect_from_privileged_port(false)
        .credential(support::unix_credential(0, 0, &[]))
        .mount()
        .await
        .expect("mount over ::1");
        let root = conn.root_nfs_fh3();
        let fh = support::lookup(&mut conn, &root, "v6").await;
        assert_eq!(support::getattr(&mut conn, &fh).await.size, 3);

        let stream = TcpStream::connect(("::1", server.portmap_port))
            .await
            .unwrap();
        let mut pm = PortmapperClient::new(TokioIo::new(stream));
        assert_eq!(
            pm.getport(nfs3::PROGRAM, 3, IPPROTO_TCP)
                .await
                .expect("GETPORT over ::1"),
            server.nfs_port
        );
    })
    .await;
}
