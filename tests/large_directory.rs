//! A 10,000-entry directory listed completely through READDIR and READDIRPLUS with small
//! reply sizes, so the listing takes hundreds of round trips driven by cookies and the
//! cookie verifier.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Pack;
use support::{bounded, err_status, lookup, ok, Connection, Server};

const ENTRIES: usize = 10_000;
const LIMIT: Duration = Duration::from_secs(180);

fn make_big_dir(server: &Server) -> HashSet<String> {
    let dir = server.export_dir().join("big");
    std::fs::create_dir(&dir).unwrap();
    let mut names = HashSet::new();
    for i in 0..ENTRIES {
        // Vary the name length so entries do not all pack to the same size.
        let n = format!("entry-{i:05}{}", "x".repeat(i % 13));
        std::fs::File::create(dir.join(&n)).unwrap();
        names.insert(n);
    }
    names
}

struct Listing {
    /// name -> (fileid, cookie)
    entries: HashMap<String, (u64, u64)>,
    round_trips: usize,
}

fn record(listing: &mut Listing, n: String, fileid: u64, cookie: u64, cookies: &mut HashSet<u64>) {
    assert!(
        cookie != 0,
        "entry {n} has cookie 0, which means 'start of directory'"
    );
    assert!(
        cookies.insert(cookie),
        "cookie {cookie} returned twice (entry {n})"
    );
    if n == "." || n == ".." {
        return;
    }
    let previous = listing.entries.insert(n.clone(), (fileid, cookie));
    assert!(previous.is_none(), "{n} listed more than once");
}

async fn list_with_readdir(conn: &mut Connection, dir: &nfs_fh3, count: u32) -> Listing {
    let mut listing = Listing {
        entries: HashMap::new(),
        round_trips: 0,
    };
    let mut cookies = HashSet::new();
    let (mut cookie, mut verf) = (0u64, cookieverf3::default());
    loop {
        assert!(
            listing.round_trips < 5 * ENTRIES,
            "READDIR never reached eof"
        );
        let res = conn
            .readdir(&READDIR3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verf,
                count,
            })
            .await
            .expect("READDIR rpc");
        listing.round_trips += 1;
        let res = ok(res, &format!("READDIR at cookie {cookie}"));
        assert!(
            res.packed_size() <= count as usize,
            "READDIR reply of {} bytes exceeds count {count}",
            res.packed_size()
        );
        if listing.round_trips > 1 {
            assert_eq!(
                res.cookieverf, verf,
                "cookie verifier changed while the directory did not"
            );
        }
        verf = res.cookieverf;
        assert!(
            !res.reply.entries.0.is_empty() || res.reply.eof,
            "empty page without eof at cookie {cookie}"
        );
        for e in res.reply.entries.0 {
            cookie = e.cookie;
            record(
                &mut listing,
                String::from_utf8(e.name.0.to_vec()).unwrap(),
                e.fileid,
                e.cookie,
                &mut cookies,
            );
        }
        if res.reply.eof {
            break;
        }
    }
    listing
}

async fn list_with_readdirplus(
    conn: &mut Connection,
    dir: &nfs_fh3,
    dircount: u32,
    maxcount: u32,
) -> Listing {
    let mut listing = Listing {
        entries: HashMap::new(),
        round_trips: 0,
    };
    let mut cookies = HashSet::new();
    let (mut cookie, mut verf) = (0u64, cookieverf3::default());
    loop {
        assert!(
            listing.round_trips < 5 * ENTRIES,
            "READDIRPLUS never reached eof"
        );
        let res = conn
            .readdirplus(&READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verf,
                dircount,
                maxcount,
            })
            .await
            .expect("READDIRPLUS rpc");
        listing.round_trips += 1;
        let res = ok(res, &format!("READDIRPLUS at cookie {cookie}"));
        assert!(
            res.packed_size() <= maxcount as usize,
            "READDIRPLUS reply of {} bytes exceeds maxcount {maxcount}",
            res.packed_size()
        );
        if listing.round_trips > 1 {
            assert_eq!(
                res.cookieverf, verf,
                "cookie verifier changed while the directory did not"
            );
        }
        verf = res.cookieverf;
        assert!(
            !res.reply.entries.0.is_empty() || res.reply.eof,
            "empty page without eof at cookie {cookie}"
        );
        for e in res.reply.entries.0 {
            cookie = e.cookie;
            let n = String::from_utf8(e.name.0.to_vec()).unwrap();
            if n != "." && n != ".." {
                match (&e.name_attributes, &e.name_handle) {
                    (Nfs3Option::Some(a), Nfs3Option::Some(_)) => {
                        assert_eq!(a.fileid, e.fileid, "{n}: attributes fileid vs entry fileid");
                        assert_eq!(a.type_, ftype3::NF3REG, "{n}: type");
                    }
                    _ => panic!("READDIRPLUS entry {n} lacks attributes or handle"),
                }
            }
            record(&mut listing, n, e.fileid, e.cookie, &mut cookies);
        }
        if res.reply.eof {
            break;
        }
    }
    listing
}

