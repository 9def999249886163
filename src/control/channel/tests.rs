//! The channel against an agent played by the test, on a real unix socket,
//! with a dataset whose rollback waits for the test: a rollback outlives
//! the connection that asked for it and its reply is there on the next one.
//! (The binary end to end: tests/control_channel.rs; real ZFS: tests/zfs.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;
use tokio::sync::{watch, Notify};

use crate::dataset::{Dataset, DatasetError, Snapshot, Space};
use crate::exports::ExportTable;
use crate::iopool::IoPool;
use crate::service::ServerState;

/// A ZFS-like dataset whose rollback waits until the test lets it finish.
struct HeldRollback {
    started: Notify,
    finish: Notify,
}

#[async_trait]
impl Dataset for HeldRollback {
    fn kind(&self) -> &'static str {
        "zfs"
    }
    fn name(&self) -> String {
        "zones/z/data/vol".into()
    }
    async fn space(&self) -> Result<Space, DatasetError> {
        Ok(Space {
            size: 100,
            used: 1,
            available: 99,
        })
    }
    async fn snapshots(&self) -> Result<Vec<Snapshot>, DatasetError> {
        Ok(Vec::new())
    }
    async fn snapshot_create(&self, _: &str) -> Result<Snapshot, DatasetError> {
        Err(DatasetError::Internal("unused".into()))
    }
    async fn snapshot_delete(&self, _: &str) -> Result<(), DatasetError> {
        Ok(())
    }
    async fn snapshot_rollback(&self, _: &str) -> Result<(), DatasetError> {
        self.started.notify_one();
        self.finish.notified().await;
        Ok(())
    }
    async fn quota(&self) -> Result<Option<u64>, DatasetError> {
        Ok(Some(100))
    }
    async fn set_quota(&self, _: u64) -> Result<(), DatasetError> {
        Ok(())
    }
}

/// A server state with no exports (the rollback pauses none): the channel
/// and the results are what is tested here.
fn state(dataset: Arc<HeldRollback>) -> Arc<ServerState> {
    let table = Arc::new(ExportTable::new(Vec::new()));
    let pool = IoPool::new(Default::default());
    Arc::new(ServerState {
        exports: table.clone(),
        nfs: crate::nfs3::Nfs3::new(table, [0; 8], pool.clone()),
        clients: Default::default(),
        dataset,
        config_path: None,
        started: std::time::Instant::now(),
        nlm: None,
        pool,
        volume_ops: Default::default(),
    })
}

/// The agent's end of one connection.
struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Conn {
    async fn accept(l: &UnixListener) -> (Conn, Value) {
        let (s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("volnfs connects")
            .unwrap();
        let (rd, wr) = s.into_split();
        let mut c = Conn {
            rd: BufReader::new(rd),
            wr,
        };
        let hello = c.read().await;
        (c, hello)
    }
    async fn send(&mut self, v: Value) {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        self.wr.write_all(&line).await.unwrap();
    }
    async fn read(&mut self) -> Value {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.rd.read_line(&mut line))
            .await
            .expect("a line within 10 s")
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

#[tokio::test]
async fn a_rollback_outlives_its_connection_and_its_reply_is_kept_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("volnfs.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let dataset = Arc::new(HeldRollback {
        started: Notify::new(),
        finish: Notify::new(),
    });
    let (stop, shutdown) = watch::channel(false);
    let channel = tokio::spawn(super::run(path.clone(), state(dataset.clone()), shutdown));

    let (mut first, hello) = Conn::accept(&listener).await;
    assert_eq!(hello["hello"]["protocol"], 1, "{hello}");
    assert_eq!(hello["hello"]["volume"]["dataset"], "zones/z/data/vol");
    assert!(hello["hello"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("result")));
    first
        .send(json!({"v":1,"id":"rb-1","op":"snapshot.rollback","args":{"name":"s1"}}))
        .await;
    dataset.started.notified().await;
    // Another request answers while the rollback runs.
    first.send(json!({"v":1,"id":2,"op":"quota.get"})).await;
    let r = first.read().await;
    assert_eq!(
        (r["id"].clone(), r["result"]["bytes"].clone()),
        (json!(2), json!(100))
    );
    drop(first);

    let (mut second, hello) = Conn::accept(&listener).await;
    assert_eq!(hello["hello"]["running"], json!(["rb-1"]), "{hello}");
    second
        .send(json!({"v":1,"id":3,"op":"result","args":{"id":"rb-1"}}))
        .await;
    let r = second.read().await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    second
        .send(json!({"v":1,"id":4,"op":"result","args":{"id":"rb-1","wait":true}}))
        .await;
    dataset.finish.notify_one();
    let r = second.read().await;
    assert_eq!(r["id"], 4, "{r}");
    assert_eq!(r["result"]["state"], "done", "{r}");
    let reply = &r["result"]["reply"];
    assert_eq!(reply["id"], "rb-1");
    assert_eq!(reply["result"]["rolled_back_to"], "s1", "{r}");
    // The rollback's own reply went nowhere (its connection is gone): not here either.
    second.send(json!({"v":1,"id":5,"op":"status"})).await;
    assert_eq!(second.read().await["id"], 5);
    drop(second);

    let (mut third, hello) = Conn::accept(&listener).await;
    assert_eq!(hello["hello"]["results"], json!(["rb-1"]), "{hello}");
    third
        .send(json!({"v":1,"id":6,"op":"result","args":{"id":5}}))
        .await;
    let r = third.read().await;
    assert_eq!(
        r["error"]["code"], "unknown_request",
        "status is not kept: {r}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), channel)
        .await
        .expect("the channel stops")
        .unwrap();
}
