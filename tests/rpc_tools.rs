//! The stock ONC RPC tools (`rpcinfo` from rpcbind, `showmount` from nfs-common) against the
//! server's built-in portmapper. They only talk to port 111, so each test runs the server in
//! a private network namespace created for that test alone (the host's port 111 is never
//! touched). Needs root: the tests are `#[ignore = "needs root"]`.

mod support;

use std::time::Duration;

use support::{block_on, dirpath_of, in_private_netns, run_tool, Server, EXPORT_NAME};

const TOOL_LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` with a server whose portmapper is on port 111, on a fresh thread in a new,
/// empty network namespace with only `lo` up. Processes it spawns (the server, the tools)
/// and sockets it opens live in that namespace too.
fn with_server_on_port_111<F>(body: F)
where
    F: FnOnce(Server) + Send + 'static,
{
    in_private_netns(move || {
        let server = Server::builder().portmap_port(111).start();
        assert_eq!(
            server.portmap_port, 111,
            "portmap should be on the port we asked for"
        );
        body(server);
    })
}

#[test]
#[ignore = "needs root"]
fn rpcinfo_p_lists_nfs_and_mountd_v3_on_tcp_and_udp() {
    with_server_on_port_111(|server| {
        block_on(async {
            let (status, out, err) = run_tool("rpcinfo", &["-p", "127.0.0.1"], TOOL_LIMIT).await;
            assert!(
                status.success(),
                "rpcinfo -p failed: {status}\n{out}\n{err}"
            );
            let rows: Vec<Vec<&str>> = out
                .lines()
                .map(|l| l.split_whitespace().collect())
                .collect();
            let has = |prog: &str, proto: &str, port: u16| {
                rows.iter().any(|r| {
                    r.len() >= 4
                        && r[0] == prog
                        && r[1] == "3"
                        && r[2] == proto
                        && r[3] == port.to_string()
                })
            };
            for proto in ["tcp", "udp"] {
                assert!(
                    has("100003", proto, server.nfs_port),
                    "nfs v3/{proto} on {} missing:\n{out}",
                    server.nfs_port
                );
                assert!(
                    has("100005", proto, server.mount_port),
                    "mountd v3/{proto} on {} missing:\n{out}",
                    server.mount_port
                );
            }
            assert!(
                rows.iter()
                    .any(|r| r.len() >= 4 && r[0] == "100000" && r[1] == "2" && r[3] == "111"),
                "portmapper v2 on 111 missing:\n{out}"
            );
            // The lock manager (v4) and status monitor (v1) answer on the NFS port.
            for (prog, vers) in [("100021", "4"), ("100024", "1")] {
                for proto in ["tcp", "udp"] {
                    assert!(
                        rows.iter().any(|r| r.len() >= 4
                            && r[0] == prog
                            && r[1] == vers
                            && r[2] == proto
                            && r[3] == server.nfs_port.to_string()),
                        "program {prog} v{vers}/{proto} on {} missing:\n{out}",
                        server.nfs_port
                    );
                }
            }
        });
    });
}

#[test]
#[ignore = "needs root"]
fn rpcinfo_reaches_nfs_and_mountd_over_tcp_and_udp() {
    with_server_on_port_111(|_server| {
        block_on(async {
            for flag in ["-t", "-u"] {
                for prog in ["100003", "100005"] {
                    let (status, out, err) =
                        run_tool("rpcinfo", &[flag, "127.0.0.1", prog, "3"], TOOL_LIMIT).await;
                    assert!(
                        status.success(),
                        "rpcinfo {flag} {prog} 3 failed: {status}\n{out}\n{err}"
                    );
                    assert!(
                        out.contains("ready and waiting"),
                        "rpcinfo {flag} {prog} 3:\n{out}"
                    );
                }
            }
        });
    });
}

/// `rpcinfo -l` asks RPCBIND v4 GETADDRLIST: every transport of one program
/// and version, with its universal address.
#[test]
#[ignore = "needs root"]
fn rpcinfo_l_lists_every_transport_of_a_program() {
    with_server_on_port_111(|server| {
        block_on(async {
            for (prog, port) in [("100003", server.nfs_port), ("100005", server.mount_port)] {
                let (status, out, err) =
                    run_tool("rpcinfo", &["-l", "127.0.0.1", prog, "3"], TOOL_LIMIT).await;
                assert!(
                    status.success(),
                    "rpcinfo -l {prog} 3 failed: {status}\n{out}\n{err}"
                );
                let addr = format!("127.0.0.1.{}.{}", port >> 8, port & 0xff);
                for netid in ["tcp", "udp"] {
                    assert!(
                        out.lines().any(|l| {
                            let r: Vec<&str> = l.split_whitespace().collect();
                            r.len() >= 4
                                && r[0] == prog
                                && r[1] == "3"
                                && r[2].split('/').nth(1) == Some(netid)
                                && r[3] == addr
                        }),
                        "rpcinfo -l {prog} 3: no {netid} entry at {addr}:\n{out}"
                    );
                }
            }
            // A program the server does not have: no entries, and rpcinfo says so.
            let (status, out, err) =
                run_tool("rpcinfo", &["-l", "127.0.0.1", "100099", "1"], TOOL_LIMIT).await;
            assert!(
                !out.contains("100099"),
                "rpcinfo -l of an unknown program listed it: {status}\n{out}\n{err}"
            );
        });
    });
}

#[test]
#[ignore = "needs root"]
fn rpcinfo_rpcbind_dump_lists_universal_addresses() {
    with_server_on_port_111(|server| {
        block_on(async {
            // Plain `rpcinfo HOST` uses RPCBPROC_DUMP (rpcbind v4, falling back to v3).
            let (status, out, err) = run_tool("rpcinfo", &["127.0.0.1"], TOOL_LIMIT).await;
            assert!(status.success(), "rpcinfo failed: {status}\n{out}\n{err}");
            let suffix = |port: u16| format!(".{}.{}", port >> 8, port & 0xff);
            let has = |prog: &str, netid: &str, port: u16| {
                out.lines().any(|l| {
                    let r: Vec<&str> = l.split_whitespace().collect();
                    r.len() >= 4
                        && r[0] == prog
                        && r[1] == "3"
                        && r[2] == netid
                        && r[3].ends_with(&suffix(port))
                })
            };
            for netid in ["tcp", "udp"] {
                assert!(
                    has("100003", netid, server.nfs_port),
                    "nfs v3 {netid} missing:\n{out}"
                );
                assert!(
                    has("100005", netid, server.mount_port),
                    "mountd v3 {netid} missing:\n{out}"
                );
            }
        });
    });
}

#[test]
#[ignore = "needs root"]
fn showmount_e_lists_the_export_and_its_allowed_clients() {
    with_server_on_port_111(|_server| {
        block_on(async {
            let (status, out, err) = run_tool("showmount", &["-e", "127.0.0.1"], TOOL_LIMIT).await;
            assert!(
                status.success(),
                "showmount -e failed: {status}\n{out}\n{err}"
            );
            let line = out
                .lines()
                .find(|l| l.split_whitespace().next() == Some(EXPORT_NAME))
                .unwrap_or_else(|| panic!("{EXPORT_NAME} not listed by showmount -e:\n{out}"));
            let clients = line.split_whitespace().nth(1).unwrap_or("");
            assert!(
                clients.contains("127."),
                "allowed clients should include loopback: {line:?}"
            );
            assert!(
                !clients.contains("everyone"),
                "default policy is loopback only, not everyone: {line:?}"
            );
        });
    });
}

#[test]
#[ignore = "needs root"]
fn showmount_a_shows_a_mount_after_mnt() {
    with_server_on_port_111(|server| {
        block_on(async {
            let (status, out, err) = run_tool("showmount", &["-a", "127.0.0.1"], TOOL_LIMIT).await;
            assert!(
                status.success(),
                "showmount -a failed: {status}\n{out}\n{err}"
            );
            assert!(
                !out.contains(EXPORT_NAME),
                "no mounts yet, but showmount -a shows one:\n{out}"
            );

            let mut mnt = server.mount_client().await;
            mnt.mnt(dirpath_of(EXPORT_NAME)).await.expect("MNT");

            let (status, out, err) = run_tool("showmount", &["-a", "127.0.0.1"], TOOL_LIMIT).await;
            assert!(
                status.success(),
                "showmount -a failed: {status}\n{out}\n{err}"
            );
            assert!(
                out.lines().any(|l| l.ends_with(&format!(":{EXPORT_NAME}"))),
                "showmount -a should list host:{EXPORT_NAME}:\n{out}"
            );

            mnt.umnt(dirpath_of(EXPORT_NAME)).await.expect("UMNT");
            let (_, out, _) = run_tool("showmount", &["-a", "127.0.0.1"], TOOL_LIMIT).await;
            assert!(
                !out.contains(EXPORT_NAME),
                "UMNT should remove the mount:\n{out}"
            );
        });
    });
}
