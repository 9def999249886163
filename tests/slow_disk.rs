//! Never stall behind the disk (issue 13): an export on a "disk" whose every
//! read takes 100 ms (`slow_disk/slowfs.rs`, a FUSE passthrough). While two
//! clients keep 128 cold READs outstanding (64 pipelined on each of two
//! connections), a third client's NULL and GETATTR are answered within 50 ms,
//! and all 128 reads finish within a second: they run in parallel on the file
//! I/O pool, not a few at a time behind the async workers. The same holds for
//! 128 cold LOOKUPs and GETATTRs when the disk is slow to answer those too.
//!
//! A call alone on its connection runs on the thread that received it (no
//! hop to a pool thread: queue depth 1 pays no wakeup). A test shows that
//! path cannot stall either: with several clients each waiting for one cold
//! READ, their own next calls and another client's are answered at once.
//!
//! A client that waits for each reply, promptly, is served by a polling
//! session: one thread reads, runs and answers its calls without a wakeup.
//! Three tests show a call that would wait there is handed off, so the
//! session's connection still answers its next call at once: a cold READ, a
//! GETATTR on FUSE (not a local filesystem: any GETATTR may wait), and a
//! LOOKUP on ext4 (an image on the slow disk, through a loop device) that
//! the kernel's caches cannot answer.
//!
//! Wide margins on purpose: this checks "not stuck behind the disk", not a
//! speed (serially the reads would take 12.8 s; behind 4 workers 3.2 s).
//! Needs root, /dev/fuse, loop devices, util-linux and e2fsprogs: a Linux
//! test host.
#![cfg(target_os = "linux")]

#[path = "fuse/attr.rs"]
mod fuse_attr;
#[path = "slow_disk/slowfs.rs"]
mod slowfs;
mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::Server;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const FILES: usize = 128;
const DELAY: Duration = Duration::from_millis(100);

/// An RPC call message with its record mark, AUTH_SYS root.
fn call(xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    let mut w: Vec<u8> = Vec::new();
    let mut u = |v: u32| w.extend_from_slice(&v.to_be_bytes());
    u(0);
    u(xid);
    u(0); // CALL
    u(2);
    u(prog);
    u(vers);
    u(proc_);
    u(1); // AUTH_SYS
    u(20); // stamp, machine name "", uid 0, gid 0, no groups
    u(0);
    u(0);
    u(0);
    u(0);
    u(0);
    u(0); // AUTH_NONE verifier
    u(0);
    w.extend_from_slice(args);
    let len = (w.len() - 4) as u32 | 0x8000_0000;
    w[..4].copy_from_slice(&len.to_be_bytes());
    w
}

fn opaque(v: &[u8]) -> Vec<u8> {
    let mut w = (v.len() as u32).to_be_bytes().to_vec();
    w.extend_from_slice(v);
    w.resize(4 + v.len().div_ceil(4) * 4, 0);
    w
}

async fn read_record(s: &mut TcpStream) -> Vec<u8> {
    support::read_record(s).await.expect("record")
}

/// The xid and the results (after an accepted/SUCCESS header) of a reply.
fn results(reply: &[u8]) -> (u32, &[u8]) {
    let word = |i: usize| u32::from_be_bytes(reply[i..i + 4].try_into().unwrap());
    assert_eq!((word(4), word(8)), (1, 0), "a REPLY, MSG_ACCEPTED");
    let verf_len = word(16) as usize;
    assert_eq!(word(20 + verf_len), 0, "SUCCESS");
    (word(0), &reply[24 + verf_len..])
}

async fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let s = s.connect(to).await.expect("connect");
    // As the kernel clients do: a call is sent when written, not held back
    // (Nagle) until the server acknowledges the last one.
    s.set_nodelay(true).unwrap();
    s
}

