//! The lock manager (NLM v4) and status monitor (NSM) over raw RPC, the way a client's
//! kernel lock manager speaks them: two clients (127.0.0.1 and 127.0.0.2) contend for
//! locks, a blocked request is granted by a GRANTED callback to the waiting client's own
//! lock manager, a crash and restart makes the server tell the lock holders to reclaim
//! (SM_NOTIFY) and grant only reclaims for the grace period, a rebooted client's locks are
//! released, and malformed calls get RPC errors.
//!
//! The server's callbacks go to port 111 of the client's address, so every test runs in a
//! private network namespace where 127.0.0.2 gets a small stand-in for a client's
//! portmapper, lock manager and statd (the real ones are exercised by the kernel client in
//! `tests/e2e`, whose `mount:lock` checks use this same path). Needs root: every test is
//! `#[ignore = "needs root"]`.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{block_on, in_private_netns, lookup, read_record, write_record, ExportSpec, Server};
use tokio::net::{TcpListener, TcpSocket};

const NLM: u32 = 100021;
const NSM: u32 = 100024;
const GRANTED: u32 = 0;
const DENIED: u32 = 1;
const BLOCKED: u32 = 3;
const DENIED_GRACE_PERIOD: u32 = 4;
const STALE_FH: u32 = 7;
const GRACE_SECONDS: u64 = 4;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

/// The server on port 111 (callbacks and SM_NOTIFY find client B's services through its
/// portmapper there); inside a private network namespace only.
fn start_server() -> Server {
    Server::builder()
        .portmap_port(111)
        .args(&["--lock-grace", &GRACE_SECONDS.to_string()])
        .start()
}

// ---------------------------------------------------------------- XDR by hand

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_opaque(b: &mut Vec<u8>, d: &[u8]) {
    put_u32(b, d.len() as u32);
    b.extend_from_slice(d);
    b.resize(b.len() + (4 - d.len() % 4) % 4, 0);
}

fn get_u32(b: &[u8], at: &mut usize) -> u32 {
    let v = u32::from_be_bytes(b[*at..*at + 4].try_into().unwrap());
    *at += 4;
    v
}
fn get_opaque<'a>(b: &'a [u8], at: &mut usize) -> &'a [u8] {
    let n = get_u32(b, at) as usize;
    let d = &b[*at..*at + n];
    *at += n + (4 - n % 4) % 4;
    d
}

/// A client's view of one lock: who (svid) on which file, which range.
#[derive(Clone)]
struct Lk {
    caller: &'static str,
    fh: Vec<u8>,
    svid: u32,
    offset: u64,
    len: u64,
}

fn put_lock(b: &mut Vec<u8>, l: &Lk) {
    put_opaque(b, l.caller.as_bytes());
    put_opaque(b, &l.fh);
    put_opaque(b, format!("{}@{}", l.svid, l.caller).as_bytes());
    put_u32(b, l.svid);
    put_u64(b, l.offset);
    put_u64(b, l.len);
}

fn lock_args(l: &Lk, block: bool, exclusive: bool, reclaim: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put_opaque(&mut b, b"cookie-1");
    put_u32(&mut b, block as u32);
    put_u32(&mut b, exclusive as u32);
    put_lock(&mut b, l);
    put_u32(&mut b, reclaim as u32);
    put_u32(&mut b, 3); // NSM state
    b
}

fn test_args(l: &Lk, exclusive: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put_opaque(&mut b, b"cookie-t");
    put_u32(&mut b, exclusive as u32);
    put_lock(&mut b, l);
    b
}

fn unlock_args(l: &Lk) -> Vec<u8> {
    let mut b = Vec::new();
    put_opaque(&mut b, b"cookie-u");
    put_lock(&mut b, l);
    b
}

