//! How `volnfs ctl` finds its server without `--socket`.
//!
//! Every server records where its control socket is in a per-user runtime
//! directory (`$VOLNFS_RUNTIME_DIR` if set; `/var/run/volnfs/instances/` as
//! root; `$XDG_RUNTIME_DIR/volnfs/` or `/tmp/volnfs-<uid>/` otherwise): one file per server process, named by
//! its pid, holding the socket's path, removed at a clean stop. `ctl` with
//! no `--socket` takes `$VOLNFS_CONTROL_SOCKET`, else the default socket if a
//! server answers there, else the one live recorded server; when there are
//! several, or none, its error says where it looked and what it found.

use std::path::{Path, PathBuf};

/// The runtime directory of this user's servers.
pub fn instances_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VOLNFS_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/run/volnfs/instances");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("volnfs"),
        _ => std::env::temp_dir().join(format!("volnfs-{}", nix::unistd::geteuid().as_raw())),
    }
}

/// A server's record: removed when dropped (the server stops).
pub struct Instance {
    path: PathBuf,
}

impl Instance {
    /// Records that this process serves its control socket at `socket`.
    /// Failure to record is logged, not fatal: `--socket` still works.
    pub fn record(socket: &Path) -> Option<Instance> {
        let dir = instances_dir();
        let path = dir.join(format!("{}", std::process::id()));
        let res = (|| {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            crate::write_private_file_atomically(
                &path,
                "tmp",
                socket.as_os_str().as_encoded_bytes(),
            )
        })();
        match res {
            Ok(()) => Some(Instance { path }),
            Err(e) => {
                tracing::warn!(record = %path.display(), error = %e, "cannot record the control socket for `volnfs ctl` (use ctl --socket)");
                None
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no running volnfs found: looked at {looked}; start one, or give --socket")]
    None { looked: String },
    #[error("several volnfs servers run ({}); choose one with --socket", found.join(", "))]
    Several { found: Vec<String> },
}

fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// The control socket `ctl` should use, given the default path.
pub fn find(default: &Path) -> Result<PathBuf, FindError> {
    if let Some(s) = std::env::var_os("VOLNFS_CONTROL_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    if answers(default) {
        return Ok(default.to_path_buf());
    }
    let dir = instances_dir();
    let mut live = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            let socket = std::fs::read(e.path())
                .ok()
                .map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned()));
            match socket {
                Some(s) if alive && answers(&s) => live.push(s),
                // A server that died without cleaning up: forget it.
                _ if !alive => {
                    let _ = std::fs::remove_file(e.path());
                }
                _ => {}
            }
        }
    }
    match live.len() {
        1 => Ok(live.remove(0)),
        0 => Err(FindError::None {
            looked: format!(
                "$VOLNFS_CONTROL_SOCKET (unset), {} (no server answers), {} (no running server recorded)",
                default.display(),
                dir.display()
            ),
        }),
        _ => Err(FindError::Several {
            found: live.iter().map(|p| p.display().to_string()).collect(),
        }),
    }
}