async fn rpc(
    s: &mut TcpStream,
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> Vec<u8> {
    s.write_all(&call(xid, prog, vers, proc_, args))
        .await
        .unwrap();
    let r = read_record(s).await;
    let (got, res) = results(&r);
    assert_eq!(got, xid);
    res.to_vec()
}

/// An NFS handle from results that start with status and a handle.
fn handle_after_status(res: &[u8]) -> Vec<u8> {
    assert_eq!(&res[..4], &[0, 0, 0, 0], "status OK");
    let len = u32::from_be_bytes(res[4..8].try_into().unwrap()) as usize;
    res[8..8 + len].to_vec()
}

/// volnfs on `export` (the FUSE mount): no portmapper, no lock manager;
/// with a state_dir (and so a control socket) when `state`.
fn start_volnfs(export: &Path, state: bool, args: &[&str]) -> Server {
    let mut builder = Server::builder().export_path(export).no_portmap();
    for a in args {
        builder = builder.arg(a);
    }
    if !state {
        builder = builder.no_state();
    }
    builder = builder.arg("--no-lock").env("RUST_LOG", "warn");
    // VOLNFS_BIN: run the check against another build (e.g. an older one).
    if let Some(bin) = std::env::var_os("VOLNFS_BIN") {
        builder = builder.bin(Path::new(&bin));
    }
    builder.start()
}

/// An export on the slow disk holding `files` 4 KiB files `f000`, `f001`, …
/// (file i full of byte i), served by volnfs (with a state_dir when `state`).
struct SlowExport {
    server: Server,
    nfs: SocketAddr,
    mount: SocketAddr,
    /// Reads waiting in the slow disk at once, at most.
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Lookups and attributes the slow disk was asked for.
    meta_calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// An ext4 filesystem on the slow disk, when the export is one (after
    /// the server, before the FUSE mount in drop order).
    ext4: Option<Ext4OnSlowDisk>,
    _session: fuser::BackgroundSession,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn slow_export(files: usize, state: bool) -> SlowExport {
    slow_export_with(files, state, &[], Duration::ZERO)
}

/// The same, with more `volnfs serve` arguments, and lookups and attributes
/// taking `meta_delay` (cold inodes) when it is not zero.
fn slow_export_with(files: usize, state: bool, args: &[&str], meta_delay: Duration) -> SlowExport {
    let backing = tempfile::tempdir().unwrap();
    write_files(backing.path(), files);
    let fs = slowfs::SlowFs::new(backing.path(), DELAY).with_slow_metadata(meta_delay);
    serve_slow_disk(backing, fs, false, state, args)
}

/// A local filesystem on a slow disk, as a cold ZFS pool is: an ext4 image
/// holding the files on the slow FUSE disk, attached read-only to a loop
/// device and mounted (ro, noload): every block the kernel has not read yet
/// takes 100 ms (`Ext4OnSlowDisk::make_cold` drops what it read). The
/// server sees ext4: it probes the caches (RWF_NOWAIT, RESOLVE_CACHED) and
/// counts calls that find everything cached as quick. Needs root,
/// /dev/fuse, loop devices and e2fsprogs (`mkfs.ext4 -d`).
#[cfg_attr(volnfs_posix, allow(dead_code))]
fn slow_ext4_export(files: usize, args: &[&str]) -> SlowExport {
    let backing = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    write_files(staging.path(), files);
    let image = backing.path().join(EXT4_IMAGE);
    let (staging_dir, image_file) = (staging.path().to_str().unwrap(), image.to_str().unwrap());
    support::block_on(tool(
        "mkfs.ext4",
        &["-q", "-F", "-d", staging_dir, image_file, "16M"],
    ));
    let fs = slowfs::SlowFs::new(backing.path(), DELAY);
    serve_slow_disk(backing, fs, true, true, args)
}

const EXT4_IMAGE: &str = "disk.img";

/// `files` 4 KiB files `f000`, `f001`, … in `dir`, file i full of byte i.
fn write_files(dir: &Path, files: usize) {
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}")), vec![i as u8; 4096]).unwrap();
    }
}