/// The RPC call message (AUTH_UNIX root, as a kernel lock manager sends).
fn call_msg(xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for w in [xid, 0, 2, prog, vers, proc_, 1] {
        put_u32(&mut b, w);
    }
    let mut cred = Vec::new();
    put_u32(&mut cred, 0);
    put_opaque(&mut cred, b"client");
    for w in [0, 0, 0] {
        put_u32(&mut cred, w);
    }
    put_opaque(&mut b, &cred);
    put_u32(&mut b, 0);
    put_u32(&mut b, 0);
    b.extend_from_slice(args);
    b
}

/// One call from `from` to the server's `port`; returns (accept_stat, results).
async fn rpc(
    from: &str,
    port: u16,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> (u32, Vec<u8>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut s = sock
        .connect(SocketAddr::new(A.parse().unwrap(), port))
        .await
        .expect("connect to the server");
    write_record(
        &mut s,
        &call_msg(0x4e4c4d00 | proc_, prog, vers, proc_, args),
    )
    .await
    .unwrap();
    let reply = read_record(&mut s).await.expect("a reply");
    let mut at = 8;
    assert_eq!(get_u32(&reply, &mut at), 0, "call denied");
    get_u32(&reply, &mut at);
    get_opaque(&reply, &mut at);
    let stat = get_u32(&reply, &mut at);
    (stat, reply[at..].to_vec())
}

/// nlm4_res / nlm4_testres status after the cookie.
fn nlm_stat(results: &[u8]) -> u32 {
    let mut at = 0;
    get_opaque(results, &mut at);
    get_u32(results, &mut at)
}

async fn nlm(from: &str, port: u16, proc_: u32, args: &[u8]) -> u32 {
    let (accept, results) = rpc(from, port, NLM, 4, proc_, args).await;
    assert_eq!(accept, 0, "NLM proc {proc_} not accepted");
    nlm_stat(&results)
}

/// A file in the export and its handle.
async fn file_handle(server: &Server, name: &str) -> Vec<u8> {
    std::fs::write(server.export_dir().join(name), b"locked data").unwrap();
    let mut conn = server.connect().await;
    let root = conn.root_nfs_fh3();
    lookup(&mut conn, &root, name).await.data.to_vec()
}

// ---------------------------------------------------------------- client B's stand-ins

/// What client B's lock manager and statd were told by the server.
#[derive(Debug)]
struct Heard {
    from: IpAddr,
    prog: u32,
    proc_: u32,
    args: Vec<u8>,
}

/// Starts client B's portmapper (127.0.0.2:111) and one port that answers for its lock
/// manager and statd: GRANTED is accepted (NLM4_GRANTED), SM_NOTIFY acknowledged.
async fn client_b_services() -> mpsc::Receiver<Heard> {
    let svc = TcpListener::bind((B, 0)).await.expect("bind B's lockd");
    let svc_port = svc.local_addr().unwrap().port() as u32;
    let pm = TcpListener::bind((B, 111))
        .await
        .expect("bind B's portmapper");
    let (tx, rx) = mpsc::channel();
    let serve = |l: TcpListener, tx: Option<mpsc::Sender<Heard>>| async move {
        loop {
            let Ok((mut s, peer)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(msg) = read_record(&mut s).await {
                    let mut at = 0;
                    let xid = get_u32(&msg, &mut at);
                    at = 12;
                    let prog = get_u32(&msg, &mut at);
                    let _vers = get_u32(&msg, &mut at);
                    let proc_ = get_u32(&msg, &mut at);
                    get_u32(&msg, &mut at);
                    get_opaque(&msg, &mut at);
                    get_u32(&msg, &mut at);
                    get_opaque(&msg, &mut at);
                    let args = msg[at..].to_vec();
                    let mut reply = Vec::new();
                    for w in [xid, 1, 0, 0, 0, 0] {
                        put_u32(&mut reply, w);
                    }
                    match (prog, proc_) {
                        (100000, 3) => {
                            let wanted = u32::from_be_bytes(args[..4].try_into().unwrap());
                            put_u32(
                                &mut reply,
                                if wanted == NLM || wanted == NSM {
                                    svc_port
                                } else {
                                    0
                                },
                            );
                        }
                        (NLM, 5) => {
                            let mut at = 0;
                            put_opaque(&mut reply, get_opaque(&args, &mut at));
                            put_u32(&mut reply, GRANTED);
                        }
                        _ => {}
                    }
                    if let Some(tx) = &tx {
                        let _ = tx.send(Heard {
                            from: peer.ip(),
                            prog,
                            proc_,
                            args,
                        });
                    }
                    if write_record(&mut s, &reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    };
    tokio::spawn(serve(pm, None));
    tokio::spawn(serve(svc, Some(tx)));
    rx
}

async fn wait_for(rx: &mpsc::Receiver<Heard>, prog: u32, proc_: u32, limit: Duration) -> Heard {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(h) if h.prog == prog && h.proc_ == proc_ => return h,
            Ok(_) => continue,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("client B heard no call of program {prog} procedure {proc_} within {limit:?}");
}

// ---------------------------------------------------------------- tests

#[test]
#[ignore = "needs root"]
fn locks_conflict_between_clients_and_a_blocked_waiter_is_granted_by_callback() {
    in_private_netns(|| {
        let server = start_server();
        block_on(async {
            let heard = client_b_services().await;
            let port = server.nfs_port;
            let fh = file_handle(&server, "shared.db").await;
            let a = Lk {
                caller: "client-a",
                fh: fh.clone(),
                svid: 11,
                offset: 0,
                len: 0,
            };
            let b = Lk {
                caller: "client-b",
                fh: fh.clone(),
                svid: 22,
                offset: 100,
                len: 10,
            };

            assert_eq!(
                nlm(A, port, 2, &lock_args(&a, false, true, false)).await,
                GRANTED
            );
            // B asks who holds it: A, whole file, exclusive.
            let (_, res) = rpc(B, port, NLM, 4, 1, &test_args(&b, true)).await;
            let mut at = 0;
            get_opaque(&res, &mut at);
            assert_eq!(get_u32(&res, &mut at), DENIED);
            assert_eq!(get_u32(&res, &mut at), 1, "holder is exclusive");
            assert_eq!(get_u32(&res, &mut at), 11, "holder svid");
            assert_eq!(get_opaque(&res, &mut at), b"11@client-a");
            // Shared locks of A's own do not stop A; B may not even share.
            assert_eq!(nlm(A, port, 1, &test_args(&a, true)).await, GRANTED);
            assert_eq!(
                nlm(B, port, 2, &lock_args(&b, false, false, false)).await,
                DENIED
            );
            // B waits; A lets go of the part B wants; B is called back.
            assert_eq!(
                nlm(B, port, 2, &lock_args(&b, true, true, false)).await,
                BLOCKED
            );
            let part = Lk {
                offset: 50,
                len: 100,
                ..a.clone()
            };
            assert_eq!(nlm(A, port, 4, &unlock_args(&part)).await, GRANTED);
            let cb = wait_for(&heard, NLM, 5, Duration::from_secs(10)).await;
            assert_eq!(
                cb.from,
                A.parse::<IpAddr>().unwrap(),
                "callback comes from the address B used"
            );
            let mut at = 0;
            assert_eq!(
                get_opaque(&cb.args, &mut at),
                b"cookie-1",
                "the blocked request's cookie"
            );
            assert_eq!(get_u32(&cb.args, &mut at), 1, "exclusive");
            assert_eq!(get_opaque(&cb.args, &mut at), b"client-b");
            assert_eq!(get_opaque(&cb.args, &mut at), &fh[..]);
            get_opaque(&cb.args, &mut at);
            assert_eq!(get_u32(&cb.args, &mut at), 22, "B's svid");
            // Operators see the locks: A's two pieces and B's.
            let status = server.ctl_json(&["status"]);
            assert_eq!(status["result"]["locks_held"], 3, "{status}");
            // Now B holds 100..109 and A still holds 0..49 and 150..
            let probe = |offset, len| Lk {
                caller: "client-c",
                fh: fh.clone(),
                svid: 33,
                offset,
                len,
            };
            assert_eq!(
                nlm(A, port, 1, &test_args(&probe(100, 1), false)).await,
                DENIED
            );
            assert_eq!(
                nlm(A, port, 1, &test_args(&probe(120, 10), true)).await,
                GRANTED
            );
            assert_eq!(
                nlm(A, port, 1, &test_args(&probe(0, 1), false)).await,
                DENIED
            );
            assert_eq!(
                nlm(A, port, 1, &test_args(&probe(200, 1), false)).await,
                DENIED
            );

            // A client that rebooted says so (SM_NOTIFY): its own locks go, and
            // only its own — the notice frees the locks of the address it comes from.
            let mut notify = Vec::new();
            put_opaque(&mut notify, b"client-a");
            put_u32(&mut notify, 5);
            assert_eq!(rpc(A, port, NSM, 1, 6, &notify).await.0, 0);
            assert_eq!(
                nlm(B, port, 1, &test_args(&probe(0, 1), true)).await,
                GRANTED,
                "A's locks survived its reboot notice"
            );
            assert_eq!(
                nlm(B, port, 1, &test_args(&probe(100, 1), false)).await,
                DENIED,
                "A's notice freed B's lock"
            );
            assert_eq!(rpc(B, port, NSM, 1, 6, &notify).await.0, 0);
            assert_eq!(
                nlm(A, port, 1, &test_args(&probe(100, 1), true)).await,
                GRANTED,
                "B's lock survived its reboot notice"
            );
        });
    });
}

#[test]
#[ignore = "needs root"]
fn after_a_crash_lock_holders_are_told_to_reclaim_and_only_reclaims_pass_during_grace() {
    in_private_netns(|| {
        let server = start_server();
        let (port, fh) =
            block_on(async { (server.nfs_port, file_handle(&server, "reclaimed").await) });
        let b = Lk {
            caller: "client-b",
            fh: fh.clone(),
            svid: 22,
            offset: 0,
            len: 0,
        };
        let a = Lk {
            caller: "client-a",
            fh,
            svid: 11,
            offset: 0,
            len: 0,
        };
        block_on(async {
            assert_eq!(
                nlm(B, port, 2, &lock_args(&b, false, true, false)).await,
                GRANTED
            );
        });
        // kill -9: nothing is flushed at exit; the holder was recorded before the grant.
        let server = server.crash_restart();
        let port = server.nfs_port;
        block_on(async {
            let heard = client_b_services().await;
            let started = Instant::now();
            let n = wait_for(&heard, NSM, 6, Duration::from_secs(15)).await;
            let mut at = 0;
            assert_eq!(
                get_opaque(&n.args, &mut at),
                A.as_bytes(),
                "SM_NOTIFY names us as B knows us"
            );
            assert_eq!(get_u32(&n.args, &mut at) % 2, 1, "an odd (up) NSM state");
            assert_eq!(n.from, A.parse::<IpAddr>().unwrap());
            // Grace: A's new lock waits, B's reclaim is granted.
            assert_eq!(
                nlm(A, port, 2, &lock_args(&a, false, true, false)).await,
                DENIED_GRACE_PERIOD
            );
            assert_eq!(
                nlm(A, port, 1, &test_args(&a, true)).await,
                DENIED_GRACE_PERIOD
            );
            assert_eq!(
                nlm(B, port, 2, &lock_args(&b, false, true, true)).await,
                GRANTED
            );
            // After the grace period: A is refused because B holds the lock again.
            let deadline = started + Duration::from_secs(GRACE_SECONDS + 10);
            let stat = loop {
                let s = nlm(A, port, 2, &lock_args(&a, false, true, false)).await;
                if s != DENIED_GRACE_PERIOD || Instant::now() > deadline {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            assert_eq!(
                stat, DENIED,
                "B's reclaimed lock must hold after the grace period"
            );
            assert_eq!(nlm(B, port, 4, &unlock_args(&b)).await, GRANTED);
            assert_eq!(
                nlm(A, port, 2, &lock_args(&a, false, true, false)).await,
                GRANTED
            );
        });
    });
}

#[test]
#[ignore = "needs root"]
fn lock_calls_with_forged_handles_or_garbage_are_refused_and_the_server_keeps_serving() {
    in_private_netns(|| {
        let server = start_server();
        block_on(async {
            let port = server.nfs_port;
            let fh = file_handle(&server, "f").await;
            let mut forged = fh.clone();
            forged[20] ^= 1;
            let bad = Lk {
                caller: "client-a",
                fh: forged,
                svid: 1,
                offset: 0,
                len: 0,
            };
            assert_eq!(
                nlm(A, port, 2, &lock_args(&bad, false, true, false)).await,
                STALE_FH
            );
            // A removed file's handle is stale for new locks; the lock held on it
            // can still be let go of.
            let held = Lk {
                caller: "client-a",
                fh: fh.clone(),
                svid: 1,
                offset: 0,
                len: 0,
            };
            assert_eq!(
                nlm(A, port, 2, &lock_args(&held, false, true, false)).await,
                GRANTED
            );
            std::fs::remove_file(server.export_dir().join("f")).unwrap();
            let gone = Lk {
                svid: 2,
                ..held.clone()
            };
            assert_eq!(
                nlm(A, port, 2, &lock_args(&gone, false, true, false)).await,
                STALE_FH
            );
            assert_eq!(nlm(A, port, 4, &unlock_args(&held)).await, GRANTED);
            // Truncated arguments, and a netobj claiming 4 GiB: GARBAGE_ARGS (4).
            let args = lock_args(&gone, false, true, false);
            assert_eq!(rpc(A, port, NLM, 4, 2, &args[..args.len() - 6]).await.0, 4);
            let mut huge = Vec::new();
            put_u32(&mut huge, 0xffff_ffff);
            assert_eq!(rpc(A, port, NLM, 4, 2, &huge).await.0, 4);
            // Unknown procedure: PROC_UNAVAIL (3); the server still answers NULL.
            assert_eq!(rpc(A, port, NLM, 4, 99, &[]).await.0, 3);
            assert_eq!(rpc(B, port, NLM, 4, 0, &[]).await.0, 0);
        });
    });
}

/// `volnfs serve --config FILE` (no portmapper: no callbacks are needed) where every
/// address in `clients` may mount read-write.
fn start_config_server(clients: &[&str]) -> Server {
    Server::builder()
        .listen(&[A])
        .no_portmap()
        .export(ExportSpec::new("/exports/data", rules(clients)))
        .start()
}

fn rules(clients: &[&str]) -> serde_json::Value {
    clients
        .iter()
        .map(|c| json!({"match": c, "access": "rw", "squash": "no_root_squash"}))
        .collect()
}

#[test]
#[ignore = "needs root"] // mounts from a privileged port
fn a_reload_that_drops_a_client_releases_its_locks() {
    let server = start_config_server(&[A, B]);
    block_on(async {
        std::fs::write(server.export_dir().join("db"), b"x").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let fh = lookup(&mut conn, &root, "db").await.data.to_vec();
        let a = Lk {
            caller: "client-a",
            fh: fh.clone(),
            svid: 1,
            offset: 0,
            len: 0,
        };
        let b = Lk {
            caller: "client-b",
            fh,
            svid: 2,
            offset: 0,
            len: 0,
        };
        let port = server.nfs_port;
        assert_eq!(
            nlm(B, port, 2, &lock_args(&b, false, true, false)).await,
            GRANTED
        );
        assert_eq!(
            nlm(A, port, 2, &lock_args(&a, false, true, false)).await,
            DENIED
        );
        // B's network is dropped from the export: B can no longer reach us to unlock.
        server.set_clients(0, rules(&[A]));
        let reply = server.ctl_json(&["exports", "reload"]);
        assert_eq!(reply["result"]["clients_unlocked"], 1, "{reply}");
        assert_eq!(
            nlm(A, port, 2, &lock_args(&a, false, true, false)).await,
            GRANTED
        );
        let st = server.ctl_json(&["status"]);
        assert_eq!(st["result"]["locks_held"], 1, "{st}");
    });
}
