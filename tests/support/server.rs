//! [`Server`]: one running `volnfs serve` child process, started by a [`ServerBuilder`].
//!
//! Everything it owns lives in one temp dir (removed with the last handle on it):
//! `export` (and `export-1`, ... in config-file mode) — the directories served —,
//! `server.log` (its stderr, appended across restarts), `state/` (handle keys, index,
//! and in zero-config mode the control socket), and in config-file mode `volnfs.json` and
//! `control.sock`. Dropping the server kills it; when the test is failing, the log's tail
//! is printed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::builder::ServerBuilder;
use super::process::{self, Ready, BIN, LOG_TAIL_LINES};
use super::stopped::Stopped;

/// What survives a restart: the builder's settings, the temp dir, the config file.
pub(super) struct Setup {
    pub(super) builder: ServerBuilder,
    /// The temp dir holding everything; its canonical path is `root`.
    _temp: tempfile::TempDir,
    pub(super) root: PathBuf,
    pub(super) dirs: Vec<PathBuf>,
    /// The config file's contents (config-file mode), as last written.
    config: Mutex<Option<Value>>,
}

pub struct Server {
    child: Option<Child>,
    setup: Arc<Setup>,
    /// The name clients mount export 0 by.
    pub name: String,
    /// The names of all exports, in the builder's order.
    pub names: Vec<String>,
    pub nfs_port: u16,
    pub mount_port: u16,
    /// 0 without a portmapper.
    pub portmap_port: u16,
}

impl Server {
    /// What to start: zero-config `/exports/data` on 127.0.0.1, ephemeral ports.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// `Server::builder().start()`.
    pub fn start() -> Server {
        Server::builder().start()
    }

    pub(super) fn launch_new(builder: ServerBuilder) -> Server {
        let temp = tempfile::Builder::new()
            .prefix("volnfs-test-")
            .tempdir()
            .expect("tempdir");
        let root = temp.path().canonicalize().expect("canonical temp dir");
        // Traversable by the other users some tests act as; the exports keep their modes.
        set_mode(&root, 0o755);
        let count = builder.exports.len().max(1);
        let dirs: Vec<PathBuf> = (0..count)
            .map(|i| {
                if let Some(dir) = &builder.export_path {
                    return dir.clone();
                }
                let dir = match i {
                    0 => root.join("export"),
                    i => root.join(format!("export-{i}")),
                };
                std::fs::create_dir(&dir).expect("create export dir");
                // Zero-config exports are private (0700) like a fresh temp dir; the
                // config-file ones 0755 like a real export.
                set_mode(&dir, if builder.config_mode() { 0o755 } else { 0o700 });
                dir
            })
            .collect();
        let config = builder
            .config_mode()
            .then(|| builder.config_json(&dirs, &root));
        let setup = Arc::new(Setup {
            builder,
            _temp: temp,
            root,
            dirs,
            config: Mutex::new(config),
        });
        if setup.builder.config_mode() {
            setup.write_config();
        }
        Server::launch(setup)
    }

    /// Starts the binary on `setup` (new ports) and waits for its ready line.
    pub(super) fn launch(setup: Arc<Setup>) -> Server {
        let mut cmd = setup.builder.command(&setup.dirs, &setup.root);
        let (child, ready) =
            process::spawn_ready(&mut cmd, &setup.log_path()).unwrap_or_else(|e| {
                let config = std::fs::read_to_string(setup.root.join("volnfs.json"))
                    .map(|c| format!("\nconfig:\n{c}"))
                    .unwrap_or_default();
                panic!("{e}{config}")
            });
        let Ready {
            nfs_port,
            mount_port,
            portmap_port,
        } = ready;
        if setup.builder.portmap_port.is_none() {
            assert_eq!(portmap_port, 0, "no portmapper must report portmap_port=0");
        }
        let names: Vec<String> = if setup.builder.config_mode() {
            setup
                .builder
                .exports
                .iter()
                .map(|e| e.name.clone())
                .collect()
        } else {
            let name = setup.builder.name.clone();
            vec![name.unwrap_or_else(|| setup.dirs[0].to_string_lossy().into_owned())]
        };
        Server {
            child: Some(child),
            name: names[0].clone(),
            names,
            setup,
            nfs_port,
            mount_port,
            portmap_port,
        }
    }

    /// Stops the server (SIGTERM, must exit 0) and starts a new one on the same exports,
    /// state and config; ports are new.
    pub fn restart(self) -> Server {
        let setup = self.setup.clone();
        let status = self.terminate();
        assert!(
            status.success(),
            "volnfs exited with {status} on SIGTERM before restart"
        );
        Server::launch(setup)
    }

    /// Kills the server with SIGKILL (no draining, no index flush: a crash) and starts a
    /// new one on the same exports, state and config; ports are new.
    pub fn crash_restart(mut self) -> Server {
        let setup = self.setup.clone();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Server::launch(setup)
    }

