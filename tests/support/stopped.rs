//! [`Stopped`]: a server that was stopped (`Server::stop`, SIGTERM) or killed
//! (`Server::kill`, SIGKILL) with its exports, state and config kept, so a test can run
//! `volnfs check-state` on them, damage them, watch a start fail ([`Stopped::try_start`])
//! or start it again ([`Stopped::start`], new ports).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use super::process::{self, run_bounded, BIN, LOG_TAIL_LINES};
use super::server::{Server, Setup};

pub struct Stopped {
    pub(super) setup: Arc<Setup>,
}

impl Stopped {
    /// Starts the server again on the same exports, state and config; waits for ready.
    pub fn start(self) -> Server {
        Server::launch(self.setup.clone())
    }

    /// Runs the same `volnfs serve` command to its end, for a start that must fail: its
    /// exit status and output (stderr is captured here, not appended to the log). A start
    /// that wrongly succeeds is killed after `limit`.
    pub fn try_start(&self, limit: Duration) -> Output {
        let mut cmd = self
            .setup
            .builder
            .command(&self.setup.dirs, &self.setup.root);
        run_bounded(&mut cmd, limit)
    }

    /// `volnfs check-state` on this server's exports and state (`--json` if asked).
    pub fn check_state(&self, json: bool) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("check-state");
        if self.setup.builder.config_mode() {
            cmd.arg("--config").arg(self.setup.root.join("volnfs.json"));
        } else {
            let name = self
                .setup
                .builder
                .name
                .clone()
                .unwrap_or_else(|| self.setup.dirs[0].to_string_lossy().into_owned());
            cmd.arg("--export")
                .arg(&self.setup.dirs[0])
                .args(["--name", &name])
                .arg("--state-dir")
                .arg(self.state_dir());
        }
        if json {
            cmd.arg("--json");
        }
        run_bounded(&mut cmd, Duration::from_secs(120))
    }

    pub fn root_dir(&self) -> &Path {
        &self.setup.root
    }

    pub fn export_dir(&self) -> &Path {
        &self.setup.dirs[0]
    }

    pub fn state_dir(&self) -> PathBuf {
        self.setup.root.join("state")
    }

    /// The tail of the server's stderr (all its runs).
    pub fn log(&self) -> String {
        process::tail(&self.setup.log_path(), LOG_TAIL_LINES)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- volnfs stderr (tail of {}) ----\n{}",
                self.setup.log_path().display(),
                self.log()
            );
        }
    }
}
