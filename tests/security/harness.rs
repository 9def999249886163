//! Harness for the security tests: runs the real `volnfs serve --config FILE` on temporary
//! export directories, waits for its `ready` line (never sleeps) and kills it on drop; the
//! clients that talk to it from chosen source addresses live in `clients.rs` (re-exported
//! here so tests need one import).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::clients::*;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub const V4_ALLOWED: &str = "127.0.0.1";
pub const V4_OTHER: &str = "127.0.0.2";
pub const V6_LOOPBACK: &str = "::1";

/// The loopback addresses to listen on: 127.0.0.1, and ::1 when the machine has IPv6
/// (some CI containers do not; the IPv6 cases then say so loudly and are skipped).
pub fn loopback_listen() -> Vec<&'static str> {
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        vec![V4_ALLOWED, V6_LOOPBACK]
    } else {
        loud("SKIPPED the ::1 cases: no IPv6 loopback on this machine");
        vec![V4_ALLOWED]
    }
}

/// Writes straight to stderr, past the test harness's output capture, so a skip is seen.
fn loud(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {what} !!!!!!!!\n");
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal IP")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns false (and says so loudly) when the tests cannot run: they create files owned by
/// other users on disk and bind privileged ports, which needs root.
pub fn require_root(test: &str) -> bool {
    if !is_root() {
        loud(&format!(
            "SKIPPED {test}: the security tests must run as root"
        ));
        return false;
    }
    true
}

/// One export of a test configuration; its directory is created fresh.
pub struct ExportSpec {
    pub name: &'static str,
    /// JSON array of client rules, e.g. `[{"match":"127.0.0.1","access":"rw"}]`.
    pub clients: serde_json::Value,
    /// Extra keys merged into the export object (`anonuid`, `secure`, ...).
    pub extra: serde_json::Value,
}

impl ExportSpec {
    pub fn new(name: &'static str, clients: serde_json::Value) -> Self {
        ExportSpec {
            name,
            clients,
            extra: serde_json::json!({}),
        }
    }

    pub fn with(mut self, extra: serde_json::Value) -> Self {
        self.extra = extra;
        self
    }
}

/// A running `volnfs serve --config` child process.
pub struct Server {
    child: Option<Child>,
    dirs: Vec<tempfile::TempDir>,
    scratch: tempfile::TempDir,
    config: serde_json::Value,
    config_path: PathBuf,
    pub names: Vec<&'static str>,
    pub nfs_port: u16,
    pub mount_port: u16,
}

impl Server {
    /// Starts a server listening on `listen` (e.g. `["127.0.0.1","::1"]`) serving `exports`.
    pub fn start(listen: &[&str], exports: Vec<ExportSpec>) -> Server {
        let scratch = tempfile::Builder::new()
            .prefix("volnfs-sec-")
            .tempdir()
            .expect("tempdir");
        let mut dirs = Vec::new();
        let mut exports_json = Vec::new();
        let mut names = Vec::new();
        for e in exports {
            let dir = tempfile::Builder::new()
                .prefix("volnfs-sec-export-")
                .tempdir()
                .expect("tempdir");
            // tempdir() makes 0700 directories; exports are normally 0755.
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .expect("chmod export");
            let mut obj = serde_json::json!({
                "name": e.name,
                "path": dir.path(),
                "clients": e.clients,
            });
            if let (Some(o), Some(extra)) = (obj.as_object_mut(), e.extra.as_object()) {
                for (k, v) in extra {
                    o.insert(k.clone(), v.clone());
                }
            }
            exports_json.push(obj);
            names.push(e.name);
            dirs.push(dir);
        }
        let config = serde_json::json!({
            "listen": listen,
            "nfs_port": 0,
            "mount_port": 0,
            "portmap": {"enabled": false},
            // Private state and control socket: never the system-wide defaults,
            // so concurrent test servers cannot take each other's socket.
            "state_dir": scratch.path().join("state"),
            "control_socket": scratch.path().join("control.sock"),
            "exports": exports_json,
        });
        let config_path = scratch.path().join("volnfs.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("write config");
        let log_path = scratch.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_volnfs"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn volnfs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = tx.send(line);
            }
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "volnfs printed no ready line (exit {status:?}); config:\n{}\nstderr:\n{}",
                    std::fs::read_to_string(&config_path).unwrap_or_default(),
                    tail(&log_path)
                );
            }
        };
        let (nfs_port, mount_port) = parse_ready(&line)
            .unwrap_or_else(|| panic!("unexpected first stdout line from volnfs: {line:?}"));
        Server {
            child: Some(child),
            dirs,
            scratch,
            config,
            config_path,
            names,
            nfs_port,
            mount_port,
        }
    }

    /// Rewrites export `i`'s client rules in the config file and sends SIGHUP (the SMF
    /// `refresh`), which makes the server re-read them.
    pub fn reload_rules(&mut self, i: usize, clients: serde_json::Value) {
        self.config["exports"][i]["clients"] = clients;
        std::fs::write(
            &self.config_path,
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("rewrite config");
        let pid = libc::pid_t::try_from(self.child.as_ref().expect("running").id()).expect("pid");
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
    }

    /// The directory served as export number `i` (server-side view).
    pub fn dir(&self, i: usize) -> &Path {
        self.dirs[i].path()
    }

    pub fn path(&self, i: usize, rel: &str) -> PathBuf {
        self.dirs[i].path().join(rel)
    }

    pub fn log(&self) -> String {
        tail(&self.scratch.path().join("server.log"))
    }

    pub fn nfs_addr(&self, dst: IpAddr) -> SocketAddr {
        SocketAddr::new(dst, self.nfs_port)
    }

    /// `nfs://HOST/<export>/<path>?nfsport=..&mountport=..&<extra>` for libnfs tools.
    pub fn url(&self, host: &str, export: usize, path: &str, extra: &str) -> String {
        let path = path.trim_start_matches('/');
        let sep = if path.is_empty() { "" } else { "/" };
        let amp = if extra.is_empty() { "" } else { "&" };
        format!(
            "nfs://{host}{}{sep}{path}?nfsport={}&mountport={}{amp}{extra}",
            self.names[export], self.nfs_port, self.mount_port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = libc::pid_t::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) on our own, not yet reaped child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if std::thread::panicking() {
            eprintln!("---- volnfs stderr (tail) ----\n{}", self.log());
        }
    }
}