    /// Stops the server (SIGTERM, must exit 0) and keeps its exports, state and config,
    /// to look at or change before [`Stopped::start`].
    pub fn stop(self) -> Stopped {
        let setup = self.setup.clone();
        let status = self.terminate();
        assert!(status.success(), "volnfs exited with {status} on SIGTERM");
        Stopped { setup }
    }

    /// Kills the server with SIGKILL (a crash) and keeps its exports, state and config.
    pub fn kill(mut self) -> Stopped {
        let setup = self.setup.clone();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Stopped { setup }
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        process::signal(&child, libc::SIGTERM);
        match process::wait_with_timeout(&mut child, Duration::from_secs(10)) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "volnfs did not exit within 10s of SIGTERM; stderr:\n{}",
                    self.log()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Panics (with the log tail) if the server process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("volnfs died: {status}; log:\n{}", self.log());
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

    // ------------------------------------------------------------ where things are

    /// The temp dir holding the exports, log and state.
    pub fn root_dir(&self) -> &Path {
        &self.setup.root
    }

    /// The directory served as export 0 (server-side view).
    pub fn export_dir(&self) -> &Path {
        self.dir(0)
    }

    /// The directory served as export `i`.
    pub fn dir(&self, i: usize) -> &Path {
        &self.setup.dirs[i]
    }

    /// `rel` inside export `i`.
    pub fn path(&self, i: usize, rel: &str) -> PathBuf {
        self.dir(i).join(rel)
    }

    /// The server's state directory (handle keys, index; the control socket in
    /// zero-config mode).
    pub fn state_dir(&self) -> PathBuf {
        self.setup.root.join("state")
    }

    pub fn control_socket(&self) -> PathBuf {
        if self.setup.builder.config_mode() {
            self.setup.root.join("control.sock")
        } else {
            self.state_dir().join("control.sock")
        }
    }

    /// The config file (config-file mode).
    pub fn config_path(&self) -> PathBuf {
        assert!(self.setup.builder.config_mode(), "a zero-config server");
        self.setup.root.join("volnfs.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.setup.log_path()
    }

    /// The tail of the server's stderr.
    pub fn log(&self) -> String {
        process::tail(&self.log_path(), LOG_TAIL_LINES)
    }

    /// Log lines at INFO level or above that mention `needle` and contain `word`.
    pub fn log_lines_about(&self, needle: &str, word: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(process::strip_ansi)
            .filter(|l| l.contains("WARN") || l.contains("INFO") || l.contains("ERROR"))
            .filter(|l| l.contains(needle) && l.contains(word))
            .collect()
    }

    /// The first listen address (where the `*_addr` helpers point).
    pub fn listen_ip(&self) -> IpAddr {
        self.setup.builder.listen[0]
            .parse()
            .expect("listen address")
    }

    pub fn nfs_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen_ip(), self.nfs_port)
    }

    pub fn mount_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen_ip(), self.mount_port)
    }

    pub fn portmap_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen_ip(), self.portmap_port)
    }

    /// The NFS port on `dst` (a server listening on several addresses).
    pub fn nfs_addr_at(&self, dst: IpAddr) -> SocketAddr {
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

    /// `nfs://127.0.0.1/<export 0>/<path>?nfsport=N&mountport=M`.
    pub fn nfs_url(&self, path: &str) -> String {
        self.url("127.0.0.1", 0, path, "")
    }

    // ------------------------------------------------------------ control

    /// `volnfs ctl --socket <ours> ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        std::process::Command::new(BIN)
            .arg("ctl")
            .arg("--socket")
            .arg(self.control_socket())
            .args(args)
            .output()
            .expect("run volnfs ctl")
    }

    /// `volnfs ctl --json ARGS...`: the reply.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ctl {args:?}: not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Config-file mode: rewrites export `i`'s client rules in the config file (the
    /// server reads it on SIGHUP or `exports.reload`).
    pub fn set_clients(&self, i: usize, clients: Value) {
        {
            let mut config = self.setup.config.lock().unwrap();
            config.as_mut().expect("a config-file server")["exports"][i]["clients"] = clients;
        }
        self.setup.write_config();
    }

    /// Sends SIGHUP (the SMF `refresh`): the server re-reads its config file.
    pub fn sighup(&self) {
        process::signal(self.child.as_ref().expect("running"), libc::SIGHUP);
    }

    /// [`Self::set_clients`], then SIGHUP.
    pub fn reload_rules(&self, i: usize, clients: Value) {
        self.set_clients(i, clients);
        self.sighup();
    }
}

impl Setup {
    pub(super) fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn write_config(&self) {
        let config = self.config.lock().unwrap();
        let config = config.as_ref().expect("a config-file server");
        std::fs::write(
            self.root.join("volnfs.json"),
            serde_json::to_vec_pretty(config).expect("json"),
        )
        .expect("write config");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- volnfs stderr (tail of {}) ----\n{}",
                self.log_path().display(),
                self.log()
            );
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
