//! A client that loses a reply retransmits the same call (same xid). Non-idempotent
//! procedures must then get the original answer from the duplicate request cache instead
//! of being executed a second time (a re-executed REMOVE would answer NOENT, a re-executed
//! CREATE GUARDED would answer EXIST).

mod support;

use std::time::Duration;

use nfs3_client::nfs3_types::mount::{self, mountres3};
use nfs3_client::nfs3_types::nfs3::{self, *};
use support::{bounded, decode_reply, dirpath_of, Server, UdpRpc, EXPORT_NAME};

const LIMIT: Duration = Duration::from_secs(60);

async fn root_handle_over_udp(rpc: &UdpRpc) -> nfs_fh3 {
    let call = UdpRpc::encode_call(0x5151_0001, mount::PROGRAM, 3, 1, &dirpath_of(EXPORT_NAME));
    match decode_reply::<mountres3>(&rpc.exchange(&call).await) {
        mountres3::Ok(ok) => nfs_fh3 {
            data: ok.fhandle.0.to_vec().into(),
        },
        mountres3::Err(e) => panic!("MNT over UDP: {e:?}"),
    }
}

#[tokio::test]
async fn retransmitted_remove_gets_the_original_reply() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("victim"), b"v").unwrap();
        let rpc = UdpRpc::connect(server.nfs_port).await;
        let root = root_handle_over_udp(&rpc).await;

        let args = REMOVE3args {
            object: support::dirop(&root, "victim"),
        };
        let call = UdpRpc::encode_call(0x5151_0002, nfs3::PROGRAM, 3, 12, &args);
        let first_raw = rpc.exchange(&call).await;
        let first = decode_reply::<REMOVE3res>(&first_raw);
        assert!(
            matches!(first, Nfs3Result::Ok(_)),
            "first REMOVE: {first:?}"
        );
        assert!(!server.export_dir().join("victim").exists());

        let again_raw = rpc.exchange(&call).await;
        let again = decode_reply::<REMOVE3res>(&again_raw);
        assert!(
            matches!(again, Nfs3Result::Ok(_)),
            "retransmitted REMOVE was re-executed: {again:?}"
        );
        assert_eq!(
            first_raw, again_raw,
            "the replayed reply must be byte-identical"
        );

        // A new xid is a new request and does see the file gone.
        let call = UdpRpc::encode_call(0x5151_0003, nfs3::PROGRAM, 3, 12, &args);
        let fresh = decode_reply::<REMOVE3res>(&rpc.exchange(&call).await);
        assert!(
            matches!(fresh, Nfs3Result::Err((nfsstat3::NFS3ERR_NOENT, _))),
            "REMOVE with a new xid: {fresh:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn retransmitted_guarded_create_gets_the_original_reply() {
    bounded(LIMIT, async {
        let server = Server::start();
        let rpc = UdpRpc::connect(server.nfs_port).await;
        let root = root_handle_over_udp(&rpc).await;
        let args = CREATE3args {
            where_: support::dirop(&root, "once"),
            how: createhow3::GUARDED(sattr3::default()),
        };
        let call = UdpRpc::encode_call(0x5151_0010, nfs3::PROGRAM, 3, 8, &args);
        let first_raw = rpc.exchange(&call).await;
        let first = decode_reply::<CREATE3res>(&first_raw);
        assert!(
            matches!(first, Nfs3Result::Ok(_)),
            "first CREATE: {first:?}"
        );
        let again_raw = rpc.exchange(&call).await;
        let again = decode_reply::<CREATE3res>(&again_raw);
        assert!(
            matches!(again, Nfs3Result::Ok(_)),
            "retransmitted CREATE was re-executed: {again:?}"
        );
        assert_eq!(
            first_raw, again_raw,
            "the replayed reply must be byte-identical"
        );
    })
    .await;
}

#[tokio::test]
async fn retransmitted_exclusive_create_gets_the_original_reply_byte_for_byte() {
    bounded(LIMIT, async {
        let server = Server::start();
        let rpc = UdpRpc::connect(server.nfs_port).await;
        let root = root_handle_over_udp(&rpc).await;
        let args = CREATE3args {
            where_: support::dirop(&root, "exclusive"),
            how: createhow3::EXCLUSIVE(createverf3(*b"verifier")),
        };
        let call = UdpRpc::encode_call(0x5151_0011, nfs3::PROGRAM, 3, 8, &args);
        let first_raw = rpc.exchange(&call).await;
        let first = decode_reply::<CREATE3res>(&first_raw);
        assert!(
            matches!(first, Nfs3Result::Ok(_)),
            "first CREATE: {first:?}"
        );
        // Change the file between the two: a re-execution would report new attributes.
        std::fs::write(server.export_dir().join("exclusive"), b"changed").unwrap();
        let again_raw = rpc.exchange(&call).await;
        assert_eq!(
            first_raw, again_raw,
            "the replayed reply must be byte-identical"
        );
    })
    .await;
}

#[tokio::test]
async fn retransmitted_rename_on_a_new_tcp_connection_gets_the_original_reply() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("from"), b"r").unwrap();
        let conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let args = RENAME3args {
            from: support::dirop(&root, "from"),
            to: support::dirop(&root, "to"),
        };
        let call = UdpRpc::encode_call(0x5151_0020, nfs3::PROGRAM, 3, 14, &args);
        let first_raw = support::tcp_exchange(server.nfs_port, &call)
            .await
            .expect("TCP exchange");
        let first = decode_reply::<RENAME3res>(&first_raw);
        assert!(
            matches!(first, Nfs3Result::Ok(_)),
            "first RENAME: {first:?}"
        );
        let again_raw = support::tcp_exchange(server.nfs_port, &call)
            .await
            .expect("TCP exchange");
        let again = decode_reply::<RENAME3res>(&again_raw);
        assert!(
            matches!(again, Nfs3Result::Ok(_)),
            "RENAME retransmitted after a reconnect was re-executed: {again:?}"
        );
        assert_eq!(
            first_raw, again_raw,
            "the replayed reply must be byte-identical"
        );
        assert!(server.export_dir().join("to").exists());
    })
    .await;
}
