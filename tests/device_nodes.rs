//! Device nodes without device files (issue 15): MKNOD of a character or block
//! device makes a marked placeholder on the server's disk, never a real node,
//! and every attribute reply shows the device; it can be renamed, linked,
//! chmodded, chowned and removed, survives a restart, and its placeholder bytes
//! cannot be read or written. `device_nodes: "refuse"` refuses them.

mod support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use serde_json::json;
use support::{bounded, dirop, err_status, getattr, ok, Connection, ExportSpec, Server};

const LIMIT: Duration = Duration::from_secs(60);

fn dev(mode: u32, major: u32, minor: u32) -> devicedata3 {
    devicedata3 {
        dev_attributes: sattr3 {
            mode: Nfs3Option::Some(mode),
            ..Default::default()
        },
        spec: specdata3 {
            specdata1: major,
            specdata2: minor,
        },
    }
}

/// MKNOD; the reply's attributes must already say what was made (a client
/// caches them: `ls -l` right after `mknod` shows them).
async fn mknod(conn: &mut Connection, dir: &nfs_fh3, name: &str, what: mknoddata3) -> nfs_fh3 {
    let want = match &what {
        mknoddata3::NF3CHR(d) => Some((ftype3::NF3CHR, d.spec.specdata1, d.spec.specdata2)),
        mknoddata3::NF3BLK(d) => Some((ftype3::NF3BLK, d.spec.specdata1, d.spec.specdata2)),
        _ => None,
    };
    let res = conn
        .mknod(&MKNOD3args {
            where_: dirop(dir, name),
            what,
        })
        .await
        .expect("MKNOD rpc");
    let made = ok(res, &format!("MKNOD {name}"));
    if let Some(want) = want {
        let Nfs3Option::Some(a) = &made.obj_attributes else {
            panic!("MKNOD {name}: no attributes in the reply");
        };
        assert_eq!(
            (a.type_, a.rdev.specdata1, a.rdev.specdata2),
            want,
            "MKNOD {name} reply"
        );
    }
    made.obj.unwrap()
}

