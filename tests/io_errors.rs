//! A disk that fails under some files (`io_errors/faultyfs.rs`, a FUSE passthrough that
//! answers EIO to reads, writes or fsyncs of chosen files): the client gets NFS3ERR_IO for
//! exactly those operations of exactly those files, a COMMIT whose fsync failed says so,
//! every other file and another client are served as usual, and the server logs each
//! failing object once per kind of operation, with its path, however often clients retry.
//! Needs root (FUSE mount) and /dev/fuse: a Linux test host.
#![cfg(target_os = "linux")]

#[path = "io_errors/faultyfs.rs"]
mod faultyfs;
#[path = "fuse/attr.rs"]
mod fuse_attr;
mod support;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use support::{bounded, lookup, nfs_from, ok, status, unix_credential, Server};

const LIMIT: Duration = Duration::from_secs(120);

fn start_volnfs(export: &Path) -> Server {
    Server::builder()
        .export_path(export)
        .no_portmap()
        .no_state()
        .arg("--no-lock")
        .env("RUST_LOG", "info")
        .start()
}

fn read_args(fh: &nfs_fh3) -> READ3args {
    READ3args {
        file: fh.clone(),
        offset: 0,
        count: 4096,
    }
}

fn write_args<'a>(fh: &nfs_fh3, data: &'a [u8], stable: stable_how) -> WRITE3args<'a> {
    WRITE3args {
        file: fh.clone(),
        offset: 0,
        count: data.len() as u32,
        stable,
        data: Opaque::borrowed(data),
    }
}

