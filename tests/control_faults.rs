//! The control socket when its clients misbehave (issue 14): a client that disconnects in
//! the middle of a rollback, two rollbacks at once, a rollback that fails, snapshots taken
//! while clients write hard. Each time the rollback runs to its end, the exports' gate is
//! released (NFS calls that waited are answered, new ones are not held), and the results
//! are consistent.
//!
//! The dataset is a stand-in `zfs` (a shell script: snapshots in a file, a rollback that
//! sleeps as long as the test asks and records when it ran). That is the seam for what the
//! server does around `zfs`; `tests/zfs/volume-e2e.sh` runs the disconnect and the
//! concurrent rollbacks against real OpenZFS through the Linux kernel client.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use serde_json::{json, Value};
use support::{bounded, dirop, ok, ExportSpec, Server};

const LIMIT: Duration = Duration::from_secs(120);
const DATASET: &str = "tank/zones/8f2c/data/vol";

/// `rollback` sleeps $S/rollback-seconds, records "start T" / "end T NAME" in $S/runs,
/// and fails if $S/rollback-fails exists.
const FAKE_ZFS: &str = r#"#!/bin/sh
S=$FAKE_ZFS
case $1 in
list) cat "$S/snaps" ;;
snapshot)
    if cut -f1 "$S/snaps" | grep -qx "$2"; then echo "cannot create snapshot '$2': dataset already exists" >&2; exit 1; fi
    printf '%s\t%s\t0\t4096\n' "$2" "$(date +%s)" >> "$S/snaps" ;;
rollback)
    echo "start $(date +%s.%N)" >> "$S/runs"
    sleep "$(cat "$S/rollback-seconds")"
    if [ -e "$S/rollback-fails" ]; then echo "end $(date +%s.%N) failed" >> "$S/runs"; echo "cannot rollback '$2': I/O error" >&2; exit 1; fi
    echo "end $(date +%s.%N) $2" >> "$S/runs" ;;
get) for p in $(echo "$6" | tr , ' '); do printf '%s\t%s\t%s\tlocal\n' "$7" "$p" "$(cat "$S/$p" 2>/dev/null || echo 0)"; done ;;
*) echo "fake zfs: unsupported: $*" >&2; exit 2 ;;
esac
"#;

fn fake_zfs(rollback_seconds: f64) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("zfs"), FAKE_ZFS).unwrap();
    std::fs::set_permissions(p.join("zfs"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        p.join("snaps"),
        format!("{DATASET}@s1\t1763775020\t0\t4096\n"),
    )
    .unwrap();
    std::fs::write(p.join("rollback-seconds"), rollback_seconds.to_string()).unwrap();
    for (k, v) in [
        ("refquota", "1000000000"),
        ("used", "4096"),
        ("referenced", "4096"),
        ("available", "999995904"),
    ] {
        std::fs::write(p.join(k), v).unwrap();
    }
    dir
}

fn server(zfs: &Path) -> Server {
    Server::builder()
        .no_portmap()
        .export(
            ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
            )
            .with(json!({"dataset": DATASET})),
        )
        .config("zfs", json!(zfs.join("zfs")))
        .config("locking", json!({"enabled": false}))
        .env("FAKE_ZFS", &zfs.to_string_lossy())
        .start()
}

/// The rollbacks the stand-in ran: (start, end, outcome) in seconds since the epoch.
fn runs(zfs: &Path) -> Vec<(f64, f64, String)> {
    let text = std::fs::read_to_string(zfs.join("runs")).unwrap_or_default();
    let mut out = Vec::new();
    let mut start = None;
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w[..] {
            ["start", t] => start = Some(t.parse::<f64>().unwrap()),
            ["end", t, what] => out.push((
                start.take().expect("start before end"),
                t.parse().unwrap(),
                what.to_string(),
            )),
            _ => panic!("runs: {l:?}"),
        }
    }
    assert!(start.is_none(), "a rollback still running: {text}");
    out
}

/// Sends one request line on a new connection; the connection, to read the reply on.
fn send(socket: &Path, id: u32, op: &str, args: Value) -> UnixStream {
    let mut s = UnixStream::connect(socket).expect("connect control socket");
    let line = json!({"v": 1, "id": id, "op": op, "args": args}).to_string();
    s.write_all(line.as_bytes()).unwrap();
    s.write_all(b"\n").unwrap();
    s
}