/// `fs` (the slow disk over `backing`) mounted, and volnfs serving it, or
/// the ext4 image on it when `on_image`.
fn serve_slow_disk(
    backing: tempfile::TempDir,
    fs: slowfs::SlowFs,
    on_image: bool,
    state: bool,
    args: &[&str],
) -> SlowExport {
    let (peak, meta_calls) = (fs.peak.clone(), fs.meta_calls.clone());
    let mnt = tempfile::tempdir().unwrap();
    let session = fuser::spawn_mount2(
        fs,
        mnt.path(),
        &[fuser::MountOption::FSName("slowfs".into())],
    )
    .expect("FUSE mount (needs root and /dev/fuse)");
    let ext4 = on_image.then(|| Ext4OnSlowDisk::attach(&mnt.path().join(EXT4_IMAGE)));
    let export = ext4.as_ref().map_or(mnt.path(), |e| e.dir.path());
    let server = start_volnfs(export, state, args);
    SlowExport {
        nfs: SocketAddr::from(([127, 0, 0, 1], server.nfs_port)),
        mount: SocketAddr::from(([127, 0, 0, 1], server.mount_port)),
        server,
        peak,
        meta_calls,
        ext4,
        _session: session,
        _dirs: (backing, mnt),
    }
}

/// Runs a setup tool (within a minute: the disk is slow); its output.
async fn tool(program: &str, args: &[&str]) -> String {
    let (status, out, err) = support::run_tool(program, args, Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "{program} {args:?}: {status}: {err} (needs root, loop devices, util-linux and e2fsprogs: see tests/README.md)"
    );
    out.trim().to_string()
}

/// An image file attached to a loop device and mounted; undone on drop.
struct Ext4OnSlowDisk {
    device: String,
    dir: tempfile::TempDir,
}

impl Ext4OnSlowDisk {
    #[cfg_attr(volnfs_posix, allow(dead_code))]
    fn attach(image: &Path) -> Ext4OnSlowDisk {
        let image = image.to_str().unwrap();
        let device =
            support::block_on(tool("losetup", &["--find", "--show", "--read-only", image]));
        let dir = tempfile::tempdir().unwrap();
        let on = dir.path().to_str().unwrap();
        let mounted = support::block_on(support::run_tool(
            "mount",
            &["-t", "ext4", "-o", "ro,noload", &device, on],
            Duration::from_secs(60),
        ));
        if !mounted.0.success() {
            Self::detach(&device);
            panic!(
                "mount {device} (the ext4 image {image}) on {on}: {}: {}",
                mounted.0, mounted.2
            );
        }
        Ext4OnSlowDisk { device, dir }
    }

    /// Drops the device's cached blocks (BLKFLSBUF): what the kernel has
    /// not pinned (directory blocks, inode tables of objects not in memory)
    /// comes from the slow disk again.
    async fn make_cold(&self) {
        tool("blockdev", &["--flushbufs", &self.device]).await;
    }

    /// Detaches the loop device and waits (up to 5 s) until it lets go of
    /// the image, so the FUSE disk under it can be unmounted next.
    fn detach(device: &str) {
        let out = std::process::Command::new("losetup")
            .args(["-d", device])
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!(
                "losetup -d {device}: {out:?}: the loop device may stay attached (see losetup -a)"
            );
        }
        let backing = format!(
            "/sys/block/{}/loop/backing_file",
            device.trim_start_matches("/dev/")
        );
        let t = Instant::now();
        while Path::new(&backing).exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&backing).exists() {
            eprintln!("{device} still holds its image after 5 s: the slow disk's FUSE mount may stay busy");
        }
    }
}

