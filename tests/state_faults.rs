//! Start-up with damaged or unusable saved state (`state_dir`), as an operator and the
//! clients see it. Each case either refuses to start with exit status 96 (SMF_EXIT_ERR_CONFIG:
//! SMF puts the service into maintenance instead of restarting it in a loop) and a message
//! that names the file and what to do, or starts and serves the handles clients already hold:
//!
//! | state | start |
//! |---|---|
//! | handle key missing, index present | refused (96): a new key would invalidate every handle |
//! | handle key not 16 bytes | refused (96) |
//! | index garbage or truncated | moved aside, rebuilt from the tree; old handles resolve |
//! | index held by another process | refused (96) |
//! | index missing beside a key (lost, moved aside) | a new one, rebuilt from the tree; old handles resolve |
//! | state_dir read-only, first start (no key yet) | refused (96): the key cannot be written |
//! | state_dir read-only, saved state present | refused (96): nothing could record the handles given out |
//! | state_dir full, saved state present | the index is removed (unlink needs no space) and kept in memory, rebuilt from the tree; old handles resolve, across restarts too |
//!
//! The read-only and full cases mount a tmpfs over the state directory: `needs root`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use serde_json::json;
use support::{bounded, dirop, lookup, ok, status, Connection, ExportSpec, Server, Stopped};

const LIMIT: Duration = Duration::from_secs(120);

/// A config-file server (as SMF runs it): its control socket is outside state_dir.
fn server() -> Server {
    Server::builder()
        .export(ExportSpec::new(
            "/exports/data",
            json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
        ))
        .config("locking", json!({"enabled": false}))
        .start()
}

/// What a client holds: handles of a directory, a file in it and a file at the root.
struct Held {
    handles: Vec<(String, nfs_fh3, Option<Vec<u8>>)>,
}

async fn create(conn: &mut Connection, dir: &nfs_fh3, name: &str, data: &[u8]) -> nfs_fh3 {
    let res = conn
        .create(&CREATE3args {
            where_: dirop(dir, name),
            how: createhow3::UNCHECKED(sattr3::default()),
        })
        .await
        .expect("CREATE rpc");
    let fh = match ok(res, &format!("CREATE {name}")).obj {
        Nfs3Option::Some(fh) => fh,
        Nfs3Option::None => panic!("CREATE {name}: no handle"),
    };
    let res = conn
        .write(&WRITE3args {
            file: fh.clone(),
            offset: 0,
            count: data.len() as u32,
            stable: stable_how::FILE_SYNC,
            data: Opaque::borrowed(data),
        })
        .await
        .expect("WRITE rpc");
    ok(res, &format!("WRITE {name}"));
    fh
}

/// Makes `d/` with a file in it and a file at the root; returns the handles.
async fn populate(server: &Server) -> Held {
    let mut conn = server.connect().await;
    let root = conn.root_nfs_fh3();
    let res = conn
        .mkdir(&MKDIR3args {
            where_: dirop(&root, "d"),
            attributes: sattr3::default(),
        })
        .await
        .expect("MKDIR rpc");
    ok(res, "MKDIR d");
    let d = lookup(&mut conn, &root, "d").await;
    let inner = create(&mut conn, &d, "inner", b"bytes in d/inner").await;
    let top = create(&mut conn, &root, "top", b"bytes at the top").await;
    Held {
        handles: vec![
            ("d".into(), d, None),
            ("d/inner".into(), inner, Some(b"bytes in d/inner".to_vec())),
            ("top".into(), top, Some(b"bytes at the top".to_vec())),
        ],
    }
}

