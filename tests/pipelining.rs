//! A burst of calls sent at once on one connection is answered whole.
//!
//! The reader holds the replies it makes itself for calls received
//! together and writes them with one vectored write when the batch is done
//! (`rpc::server::tcp::Batch`). These tests check what a client would
//! notice if a held reply were forgotten: the burst's last replies never
//! come, or the connection stops when every in-flight slot is held by a
//! reply not yet written.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use support::{bounded, read_record, ExportSpec, RawArgs, Server, UdpRpc};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

/// `n` NULL calls as one buffer of records, xids `first..first + n`.
fn null_burst(first: u32, n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for xid in first..first + n {
        let call = UdpRpc::encode_call(xid, 100003, 3, 0, &RawArgs(Vec::new()));
        out.extend_from_slice(&(0x8000_0000u32 | call.len() as u32).to_be_bytes());
        out.extend_from_slice(&call);
    }
    out
}

/// Sends the burst in one write and reads until every call is answered;
/// returns the xids answered.
async fn send_burst(s: &mut TcpStream, first: u32, n: u32) -> BTreeSet<u32> {
    s.write_all(&null_burst(first, n))
        .await
        .expect("send the burst");
    let mut got = BTreeSet::new();
    while got.len() < n as usize {
        let reply = read_record(s).await.expect("a reply");
        let xid = u32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]);
        assert!(got.insert(xid), "xid {xid} answered twice");
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_calls_is_answered_whole() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut s = TcpStream::connect(server.nfs_addr())
            .await
            .expect("connect");
        // Several bursts, of sizes around the batch's limit (64), so that
        // each ends with a batch not yet full: it must still be written.
        let mut first = 1;
        for n in [1, 2, 63, 64, 65, 300] {
            let got = send_burst(&mut s, first, n).await;
            assert_eq!(got, (first..first + n).collect(), "burst of {n}");
            first += n;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_in_flight_limit_is_answered() {
    bounded(LIMIT, async {
        // Four calls in flight per connection: the fifth waits for a slot
        // that only a written reply gives back, so the reader must write
        // what it holds before it waits.
        let server = Server::builder()
            .export(ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw"}]),
            ))
            .config("limits", json!({"max_inflight_per_connection": 4}))
            .start();
        let mut s = TcpStream::connect(server.nfs_addr())
            .await
            .expect("connect");
        let got = send_burst(&mut s, 1, 200).await;
        assert_eq!(got, (1..201).collect(), "200 calls, 4 in flight at a time");
    })
    .await;
}