#[tokio::test]
async fn device_nodes_are_emulated_with_marked_placeholders() {
    bounded(LIMIT, async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let tty = mknod(
            &mut conn,
            &root,
            "tty0",
            mknoddata3::NF3CHR(dev(0o620, 4, 1)),
        )
        .await;
        let disk = mknod(
            &mut conn,
            &root,
            "sda",
            mknoddata3::NF3BLK(dev(0o660, 8, 0)),
        )
        .await;
        let a = getattr(&mut conn, &tty).await;
        assert_eq!((a.type_, a.mode & 0o7777), (ftype3::NF3CHR, 0o620));
        assert_eq!((a.rdev.specdata1, a.rdev.specdata2), (4, 1));
        let b = getattr(&mut conn, &disk).await;
        assert_eq!(
            (b.type_, b.rdev.specdata1, b.rdev.specdata2),
            (ftype3::NF3BLK, 8, 0)
        );

        // On the server's disk: no device node, an empty regular placeholder.
        for n in ["tty0", "sda"] {
            let m = std::fs::symlink_metadata(server.export_dir().join(n)).unwrap();
            assert!(
                m.file_type().is_file(),
                "{n} is a regular file on disk, not a device"
            );
            assert!(!m.file_type().is_char_device() && !m.file_type().is_block_device());
            assert_eq!(m.len(), 0);
        }

        // Listing shows devices too.
        let res = conn
            .readdirplus(&READDIRPLUS3args {
                dir: root.clone(),
                cookie: 0,
                cookieverf: cookieverf3::default(),
                dircount: 4096,
                maxcount: 65536,
            })
            .await
            .expect("READDIRPLUS rpc");
        let list = ok(res, "READDIRPLUS");
        let kinds: Vec<(String, ftype3)> = list
            .reply
            .entries
            .0
            .iter()
            .filter_map(|e| {
                let n = String::from_utf8_lossy(e.name.0.as_ref()).into_owned();
                match &e.name_attributes {
                    Nfs3Option::Some(a) => Some((n, a.type_)),
                    _ => None,
                }
            })
            .filter(|(n, _)| n == "tty0" || n == "sda")
            .collect();
        assert!(
            kinds.contains(&("tty0".into(), ftype3::NF3CHR)),
            "{kinds:?}"
        );
        assert!(kinds.contains(&("sda".into(), ftype3::NF3BLK)), "{kinds:?}");

        // Its bytes are no one's: READ and WRITE are refused.
        let r = conn
            .read(&READ3args {
                file: tty.clone(),
                offset: 0,
                count: 10,
            })
            .await
            .expect("READ rpc");
        assert_eq!(err_status(r, "READ of a device").0, nfsstat3::NFS3ERR_INVAL);
        let w = conn
            .write(&WRITE3args {
                file: tty.clone(),
                offset: 0,
                count: 3,
                stable: stable_how::FILE_SYNC,
                data: Opaque::borrowed(b"xyz"),
            })
            .await
            .expect("WRITE rpc");
        assert_eq!(
            err_status(w, "WRITE to a device").0,
            nfsstat3::NFS3ERR_INVAL
        );
        assert_eq!(
            std::fs::metadata(server.export_dir().join("tty0"))
                .unwrap()
                .len(),
            0
        );

        // chmod, rename, link: the device goes along.
        let res = conn
            .setattr(&SETATTR3args {
                object: tty.clone(),
                new_attributes: sattr3 {
                    mode: Nfs3Option::Some(0o600),
                    ..Default::default()
                },
                guard: Nfs3Option::None,
            })
            .await
            .expect("SETATTR rpc");
        ok(res, "chmod of a device");
        let res = conn
            .rename(&RENAME3args {
                from: dirop(&root, "tty0"),
                to: dirop(&root, "console"),
            })
            .await
            .expect("RENAME rpc");
        ok(res, "rename of a device");
        let res = conn
            .link(&LINK3args {
                file: tty.clone(),
                link: dirop(&root, "console2"),
            })
            .await
            .expect("LINK rpc");
        ok(res, "link of a device");
        let a = getattr(&mut conn, &tty).await;
        assert_eq!(
            (a.type_, a.mode & 0o7777, a.nlink),
            (ftype3::NF3CHR, 0o600, 2)
        );
        assert_eq!(
            std::fs::metadata(server.export_dir().join("console"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o600
        );

        // After a restart (state and caches gone), still devices.
        drop(conn);
        let server = server.restart();
        let mut conn = server.connect().await;
        let a = getattr(&mut conn, &tty).await;
        assert_eq!(
            (a.type_, a.rdev.specdata1, a.rdev.specdata2),
            (ftype3::NF3CHR, 4, 1)
        );

        // Remove works.
        let root = conn.root_nfs_fh3();
        let res = conn
            .remove(&REMOVE3args {
                object: dirop(&root, "sda"),
            })
            .await
            .expect("REMOVE rpc");
        ok(res, "remove of a device");
        assert!(!server.export_dir().join("sda").exists());
    })
    .await;
}

#[tokio::test]
async fn an_empty_file_is_not_a_device() {
    bounded(LIMIT, async {
        let server = Server::start();
        std::fs::write(server.export_dir().join("empty"), b"").unwrap();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let fh = support::lookup(&mut conn, &root, "empty").await;
        assert_eq!(getattr(&mut conn, &fh).await.type_, ftype3::NF3REG);
    })
    .await;
}

#[tokio::test]
async fn device_nodes_refuse_refuses_them() {
    bounded(LIMIT, async {
        let server = Server::builder()
            .export(ExportSpec::new(
                "/exports/data",
                json!([{"match": "127.0.0.1", "access": "rw", "squash": "no_root_squash"}]),
            ))
            .config("device_nodes", json!("refuse"))
            .start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        let res = conn
            .mknod(&MKNOD3args {
                where_: dirop(&root, "tty0"),
                what: mknoddata3::NF3CHR(dev(0o620, 4, 1)),
            })
            .await
            .expect("MKNOD rpc");
        assert_eq!(
            err_status(res, "MKNOD with device_nodes refuse").0,
            nfsstat3::NFS3ERR_PERM
        );
        assert!(std::fs::symlink_metadata(server.export_dir().join("tty0")).is_err());
    })
    .await;
}
