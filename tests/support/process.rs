//! The low level under [`super::Server`]: spawning the `volnfs` binary, waiting for its
//! `ready` line, signals, bounded waits and log tails. Tests use the builder; a test that
//! must watch a start fail (or an exit status) uses [`run_bounded`].

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_volnfs");

/// How long the server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The ports of `ready nfs_port=N mount_port=M portmap_port=P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub nfs_port: u16,
    pub mount_port: u16,
    pub portmap_port: u16,
}

/// Parses `ready nfs_port=N mount_port=M portmap_port=P` (the one line the server prints
/// on stdout once every listener is bound).
pub fn parse_ready_line(line: &str) -> Option<Ready> {
    let mut words = line.split_whitespace();
    if words.next()? != "ready" {
        return None;
    }
    let (mut nfs, mut mount, mut portmap) = (None, None, None);
    for word in words {
        let (key, value) = word.split_once('=')?;
        let value: u16 = value.parse().ok()?;
        match key {
            "nfs_port" => nfs = Some(value),
            "mount_port" => mount = Some(value),
            "portmap_port" => portmap = Some(value),
            _ => {}
        }
    }
    Some(Ready {
        nfs_port: nfs?,
        mount_port: mount?,
        portmap_port: portmap?,
    })
}

/// Spawns `cmd` with stdin closed, stdout piped and stderr appended to `log`, and waits
/// (at most [`READY_TIMEOUT`], no sleeping) for its ready line. A thread keeps draining
/// stdout afterwards so the server can never block on a full pipe. On failure the child
/// is killed and the error says what it printed and the log's tail.
pub fn spawn_ready(cmd: &mut Command, log: &Path) -> Result<(Child, Ready), String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("create server log {}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(|e| format!("spawn {BIN}: {e}"))?;
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
    let failed = |child: &mut Child, what: String| {
        let _ = child.kill();
        let status = child.wait().ok();
        format!(
            "{what} (exit: {status:?}); stderr:\n{}",
            tail(log, LOG_TAIL_LINES)
        )
    };
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => match parse_ready_line(&line) {
            Some(ready) => Ok((child, ready)),
            None => Err(failed(
                &mut child,
                format!("unexpected first stdout line from volnfs: {line:?}"),
            )),
        },
        Err(_) => Err(failed(
            &mut child,
            format!("volnfs did not print a ready line within {READY_TIMEOUT:?}"),
        )),
    }
}

/// Runs `cmd` to its end with stdout and stderr captured, killing it after `limit` (a
/// command that wrongly keeps running fails the test instead of hanging it).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = match wait_with_timeout(&mut child, limit) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            child.wait().expect("wait for the killed child")
        }
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

pub fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: plain kill(2) on the pid of a child we own and have not yet reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls `try_wait` until the child exits or `limit` passes. This bounds a shutdown, it
/// does not wait for readiness.
pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How much of the server's stderr a failure shows.
pub const LOG_TAIL_LINES: usize = 80;

/// The last `n` lines of a log file ("" if it does not exist).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Removes terminal colour sequences (`ESC [ ... m`) that the log may contain.
pub fn strip_ansi(line: &str) -> String {
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
