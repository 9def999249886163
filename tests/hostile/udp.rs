//! The same hostile inputs as datagrams on every port.

use super::*;

#[test]
fn udp_garbage_and_unknown_program_on_portmap_and_mount_ports() {
    let mut srv = start_server();
    let mut rng = Rng::new(0x0075_6470);
    let t = Duration::from_secs(3);
    for addr in [srv.portmap_addr(), srv.mount_addr(), srv.nfs_addr()] {
        for _ in 0..100 {
            let n = rng.below(1500) as usize;
            let _ = udp_call(addr, &rng.bytes(n), Duration::from_millis(5));
        }
        let r = udp_call(addr, &Call::null(0x1111, 200_000, 1).encode(), t)
            .expect("UDP unknown program: no reply");
        assert_eq!(
            (r.xid(), r.accept_stat()),
            (0x1111, Some(PROG_UNAVAIL)),
            "UDP unknown program: {r:?}"
        );
        let r = udp_call(addr, &Call::null(0x1112, NFS_PROG, 4).encode(), t)
            .expect("UDP NFSv4: no reply");
        assert_eq!(
            r.prog_mismatch(),
            Some((3, 3)),
            "UDP unknown version: {r:?}"
        );
        let mut bad = Call::null(0x1113, PMAP_PROG, PMAP_V2);
        bad.rpcvers = 3;
        let r = udp_call(addr, &bad.encode(), t).expect("UDP rpcvers 3: no reply");
        assert_eq!(
            r,
            Reply::RpcMismatch {
                xid: 0x1113,
                low: 2,
                high: 2
            }
        );
        let mut gids = Call::null(0x1114, MOUNT_PROG, MOUNT_V3);
        gids.cred = Xdr::new()
            .u32(1)
            .opaque(b"h")
            .u32(0)
            .u32(0)
            .u32(0xFFFF_FFFF)
            .bytes();
        match udp_call(addr, &gids.encode(), t) {
            None
            | Some(Reply::AuthError {
                stat: AUTH_BADCRED, ..
            }) => {}
            Some(r) => panic!("UDP huge gid count: {r:?}"),
        }
        // a datagram carrying a TCP record mark is garbage on UDP
        let _ = udp_call(
            addr,
            &Call::null(0x1115, NFS_PROG, NFS_V3).record(),
            Duration::from_millis(200),
        );
        let r = udp_call(addr, &Call::null(0x1116, NFS_PROG, NFS_V3).encode(), t)
            .expect("UDP NULL: no reply");
        assert_eq!((r.xid(), r.accept_stat()), (0x1116, Some(SUCCESS)));
    }
    assert_serves_null_everywhere(&mut srv);
}
