//! [`ServerBuilder`]: how a test says which server it wants. Two modes, like the binary:
//! zero-config (`serve --export DIR`, the default: one export `/exports/data`) and
//! config-file mode (`serve --config FILE`, as soon as one [`ExportSpec`] is added: the
//! builder writes the JSON). Either way the server listens on 127.0.0.1 with ephemeral
//! NFS, MOUNT and portmap ports, and keeps its state dir, control socket and log in a
//! private temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::server::Server;

/// The export name a zero-config test server publishes.
pub const EXPORT_NAME: &str = "/exports/data";

/// One export of a config-file server; its directory is created fresh (mode 0755).
#[derive(Clone, Debug)]
pub struct ExportSpec {
    pub name: String,
    /// JSON array of client rules, e.g. `[{"match":"127.0.0.1","access":"rw"}]`.
    pub clients: Value,
    /// Extra keys merged into the export object (`anonuid`, `secure`, ...).
    pub extra: Value,
}

impl ExportSpec {
    pub fn new(name: &str, clients: Value) -> Self {
        ExportSpec {
            name: name.to_string(),
            clients,
            extra: json!({}),
        }
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }
}

/// What to start; see [`Server::builder`].
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    /// Zero-config `--name`; `None` = no `--name` (the export's absolute path).
    pub(super) name: Option<String>,
    /// Non-empty = config-file mode.
    pub(super) exports: Vec<ExportSpec>,
    /// Extra top-level keys of the config file (`locking`, `limits`, ...).
    pub(super) config: serde_json::Map<String, Value>,
    pub(super) listen: Vec<String>,
    /// `Some(0)` = ephemeral, `Some(111)` = the real one (network namespaces only),
    /// `None` = no portmapper.
    pub(super) portmap_port: Option<u16>,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    /// Zero-config mode: serve this existing directory instead of a fresh one.
    pub(super) export_path: Option<PathBuf>,
    /// `--no-state` instead of a private state dir.
    pub(super) no_state: bool,
    /// Another build of volnfs instead of this one's.
    pub(super) bin: Option<PathBuf>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            name: Some(EXPORT_NAME.to_string()),
            exports: Vec::new(),
            config: serde_json::Map::new(),
            listen: vec!["127.0.0.1".to_string()],
            portmap_port: Some(0),
            args: Vec::new(),
            env: Vec::new(),
            export_path: None,
            no_state: false,
            bin: None,
        }
    }
}

impl ServerBuilder {
    /// Zero-config mode: the name clients mount (default `/exports/data`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Zero-config mode without `--name`: the export is published under its absolute path
    /// (`Server::name`).
    pub fn default_name(mut self) -> Self {
        self.name = None;
        self
    }

    /// The addresses to listen on (replaces the default 127.0.0.1).
    pub fn listen<S: AsRef<str>>(mut self, addrs: &[S]) -> Self {
        self.listen = addrs.iter().map(|a| a.as_ref().to_string()).collect();
        self
    }

    /// The portmapper's port: 0 (the default) = any free one.
    pub fn portmap_port(mut self, port: u16) -> Self {
        self.portmap_port = Some(port);
        self
    }

    /// No portmapper (`--no-portmap`, or `portmap.enabled: false`).
    pub fn no_portmap(mut self) -> Self {
        self.portmap_port = None;
        self
    }

    /// One more argument after `serve ...` (`--ro`, `--lock-grace`, `--log-format`, ...).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// An environment variable of the server (`RUST_LOG` defaults to the test's, or info).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Zero-config mode: serve `dir` (e.g. a FUSE mount) instead of a fresh directory.
    pub fn export_path(mut self, dir: &Path) -> Self {
        self.export_path = Some(dir.to_path_buf());
        self
    }

    /// Zero-config mode: `--no-state` (handles keyed per run, nothing written) instead of
    /// a private state dir.
    pub fn no_state(mut self) -> Self {
        self.no_state = true;
        self
    }

