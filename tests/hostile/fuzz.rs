//! Seeded mutations of valid NFS, MOUNT and portmap calls; the server must never die.

use super::*;

fn mutate(rng: &mut Rng, msg: &mut Vec<u8>, header_len: usize) {
    let lo = if rng.below(5) == 0 {
        0
    } else {
        header_len.min(msg.len())
    };
    for _ in 0..1 + rng.below(4) {
        if msg.len() <= lo {
            let n = 1 + rng.below(16) as usize;
            msg.extend(rng.bytes(n));
            continue;
        }
        let at = lo + rng.below((msg.len() - lo) as u64) as usize;
        match rng.below(8) {
            0 => msg[at] ^= 1 << rng.below(8),
            1 => msg[at] = rng.u32() as u8,
            2 => {
                // a whole aligned word to an interesting value (lengths, counts, enums)
                let w = at / 4 * 4;
                if w + 4 <= msg.len() {
                    let v = [
                        0u32,
                        1,
                        0xFFFF_FFFF,
                        0x8000_0000,
                        0x7FFF_FFFF,
                        64,
                        65,
                        4096,
                        rng.u32(),
                    ][rng.below(9) as usize];
                    msg[w..w + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            3 => msg.truncate(at),
            4 => {
                let n = rng.below(64) as usize;
                let junk = rng.bytes(n);
                msg.splice(at..at, junk);
            }
            5 => {
                let end = (at + 1 + rng.below(16) as usize).min(msg.len());
                msg.drain(at..end);
            }
            6 => {
                let n = rng.below(256) as usize;
                msg.extend(rng.bytes(n));
            }
            _ => {
                let w = at / 4 * 4;
                if w + 4 <= msg.len() {
                    let v = word(msg, w)
                        .wrapping_add(rng.below(9) as u32)
                        .wrapping_sub(4);
                    msg[w..w + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
}

#[test]
fn fuzzed_nfs_calls_never_kill_the_server() {
    let mut srv = start_server();
    let root = mount_root(&srv);
    let mut c = Conn::connect(srv.nfs_addr()).unwrap();
    let file = create_file(&mut c, 1, &root, "fuzz.dat");
    let w = nfs(
        2,
        NFSPROC3_WRITE,
        fh(Xdr::new(), &file)
            .u64(0)
            .u32(8192)
            .u32(2)
            .opaque(&[0x5a; 8192]),
    );
    assert_eq!(c.call(&w).accept_stat(), Some(SUCCESS));
    drop(c);

    let path = srv.export_dir().to_str().unwrap().as_bytes().to_vec();
    let r = || Xdr::new();
    let templates: Vec<Call> = vec![
        nfs(0, NFSPROC3_GETATTR, fh(r(), &root)),
        nfs(0, NFSPROC3_GETATTR, fh(r(), &file)),
        nfs(0, NFSPROC3_SETATTR, sattr_none(fh(r(), &file)).u32(0)),
        nfs(
            0,
            NFSPROC3_SETATTR,
            fh(r(), &file)
                .u32(1)
                .u32(0o644)
                .u32(0)
                .u32(0)
                .u32(1)
                .u64(100)
                .u32(1)
                .u32(1)
                .u32(0),
        ),
        nfs(0, NFSPROC3_LOOKUP, fh(r(), &root).opaque(b"fuzz.dat")),
        nfs(0, NFSPROC3_LOOKUP, fh(r(), &root).opaque(b"..")),
        nfs(0, NFSPROC3_ACCESS, fh(r(), &root).u32(0x3f)),
        nfs(0, NFSPROC3_READ, fh(r(), &file).u64(0).u32(4096)),
        nfs(
            0,
            NFSPROC3_WRITE,
            fh(r(), &file).u64(512).u32(64).u32(0).opaque(&[0xa5; 64]),
        ),
        nfs(
            0,
            NFSPROC3_CREATE,
            sattr_none(fh(r(), &root).opaque(b"f1").u32(0)),
        ),
        nfs(
            0,
            NFSPROC3_CREATE,
            fh(r(), &root)
                .opaque(b"f2")
                .u32(2)
                .u64(0x0102_0304_0506_0708),
        ),
        nfs(0, NFSPROC3_MKDIR, sattr_none(fh(r(), &root).opaque(b"d1"))),
        nfs(0, NFSPROC3_REMOVE, fh(r(), &root).opaque(b"f1")),
        nfs(
            0,
            NFSPROC3_RENAME,
            fh(r(), &root).opaque(b"f2").opaque(&root).opaque(b"f3"),
        ),
        nfs(0, NFSPROC3_READDIR, fh(r(), &root).u64(0).u64(0).u32(4096)),
        nfs(
            0,
            NFSPROC3_READDIRPLUS,
            fh(r(), &root).u64(0).u64(0).u32(1024).u32(8192),
        ),
        nfs(0, NFSPROC3_FSSTAT, fh(r(), &root)),
        nfs(0, NFSPROC3_FSINFO, fh(r(), &root)),
        nfs(0, NFSPROC3_PATHCONF, fh(r(), &root)),
        nfs(0, NFSPROC3_COMMIT, fh(r(), &file).u64(0).u32(0)),
        Call::new(0, MOUNT_PROG, MOUNT_V3, MOUNTPROC3_MNT).args(r().opaque(&path).bytes()),
        Call::new(0, MOUNT_PROG, MOUNT_V3, MOUNTPROC3_EXPORT),
        Call::new(0, PMAP_PROG, PMAP_V2, PMAPPROC_GETPORT)
            .args(r().u32(NFS_PROG).u32(3).u32(6).u32(0).bytes()),
    ];

    let mut rng = Rng::new(0xF022);
    let (batches, per_batch) = (80u32, 40u32);
    let (mut replies, mut closed, mut silent) = (0u32, 0u32, 0u32);
    let mut by_stat = std::collections::BTreeMap::new();
    let started = Instant::now();
    for b in 0..batches {
        let mut c =
            Conn::connect(srv.nfs_addr()).unwrap_or_else(|e| panic!("batch {b}: connect: {e}"));
        c.s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut bytes = Vec::new();
        for i in 0..per_batch {
            let mut call = templates[rng.below(templates.len() as u64) as usize].clone();
            call.xid = b * 1000 + i;
            let header_len = call.encode().len() - call.args.len();
            let mut msg = call.encode();
            mutate(&mut rng, &mut msg, header_len);
            bytes.extend(record(&msg));
        }
        let sentinel = 0xFEED_0000 + b;
        bytes.extend(Call::null(sentinel, NFS_PROG, NFS_V3).record());
        let mut w = c.s.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut w, &bytes);
        });
        let mut got_sentinel = false;
        loop {
            match c.outcome() {
                Outcome::Reply(r) if r.xid() == sentinel => {
                    // replies may overtake each other: drain the stragglers briefly
                    got_sentinel = true;
                    c.s.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                }
                Outcome::Reply(r) => {
                    replies += 1;
                    *by_stat
                        .entry(format!("{:?}", r.accept_stat()))
                        .or_insert(0u32) += 1;
                }
                Outcome::Silent if got_sentinel => break,
                Outcome::Closed => {
                    closed += 1;
                    break;
                }
                Outcome::Silent => {
                    silent += 1;
                    break;
                }
            }
        }
        drop(c);
        writer.join().unwrap();
        srv.assert_alive();
    }
    // UDP too: mutated datagrams to every port, not waiting for answers
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..600u32 {
        let mut call = templates[rng.below(templates.len() as u64) as usize].clone();
        call.xid = 0xD000_0000 + i;
        let header_len = call.encode().len() - call.args.len();
        let mut msg = call.encode();
        mutate(&mut rng, &mut msg, header_len);
        let to = [srv.nfs_addr(), srv.mount_addr(), srv.portmap_addr()][i as usize % 3];
        let _ = udp.send_to(&msg, to);
    }
    eprintln!(
        "fuzz: {} mutated TCP calls, {replies} replies (accept_stat: {by_stat:?}), {closed} connections \
         closed, {silent} silent; {:?}",
        batches * per_batch,
        started.elapsed()
    );
    let r = udp_call(
        srv.nfs_addr(),
        &Call::null(9, NFS_PROG, NFS_V3).encode(),
        Duration::from_secs(3),
    );
    assert_eq!(
        r.and_then(|r| r.accept_stat()),
        Some(SUCCESS),
        "UDP NULL after fuzzing"
    );
    assert_serves_null_everywhere(&mut srv);
    // nothing may have been created outside the export
    let mut outside: Vec<String> = std::fs::read_dir(srv.root_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(
        outside,
        ["export", "server.log", "state"],
        "files appeared next to the export"
    );
    assert!(
        silent <= batches / 10,
        "{silent} of {batches} batches got neither the sentinel reply nor a close"
    );
}