/// Every held handle resolves (GETATTR) and its file reads back what was written.
async fn assert_held_resolve(server: &Server, held: &Held, when: &str) {
    let mut conn = server.connect().await;
    for (name, fh, content) in &held.handles {
        // The first unknown handle after an unclean index may get JUKEBOX while the
        // index is rebuilt; a client retries.
        let mut tries = 0;
        let res = loop {
            let res = conn
                .getattr(&GETATTR3args { object: fh.clone() })
                .await
                .expect("GETATTR rpc");
            if status(&res) != nfsstat3::NFS3ERR_JUKEBOX || tries == 50 {
                break res;
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ok(
            res,
            &format!("{when}: GETATTR of the held handle of {name}"),
        );
        if let Some(want) = content {
            let res = conn
                .read(&READ3args {
                    file: fh.clone(),
                    offset: 0,
                    count: 4096,
                })
                .await
                .expect("READ rpc");
            assert_eq!(
                &ok(res, &format!("{when}: READ {name}")).data[..],
                &want[..],
                "{when}: {name}"
            );
        }
    }
}

/// The one file in `dir` whose name starts with `prefix`.
fn state_file(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}* in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

fn key_file(s: &Stopped) -> PathBuf {
    state_file(&s.state_dir(), "handle-key-")
}

fn index_file(s: &Stopped) -> PathBuf {
    let dir = s.state_dir();
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "redb"))
        .unwrap_or_else(|| panic!("an index-*.redb in {}", dir.display()))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A start that must be refused for the operator to act: exit 96, the message names
/// every one of `names`.
fn assert_refused(s: &Stopped, names: &[&str]) -> String {
    let out = s.try_start(Duration::from_secs(30));
    let msg = text(&out);
    assert_eq!(
        out.status.code(),
        Some(96),
        "exit status {} (96 = SMF_EXIT_ERR_CONFIG: maintenance, not a restart loop); output:\n{msg}",
        out.status
    );
    assert!(
        !msg.contains("ready nfs_port="),
        "it must not have served: {msg}"
    );
    for n in names {
        assert!(msg.contains(n), "the message names {n:?}:\n{msg}");
    }
    msg
}

#[tokio::test]
async fn a_missing_handle_key_beside_an_index_refuses_to_start_and_says_what_to_do() {
    let (stopped, held) = bounded(LIMIT, async {
        let server = server();
        let held = populate(&server).await;
        (server.stop(), held)
    })
    .await;
    let key = key_file(&stopped);
    let index = index_file(&stopped);
    std::fs::remove_file(&key).unwrap();
    let msg = assert_refused(
        &stopped,
        &[
            key.to_str().unwrap(),
            index.to_str().unwrap(),
            "Restore",
            "move",
        ],
    );
    assert!(!key.exists(), "no new key was made: {msg}");
    // Doing what it says (move the index aside to start over) starts the server; the old
    // handles are then refused, as the message warned.
    std::fs::rename(&index, index.with_extension("old")).unwrap();
    let server = stopped.start();
    bounded(LIMIT, async {
        let mut conn = server.connect().await;
        let res = conn
            .getattr(&GETATTR3args {
                object: held.handles[2].1.clone(),
            })
            .await
            .expect("GETATTR rpc");
        assert_eq!(
            status(&res),
            nfsstat3::NFS3ERR_BADHANDLE,
            "a handle of the old key"
        );
    })
    .await;
}

#[tokio::test]
async fn a_truncated_handle_key_refuses_to_start_and_names_the_file() {
    let stopped = bounded(LIMIT, async {
        let server = server();
        populate(&server).await;
        server.stop()
    })
    .await;
    let key = key_file(&stopped);
    let bytes = std::fs::read(&key).unwrap();
    std::fs::write(&key, &bytes[..5]).unwrap();
    assert_refused(
        &stopped,
        &[key.to_str().unwrap(), "5 bytes, not 16", "backup"],
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        &bytes[..5],
        "the key is left as it was"
    );
}

/// The index damaged by `damage`: the server moves it aside, starts, and every handle
/// clients held resolves again (the index is rebuilt from the tree).
async fn damaged_index_is_rebuilt(damage: impl FnOnce(&Path)) {
    let (stopped, held) = bounded(LIMIT, async {
        let server = server();
        let held = populate(&server).await;
        (server.stop(), held)
    })
    .await;
    let index = index_file(&stopped);
    damage(&index);
    let damaged = std::fs::read(&index).unwrap();
    let server = stopped.start();
    bounded(
        LIMIT,
        assert_held_resolve(&server, &held, "after the damaged index was rebuilt"),
    )
    .await;
    assert_eq!(
        server.log_lines_about("moving it aside", "").len(),
        1,
        "the move is logged once: {}",
        server.log()
    );
    let stopped = server.stop();
    let aside: Vec<PathBuf> = std::fs::read_dir(stopped.state_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".damaged-"))
        .collect();
    assert!(
        aside.iter().any(|p| std::fs::read(p).unwrap() == damaged),
        "the damaged index is kept beside, as it was: {aside:?}"
    );
    // The rebuilt index is sound and holds the objects.
    let out = stopped.check_state(false);
    assert!(
        out.status.success(),
        "check-state after the rebuild:\n{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_garbage_index_is_moved_aside_and_the_old_handles_still_resolve() {
    damaged_index_is_rebuilt(|index| {
        std::fs::write(index, vec![0x5a; 64 * 1024]).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_truncated_index_is_moved_aside_and_the_old_handles_still_resolve() {
    damaged_index_is_rebuilt(|index| {
        let len = std::fs::metadata(index).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(index).unwrap();
        f.set_len(len / 2).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_and_the_old_handles_still_resolve() {
    let (stopped, held) = bounded(LIMIT, async {
        let server = server();
        let held = populate(&server).await;
        (server.stop(), held)
    })
    .await;
    std::fs::remove_file(index_file(&stopped)).unwrap();
    let server = stopped.start();
    bounded(
        LIMIT,
        assert_held_resolve(&server, &held, "after the index was lost"),
    )
    .await;
    assert_eq!(
        server
            .log_lines_about("no handle index beside", "rebuilt")
            .len(),
        1,
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn an_index_held_by_another_process_refuses_to_start() {
    let stopped = bounded(LIMIT, async {
        let server = server();
        populate(&server).await;
        server.stop()
    })
    .await;
    let index = index_file(&stopped);
    // What another volnfs on the same state_dir holds: redb's exclusive file lock.
    let f = std::fs::File::open(&index).unwrap();
    // SAFETY: flock(2) on a descriptor we own.
    let rc = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(rc, 0, "flock the index");
    assert_refused(&stopped, &[index.to_str().unwrap(), "another"]);
    drop(f);
    let before = std::fs::read(&index).unwrap();
    assert!(!before.is_empty());
    // Not moved aside: once the other process is gone, it starts on the same index.
    let server = stopped.start();
    assert!(
        !std::fs::read_dir(server.state_dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("damaged")),
        "an index in use is not damaged"
    );
}

// ------------------------------------------------------------ state_dir on a tmpfs
/// The cases that need a filesystem of their own: a tmpfs (Linux, root) over state_dir.
#[cfg(target_os = "linux")]
mod tmpfs {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    /// A tmpfs mounted over a directory; unmounted (lazily) on drop.
    struct Tmpfs(PathBuf);

    fn cpath(p: &Path) -> CString {
        CString::new(p.as_os_str().as_bytes()).unwrap()
    }

    impl Tmpfs {
        fn mount(at: &Path, size: &str) -> Tmpfs {
            let (src, fstype) = (
                CString::new("tmpfs").unwrap(),
                CString::new("tmpfs").unwrap(),
            );
            let data = CString::new(format!("size={size},mode=0700")).unwrap();
            // SAFETY: mount(2) with valid C strings.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    cpath(at).as_ptr(),
                    fstype.as_ptr(),
                    0,
                    data.as_ptr().cast(),
                )
            };
            assert_eq!(
                rc,
                0,
                "mount tmpfs on {}: {}",
                at.display(),
                std::io::Error::last_os_error()
            );
            Tmpfs(at.to_path_buf())
        }

        fn set_read_only(&self, ro: bool) {
            let flags = libc::MS_REMOUNT | if ro { libc::MS_RDONLY } else { 0 };
            let t = CString::new("tmpfs").unwrap();
            // SAFETY: remount of our own mount point.
            let rc = unsafe {
                libc::mount(
                    t.as_ptr(),
                    cpath(&self.0).as_ptr(),
                    t.as_ptr(),
                    flags,
                    std::ptr::null(),
                )
            };
            assert_eq!(
                rc,
                0,
                "remount {}: {}",
                self.0.display(),
                std::io::Error::last_os_error()
            );
        }

        /// Writes a file until the filesystem is full.
        fn fill(&self) -> PathBuf {
            use std::io::Write;
            let p = self.0.join("fill");
            let mut f = std::fs::File::create(&p).unwrap();
            let chunk = vec![0u8; 64 * 1024];
            loop {
                if let Err(e) = f.write_all(&chunk) {
                    assert_eq!(
                        e.raw_os_error(),
                        Some(libc::ENOSPC),
                        "filling {}",
                        p.display()
                    );
                    break;
                }
            }
            // What is left is less than a page.
            let _ = f.write_all(&[0u8; 512]);
            p
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            // SAFETY: umount2(2) of our own mount point.
            unsafe { libc::umount2(cpath(&self.0).as_ptr(), libc::MNT_DETACH) };
        }
    }

    /// Moves the stopped server's state onto a fresh tmpfs of `size` mounted in its place.
    fn state_onto_tmpfs(s: &Stopped, size: &str) -> Tmpfs {
        let state = s.state_dir();
        let disk = state.with_extension("disk");
        std::fs::rename(&state, &disk).unwrap();
        std::fs::create_dir(&state).unwrap();
        let t = Tmpfs::mount(&state, size);
        for e in std::fs::read_dir(&disk).unwrap().flatten() {
            copy_sparse(&e.path(), &state.join(e.file_name()));
        }
        t
    }

    /// Copies a file leaving its zero blocks as holes, as the index is on disk (redb's file
    /// is mostly unallocated): a copy that allocated them would leave redb room to write
    /// into on a full tmpfs, which a copy-on-write filesystem such as ZFS never has.
    fn copy_sparse(from: &Path, to: &Path) {
        use std::os::unix::fs::FileExt;
        let bytes = std::fs::read(from).unwrap();
        let f = std::fs::File::create(to).unwrap();
        for (i, block) in bytes.chunks(4096).enumerate() {
            if block.iter().any(|b| *b != 0) {
                f.write_all_at(block, (i * 4096) as u64).unwrap();
            }
        }
        f.set_len(bytes.len() as u64).unwrap();
    }

    #[tokio::test]
    #[ignore = "needs root"]
    async fn a_read_only_state_dir_at_first_start_refuses_and_names_the_key() {
        let stopped = bounded(LIMIT, async { server().stop() }).await;
        let state = stopped.state_dir();
        for e in std::fs::read_dir(&state).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
        let t = Tmpfs::mount(&state, "1m");
        t.set_read_only(true);
        assert_refused(
            &stopped,
            &[
                state.to_str().unwrap(),
                "handle-key-",
                "Read-only file system",
                "writable",
            ],
        );
    }

    #[tokio::test]
    #[ignore = "needs root"]
    async fn a_read_only_state_dir_with_saved_state_refuses_and_names_the_index() {
        let stopped = bounded(LIMIT, async {
            let server = server();
            populate(&server).await;
            server.stop()
        })
        .await;
        let t = state_onto_tmpfs(&stopped, "8m");
        t.set_read_only(true);
        // Served from memory, handles given out now would be missing from an index that still
        // says "closed cleanly" once state_dir is writable again: refused instead.
        let index = index_file(&stopped);
        assert_refused(
            &stopped,
            &[index.to_str().unwrap(), "Read-only file system", "writable"],
        );
        t.set_read_only(false);
        stopped.start();
    }

    #[tokio::test]
    #[ignore = "needs root"]
    async fn a_full_state_dir_keeps_serving_and_the_handles_survive_restarts() {
        let (stopped, held) = bounded(LIMIT, async {
            let server = server();
            let held = populate(&server).await;
            (server.stop(), held)
        })
        .await;
        let t = state_onto_tmpfs(&stopped, "8m");
        let fill = t.fill();
        let server = stopped.start();
        // Thousands of new objects: their index entries cannot all be written.
        let mut held = held;
        bounded(Duration::from_secs(300), async {
            assert_held_resolve(&server, &held, "state_dir full").await;
            let mut conn = server.connect().await;
            let root = conn.root_nfs_fh3();
            for i in 0..3000 {
                let name = format!("{i:05}-{}", "n".repeat(120));
                let res = conn
                    .create(&CREATE3args {
                        where_: dirop(&root, &name),
                        how: createhow3::UNCHECKED(sattr3::default()),
                    })
                    .await
                    .expect("CREATE rpc");
                let fh = ok(res, "CREATE with state_dir full").obj;
                if i % 500 == 0 {
                    if let Nfs3Option::Some(fh) = fh {
                        held.handles.push((name, fh, None));
                    }
                }
            }
            assert_held_resolve(&server, &held, "state_dir full, new objects").await;
        })
        .await;
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        let open_failed = log.matches("the handle index cannot be written").count();
        let commits_failed = log.matches("committing the handle index failed").count();
        assert!(
            open_failed + commits_failed >= 1,
            "the full state_dir is reported:\n{}",
            server.log()
        );
        assert!(
            commits_failed <= 1,
            "a failing commit is logged once, not every 200 ms:\n{}",
            server.log()
        );
        // A restart while it is still full (SIGTERM must still exit 0): every handle resolves.
        let server = server.stop().start();
        bounded(
            LIMIT,
            assert_held_resolve(&server, &held, "restarted, state_dir still full"),
        )
        .await;
        // Space again: after one more restart the index is back on disk, and sound.
        std::fs::remove_file(&fill).unwrap();
        let server = server.stop().start();
        bounded(
            LIMIT,
            assert_held_resolve(&server, &held, "restarted with space"),
        )
        .await;
        let stopped = server.stop();
        let out = stopped.check_state(false);
        assert!(
            out.status.success(),
            "check-state once there is space:\n{}",
            text(&out)
        );
        assert!(text(&out).contains("closed cleanly"), "{}", text(&out));
        drop(t);
    }
}