    /// Runs `bin` (another build of volnfs) instead of this build's binary.
    pub fn bin(mut self, bin: &Path) -> Self {
        self.bin = Some(bin.to_path_buf());
        self
    }

    /// Adds an export and switches to config-file mode.
    pub fn export(mut self, export: ExportSpec) -> Self {
        self.exports.push(export);
        self
    }

    /// [`Self::export`] for each of `exports`.
    pub fn exports(self, exports: Vec<ExportSpec>) -> Self {
        exports.into_iter().fold(self, Self::export)
    }

    /// Config-file mode: one more top-level key, e.g. `("locking", {"grace_seconds": 4})`.
    pub fn config(mut self, key: &str, value: Value) -> Self {
        self.config.insert(key.to_string(), value);
        self
    }

    /// Starts the server and waits for its ready line; panics (with its stderr) if it
    /// does not come up.
    pub fn start(self) -> Server {
        Server::launch_new(self)
    }

    pub(super) fn config_mode(&self) -> bool {
        assert!(
            self.exports.is_empty() || (self.export_path.is_none() && !self.no_state),
            "export_path and no_state are zero-config options"
        );
        !self.exports.is_empty()
    }

    /// The config file for config-file mode: `dirs[i]` serves `self.exports[i]`.
    pub(super) fn config_json(&self, dirs: &[std::path::PathBuf], scratch: &Path) -> Value {
        let exports: Vec<Value> = self
            .exports
            .iter()
            .zip(dirs)
            .map(|(e, dir)| {
                let mut obj = json!({"name": e.name, "path": dir, "clients": e.clients});
                if let (Some(o), Some(extra)) = (obj.as_object_mut(), e.extra.as_object()) {
                    for (k, v) in extra {
                        o.insert(k.clone(), v.clone());
                    }
                }
                obj
            })
            .collect();
        let portmap = match self.portmap_port {
            Some(port) => json!({"enabled": true, "port": port}),
            None => json!({"enabled": false}),
        };
        let mut config = json!({
            "listen": self.listen,
            "nfs_port": 0,
            "mount_port": 0,
            "portmap": portmap,
            // Private state and control socket: never the system-wide defaults, so
            // concurrent test servers cannot take each other's socket.
            "state_dir": scratch.join("state"),
            "control_socket": scratch.join("control.sock"),
            "exports": exports,
        });
        let obj = config.as_object_mut().expect("object");
        for (k, v) in &self.config {
            obj.insert(k.clone(), v.clone());
        }
        config
    }

    /// The `volnfs serve ...` command line (the config file, if any, is already written).
    pub(super) fn command(&self, dirs: &[std::path::PathBuf], scratch: &Path) -> Command {
        let mut cmd = Command::new(
            self.bin
                .as_deref()
                .unwrap_or(Path::new(super::process::BIN)),
        );
        // Anything the server wrongly wrote to its working directory stays with the test.
        cmd.current_dir(scratch).arg("serve");
        if self.config_mode() {
            cmd.arg("--config").arg(scratch.join("volnfs.json"));
        } else {
            cmd.arg("--export").arg(&dirs[0]);
            if let Some(name) = &self.name {
                cmd.args(["--name", name]);
            }
            cmd.args(["--nfs-port", "0", "--mount-port", "0"]);
            for addr in &self.listen {
                cmd.args(["--listen", addr]);
            }
            match self.portmap_port {
                Some(port) => cmd.args(["--portmap-port", &port.to_string()]),
                None => cmd.arg("--no-portmap"),
            };
            if self.no_state {
                cmd.arg("--no-state");
            } else {
                // State (handle keys, handle index, control socket) beside the log: it
                // survives `restart` and goes with the test instead of piling up in
                // /var/lib.
                cmd.arg("--state-dir").arg(scratch.join("state"));
            }
        }
        cmd.args(&self.args).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}
