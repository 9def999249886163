//! The control channel as VAPI's agent sees it (RFD 69): the agent listens, volnfs
//! connects out to it, says hello and answers requests — status, snapshots and quota, run
//! together, a rollback that outlives its connection — over it. An agent that restarts or
//! whose socket file is replaced is found again; garbage gets an error reply on a
//! connection that stays; a symlink is refused; without an agent NFS is served anyway.
//!
//! The ZFS dataset here is a stand-in `zfs` (a shell script keeping snapshots and the
//! refquota in files, with a rollback as slow as the test asks); tests/zfs runs the same
//! channel against real OpenZFS.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{bounded, getattr, ExportSpec, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;

const LIMIT: Duration = Duration::from_secs(60);
const DATASET: &str = "tank/zones/8f2c/data/vol";

/// The agent's socket, in a directory of its own (the agent's, not the server's).
struct AgentDir {
    dir: tempfile::TempDir,
}

impl AgentDir {
    fn new() -> AgentDir {
        AgentDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("volnfs.sock")
    }
    /// Listens at the socket path, as a (re)started agent does: a stale file is removed.
    fn listen(&self) -> UnixListener {
        let _ = std::fs::remove_file(self.socket());
        UnixListener::bind(self.socket()).expect("bind the agent socket")
    }
}

/// The agent's end of one connection from volnfs.
struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    hello: Value,
    /// Replies read while waiting for another id.
    early: Vec<Value>,
}

impl Conn {
    /// Accepts volnfs's next connection (within `within`) and reads its hello line.
    async fn accept(l: &UnixListener, within: Duration) -> Conn {
        let (s, _) = tokio::time::timeout(within, l.accept())
            .await
            .unwrap_or_else(|_| panic!("volnfs did not connect within {within:?}"))
            .expect("accept");
        let (rd, wr) = s.into_split();
        let mut c = Conn {
            rd: BufReader::new(rd),
            wr,
            hello: Value::Null,
            early: Vec::new(),
        };
        c.hello = c.read().await.expect("a hello line");
        assert_eq!(c.hello["v"], 1, "hello: {}", c.hello);
        c
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.expect("write to volnfs");
        self.wr.write_all(b"\n").await.expect("write to volnfs");
    }

    async fn send(&mut self, id: Value, op: &str, args: Value) {
        let line = json!({"v": 1, "id": id, "op": op, "args": args}).to_string();
        self.send_raw(line.as_bytes()).await;
    }

    /// The next line, `None` at end of stream.
    async fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), self.rd.read_line(&mut line))
            .await
            .expect("a line from volnfs within 20 s")
            .expect("read from volnfs");
        (n > 0).then(|| serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
    }

    /// The reply with `id` (other replies are kept for later).
    async fn reply(&mut self, id: &Value) -> Value {
        if let Some(i) = self.early.iter().position(|r| &r["id"] == id) {
            return self.early.remove(i);
        }
        loop {
            let r = self.read().await.expect("volnfs closed the channel");
            if &r["id"] == id {
                return r;
            }
            self.early.push(r);
        }
    }

    async fn call(&mut self, id: Value, op: &str, args: Value) -> Value {
        self.send(id.clone(), op, args).await;
        self.reply(&id).await
    }
}

/// A config-file server whose channel connects to `socket`; `zfs`: the stand-in's state
/// directory, making export 0 a ZFS dataset.
fn server(socket: &Path, zfs: Option<&Path>) -> Server {
    let mut export = ExportSpec::new(
        "/exports/data",
        json!([{"match": "127.0.0.1", "access": "rw"}]),
    );
    let mut b = Server::builder().no_portmap();
    if let Some(state) = zfs {
        export = export.with(json!({"dataset": DATASET}));
        b = b
            .config("zfs", json!(state.join("zfs")))
            .env("FAKE_ZFS", &state.to_string_lossy());
    }
    b.export(export)
        .config("control_connect", json!(socket))
        .start()
}

/// A stand-in `zfs`: the snapshot list in $FAKE_ZFS/snaps (one `zfs list -H -p` line
/// each), properties in $FAKE_ZFS/<name>, a rollback that sleeps $FAKE_ZFS/rollback-seconds.
const FAKE_ZFS: &str = r#"#!/bin/sh
S=$FAKE_ZFS
case $1 in
list) cat "$S/snaps" ;;
snapshot)
    if cut -f1 "$S/snaps" | grep -qx "$2"; then echo "cannot create snapshot '$2': dataset already exists" >&2; exit 1; fi
    printf '%s\t%s\t0\t4096\n' "$2" "$(date +%s)" >> "$S/snaps" ;;