impl Drop for Ext4OnSlowDisk {
    fn drop(&mut self) {
        let dir = self.dir.path();
        let out = std::process::Command::new("umount").arg(dir).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("umount {}: {out:?}; detaching it lazily", dir.display());
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(dir)
                .status();
        }
        Self::detach(&self.device);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Setup, not timed: the root handle (MOUNT) and a handle per file (LOOKUP).
async fn handles(ex: &SlowExport, files: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut m = connect("127.0.0.1", ex.mount).await;
    let root = handle_after_status(&rpc(&mut m, 1, 100005, 3, 1, &opaque(b"/exports/data")).await);
    let mut c = connect("127.0.0.1", ex.nfs).await;
    let mut fhs = Vec::new();
    for i in 0..files {
        let args = lookup_args(&root, i);
        fhs.push(handle_after_status(
            &rpc(&mut c, 10 + i as u32, 100003, 3, 3, &args).await,
        ));
    }
    (root, fhs)
}

/// LOOKUP arguments: file i (`f000`, …) in the directory `dir`.
fn lookup_args(dir: &[u8], i: usize) -> Vec<u8> {
    let mut args = opaque(dir);
    args.extend(opaque(format!("f{i:03}").as_bytes()));
    args
}

/// READ arguments: the first 4 KiB of `fh`.
fn read_args(fh: &[u8]) -> Vec<u8> {
    let mut args = opaque(fh);
    args.extend_from_slice(&0u64.to_be_bytes());
    args.extend_from_slice(&4096u32.to_be_bytes());
    args
}

/// The data of a READ reply's results: status, post_op_attr (present:
/// 1 + 84 bytes), count, eof, then the data.
fn read_data(res: &[u8]) -> &[u8] {
    &res[4 + 88 + 12..]
}

/// Another client, `from`: `rounds` NULL + GETATTR pairs `pause` apart; the
/// slowest pair.
async fn slowest_null_getattr(
    from: &str,
    nfs: SocketAddr,
    root: &[u8],
    rounds: u32,
    pause: Duration,
) -> Duration {
    let mut other = connect(from, nfs).await;
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let t = Instant::now();
        rpc(&mut other, 1000 + round, 100003, 3, 0, &[]).await;
        let res = rpc(&mut other, 2000 + round, 100003, 3, 1, &opaque(root)).await;
        assert_eq!(&res[..4], &[0, 0, 0, 0], "GETATTR OK");
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(pause).await;
    }
    slowest
}

#[test]
#[ignore = "needs root"]
fn cold_reads_run_in_parallel_and_never_hold_up_other_clients() {
    let ex = slow_export(FILES, false);
    runtime().block_on(async {
        let (root, files) = handles(&ex, FILES).await;
        // Two clients, 64 cold READs pipelined on each connection; a third
        // client's NULL and GETATTR meanwhile.
        let reads: Vec<Vec<u8>> = files.iter().map(|fh| read_args(fh)).collect();
        let (data, all, slowest) = pipelined(ex.nfs, &root, 6, &reads).await;
        for (i, res) in data.iter().enumerate() {
            assert_eq!(read_data(res)[..4096], [i as u8; 4096][..], "READ of f{i:03}: that file's bytes");
        }
        eprintln!(
            "128 cold reads of {DELAY:?} each in {all:?} (at most {} at once); slowest NULL + GETATTR of another client {slowest:?}",
            ex.peak.load(Ordering::SeqCst)
        );
        assert!(slowest < Duration::from_millis(50), "another client waited {slowest:?} behind the disk");
        assert!(all < Duration::from_secs(1), "128 cold reads took {all:?}: not in parallel");
    });
}

