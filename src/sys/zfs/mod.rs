//! The `zfs` command-line tool: one command runner and typed wrappers over it.
//!
//! Owns running `zfs` (at an absolute, configurable path, never from `$PATH`),
//! classifying its failures, and parsing its `-H -p` output. Running and
//! parsing are separate: [`parse_get`] and [`classify_stderr`] are pure and
//! tested on captured output, [`ZfsCli::run`] is the only place that spawns a
//! process. It does not decide *what* to create: that is `zone` (first boot)
//! and, later, the dataset backend behind the control socket.
//!
//! The runner is synchronous (`std::process`): `zone-setup` is a one-shot
//! command, and async callers wrap calls in `spawn_blocking`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where illumos and most Linux distributions install the tool.
pub const DEFAULT_ZFS_PATH: &str = "/usr/sbin/zfs";

/// What kind of failure a `zfs` command reported, from its stderr (libzfs
/// prints the errno's meaning, not the errno, and exits 1 for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// EEXIST: "dataset already exists".
    Exists,
    /// ENOENT: "dataset does not exist", no such pool or snapshot.
    NotFound,
    /// EPERM/EACCES: e.g. `quota` on a zone's delegated dataset itself.
    Permission,
    /// EBUSY: "dataset is busy" (mounted and in use, holds).
    Busy,
    /// ENOSPC, including a quota set below what is already referenced.
    NoSpace,
    /// EDQUOT: e.g. rolling back to a snapshot larger than refquota.
    QuotaExceeded,
    /// A bad name, property or value.
    Invalid,
    Other,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Exists => "already exists",
            FailureKind::NotFound => "not found",
            FailureKind::Permission => "permission denied",
            FailureKind::Busy => "busy",
            FailureKind::NoSpace => "out of space",
            FailureKind::QuotaExceeded => "quota exceeded",
            FailureKind::Invalid => "invalid argument",
            FailureKind::Other => "failed",
        })
    }
}

/// Classifies a failed command by libzfs's messages (same text on illumos
/// and OpenZFS: `libzfs_util.c`, `libzfs_dataset.c`).
pub fn classify_stderr(stderr: &str) -> FailureKind {
    let s = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    // Order matters: "size is less than current used or reserved space" is
    // the ENOSPC of a quota set below usage, not a permission problem.
    if has(&["already exists"]) {
        FailureKind::Exists
    } else if has(&[
        "does not exist",
        "no such pool",
        "no such file or directory",
        "could not find any snapshots",
    ]) {
        FailureKind::NotFound
    } else if has(&["disk quota exceeded", "quota exceeded"]) {
        FailureKind::QuotaExceeded
    } else if has(&[
        "out of space",
        "size is less than current used or reserved space",
        "no space left",
    ]) {
        FailureKind::NoSpace
    } else if has(&["permission denied", "operation not permitted"]) {
        FailureKind::Permission
    } else if has(&["is busy", "device busy"]) {
        FailureKind::Busy
    } else if has(&[
        "invalid property",
        "bad numeric value",
        "invalid character",
        "invalid dataset name",
        "bad property",
        "usage:",
    ]) {
        FailureKind::Invalid
    } else {
        FailureKind::Other
    }
}

/// A `zfs` invocation that ran and failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    pub argv: Vec<String>,
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stderr: String,
    pub kind: FailureKind,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Some(s) => format!("exit status {s}"),
            None => "killed by a signal".to_string(),
        };
        write!(
            f,
            "`{}` failed ({}, {status}): {}",
            self.argv.join(" "),
            self.kind,
            self.stderr.trim()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("cannot run `{}`", argv.join(" "))]
    Spawn {
        argv: Vec<String>,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(CommandFailure),
    #[error("unexpected output from `{}`", argv.join(" "))]
    Parse {
        argv: Vec<String>,
        #[source]
        source: ParseError,
    },
}

impl ZfsError {
    /// The classified failure, when the command ran and failed.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            ZfsError::Failed(f) => Some(f.kind),
            _ => None,
        }
    }
}

mod parse;
pub use parse::*;

/// How long one `zfs` command may take before it is killed: a suspended
/// pool makes `zfs` hang, and a control-socket caller must get an answer.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a command and collects its output, killing it after `limit`
/// (the error then says so). Output is drained by threads so a command that
/// prints more than a pipe holds cannot block.
fn output_within(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut v);
        }
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut v);
        }
        v
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer within {} s; killed (is the pool suspended?)",
                    limit.as_secs()
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// The `zfs` tool at one absolute path.
#[derive(Debug, Clone)]
pub struct ZfsCli {
    path: PathBuf,
}

impl Default for ZfsCli {
    fn default() -> Self {
        ZfsCli::new(DEFAULT_ZFS_PATH)
    }
}

impl ZfsCli {
    pub fn new(path: impl Into<PathBuf>) -> ZfsCli {
        ZfsCli { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The one command runner: runs `zfs ARGS` with a fixed locale (so the
    /// messages [`classify_stderr`] reads are the C ones) and returns stdout,
    /// or an error carrying argv, exit status and stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, ZfsError> {
        let mut argv = vec![self.path.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        tracing::debug!(argv = %argv.join(" "), "running zfs");
        let out = output_within(
            Command::new(&self.path)
                .args(args)
                .env("LC_ALL", "C")
                .stdin(std::process::Stdio::null()),
            COMMAND_TIMEOUT,
        )
        .map_err(|source| ZfsError::Spawn {
            argv: argv.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        Err(ZfsError::Failed(CommandFailure {
            kind: classify_stderr(&stderr),
            argv,
            status: out.status.code(),
            stderr,
        }))
    }

    /// `zfs get -H -p -o name,property,value,source PROPS DATASET`.
    pub fn get(&self, dataset: &str, properties: &[&str]) -> Result<DatasetProperties, ZfsError> {
        let props = properties.join(",");
        let args = [
            "get",
            "-H",
            "-p",
            "-o",
            "name,property,value,source",
            props.as_str(),
            dataset,
        ];
        let out = self.run(&args)?;
        let argv = || {
            std::iter::once(self.path.display().to_string())
                .chain(args.iter().map(|a| a.to_string()))
                .collect::<Vec<_>>()
        };
        let rows = parse_get(&out).map_err(|source| ZfsError::Parse {
            argv: argv(),
            source,
        })?;
        Ok(DatasetProperties::from_rows(rows)
            .into_iter()
            .find(|d| d.name == dataset)
            .unwrap_or_else(|| DatasetProperties {
                name: dataset.to_string(),
                values: BTreeMap::new(),
            }))
    }

    /// `zfs create [-o prop=value]... DATASET`: the properties are set
    /// atomically with the creation (no window without a refquota).
    pub fn create(&self, dataset: &str, properties: &[(&str, String)]) -> Result<(), ZfsError> {
        let opts: Vec<String> = properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["create"];
        for o in &opts {
            args.push("-o");
            args.push(o);
        }
        args.push(dataset);
        self.run(&args).map(|_| ())
    }

    /// `zfs set PROP=VALUE DATASET`.
    pub fn set(&self, dataset: &str, property: &str, value: &str) -> Result<(), ZfsError> {
        let pv = format!("{property}={value}");
        self.run(&["set", &pv, dataset]).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