fn assert_complete(listing: &Listing, expected: &HashSet<String>, what: &str) {
    let got: HashSet<&String> = listing.entries.keys().collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|n| !got.contains(n))
        .take(5)
        .collect();
    let extra: Vec<&&String> = got
        .iter()
        .filter(|n| !expected.contains(**n))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(listing.entries.len(), expected.len(), "{what}: entry count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_with_small_replies_lists_ten_thousand_entries_exactly_once() {
    bounded(LIMIT, async {
        let server = Server::start();
        let expected = make_big_dir(&server);
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let dir = lookup(&mut conn, &root, "big").await;

        let listing = list_with_readdir(&mut conn, &dir, 1024).await;
        assert_complete(&listing, &expected, "READDIR");
        assert!(
            listing.round_trips >= 100,
            "only {} READDIR round trips for 10,000 entries",
            listing.round_trips
        );

        // fileids agree with GETATTR (sampled).
        for n in expected.iter().take(50) {
            let fh = lookup(&mut conn, &dir, n).await;
            assert_eq!(
                support::getattr(&mut conn, &fh).await.fileid,
                listing.entries[n].0,
                "{n}: fileid"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdirplus_with_small_replies_lists_ten_thousand_entries_exactly_once() {
    bounded(LIMIT, async {
        let server = Server::start();
        let expected = make_big_dir(&server);
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let dir = lookup(&mut conn, &root, "big").await;

        let plus = list_with_readdirplus(&mut conn, &dir, 512, 4096).await;
        assert_complete(&plus, &expected, "READDIRPLUS");
        assert!(
            plus.round_trips >= 100,
            "only {} READDIRPLUS round trips for 10,000 entries",
            plus.round_trips
        );

        let plain = list_with_readdir(&mut conn, &dir, 4096).await;
        for (n, (fileid, _)) in &plus.entries {
            assert_eq!(
                plain.entries[n].0, *fileid,
                "{n}: READDIR and READDIRPLUS fileids differ"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn readdir_continuation_with_a_foreign_cookie_verifier_fails_with_bad_cookie() {
    bounded(LIMIT, async {
        let server = Server::start();
        let dir = server.export_dir().join("d");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..200 {
            std::fs::File::create(dir.join(format!("f{i:03}"))).unwrap();
        }
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let d = lookup(&mut conn, &root, "d").await;
        let first = conn
            .readdir(&READDIR3args {
                dir: d.clone(),
                cookie: 0,
                cookieverf: cookieverf3::default(),
                count: 1024,
            })
            .await
            .expect("READDIR rpc");
        let first = ok(first, "first READDIR page");
        assert!(!first.reply.eof, "200 entries should not fit in 1024 bytes");
        assert_ne!(
            first.cookieverf,
            cookieverf3::default(),
            "server should hand out a non-zero cookie verifier"
        );
        let cookie = first.reply.entries.0.last().unwrap().cookie;

        let mut forged = first.cookieverf;
        forged.0.iter_mut().for_each(|b| *b ^= 0xA5);
        let res = conn
            .readdir(&READDIR3args {
                dir: d.clone(),
                cookie,
                cookieverf: forged,
                count: 1024,
            })
            .await
            .expect("READDIR rpc");
        assert_eq!(
            err_status(res, "READDIR with a forged verifier").0,
            nfsstat3::NFS3ERR_BAD_COOKIE
        );

        // The genuine verifier still continues the listing.
        let res = conn
            .readdir(&READDIR3args {
                dir: d,
                cookie,
                cookieverf: first.cookieverf,
                count: 1024,
            })
            .await
            .expect("READDIR rpc");
        ok(res, "READDIR continuation with the genuine verifier");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_ls_of_ten_thousand_entries_shows_each_exactly_once() {
    bounded(LIMIT, async {
        let server = Server::start();
        let expected = make_big_dir(&server);
        let (status, out, err) = support::run_tool(
            "nfs-ls",
            &[&server.nfs_url("big")],
            Duration::from_secs(120),
        )
        .await;
        assert!(status.success(), "nfs-ls failed: {status}\n{err}");
        let mut seen = HashSet::new();
        for line in out.lines() {
            let n = line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_string();
            assert!(seen.insert(n.clone()), "nfs-ls listed {n} twice");
        }
        let missing: Vec<&String> = expected
            .iter()
            .filter(|n| !seen.contains(*n))
            .take(5)
            .collect();
        assert!(missing.is_empty(), "nfs-ls is missing {missing:?}");
        assert_eq!(seen.len(), expected.len(), "nfs-ls entry count");
    })
    .await;
}