/// On `s`: `cold` (a call with xid 100 the disk is slow to answer),
/// `sent()`, 20 ms, then a GETATTR of `root`. How long the GETATTR waited,
/// whether it was answered first (as it should be), and the cold call's
/// results.
async fn getattr_behind_cold_call(
    s: &mut TcpStream,
    cold: &[u8],
    root: &[u8],
    who: &str,
    sent: impl FnOnce(),
) -> (Duration, bool, Vec<u8>) {
    s.write_all(cold).await.unwrap();
    sent();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Instant::now();
    s.write_all(&call(200, 100003, 3, 1, &opaque(root)))
        .await
        .unwrap();
    let (mut getattr_wait, mut first, mut cold_res) = (None, None, None);
    for _ in 0..2 {
        let r = read_record(s).await;
        let (xid, res) = results(&r);
        first.get_or_insert(xid);
        match xid {
            200 => {
                getattr_wait = Some(t.elapsed());
                assert_eq!(&res[..4], &[0, 0, 0, 0], "{who}: GETATTR OK");
            }
            100 => {
                assert_eq!(&res[..4], &[0, 0, 0, 0], "{who}: the cold call OK");
                cold_res = Some(res.to_vec());
            }
            other => panic!("{who}: a reply to xid {other}, never sent"),
        }
    }
    (
        getattr_wait.expect("the GETATTR's reply"),
        first == Some(200),
        cold_res.expect("the cold call's reply"),
    )
}

/// A cold READ of `fh` (a file full of `fill`) as `getattr_behind_cold_call`
/// sends it; checks the bytes.
async fn getattr_behind_cold_read(
    s: &mut TcpStream,
    fh: &[u8],
    fill: u8,
    root: &[u8],
    who: &str,
    sent: impl FnOnce(),
) -> Duration {
    let cold = call(100, 100003, 3, 6, &read_args(fh));
    let (wait, getattr_first, res) = getattr_behind_cold_call(s, &cold, root, who, sent).await;
    assert!(
        getattr_first,
        "{who}: the cold READ answered before the GETATTR sent behind it"
    );
    assert_eq!(
        read_data(&res)[..4096],
        [fill; 4096][..],
        "READ: that file's bytes"
    );
    wait
}

#[test]
#[ignore = "needs root"]
fn lone_cold_reads_on_their_receiving_threads_hold_up_nothing() {
    const CLIENTS: usize = 4;
    let ex = slow_export(CLIENTS, true);
    let nfs = ex.nfs;
    runtime().block_on(async {
        let (root, files) = handles(&ex, CLIENTS).await;

        let ran_here = || {
            let st = ex.server.ctl_json(&["status"]);
            st["result"]["io_pool"]["ran_on_receiver"]
                .as_u64()
                .unwrap_or_else(|| panic!("status has io_pool.ran_on_receiver: {st}"))
        };
        let before = ran_here();
        // Each client: one cold READ, alone on its connection (so it may run
        // on the receiving thread), then, while it waits for the disk, a
        // GETATTR on the same connection: answered first, and at once.
        let t0 = Instant::now();
        let mut clients = Vec::new();
        let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, fh) in files.into_iter().enumerate() {
            let (root, sent_tx) = (root.clone(), sent_tx.clone());
            clients.push(tokio::spawn(async move {
                let mut s = connect(&format!("127.0.0.{}", 2 + i), nfs).await;
                let who = format!("client {i}");
                let getattr_wait = getattr_behind_cold_read(&mut s, &fh, i as u8, &root, &who, || {
                    let _ = sent_tx.send(());
                })
                .await;
                (getattr_wait, t0.elapsed())
            }));
        }
        // Once every READ is sent and before anything else that could run
        // on a receiving thread is (the GETATTRs follow a READ in flight, so
        // they are not alone): how many of the READs took the path. The
        // count is cumulative, so a slow box only delays it.
        for _ in 0..CLIENTS {
            sent_rx.recv().await.expect("a client sent its READ");
        }
        let waiting = Instant::now();
        let mut reads_here = 0;
        while reads_here == 0 && waiting.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            reads_here = ran_here() - before;
        }
        // Another client meanwhile.
        let slowest = slowest_null_getattr("127.0.0.9", nfs, &root, 4, Duration::from_millis(15)).await;
        let (mut own, mut all) = (Duration::ZERO, Duration::ZERO);
        for c in clients {
            let (g, t) = c.await.unwrap();
            own = own.max(g);
            all = all.max(t);
        }
        eprintln!(
            "{CLIENTS} lone cold reads in {all:?}, {reads_here} of them on their receiving thread; \
             slowest GETATTR behind its connection's read {own:?}, another client's NULL + GETATTR {slowest:?}"
        );
        assert!(reads_here >= 1, "no READ ran on its receiving thread: this test did not test that path");
        assert!(own < Duration::from_millis(50), "a GETATTR waited {own:?} behind its connection's READ");
        assert!(slowest < Duration::from_millis(50), "another client waited {slowest:?} behind the disk");
        assert!(all < Duration::from_secs(1), "{CLIENTS} cold reads took {all:?}");
    });
}

