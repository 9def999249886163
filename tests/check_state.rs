//! `volnfs check-state`: the operator's check that saved state (handle keys, the
//! handle index) agrees with the export's tree, run with the server stopped.

mod support;

use std::process::Command;
use std::time::Duration;

use nfs3_client::nfs3_types::nfs3::*;
use support::{bounded, dirop, ok, Server};

fn check(server_export: &std::path::Path, state: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_volnfs"))
        .args(["check-state", "--name", "/exports/data", "--export"])
        .arg(server_export)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("run volnfs check-state");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn check_state_agrees_with_the_tree_and_names_what_is_broken() {
    let server = bounded(Duration::from_secs(60), async {
        let server = Server::start();
        let mut conn = server.connect().await;
        let root = conn.root_nfs_fh3();
        for n in ["a", "b", "c"] {
            let res = conn
                .create(&CREATE3args {
                    where_: dirop(&root, n),
                    how: createhow3::UNCHECKED(sattr3::default()),
                })
                .await
                .expect("CREATE rpc");
            ok(res, "CREATE");
        }
        server
    })
    .await;
    let export = server.export_dir().to_path_buf();
    let state = server.state_dir();
    // While the server runs the index is its own: check-state says so.
    let (good, out) = check(&export, &state);
    assert!(!good && out.contains("stop volnfs first"), "{out}");
    // Stop it (SIGTERM: a clean close) but keep its directories.
    // SAFETY: kill(2) of our own child's pid.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut good, mut out) = check(&export, &state);
    while out.contains("stop volnfs first") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        (good, out) = check(&export, &state);
    }
    assert!(good, "{out}");
    assert!(
        out.contains("OK (closed cleanly): 3 entries, 3 links current, 0 stale"),
        "{out}"
    );

    // Renamed behind the server's back: a stale link, harmless.
    std::fs::rename(export.join("a"), export.join("z")).unwrap();
    let (good, out) = check(&export, &state);
    assert!(good && out.contains("1 stale"), "{out}");

    // A damaged index is named, with what to do.
    let index = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "redb"))
        .expect("an index file");
    std::fs::write(&index, b"garbage").unwrap();
    let (good, out) = check(&export, &state);
    assert!(
        !good && out.contains(index.to_str().unwrap()) && out.contains("move it aside"),
        "{out}"
    );

    // A missing handle key too.
    for e in std::fs::read_dir(&state).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("handle-key-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let (good, out) = check(&export, &state);
    assert!(
        !good && out.contains("handle-key-") && out.contains("restore it from a backup"),
        "{out}"
    );
}