rollback) sleep "$(cat "$S/rollback-seconds")"; echo "$2" >> "$S/rolled-back" ;;
get) for p in $(echo "$6" | tr , ' '); do printf '%s\t%s\t%s\tlocal\n' "$7" "$p" "$(cat "$S/$p" 2>/dev/null || echo 0)"; done ;;
set) echo "${2#*=}" > "$S/${2%%=*}" ;;
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
        ("refquota", "1000000"),
        ("used", "4096"),
        ("referenced", "4096"),
        ("available", "995904"),
    ] {
        std::fs::write(p.join(k), v).unwrap();
    }
    dir
}

#[tokio::test]
async fn status_snapshots_and_quota_go_through_the_channel() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let l = agent.listen();
        let zfs = fake_zfs(0.0);
        let server = server(&agent.socket(), Some(zfs.path()));
        let mut c = Conn::accept(&l, Duration::from_secs(10)).await;
        let hello = &c.hello["hello"];
        assert_eq!(hello["protocol"], 1, "{hello}");
        assert_eq!(hello["volume"]["dataset"], DATASET);
        assert_eq!(hello["volume"]["exports"], json!(["/exports/data"]));
        let caps = hello["capabilities"].as_array().unwrap();
        for op in ["status", "snapshot.rollback", "quota.set", "result"] {
            assert!(caps.contains(&json!(op)), "{op} in {hello}");
        }
        let st = c.call(json!(1), "status", json!({})).await;
        assert_eq!(st["ok"], true, "{st}");
        assert_eq!(st["result"]["dataset"]["kind"], "zfs");
        let s = c
            .call(json!(2), "snapshot.create", json!({"name": "daily"}))
            .await;
        assert_eq!(s["result"]["name"], "daily", "{s}");
        let list = c.call(json!(3), "snapshot.list", json!({})).await;
        let names: Vec<&str> = list["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names, ["s1", "daily"], "{list}");
        let q = c
            .call(json!("q"), "quota.set", json!({"bytes": 2_000_000}))
            .await;
        assert_eq!(q["ok"], true, "{q}");
        assert_eq!(
            std::fs::read_to_string(zfs.path().join("refquota"))
                .unwrap()
                .trim(),
            "2000000"
        );
        let q = c.call(json!(4), "quota.get", json!({})).await;
        assert_eq!(q["result"]["bytes"], 2_000_000);
        let e = c
            .call(json!(5), "snapshot.create", json!({"name": "daily"}))
            .await;
        assert_eq!(e["error"]["code"], "snapshot_exists", "{e}");
        // The local control socket keeps serving `volnfs ctl`.
        let local = server.ctl_json(&["quota", "get"]);
        assert_eq!(local["result"]["bytes"], 2_000_000, "{local}");
    })
    .await;
}

#[tokio::test]
async fn requests_run_together_and_a_rollback_outlives_its_connection() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let l = agent.listen();
        let zfs = fake_zfs(2.0);
        let _server = server(&agent.socket(), Some(zfs.path()));
        let mut c = Conn::accept(&l, Duration::from_secs(10)).await;
        let t0 = Instant::now();
        c.send(json!("rb-1"), "snapshot.rollback", json!({"name": "s1"}))
            .await;
        let st = c.call(json!("st-1"), "status", json!({})).await;
        assert_eq!(st["ok"], true, "{st}");
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "status waited for the rollback: {:?}",
            t0.elapsed()
        );
        let dup = c.call(json!("rb-1"), "status", json!({})).await;
        assert_eq!(dup["error"]["code"], "duplicate_id", "{dup}");
        drop(c); // the agent goes away while the rollback runs

        let mut c = Conn::accept(&l, Duration::from_secs(2)).await;
        let hello = &c.hello["hello"];
        assert_eq!(hello["running"], json!(["rb-1"]), "{hello}");
        let r = c
            .call(json!("q-1"), "result", json!({"id": "rb-1", "wait": true}))
            .await;
        assert_eq!(r["result"]["state"], "done", "{r}");
        assert_eq!(r["result"]["reply"]["id"], "rb-1", "{r}");
        assert_eq!(
            r["result"]["reply"]["result"]["rolled_back_to"], "s1",
            "{r}"
        );
        assert_eq!(
            std::fs::read_to_string(zfs.path().join("rolled-back")).unwrap(),
            format!("{DATASET}@s1\n"),
            "rolled back once"
        );
        let again = c.call(json!("q-2"), "result", json!({"id": "rb-1"})).await;
        assert_eq!(again["result"]["state"], "done", "asked again: {again}");
        let none = c.call(json!("q-3"), "result", json!({"id": "never"})).await;
        assert_eq!(none["error"]["code"], "unknown_request", "{none}");
    })
    .await;
}