#[test]
#[ignore = "needs root"]
fn a_polling_session_hands_a_cold_read_off_and_keeps_answering() {
    let ex = slow_export_with(1, true, &["--busy-poll-us", "1000"], Duration::ZERO);
    session_hands_off(
        &ex,
        "READ",
        1,
        |_, _, fhs| call(100, 100003, 3, 6, &read_args(&fhs[0])),
        |res| {
            assert_eq!(
                read_data(res)[..4096],
                [0; 4096][..],
                "READ: that file's bytes"
            )
        },
    );
}

/// On FUSE (or NFS, SMB) any GETATTR may wait for a daemon or a server: a
/// session never runs one on its own thread there, though on a local disk
/// filesystem a GETATTR counts as quick.
#[test]
#[ignore = "needs root"]
fn a_polling_session_hands_a_cold_getattr_off_and_keeps_answering() {
    let ex = slow_export_with(1, true, &["--busy-poll-us", "1000"], DELAY);
    session_hands_off(
        &ex,
        "GETATTR",
        1,
        |_, _, fhs| call(100, 100003, 3, 1, &opaque(&fhs[0])),
        |res| assert_eq!(fattr_size(&res[4..]), 4096, "GETATTR: that file's size"),
    );
}

/// On a local filesystem a LOOKUP is quick only when the kernel's caches
/// answer it (RESOLVE_CACHED): a name never looked up on a cold ext4 (its
/// directory block and inode on the slow disk) is handed off, so the
/// session's connection answers its next call at once.
///
/// Not in posix mode: illumos cannot ask whether a lookup would wait, so
/// there a settled LOOKUP on a local filesystem runs on the session's
/// thread, and a cold one holds its own connection's next call for the
/// disk read (docs/illumos.md, the busy-polling row).
#[cfg(not(volnfs_posix))]
#[test]
#[ignore = "needs root"]
fn a_polling_session_hands_a_cold_lookup_on_a_local_filesystem_off() {
    let ex = slow_ext4_export(SESSION_TRIES, &["--busy-poll-us", "1000"]);
    // A fresh name each try: the last one is warm now.
    session_hands_off(
        &ex,
        "LOOKUP",
        0,
        |attempt, root, _| call(100, 100003, 3, 3, &lookup_args(root, attempt)),
        |res| {
            let fh = handle_after_status(res);
            // Then the object's post_op_attr: present, a regular file of 4 KiB.
            let attr = &res[8 + fh.len().div_ceil(4) * 4..];
            assert_eq!(&attr[..4], &[0, 0, 0, 1], "LOOKUP: the object's attributes");
            assert_eq!(fattr_size(&attr[4..]), 4096, "LOOKUP: that file's size");
        },
    );
}

/// The size in a fattr3 (type, mode, nlink, uid, gid, then size).
fn fattr_size(attr: &[u8]) -> u64 {
    u64::from_be_bytes(attr[20..28].try_into().unwrap())
}

/// Connections `session_hands_off` tries: on a busy box a client can be
/// late for its next call and end a session early.
const SESSION_TRIES: usize = 20;

