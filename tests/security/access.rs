//! ACCESS returns the rights the permission checks grant: for every file mode (and a spread of
//! directory modes) and a caller in each class (owner, group member, other), the ACCESS bits
//! are the class's rwx bits, and the operations behind them succeed or fail accordingly.

use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use serde_json::json;

use crate::creds::{chmod, chown, server_with, ALICE, BOB};
use crate::harness::*;
use crate::ops::*;

const LIMIT: Duration = Duration::from_secs(300);
const CAROL: u32 = 2500;

/// (name, uid, gid, gids, which 3-bit class of the mode applies)
const CALLERS: [(&str, u32, u32, &[u32], u32); 3] = [
    ("owner", ALICE, 1000, &[1000], 6),
    ("group member", BOB, 2000, &[2000, 1000], 3),
    ("other", CAROL, 2500, &[2500], 0),
];

fn class(mode: u32, shift: u32) -> (bool, bool, bool) {
    let bits = (mode >> shift) & 7;
    (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0)
}

#[tokio::test]
#[ignore = "needs root"]
async fn access_bits_match_the_file_mode_class_and_the_operations() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let p = server.path(0, "f");
        std::fs::write(&p, b"0123456789").unwrap();
        chown(&p, ALICE, 1000);
        let mut clients = Vec::new();
        for (who, uid, gid, gids, shift) in CALLERS {
            let (nfs, root) = mount_as(&server, 0, unix_credential(uid, gid, gids)).await;
            clients.push((who, shift, nfs, root));
        }
        let f = {
            let (_, _, nfs, root) = &mut clients[0];
            ok(lookup(nfs, root, "f").await, "LOOKUP f")
        };
        for mode in 0..0o1000u32 {
            chmod(&p, mode);
            for (who, shift, nfs, _) in clients.iter_mut() {
                let (r, w, x) = class(mode, *shift);
                let granted = access(nfs, &f, ACCESS3_ALL).await.expect("ACCESS");
                let mut expected = 0;
                if r {
                    expected |= ACCESS3_READ;
                }
                if w {
                    expected |= ACCESS3_MODIFY | ACCESS3_EXTEND;
                }
                if x {
                    expected |= ACCESS3_EXECUTE;
                }
                assert_eq!(
                    granted, expected,
                    "ACCESS for the {who} on a {mode:03o} file: {granted:#x}"
                );
                let owner = *shift == 6;
                let read_ok = read(nfs, &f, 4).await.is_ok();
                if r {
                    assert!(read_ok, "READ by the {who} of a {mode:03o} file");
                } else if !x && !owner {
                    assert!(!read_ok, "READ by the {who} of a {mode:03o} file succeeded");
                }
                let write_ok = write(nfs, &f, 0, b"0").await.is_ok();
                if w {
                    assert!(write_ok, "WRITE by the {who} to a {mode:03o} file");
                } else if !owner {
                    assert!(
                        !write_ok,
                        "WRITE by the {who} to a {mode:03o} file succeeded"
                    );
                }
            }
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn access_bits_match_the_directory_mode_class_and_the_operations() {
    bounded(LIMIT, async {
        let server = server_with("root_squash", json!({}));
        let d = server.path(0, "d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("entry"), b"e").unwrap();
        chown(&d, ALICE, 1000);
        let mut clients = Vec::new();
        for (who, uid, gid, gids, shift) in CALLERS {
            let (nfs, root) = mount_as(&server, 0, unix_credential(uid, gid, gids)).await;
            clients.push((who, shift, nfs, root));
        }
        let dh = {
            let (_, _, nfs, root) = &mut clients[0];
            ok(lookup(nfs, root, "d").await, "LOOKUP d")
        };
        let modes = [
            0o000, 0o700, 0o500, 0o300, 0o100, 0o400, 0o750, 0o740, 0o710, 0o730, 0o770, 0o705,
            0o701, 0o703, 0o707, 0o704, 0o777, 0o070, 0o007, 0o055, 0o011, 0o022, 0o033, 0o066,
        ];
        for mode in modes {
            chmod(&d, mode);
            for (who, shift, nfs, _) in clients.iter_mut() {
                let (r, w, x) = class(mode, *shift);
                let granted = access(nfs, &dh, ACCESS3_ALL).await.expect("ACCESS");
                let mut expected = 0;
                if r {
                    expected |= ACCESS3_READ;
                }
                if x {
                    expected |= ACCESS3_LOOKUP;
                    if w {
                        expected |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
                    }
                }
                assert_eq!(
                    granted, expected,
                    "ACCESS for the {who} on a {mode:03o} directory: {granted:#x}"
                );
                let lookup_ok = status(&lookup(nfs, &dh, "entry").await) == nfsstat3::NFS3_OK;
                assert_eq!(
                    lookup_ok, x,
                    "LOOKUP by the {who} in a {mode:03o} directory"
                );
                let list_ok = readdir_status(nfs, &dh).await.is_ok();
                assert_eq!(list_ok, r, "READDIR by the {who} of a {mode:03o} directory");
                let name = format!("new-{}", who.replace(' ', "-"));
                let create_ok = create(nfs, &dh, &name, 0o644).await.is_ok();
                assert_eq!(
                    create_ok,
                    w && x,
                    "CREATE by the {who} in a {mode:03o} directory"
                );
                if create_ok {
                    assert_eq!(remove(nfs, &dh, &name).await, Ok(()), "REMOVE {name}");
                }
            }
        }
    })
    .await;
}
