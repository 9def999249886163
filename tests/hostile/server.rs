//! Starts the real `volnfs` binary on a fresh temporary export with ephemeral loopback ports,
//! waits for its `ready` line on stdout, and kills it on drop. Server logs go to a file in the
//! temp dir and are echoed (tail) when a test panics. Not shared with tests/common on purpose.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub struct TestServer {
    pub child: Child,
    pub dir: PathBuf,
    pub export: PathBuf,
    pub nfs: SocketAddr,
    pub mount: SocketAddr,
    pub portmap: SocketAddr,
    log: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestServer {
    pub fn start() -> TestServer {
        let dir = std::env::temp_dir().join(format!(
            "volnfs-hostile-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let export = dir.join("export");
        std::fs::create_dir_all(&export).expect("create export dir");
        let log = dir.join("server.log");
        let stderr = std::fs::File::create(&log).expect("create log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_volnfs"))
            .arg("serve")
            .arg("--export")
            .arg(&export)
            .args([
                "--listen",
                "127.0.0.1",
                "--nfs-port",
                "0",
                "--mount-port",
                "0",
                "--portmap-port",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn volnfs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {} // keep draining so the server never blocks on stdout
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "volnfs printed no ready line in 30 s; log:\n{}",
                    tail(&log, 40)
                );
            }
        };
        let port = |key: &str| -> u16 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in ready line {line:?}"))
        };
        assert!(
            line.starts_with("ready "),
            "unexpected first stdout line {line:?}"
        );
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        TestServer {
            nfs: a(port("nfs_port")),
            mount: a(port("mount_port")),
            portmap: a(port("portmap_port")),
            child,
            dir,
            export,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics (with the log tail) if the server process has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("volnfs died: {st}; log:\n{}", tail(&self.log, 40));
        }
    }

    /// Resident memory in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Number of open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

fn tail(path: &PathBuf, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- volnfs log tail ({}) ---\n{}",
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