/// A client in lock step, served by a polling session, sends
/// `cold(attempt, root, handles)` (a `what` the disk is slow to answer, with
/// the handles of the first `looked_up` files; `check` reads its results)
/// and, while it waits, a GETATTR of the root on the same connection: the
/// GETATTR must be answered at once, so the cold call was handed off, not
/// run on the session's thread.
fn session_hands_off(
    ex: &SlowExport,
    what: &str,
    looked_up: usize,
    cold: impl Fn(usize, &[u8], &[Vec<u8>]) -> Vec<u8>,
    check: impl Fn(&[u8]),
) {
    // Lone, prompt calls in a row before a session starts (rpc::server::poll),
    // three times over.
    const LOCK_STEP: u32 = 3 * 8;
    let nfs = ex.nfs;
    let polling = || {
        let st = ex.server.ctl_json(&["status"]);
        let n = |group: &str, k: &str| {
            st["result"][group][k]
                .as_u64()
                .unwrap_or_else(|| panic!("status has {group}.{k}: {st}"))
        };
        (
            n("busy_polling", "sessions"),
            n("busy_polling", "session_calls"),
            n("io_pool", "ran_in_session"),
            n("io_pool", "session_handoffs"),
        )
    };
    runtime().block_on(async {
        let (root, files) = handles(ex, looked_up).await;
        // A scheduling hiccup on the client can end a session early; then
        // the cold call was not read in one and the try does not count.
        for attempt in 0..SESSION_TRIES {
            if let Some(ext4) = &ex.ext4 {
                ext4.make_cold().await;
            }
            let (sessions, calls, ran, handoffs) = polling();
            let mut s = connect("127.0.0.6", nfs).await;
            // NULLs in lock step: each sent as soon as the last is answered
            // (any call of a lock-step client leads to a session; NULL is
            // the one a session answers on its thread on any filesystem).
            for x in 0..LOCK_STEP {
                rpc(&mut s, 1000 + x, 100003, 3, 0, &[]).await;
            }
            // Still in lock step: the cold call (100 ms on this disk), then,
            // while it waits, a GETATTR on the same connection.
            let cold = cold(attempt, &root, &files);
            let (getattr_wait, getattr_first, res) =
                getattr_behind_cold_call(&mut s, &cold, &root, "the session's client", || {}).await;
            check(&res);
            let (sessions2, calls2, ran2, handoffs2) = polling();
            eprintln!(
                "try {attempt}: {} session(s), {} calls in them, {} run there, {} handed off; \
                 the GETATTR behind the cold {what} waited {getattr_wait:?}",
                sessions2 - sessions,
                calls2 - calls,
                ran2 - ran,
                handoffs2 - handoffs
            );
            // The cold call is the only call of the try for the filesystem
            // a session could read: the GETATTR behind it comes after the
            // session ended (a call in flight ends it) and the NULLs need
            // no file I/O. So the counters say where the cold call went.
            assert_eq!(
                ran2, ran,
                "the session ran the cold {what} on its own thread (the GETATTR behind it waited {getattr_wait:?})"
            );
            assert!(getattr_first, "the cold {what} answered before the GETATTR sent behind it");
            assert!(
                getattr_wait < Duration::from_millis(50),
                "a GETATTR waited {getattr_wait:?} behind its connection's cold {what}"
            );
            if handoffs2 > handoffs {
                return; // read in a session and handed off
            }
            // Another connection next time (fresh lock-step history).
            drop(s);
        }
        panic!("no try of {SESSION_TRIES} read the cold {what} in a polling session: this test did not test that path");
    });
}

