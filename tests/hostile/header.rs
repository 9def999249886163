//! The RPC call header: RPC version, program, version, procedure, credential flavour and
//! AUTH_SYS contents, opaque lengths.

use super::*;

#[test]
fn wrong_rpc_version_gets_rpc_mismatch() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    for (i, v) in [3u32, 1, 0, 0xFFFF_FFFF].into_iter().enumerate() {
        let mut call = Call::null(10 + i as u32, NFS_PROG, NFS_V3);
        call.rpcvers = v;
        assert_eq!(
            c.call(&call),
            Reply::RpcMismatch {
                xid: 10 + i as u32,
                low: 2,
                high: 2
            },
            "rpcvers {v}"
        );
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn unknown_program_gets_prog_unavail() {
    let mut srv = start_server();
    for addr in [srv.nfs_addr(), srv.mount_addr(), srv.portmap_addr()] {
        let mut c = Conn::connect(addr).unwrap();
        for prog in [0u32, 100_001, 100_004, 200_000, 0xFFFF_FFFF] {
            let r = c.call(&Call::null(prog ^ 0x55, prog, 1));
            assert_eq!(r.accept_stat(), Some(PROG_UNAVAIL), "program {prog}: {r:?}");
        }
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn unknown_version_gets_prog_mismatch_with_range() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    for v in [2u32, 4, 0xFFFF_FFFF] {
        let r = c.call(&Call::null(20 + v % 100, NFS_PROG, v));
        assert_eq!(r.prog_mismatch(), Some((3, 3)), "NFS version {v}: {r:?}");
    }
    for v in [4u32, 0xFFFF_FFFF] {
        let r = c.call(&Call::null(30 + v % 100, MOUNT_PROG, v));
        let (lo, hi) = r
            .prog_mismatch()
            .unwrap_or_else(|| panic!("MOUNT version {v}: {r:?}"));
        assert!(lo <= 3 && hi == 3, "MOUNT supported range {lo}..{hi}");
    }
    for v in [1u32, 5, 0xFFFF_FFFF] {
        let r = c.call(&Call::null(40 + v % 100, PMAP_PROG, v));
        assert_eq!(
            r.prog_mismatch(),
            Some((2, 4)),
            "portmap version {v}: {r:?}"
        );
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn unknown_procedure_gets_proc_unavail() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.mount_addr()).unwrap();
    for (prog, vers, procs) in [
        (NFS_PROG, NFS_V3, &[22u32, 23, 1000, 0xFFFF_FFFF][..]),
        (MOUNT_PROG, MOUNT_V3, &[6, 7, 0xFFFF_FFFF][..]),
        (PMAP_PROG, PMAP_V2, &[6, 100, 0xFFFF_FFFF][..]),
    ] {
        for &p in procs {
            let r = c.call(&Call::new(p % 1000 + prog % 7, prog, vers, p));
            assert_eq!(
                r.accept_stat(),
                Some(PROC_UNAVAIL),
                "program {prog} v{vers} proc {p}: {r:?}"
            );
        }
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn unknown_auth_flavour_gets_auth_error() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    for (i, flavor) in [3u32, 4, 7777, 0xFFFF_FFFF].into_iter().enumerate() {
        let mut call = Call::null(50 + i as u32, NFS_PROG, NFS_V3);
        call.proc_ = NFSPROC3_GETATTR; // NULL may legitimately skip authentication
        call.args = Xdr::new().opaque(&[0u8; 8]).bytes();
        call.cred_flavor = flavor;
        call.cred = vec![1, 2, 3, 4];
        match c.call(&call) {
            Reply::AuthError { stat, .. } => assert!(
                [AUTH_BADCRED, AUTH_REJECTEDCRED, AUTH_TOOWEAK].contains(&stat),
                "flavour {flavor}: auth_stat {stat}"
            ),
            r => panic!("flavour {flavor}: expected AUTH_ERROR, got {r:?}"),
        }
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn auth_sys_with_huge_gid_count_is_rejected() {
    let mut srv = start_server();
    let rss0 = srv.rss_kib();
    for (i, count) in [0xFFFF_FFFFu32, 0x4000_0000, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        let mut call = Call::null(60 + i as u32, NFS_PROG, NFS_V3);
        call.cred = Xdr::new()
            .u32(1)
            .opaque(b"h")
            .u32(0)
            .u32(0)
            .u32(count)
            .u32(0)
            .u32(0)
            .bytes();
        c.send(&call.record()).unwrap();
        match c.outcome() {
            Outcome::Reply(Reply::AuthError { xid, stat }) => {
                assert_eq!(
                    (xid, stat),
                    (call.xid, AUTH_BADCRED),
                    "gid count {count:#x}"
                )
            }
            Outcome::Closed => {}
            o => panic!(
                "gid count {count:#x}: expected AUTH_ERROR(AUTH_BADCRED) or close, got {o:?}"
            ),
        }
    }
    let grown = srv.rss_kib().saturating_sub(rss0);
    assert!(grown < 16 * 1024, "RSS grew {grown} KiB on huge gid counts");
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn credential_and_verifier_length_4gib_are_rejected() {
    let mut srv = start_server();
    let rss0 = srv.rss_kib();
    // cred: xid CALL 2 prog vers proc AUTH_SYS len=0xFFFFFFFF, then a few bytes
    for (i, (field, len)) in [
        (6usize, 0xFFFF_FFFFu32),
        (6, 0xFFFF_FFFC),
        (6, 401),
        (8, 0xFFFF_FFFF),
    ]
    .into_iter()
    .enumerate()
    {
        let xid = 70 + i as u32;
        let mut call = Call::null(xid, NFS_PROG, NFS_V3);
        call.cred = if field == 6 {
            Vec::new()
        } else {
            auth_sys_body(0, 0, &[])
        };
        let mut msg = call.encode();
        // word index of the length: cred length is word 7, verifier length follows the cred body
        let at = if field == 6 {
            7 * 4
        } else {
            7 * 4 + 4 + call.cred.len() + 4
        };
        msg[at..at + 4].copy_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(&[0u8; 64]);
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        c.send(&record(&msg)).unwrap();
        match c.outcome() {
            Outcome::Reply(Reply::AuthError { xid: x, stat }) => {
                assert_eq!(x, xid);
                assert!(
                    stat == AUTH_BADCRED || (field == 8 && stat == AUTH_BADVERF),
                    "length {len:#x} in word {field}: auth_stat {stat}"
                );
            }
            Outcome::Reply(Reply::Accepted {
                stat: GARBAGE_ARGS, ..
            })
            | Outcome::Closed => {}
            o => panic!("length {len:#x}: expected AUTH_ERROR, GARBAGE_ARGS or close, got {o:?}"),
        }
    }
    let grown = srv.rss_kib().saturating_sub(rss0);
    assert!(
        grown < 16 * 1024,
        "RSS grew {grown} KiB on 4 GiB opaque lengths"
    );
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn auth_sys_with_oversized_machine_name_is_rejected() {
    let mut srv = start_server();
    for (i, name_len) in [0xFFFF_FFFFu32, 256, 1 << 30].into_iter().enumerate() {
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        let mut call = Call::null(65 + i as u32, NFS_PROG, NFS_V3);
        call.proc_ = NFSPROC3_GETATTR;
        call.args = Xdr::new().opaque(&[0u8; 8]).bytes();
        call.cred = Xdr::new()
            .u32(1)
            .u32(name_len)
            .raw(&[b'm'; 16])
            .u32(0)
            .u32(0)
            .u32(0)
            .bytes();
        c.send(&call.record()).unwrap();
        match c.outcome() {
            Outcome::Reply(Reply::AuthError {
                stat: AUTH_BADCRED, ..
            })
            | Outcome::Closed => {}
            o => panic!(
                "machine name length {name_len:#x}: expected AUTH_ERROR(AUTH_BADCRED), got {o:?}"
            ),
        }
    }
    assert_serves_null_everywhere(&mut srv);
}
