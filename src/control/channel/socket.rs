//! The agent's socket on disk and the connection to it: the only part of
//! the channel that touches the filesystem.
//!
//! The path is looked at with `lstat` (never followed): a symlink is
//! refused, since whoever can place one there could point volnfs at a
//! socket of their choosing, and so is anything that is not a socket. The
//! identity is taken before and after `connect(2)` and must not change in
//! between, which narrows the window in which the file could be swapped to
//! a swap and a swap back. The peer must be root (the global zone's agent)
//! or volnfs's own user, as on the local control socket.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use tokio::net::UnixStream;

use super::policy::{is_new_socket, Identity};
use super::ChannelError;

/// A connect(2) that takes longer than this (an agent whose backlog is
/// full) counts as a failed attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the path is looked at: while connected (has the socket been
/// replaced?) and while waiting out a backoff (has a new one appeared?).
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// What is at `path` now: `None` when nothing is, the socket's identity
/// when a socket is, an error for anything else.
pub fn look(path: &Path) -> Result<Option<Identity>, ChannelError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChannelError::Stat {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let ft = md.file_type();
    if ft.is_symlink() {
        return Err(ChannelError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if !ft.is_socket() {
        let kind = if ft.is_dir() {
            "directory"
        } else if ft.is_file() {
            "regular file"
        } else {
            "special file"
        };
        return Err(ChannelError::NotASocket {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(Some(Identity {
        dev: md.dev(),
        ino: md.ino(),
        ctime: md.ctime(),
        ctime_nsec: md.ctime_nsec(),
    }))
}

/// Connects to the agent's socket at `path`; returns the stream and the
/// identity of the socket file it was made through.
pub async fn connect(path: &Path) -> Result<(UnixStream, Identity), ChannelError> {
    let before = look(path)?.ok_or_else(|| ChannelError::Absent {
        path: path.to_path_buf(),
    })?;
    let connect_err = |source| ChannelError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path))
        .await
        .map_err(|_| {
            connect_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            ))
        })?
        .map_err(connect_err)?;
    if look(path)? != Some(before) {
        return Err(ChannelError::Raced {
            path: path.to_path_buf(),
        });
    }
    let uid = crate::sys::peer_uid(&stream);
    let me = nix::unistd::geteuid().as_raw();
    if uid != Some(0) && uid != Some(me) {
        return Err(ChannelError::PeerNotRoot {
            path: path.to_path_buf(),
            uid,
        });
    }
    Ok((stream, before))
}

/// Returns when the socket at `path` is no longer the one connected
/// through (replaced, removed, or turned into something else).
pub async fn replaced(path: &Path, connected: Identity) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        match look(path) {
            Ok(Some(now)) if now == connected => {}
            _ => return,
        }
    }
}

/// Waits `limit`, or less if a socket other than `failed_on` appears at
/// `path` (an agent that restarted: worth trying at once).
pub async fn new_socket_or(path: &Path, failed_on: Option<Identity>, limit: Duration) {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(WATCH_EVERY)).await;
        if is_new_socket(failed_on, look(path).ok().flatten()) {
            return;
        }
    }
}