fn reply(s: UnixStream) -> Value {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("a reply line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
}

/// A GETATTR of the root that must succeed: how long it took.
async fn timed_getattr(server: &Server) -> Duration {
    let mut c = server.connect().await;
    let root = c.root_nfs_fh3();
    let t = Instant::now();
    let res = c
        .getattr(&GETATTR3args { object: root })
        .await
        .expect("GETATTR rpc");
    ok(res, "GETATTR");
    t.elapsed()
}

/// The rollback has taken the gate: a call of a connection mounted before it is held.
async fn wait_until_rolling_back(zfs: &Path) {
    let t = Instant::now();
    while std::fs::read_to_string(zfs.join("runs"))
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the rollback never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_rollback_leaves_it_to_finish_and_the_gate_free() {
    bounded(LIMIT, async {
        let zfs = fake_zfs(1.5);
        let server = server(zfs.path());
        let mut c = server.connect().await;
        let root = c.root_nfs_fh3();
        let s = send(
            &server.control_socket(),
            1,
            "snapshot.rollback",
            json!({"name": "s1"}),
        );
        wait_until_rolling_back(zfs.path()).await;
        // The client goes away, the rollback still holding the exports.
        s.shutdown(std::net::Shutdown::Both).unwrap();
        drop(s);
        // A call made now waits for the rollback, then is answered.
        let t = Instant::now();
        let res = c
            .getattr(&GETATTR3args {
                object: root.clone(),
            })
            .await
            .expect("GETATTR rpc");
        ok(res, "GETATTR during the rollback");
        let waited = t.elapsed();
        let r = runs(zfs.path());
        assert_eq!(r.len(), 1, "one rollback ran: {r:?}");
        assert_eq!(r[0].2, format!("{DATASET}@s1"), "and finished: {r:?}");
        assert!(
            waited >= Duration::from_millis(700),
            "the GETATTR was held by the rollback ({waited:?})"
        );
        // Afterwards nothing is held: new calls, new connections and the socket answer.
        for _ in 0..3 {
            let d = timed_getattr(&server).await;
            assert!(
                d < Duration::from_millis(500),
                "a GETATTR after the rollback took {d:?}"
            );
        }
        let st = server.ctl_json(&["status"]);
        assert_eq!(st["ok"], true, "{st}");
        assert_eq!(
            server
                .log_lines_about("rollback: exports serving again", "ok=true")
                .len(),
            1,
            "{}",
            server.log()
        );
    })
    .await;
}

#[tokio::test]
async fn two_rollbacks_at_once_run_one_after_the_other_and_both_answer() {
    bounded(LIMIT, async {
        let zfs = fake_zfs(1.0);
        let server = server(zfs.path());
        let sock = server.control_socket();
        let t0 = Instant::now();
        let a = send(&sock, 1, "snapshot.rollback", json!({"name": "s1"}));
        let b = send(&sock, 2, "snapshot.rollback", json!({"name": "s1"}));
        let (ra, rb) = tokio::task::spawn_blocking(move || (reply(a), reply(b)))
            .await
            .unwrap();
        let elapsed = t0.elapsed();
        for r in [&ra, &rb] {
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["result"]["rolled_back_to"], "s1", "{r}");
        }
        // Never both inside zfs: the second started after the first ended.
        let r = runs(zfs.path());
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[1].0 >= r[0].1, "the rollbacks overlapped: {r:?}");
        assert!(elapsed >= Duration::from_secs(2), "serialized: {elapsed:?}");
        let d = timed_getattr(&server).await;
        assert!(
            d < Duration::from_millis(500),
            "a GETATTR after both took {d:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failed_rollback_says_so_and_releases_the_gate() {
    bounded(LIMIT, async {
        let zfs = fake_zfs(0.5);
        std::fs::write(zfs.path().join("rollback-fails"), "").unwrap();
        let server = server(zfs.path());
        let r = reply(send(
            &server.control_socket(),
            1,
            "snapshot.rollback",
            json!({"name": "s1"}),
        ));
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("I/O error"),
            "the cause is passed on: {r}"
        );
        let d = timed_getattr(&server).await;
        assert!(
            d < Duration::from_millis(500),
            "a GETATTR after the failed rollback took {d:?}"
        );
        std::fs::remove_file(zfs.path().join("rollback-fails")).unwrap();
        let r = reply(send(
            &server.control_socket(),
            2,
            "snapshot.rollback",
            json!({"name": "s1"}),
        ));
        assert_eq!(r["ok"], true, "a later rollback works: {r}");
    })
    .await;
}

#[tokio::test]
async fn snapshots_taken_while_clients_write_hard_all_succeed_and_no_write_fails() {
    bounded(LIMIT, async {
        let zfs = fake_zfs(0.0);
        let server = server(zfs.path());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let mut c = server.connect().await;
            let root = c.root_nfs_fh3();
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let name = format!("w{w}");
                let res = c
                    .create(&CREATE3args {
                        where_: dirop(&root, &name),
                        how: createhow3::UNCHECKED(sattr3::default()),
                    })
                    .await
                    .expect("CREATE rpc");
                let Nfs3Option::Some(fh) = ok(res, "CREATE").obj else {
                    panic!("no handle")
                };
                let data = vec![w as u8; 256 * 1024];
                let (mut n, mut slowest) = (0u64, Duration::ZERO);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let t = Instant::now();
                    let res = c
                        .write(&WRITE3args {
                            file: fh.clone(),
                            offset: (n % 16) * data.len() as u64,
                            count: data.len() as u32,
                            stable: if n % 2 == 0 {
                                stable_how::FILE_SYNC
                            } else {
                                stable_how::UNSTABLE
                            },
                            data: Opaque::borrowed(&data),
                        })
                        .await
                        .expect("WRITE rpc");
                    ok(res, "WRITE while snapshots are taken");
                    slowest = slowest.max(t.elapsed());
                    n += 1;
                }
                (n, slowest)
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sock = server.control_socket();
        let created = tokio::task::spawn_blocking(move || {
            (0..20)
                .map(|i| {
                    reply(send(
                        &sock,
                        i,
                        "snapshot.create",
                        json!({"name": format!("c{i}")}),
                    ))
                })
                .collect::<Vec<Value>>()
        })
        .await
        .unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in &created {
            assert_eq!(r["ok"], true, "{r}");
        }
        let snaps = std::fs::read_to_string(zfs.path().join("snaps")).unwrap();
        assert_eq!(snaps.lines().count(), 21, "s1 and c0..c19: {snaps}");
        for w in writers {
            let (n, slowest) = w.await.expect("writer");
            assert!(n > 0, "a writer made no progress");
            assert!(slowest < Duration::from_secs(5), "a WRITE took {slowest:?}");
        }
    })
    .await;
}