/// Two clients, `proc_` with `args[i]` for every file i, 64 calls
/// pipelined on each connection; meanwhile a third client's NULL + GETATTR
/// of `root` (`slowest_null_getattr`). The results by file, how long all
/// took, and the third client's slowest pair.
async fn pipelined(
    nfs: SocketAddr,
    root: &[u8],
    proc_: u32,
    args: &[Vec<u8>],
) -> (Vec<Vec<u8>>, Duration, Duration) {
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for (half, from) in ["127.0.0.2", "127.0.0.3"].into_iter().enumerate() {
        let first = half * args.len() / 2;
        let part: Vec<Vec<u8>> = args[first..first + args.len() / 2].to_vec();
        clients.push(tokio::spawn(async move {
            let mut s = connect(from, nfs).await;
            let mut calls = Vec::new();
            for (k, a) in part.iter().enumerate() {
                calls.extend(call((first + k) as u32, 100003, 3, proc_, a));
            }
            s.write_all(&calls).await.unwrap();
            let mut got = Vec::new();
            while got.len() < part.len() {
                let r = read_record(&mut s).await;
                let (xid, res) = results(&r);
                assert_eq!(
                    &res[..4],
                    &[0, 0, 0, 0],
                    "procedure {proc_} xid {xid}: status OK"
                );
                got.push((xid as usize, res.to_vec()));
            }
            got
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let slowest = slowest_null_getattr("127.0.0.4", nfs, root, 5, Duration::from_millis(20)).await;
    let mut by_file = vec![Vec::new(); args.len()];
    for c in clients {
        for (xid, res) in c.await.unwrap() {
            by_file[xid] = res;
        }
    }
    (by_file, t0.elapsed(), slowest)
}

/// A cold `ls -l` of a big directory: two clients keep 128 LOOKUPs, then
/// 128 GETATTRs, outstanding (64 pipelined on each connection) on a disk
/// where each waits 100 ms or more (lookups and attributes, FUSE caching
/// none of them); a third client's NULL and GETATTR of the root (prompt on
/// this disk) stay under 50 ms, and each batch finishes in under 2 s (one
/// at a time: at least 12.8 s).
#[test]
#[ignore = "needs root"]
fn cold_lookups_and_getattrs_run_in_parallel_and_hold_up_nothing() {
    let ex = slow_export_with(FILES, true, &[], DELAY);
    let nfs = ex.nfs;
    runtime().block_on(async {
        let (root, _) = handles(&ex, 0).await;
        let lookups: Vec<Vec<u8>> = (0..FILES).map(|i| lookup_args(&root, i)).collect();
        let asked = || ex.meta_calls.load(Ordering::SeqCst);
        let before = asked();
        let (found, lookup_time, lookup_other) = pipelined(nfs, &root, 3, &lookups).await;
        let for_lookups = asked() - before;
        let getattrs: Vec<Vec<u8>> = found.iter().map(|res| opaque(&handle_after_status(res))).collect();
        let (attrs, getattr_time, getattr_other) = pipelined(nfs, &root, 1, &getattrs).await;
        let for_getattrs = asked() - before - for_lookups;
        eprintln!(
            "{FILES} cold LOOKUPs in {lookup_time:?} ({for_lookups} disk lookups and attributes; another client's \
             slowest NULL + GETATTR {lookup_other:?}), {FILES} cold GETATTRs in {getattr_time:?} ({for_getattrs}; {getattr_other:?})"
        );
        for (i, res) in attrs.iter().enumerate() {
            assert_eq!(fattr_size(&res[4..]), 4096, "GETATTR of f{i:03}: its size");
        }
        for (what, other) in [("LOOKUPs", lookup_other), ("GETATTRs", getattr_other)] {
            assert!(other < Duration::from_millis(50), "another client waited {other:?} behind cold {what}");
        }
        for (what, all, asked) in [
            ("LOOKUPs", lookup_time, for_lookups),
            ("GETATTRs", getattr_time, for_getattrs),
        ] {
            // The disk was asked for each, and made each wait: not cached.
            assert!(
                asked >= FILES && all >= DELAY,
                "{FILES} {what} took {all:?} and asked the disk {asked} times: they were not cold"
            );
            assert!(all < Duration::from_secs(2), "{FILES} cold {what} took {all:?}: not in parallel");
        }
    });
}
