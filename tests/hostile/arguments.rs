//! Procedure arguments: truncated or oversized XDR, and valid calls with absurd counts.

use super::*;

#[test]
fn truncated_nfs_arguments_get_garbage_args() {
    let mut srv = start_server();
    let root = mount_root(&srv);
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let cases: Vec<(&str, Call)> = vec![
        (
            "GETATTR, 2 bytes",
            nfs(80, NFSPROC3_GETATTR, Xdr::new().raw(&[0, 0])),
        ),
        ("GETATTR, no args", nfs(81, NFSPROC3_GETATTR, Xdr::new())),
        (
            "GETATTR, handle length 4 GiB",
            nfs(82, NFSPROC3_GETATTR, Xdr::new().u32(0xFFFF_FFFF).raw(&root)),
        ),
        (
            "GETATTR, handle length 65",
            nfs(83, NFSPROC3_GETATTR, Xdr::new().opaque(&[7u8; 65])),
        ),
        (
            "LOOKUP, no name",
            nfs(84, NFSPROC3_LOOKUP, fh(Xdr::new(), &root)),
        ),
        (
            "LOOKUP, name length 4 GiB",
            nfs(
                85,
                NFSPROC3_LOOKUP,
                fh(Xdr::new(), &root).u32(0xFFFF_FFFF).raw(b"abcd"),
            ),
        ),
        (
            "WRITE, data shorter than its length",
            nfs(
                86,
                NFSPROC3_WRITE,
                fh(Xdr::new(), &root)
                    .u64(0)
                    .u32(4096)
                    .u32(0)
                    .u32(4096)
                    .raw(&[1u8; 100]),
            ),
        ),
        (
            "READ, no count",
            nfs(87, NFSPROC3_READ, fh(Xdr::new(), &root).u64(0)),
        ),
        (
            "READDIR, truncated verifier",
            nfs(88, NFSPROC3_READDIR, fh(Xdr::new(), &root).u64(0).u32(0)),
        ),
        (
            "CREATE, bad createmode",
            nfs(
                89,
                NFSPROC3_CREATE,
                fh(Xdr::new(), &root).opaque(b"x").u32(9),
            ),
        ),
        (
            "MNT, no path",
            Call::new(90, MOUNT_PROG, MOUNT_V3, MOUNTPROC3_MNT),
        ),
        (
            "GETPORT, 2 words",
            Call::new(91, PMAP_PROG, PMAP_V2, PMAPPROC_GETPORT)
                .args(Xdr::new().u32(1).u32(2).bytes()),
        ),
    ];
    for (what, call) in &cases {
        let r = c.call(call);
        assert_eq!(r.accept_stat(), Some(GARBAGE_ARGS), "{what}: {r:?}");
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn huge_counts_in_valid_calls_are_clamped() {
    let mut srv = start_server();
    std::fs::write(srv.export_dir().join("small.dat"), b"0123456789").unwrap();
    let root = mount_root(&srv);
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let r = c.call(&nfs(
        1,
        NFSPROC3_LOOKUP,
        fh(Xdr::new(), &root).opaque(b"small.dat"),
    ));
    assert_eq!(word(r.body(), 0), 0, "LOOKUP small.dat");
    let len = word(r.body(), 4) as usize;
    let file = r.body()[8..8 + len].to_vec();
    for i in 0..40 {
        std::fs::write(srv.export_dir().join(format!("entry-{i:03}")), b"").unwrap();
    }
    let rss0 = srv.rss_kib();
    let calls = [
        (
            "READ count 4 GiB",
            nfs(2, NFSPROC3_READ, fh(Xdr::new(), &file).u64(0).u32(u32::MAX)),
        ),
        (
            "READ at offset 2^63",
            nfs(
                3,
                NFSPROC3_READ,
                fh(Xdr::new(), &file).u64(1 << 63).u32(u32::MAX),
            ),
        ),
        (
            "READDIR count 4 GiB",
            nfs(
                4,
                NFSPROC3_READDIR,
                fh(Xdr::new(), &root).u64(0).u64(0).u32(u32::MAX),
            ),
        ),
        (
            "READDIRPLUS counts 4 GiB",
            nfs(
                5,
                NFSPROC3_READDIRPLUS,
                fh(Xdr::new(), &root)
                    .u64(0)
                    .u64(0)
                    .u32(u32::MAX)
                    .u32(u32::MAX),
            ),
        ),
        (
            "READDIR count 0",
            nfs(
                6,
                NFSPROC3_READDIR,
                fh(Xdr::new(), &root).u64(0).u64(0).u32(0),
            ),
        ),
        (
            "READDIR cookie 2^64-1",
            nfs(
                7,
                NFSPROC3_READDIR,
                fh(Xdr::new(), &root).u64(u64::MAX).u64(0).u32(4096),
            ),
        ),
    ];
    for (what, call) in &calls {
        c.send(&call.record()).unwrap();
        let m = c
            .read_record()
            .expect("read reply")
            .expect("connection closed");
        assert!(
            m.len() <= (1 << 20) + 4096,
            "{what}: {}-byte reply",
            m.len()
        );
        let r = decode_reply(&m).unwrap();
        assert_eq!(
            (r.xid(), r.accept_stat()),
            (call.xid, Some(SUCCESS)),
            "{what}: {r:?}"
        );
    }
    // WRITE whose count disagrees with its data: never trust the larger one
    let w = nfs(
        8,
        NFSPROC3_WRITE,
        fh(Xdr::new(), &file)
            .u64(0)
            .u32(u32::MAX)
            .u32(0)
            .opaque(b"abcd"),
    );
    let r = c.call(&w);
    match r.accept_stat() {
        Some(GARBAGE_ARGS) => {}
        Some(SUCCESS) => {
            let st = word(r.body(), 0);
            assert_ne!(
                st, 0,
                "WRITE with count 4 GiB and 4 bytes of data succeeded"
            );
        }
        _ => panic!("WRITE count mismatch: {r:?}"),
    }
    let grown = srv.rss_kib().saturating_sub(rss0);
    assert!(grown < 16 * 1024, "RSS grew {grown} KiB on huge counts");
    assert!(
        std::fs::metadata(srv.export_dir().join("small.dat"))
            .unwrap()
            .len()
            <= 10
    );
    assert_serves_null_everywhere(&mut srv);
}