#[tokio::test]
async fn an_agent_killed_and_restarted_is_reconnected_within_two_seconds() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let l = agent.listen();
        let _server = server(&agent.socket(), None);
        let c = Conn::accept(&l, Duration::from_secs(10)).await;
        let pid = c.hello["hello"]["pid"].clone();
        // Killed: its listener and connection close (the socket file stays, stale).
        drop((c, l));
        // Down long enough for volnfs's backoff to have grown past the first steps.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let l = agent.listen();
        let t0 = Instant::now();
        let mut c = Conn::accept(&l, Duration::from_secs(2)).await;
        eprintln!("reconnected {:?} after the agent restarted", t0.elapsed());
        assert_eq!(c.hello["hello"]["pid"], pid, "the same volnfs");
        let st = c.call(json!(1), "status", json!({})).await;
        assert_eq!(st["ok"], true, "{st}");
    })
    .await;
}

#[tokio::test]
async fn a_replaced_socket_file_is_noticed_and_the_new_one_connected() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let old = agent.listen();
        let server = server(&agent.socket(), None);
        let mut first = Conn::accept(&old, Duration::from_secs(10)).await;
        // A new agent takes the path while the old one (and its connection) lives on.
        let new = agent.listen();
        let t0 = Instant::now();
        let mut c = Conn::accept(&new, Duration::from_secs(2)).await;
        eprintln!(
            "connected to the new socket {:?} after it appeared",
            t0.elapsed()
        );
        assert!(first.read().await.is_none(), "the old connection is closed");
        let st = c.call(json!(1), "status", json!({})).await;
        assert_eq!(st["ok"], true, "{st}");
        assert_eq!(
            server.log_lines_about("control channel", "replaced").len(),
            1,
            "{}",
            server.log()
        );
    })
    .await;
}

#[tokio::test]
async fn garbage_from_the_agent_gets_an_error_reply_and_the_connection_stays() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let l = agent.listen();
        let _server = server(&agent.socket(), None);
        let mut c = Conn::accept(&l, Duration::from_secs(10)).await;
        let huge = vec![b'x'; 200 * 1024];
        let lines: [&[u8]; 6] = [
            b"garbage",
            b"\xff\xfe\x00binary",
            b"[1,2,3]",
            br#"{"v":1,"op":"status"}"#,
            br#"{"v":2,"id":1,"op":"status"}"#,
            &huge,
        ];
        let mut codes = Vec::new();
        for line in lines {
            c.send_raw(line).await;
            let r = c.read().await.expect("an error reply");
            assert_eq!(r["ok"], false, "{r}");
            codes.push(r["error"]["code"].as_str().unwrap_or("none").to_string());
        }
        assert_eq!(
            codes,
            [
                "bad_request",
                "bad_request",
                "bad_request",
                "bad_request",
                "unsupported_version",
                "line_too_long"
            ]
        );
        let u = c.call(json!("u"), "frobnicate", json!({})).await;
        assert_eq!(u["error"]["code"], "unknown_op", "{u}");
        let st = c.call(json!(7), "status", json!({})).await;
        assert_eq!(st["ok"], true, "the same connection still answers: {st}");
        assert!(
            tokio::time::timeout(Duration::from_millis(500), l.accept())
                .await
                .is_err(),
            "volnfs did not reconnect"
        );
    })
    .await;
}

#[tokio::test]
async fn without_an_agent_nfs_is_served_and_the_channel_connects_when_it_comes() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let server = server(&agent.socket(), None);
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        getattr(&mut conn, &root).await;
        // Several attempts fail meanwhile (100, 200, 400 ms apart); one log line says so.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let absent = server.log_lines_about("control channel", "no agent to talk to");
        assert_eq!(absent.len(), 1, "logged once: {absent:?}\n{}", server.log());
        let l = agent.listen();
        let c = Conn::accept(&l, Duration::from_secs(2)).await;
        assert_eq!(c.hello["hello"]["protocol"], 1);
        assert_eq!(
            server
                .log_lines_about("control channel", "connected to the agent")
                .len(),
            1
        );
        getattr(&mut conn, &root).await;
    })
    .await;
}

#[tokio::test]
async fn a_symlink_at_the_agent_path_is_refused() {
    bounded(LIMIT, async {
        let agent = AgentDir::new();
        let real = agent.dir.path().join("elsewhere.sock");
        let decoy = UnixListener::bind(&real).unwrap();
        std::os::unix::fs::symlink(&real, agent.socket()).unwrap();
        let server = server(&agent.socket(), None);
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), decoy.accept())
                .await
                .is_err(),
            "volnfs followed the symlink"
        );
        let refused = server.log_lines_about("control channel", "symlink");
        assert_eq!(refused.len(), 1, "{refused:?}\n{}", server.log());
        // The agent puts a real socket there: volnfs connects.
        std::fs::remove_file(agent.socket()).unwrap();
        let l = agent.listen();
        Conn::accept(&l, Duration::from_secs(2)).await;
    })
    .await;
}