impl Server {
    /// Log lines at INFO level or above that mention `needle` and contain `word`.
    pub fn log_lines_about(&self, needle: &str, word: &str) -> Vec<String> {
        std::fs::read_to_string(self.scratch.path().join("server.log"))
            .unwrap_or_default()
            .lines()
            .map(strip_ansi)
            .filter(|l| l.contains("WARN") || l.contains("INFO") || l.contains("ERROR"))
            .filter(|l| l.contains(needle) && l.contains(word))
            .collect()
    }
}

/// Removes terminal colour sequences (`ESC [ ... m`) that the log may contain.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn parse_ready(line: &str) -> Option<(u16, u16)> {
    let mut words = line.split_whitespace();
    if words.next()? != "ready" {
        return None;
    }
    let (mut nfs, mut mount) = (None, None);
    for w in words {
        let (k, v) = w.split_once('=')?;
        match k {
            "nfs_port" => nfs = v.parse().ok(),
            "mount_port" => mount = v.parse().ok(),
            _ => {}
        }
    }
    Some((nfs?, mount?))
}

/// Runs an async body with an upper bound, on a multi-thread runtime.
pub async fn bounded<F: std::future::Future>(limit: Duration, fut: F) -> F::Output {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("test exceeded {limit:?}"))
}

/// Runs an external tool with a time limit: (status, stdout, stderr).
pub async fn run_tool(program: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (see tests/README.md): {e}"));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish in 30s"))
        .expect("wait tool");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
