//! Resource bounds: memory under floods, unread replies, the connection limit.

use super::*;

/// Runs `per_thread` on `threads` threads and waits for all of them.
fn parallel(threads: usize, per_thread: impl Fn(usize) + Sync) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &per_thread;
            s.spawn(move || f(t));
        }
    });
}

#[test]
fn memory_stays_bounded_under_hostile_flood() {
    let mut srv = start_server();
    // warm up every path once so lazily allocated runtime state is in the baseline
    assert_serves_null_everywhere(&mut srv);
    let _ = mount_root(&srv);
    let rss0 = srv.rss_kib();
    let started = Instant::now();
    let nfs = srv.nfs_addr();

    // 1. thousands of connections each claiming a 2 GiB fragment
    parallel(8, |t| {
        for i in 0..300 {
            let Ok(mut c) = Conn::connect(nfs) else {
                continue;
            };
            let mark = if (t + i) % 2 == 0 {
                0xFFFF_FFFFu32
            } else {
                0x7FFF_FFF0
            };
            let _ = c.send(&mark.to_be_bytes());
            let _ = c.send(&[0u8; 28]);
        }
    });
    // 2. thousands of AUTH_SYS credentials with gid count 0xFFFFFFFF, pipelined
    parallel(8, |t| {
        let Ok(mut c) = Conn::connect(nfs) else {
            return;
        };
        let mut all = Vec::new();
        for i in 0..300u32 {
            let mut call = Call::null(t as u32 * 1000 + i, NFS_PROG, NFS_V3);
            call.cred = Xdr::new()
                .u32(1)
                .opaque(b"h")
                .u32(0)
                .u32(0)
                .u32(0xFFFF_FFFF)
                .bytes();
            all.extend(call.record());
        }
        let _ = c.send(&all);
        c.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        while let Outcome::Reply(_) = c.outcome() {}
    });
    srv.assert_alive();
    let after_bursts = srv.rss_kib();

    // 3. many connections held open at once, each in the middle of a record that claims
    //    almost 1 MiB (a server that sizes buffers from the claimed length pays 1 MiB each)
    let mut held = Vec::new();
    for i in 0..1500 {
        match Conn::connect(nfs) {
            Ok(mut c) => {
                let mut partial = (LAST_FRAGMENT | 1_000_000).to_be_bytes().to_vec();
                partial.extend_from_slice(&Call::null(i, NFS_PROG, NFS_V3).encode()[..24]);
                let _ = c.send(&partial);
                held.push(c);
            }
            Err(_) => break, // connection bound reached and refused: fine
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    srv.assert_alive();
    let while_held = srv.rss_kib();
    let fds = srv.open_fds();
    assert!(
        fds < 1500,
        "server holds {fds} descriptors with 1500 connections open: connection count not bounded"
    );
    // the server must still answer someone while the others hold their slots, or at least
    // right after they go away
    drop(held);
    std::thread::sleep(Duration::from_millis(500));
    assert_serves_null_everywhere(&mut srv);
    let rss1 = srv.rss_kib();
    eprintln!(
        "RSS KiB: baseline {rss0}, after bursts {after_bursts}, 1500 half-records held {while_held}, \
         after {rss1}; {:?}",
        started.elapsed()
    );
    let limit = 64 * 1024;
    for (what, v) in [
        ("after bursts", after_bursts),
        ("while holding connections", while_held),
        ("after", rss1),
    ] {
        assert!(
            v.saturating_sub(rss0) < limit,
            "RSS grew {} KiB {what} (limit {limit} KiB)",
            v - rss0
        );
    }
}

#[test]
fn clients_that_never_read_replies_cannot_pin_memory() {
    let mut srv = start_server();
    std::fs::write(srv.export_dir().join("big.dat"), vec![0x42u8; 1 << 20]).unwrap();
    let root = mount_root(&srv);
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let r = c.call(&nfs(
        1,
        NFSPROC3_LOOKUP,
        fh(Xdr::new(), &root).opaque(b"big.dat"),
    ));
    assert_eq!(
        (r.accept_stat(), word(r.body(), 0)),
        (Some(SUCCESS), 0),
        "LOOKUP big.dat"
    );
    let len = word(r.body(), 4) as usize;
    let file = r.body()[8..8 + len].to_vec();
    drop(c);
    let rss0 = srv.rss_kib();
    // 4 connections each pipeline 256 READs of 1 MiB and never read a byte of the replies
    let mut conns = Vec::new();
    for k in 0..4u32 {
        let c = Conn::connect(srv.nfs_addr()).unwrap();
        let mut w = c.s.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut all = Vec::new();
        for i in 0..256u32 {
            all.extend(
                nfs(
                    k << 16 | i,
                    NFSPROC3_READ,
                    fh(Xdr::new(), &file).u64(0).u32(1 << 20),
                )
                .record(),
            );
        }
        // the server may stop reading (back-pressure): a write timeout is expected then
        let _ = std::io::Write::write_all(&mut w, &all);
        conns.push(c);
    }
    std::thread::sleep(Duration::from_secs(2));
    srv.assert_alive();
    let pinned = srv.rss_kib().saturating_sub(rss0);
    drop(conns);
    std::thread::sleep(Duration::from_millis(500));
    assert_serves_null_everywhere(&mut srv);
    eprintln!("RSS growth with 4 x 256 unread 1 MiB READ replies: {pinned} KiB");
    assert!(
        pinned < 64 * 1024,
        "4 connections that never read their replies pinned {pinned} KiB of server memory"
    );
}

#[test]
fn hoarded_connection_slots_do_not_lock_out_new_clients() {
    let mut srv = start_server();
    // More connections than the server's connection bound, each stuck in the middle of a record
    // (slowloris). A server that only frees a slot when its holder leaves, or after a long idle
    // timeout, can be locked up by one client; it must reclaim slots (e.g. close the oldest
    // idle/stalled connection, or time out incomplete records quickly) so new clients get served.
    let mut held = Vec::new();
    for i in 0..1200u32 {
        let Ok(mut c) = Conn::connect(srv.nfs_addr()) else {
            break;
        };
        let mut partial = (LAST_FRAGMENT | 200).to_be_bytes().to_vec();
        partial.extend_from_slice(&Call::null(i, NFS_PROG, NFS_V3).encode()[..12]);
        let _ = c.send(&partial);
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    srv.assert_alive();
    let t = Instant::now();
    let mut fresh = Conn::connect(srv.nfs_addr()).expect("connect while slots are hoarded");
    fresh
        .s
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    fresh
        .send(&Call::null(0xF2E5, NFS_PROG, NFS_V3).record())
        .unwrap();
    let outcome = fresh.outcome();
    let waited = t.elapsed();
    drop(held);
    assert!(
        matches!(&outcome, Outcome::Reply(r) if r.xid() == 0xF2E5 && r.accept_stat() == Some(SUCCESS)),
        "with 1200 stalled connections held open, a new client got {outcome:?} after {waited:?}"
    );
    assert_serves_null_everywhere(&mut srv);
}
