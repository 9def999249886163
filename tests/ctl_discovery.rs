//! `volnfs ctl` finds its server without `--socket` (issue 15): after the
//! README's first command (zero-config mode, its control socket under the
//! state dir), `volnfs ctl status` reaches that server; with none running, or
//! several, the error says where it looked or which ones it found.
//!
//! Each test has a runtime directory of its own (`VOLNFS_RUNTIME_DIR`, where
//! servers record their sockets), so tests and real servers never meet.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use support::{run_bounded, signal, spawn_ready, wait_with_timeout, BIN};

const LIMIT: Duration = Duration::from_secs(30);

/// A server process, killed if a test fails before it stops it.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The README's first command, on free ports, recording into `runtime`.
fn zero_config_server(dir: &Path, runtime: &Path, tag: &str) -> Running {
    let export = dir.join(format!("export-{tag}"));
    std::fs::create_dir_all(&export).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--export"])
        .arg(&export)
        .args(["--name", "/exports/data", "--state-dir"])
        .arg(dir.join(format!("state-{tag}")))
        .args([
            "--nfs-port",
            "0",
            "--mount-port",
            "0",
            "--no-portmap",
            "--no-lock",
        ])
        .env("VOLNFS_RUNTIME_DIR", runtime)
        .env_remove("VOLNFS_CONTROL_SOCKET");
    let (child, _ready) = spawn_ready(&mut cmd, &dir.join(format!("server-{tag}.log")))
        .unwrap_or_else(|e| panic!("zero-config server {tag}: {e}"));
    Running(Some(child))
}

fn ctl_status(runtime: &Path) -> Output {
    run_bounded(
        Command::new(BIN)
            .args(["ctl", "status"])
            .env("VOLNFS_RUNTIME_DIR", runtime)
            .env_remove("VOLNFS_CONTROL_SOCKET"),
        LIMIT,
    )
}

fn stop(mut server: Running) {
    let mut child = server.0.take().expect("running");
    signal(&child, libc::SIGTERM);
    let status = wait_with_timeout(&mut child, LIMIT).expect("server stops on SIGTERM");
    assert!(status.success(), "server exit: {status}");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn ctl_status_without_socket_reaches_the_zero_config_server() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    let server = zero_config_server(dir.path(), &runtime, "a");

    let out = ctl_status(&runtime);
    assert!(
        out.status.success(),
        "ctl status without --socket: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    let status = text(&out.stdout);
    assert!(
        status.contains("/exports/data") && status.contains("version"),
        "the status of the server just started: {status}"
    );

    // Stopped cleanly: its record is gone, and ctl says where it looked.
    stop(server);
    let left: Vec<_> = std::fs::read_dir(&runtime).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "a stopped server left its record: {left:?}"
    );
    let out = ctl_status(&runtime);
    assert!(!out.status.success(), "ctl status with no server succeeded");
    let err = text(&out.stderr);
    assert!(
        err.contains("no running volnfs found")
            && err.contains(&runtime.display().to_string())
            && err.contains("VOLNFS_CONTROL_SOCKET")
            && err.contains("--socket"),
        "the error lists where ctl looked and what to do: {err}"
    );
}

#[test]
fn a_killed_servers_record_is_ignored_and_several_servers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    let mut a = zero_config_server(dir.path(), &runtime, "a");
    let b = zero_config_server(dir.path(), &runtime, "b");

    let out = ctl_status(&runtime);
    assert!(
        !out.status.success(),
        "ctl chose one of two servers by itself"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("several volnfs servers")
            && err.contains(&dir.path().join("state-a").display().to_string())
            && err.contains(&dir.path().join("state-b").display().to_string()),
        "the error names both servers' sockets: {err}"
    );

    // Server a dies without cleaning up: ctl reaches b, the only live one.
    let mut child = a.0.take().expect("running");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = ctl_status(&runtime);
    assert!(
        out.status.success(),
        "ctl status with one live server and a dead record: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("export-b"),
        "the live server's status: {}",
        text(&out.stdout)
    );
    stop(b);
}
