//! Record marking and message framing: lying fragment lengths, truncated records, valid
//! multi-fragment records, pipelining, raw garbage, and messages that are not calls.

use super::*;

#[test]
fn fragment_header_claiming_2gib_closes_connection() {
    let mut srv = start_server();
    let rss0 = srv.rss_kib();
    // last fragment of 2 GiB - 1, a non-last fragment of 2 GiB - 1, and both followed by a little data
    for mark in [0xFFFF_FFFFu32, 0x7FFF_FFFF, 0x8000_0000 | (1 << 30)] {
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        c.send(&mark.to_be_bytes()).unwrap();
        let _ = c.send(&[0u8; 64]);
        c.expect_closed(Duration::from_secs(5));
    }
    // many small non-last fragments adding up to more than the maximum record size (~1 MiB)
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let frag = 256 * 1024;
    let mut sent_all = true;
    for _ in 0..12 {
        let mut f = (frag as u32).to_be_bytes().to_vec();
        f.extend(vec![0u8; frag]);
        if c.send(&f).is_err() {
            sent_all = false;
            break;
        }
    }
    if sent_all {
        c.expect_closed(Duration::from_secs(5));
    }
    let grown = srv.rss_kib().saturating_sub(rss0);
    assert!(
        grown < 16 * 1024,
        "RSS grew {grown} KiB on oversized fragments"
    );
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn truncated_record_then_close_is_harmless() {
    let mut srv = start_server();
    let full = Call::null(7, NFS_PROG, NFS_V3).record();
    // cut inside the record mark, right after it, in the header, and a mark promising more bytes
    for cut in [2usize, 4, 17, full.len() - 1] {
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        c.send(&full[..cut]).unwrap();
        drop(c);
    }
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let mut lie = (LAST_FRAGMENT | 1000).to_be_bytes().to_vec();
    lie.extend_from_slice(&full[4..]);
    c.send(&lie).unwrap();
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_closed(Duration::from_secs(5));
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn multi_fragment_records_are_answered() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    // NULL split into 1-, 3- and 7-byte fragments (headers split across fragments)
    for (i, size) in [1usize, 3, 7, 40].into_iter().enumerate() {
        let call = Call::null(100 + i as u32, NFS_PROG, NFS_V3);
        c.send(&fragmented(&call.encode(), size)).unwrap();
        let r = c.reply();
        assert_eq!(
            (r.xid(), r.accept_stat()),
            (100 + i as u32, Some(SUCCESS)),
            "fragments of {size}"
        );
    }
    // an empty non-last fragment in the middle
    let msg = Call::null(200, NFS_PROG, NFS_V3).encode();
    let mut rec = 0u32.to_be_bytes().to_vec();
    rec.extend_from_slice(&record(&msg));
    c.send(&rec).unwrap();
    assert_eq!(
        c.reply().accept_stat(),
        Some(SUCCESS),
        "empty first fragment"
    );

    // a 200 KiB WRITE in 13 fragments, read back with READ
    let root = mount_root(&srv);
    let file = create_file(&mut c, 300, &root, "fragmented.dat");
    let data: Vec<u8> = (0..200 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let w = nfs(
        301,
        NFSPROC3_WRITE,
        fh(Xdr::new(), &file)
            .u64(0)
            .u32(data.len() as u32)
            .u32(2)
            .opaque(&data),
    );
    c.send(&fragmented(&w.encode(), 16 * 1024)).unwrap();
    let r = c.reply();
    assert_eq!((r.xid(), r.accept_stat()), (301, Some(SUCCESS)));
    assert_eq!(word(r.body(), 0), 0, "WRITE nfsstat3");
    let on_disk = std::fs::read(srv.export_dir().join("fragmented.dat")).unwrap();
    assert!(
        on_disk == data,
        "multi-fragment WRITE stored {} bytes, different data",
        on_disk.len()
    );
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn pipelined_requests_are_all_answered() {
    let mut srv = start_server();
    let root = mount_root(&srv);
    let mut calls = Vec::new();
    for i in 0..600u32 {
        let xid = 0x5000_0000 + i * 3;
        calls.push(match i % 4 {
            0 => Call::null(xid, NFS_PROG, NFS_V3),
            1 => nfs(xid, NFSPROC3_GETATTR, fh(Xdr::new(), &root)),
            2 => nfs(
                xid,
                NFSPROC3_LOOKUP,
                fh(Xdr::new(), &root).opaque(format!("missing{i}").as_bytes()),
            ),
            _ => nfs(
                xid,
                NFSPROC3_READDIR,
                fh(Xdr::new(), &root).u64(0).u64(0).u32(4096),
            ),
        });
    }
    let t = Instant::now();
    let replies = pipelined(srv.nfs_addr(), &calls);
    assert!(t.elapsed() < Duration::from_secs(30));
    for (call, i) in calls.iter().zip(0u32..) {
        let r = replies
            .iter()
            .find(|r| r.xid() == call.xid)
            .unwrap_or_else(|| panic!("no reply for call {i}"));
        assert_eq!(r.accept_stat(), Some(SUCCESS), "call {i}: {r:?}");
        if i % 4 != 0 {
            let want = if i % 4 == 2 { 2 } else { 0 }; // NFS3ERR_NOENT for the missing names
            assert_eq!(word(r.body(), 0), want, "nfsstat3 of call {i}");
        }
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn random_garbage_is_survived() {
    let mut srv = start_server();
    let mut rng = Rng::new(0x6761_7262);
    for round in 0..200 {
        let mut c = Conn::connect(srv.nfs_addr()).unwrap();
        c.s.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let n = 1 + rng.below(2048) as usize;
        let mut junk = rng.bytes(n);
        if round % 2 == 0 {
            // keep the record mark plausible so the junk reaches the call decoder
            junk.splice(0..0, (LAST_FRAGMENT | n as u32).to_be_bytes());
        }
        let _ = c.send(&junk);
        let _ = c.outcome();
    }
    assert_serves_null_everywhere(&mut srv);
}

#[test]
fn reply_messages_sent_to_the_server_are_ignored() {
    let mut srv = start_server();
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    // a REPLY (msg_type 1) and a message type that does not exist, then a real call
    let fake_reply = Xdr::new()
        .u32(0xAAAA)
        .u32(1)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .bytes();
    let bogus_type = Xdr::new().u32(0xBBBB).u32(7).u32(2).u32(NFS_PROG).bytes();
    let mut bytes = record(&fake_reply);
    bytes.extend(record(&bogus_type));
    bytes.extend(Call::null(0xCCCC, NFS_PROG, NFS_V3).record());
    c.send(&bytes).unwrap();
    match c.outcome() {
        Outcome::Reply(r) => assert_eq!(
            (r.xid(), r.accept_stat()),
            (0xCCCC, Some(SUCCESS)),
            "first reply should answer the real call"
        ),
        // closing on a non-call is acceptable, answering it is not
        Outcome::Closed => {}
        Outcome::Silent => panic!("no reply to the NULL that followed a stray REPLY message"),
    }
    assert_serves_null_everywhere(&mut srv);
}