/// Lines of the server log reporting an I/O error.
fn io_error_lines(server: &Server) -> Vec<String> {
    std::fs::read_to_string(server.log_path())
        .unwrap()
        .lines()
        .filter(|l| l.contains("I/O error from the export's disk"))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn a_failing_file_gets_nfs3err_io_alone_and_is_logged_once_with_its_path() {
    let backing = tempfile::tempdir().unwrap();
    let b = backing.path();
    for name in ["bad-read", "bad-write", "bad-fsync", "good"] {
        std::fs::write(b.join(name), format!("the bytes of {name}")).unwrap();
    }
    std::fs::create_dir(b.join("sub")).unwrap();
    std::fs::write(b.join("sub/good2"), "the bytes of sub/good2").unwrap();
    let faults = Arc::new(Mutex::new(faultyfs::Faults::default()));
    {
        let mut f = faults.lock().unwrap();
        f.reads.insert("bad-read".into());
        f.writes.insert("bad-write".into());
        f.fsyncs.insert("bad-fsync".into());
    }
    let mnt = tempfile::tempdir().unwrap();
    let _session = fuser::spawn_mount2(
        faultyfs::FaultyFs::new(b, faults.clone()),
        mnt.path(),
        &[fuser::MountOption::FSName("faultyfs".into())],
    )
    .expect("FUSE mount (needs root and /dev/fuse)");
    let mut server = start_volnfs(mnt.path());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bounded(LIMIT, async {
        let mut c = server.connect().await;
        let root = c.root_nfs_fh3();
        let bad_read = lookup(&mut c, &root, "bad-read").await;
        let bad_write = lookup(&mut c, &root, "bad-write").await;
        let bad_fsync = lookup(&mut c, &root, "bad-fsync").await;
        let good = lookup(&mut c, &root, "good").await;

        // A client retries a failing READ: NFS3ERR_IO every time.
        for i in 0..5 {
            let res = c.read(&read_args(&bad_read)).await.expect("READ rpc");
            assert_eq!(
                status(&res),
                nfsstat3::NFS3ERR_IO,
                "READ of bad-read, try {i}"
            );
        }
        // Its writes are fine: only reading it fails.
        let res = c
            .write(&write_args(&bad_read, b"new", stable_how::FILE_SYNC))
            .await
            .expect("WRITE rpc");
        ok(res, "WRITE bad-read");
        for i in 0..5 {
            let res = c
                .write(&write_args(&bad_write, b"lost", stable_how::FILE_SYNC))
                .await
                .expect("WRITE rpc");
            assert_eq!(
                status(&res),
                nfsstat3::NFS3ERR_IO,
                "WRITE of bad-write, try {i}"
            );
        }
        assert_eq!(
            std::fs::read(b.join("bad-write")).unwrap(),
            b"the bytes of bad-write",
            "nothing written"
        );
        let res = c.read(&read_args(&bad_write)).await.expect("READ rpc");
        assert_eq!(
            &ok(res, "READ bad-write").data[..],
            b"the bytes of bad-write"
        );
        // The write itself succeeds; the COMMIT that makes it durable does not, and says so
        // (a client must not drop its copy of data the disk did not keep).
        let res = c
            .write(&write_args(&bad_fsync, b"unstable", stable_how::UNSTABLE))
            .await
            .expect("WRITE rpc");
        ok(res, "UNSTABLE WRITE bad-fsync");
        for i in 0..3 {
            let res = c
                .commit(&COMMIT3args {
                    file: bad_fsync.clone(),
                    offset: 0,
                    count: 0,
                })
                .await
                .expect("COMMIT rpc");
            assert_eq!(
                status(&res),
                nfsstat3::NFS3ERR_IO,
                "COMMIT of bad-fsync, try {i}"
            );
        }
        let res = c
            .write(&write_args(&bad_fsync, b"sync", stable_how::FILE_SYNC))
            .await
            .expect("WRITE rpc");
        assert_eq!(
            status(&res),
            nfsstat3::NFS3ERR_IO,
            "FILE_SYNC WRITE whose fsync fails"
        );

        // The healthy file, on the same connection, in between.
        let res = c.read(&read_args(&good)).await.expect("READ rpc");
        assert_eq!(&ok(res, "READ good").data[..], b"the bytes of good");
        let res = c
            .write(&write_args(&good, b"THE", stable_how::FILE_SYNC))
            .await
            .expect("WRITE rpc");
        ok(res, "WRITE good");
        assert_eq!(std::fs::read(b.join("good")).unwrap(), b"THE bytes of good");
        let res = c
            .commit(&COMMIT3args {
                file: good.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .expect("COMMIT rpc");
        ok(res, "COMMIT good");

        // Another client, from another address: served as usual; the failing file fails
        // for it too (the disk is the same).
        let (other, lo): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let root2 = support::mnt(&server, other, lo, 0)
            .await
            .expect("MNT from 127.0.0.2");
        let mut c2 = nfs_from(&server, other, lo, unix_credential(0, 0, &[])).await;
        let sub = lookup(&mut c2, &root2, "sub").await;
        let good2 = lookup(&mut c2, &sub, "good2").await;
        let res = c2.read(&read_args(&good2)).await.expect("READ rpc");
        assert_eq!(
            &ok(res, "READ sub/good2").data[..],
            b"the bytes of sub/good2"
        );
        let res = c2.read(&read_args(&good)).await.expect("READ rpc");
        assert_eq!(
            &ok(res, "READ good, other client").data[..],
            b"THE bytes of good"
        );
        let res = c2.read(&read_args(&bad_read)).await.expect("READ rpc");
        assert_eq!(
            status(&res),
            nfsstat3::NFS3ERR_IO,
            "READ of bad-read, other client"
        );

        // The disk heals (the file was rewritten elsewhere): the same handle reads again.
        faults.lock().unwrap().reads.clear();
        let res = c.read(&read_args(&bad_read)).await.expect("READ rpc");
        assert_eq!(&ok(res, "READ bad-read once healed").data[..3], b"new");
    }));
    server.assert_alive();

    let lines = io_error_lines(&server);
    let about = |name: &str, op: &str| {
        let path = mnt.path().join(name);
        lines
            .iter()
            .filter(|l| l.contains(path.to_str().unwrap()) && l.contains(&format!("op=\"{op}\"")))
            .count()
    };
    let all = lines.join("\n");
    assert_eq!(
        about("bad-read", "read"),
        1,
        "6 failed READs of bad-read, logged once with its path:\n{all}"
    );
    assert_eq!(
        about("bad-write", "write"),
        1,
        "5 failed WRITEs of bad-write, once:\n{all}"
    );
    assert_eq!(
        about("bad-fsync", "commit"),
        1,
        "3 failed COMMITs of bad-fsync, once:\n{all}"
    );
    assert!(about("bad-fsync", "write") <= 1, "{all}");
    assert_eq!(
        lines.len(),
        3 + about("bad-fsync", "write"),
        "no other I/O error lines (none for the healthy files):\n{all}"
    );
}
