//! The local control socket VAPI (through the compute node's agent) and
//! `volnfs ctl` use: newline-delimited JSON over a unix stream socket
//! (`protocol` is the language, `lines` its framing, `ctl` the command-line
//! client). `channel` serves the same protocol over a connection volnfs
//! makes *out* to the global zone's agent (RFD 69), so the agent never
//! enters the zone.
//!
//! The socket is mode 0600 and the peer must be root (or the server's own
//! user when it does not run as root), checked with the kernel's peer
//! credentials. Lines are bounded; a malformed or oversized line gets an
//! error reply, never a crash.

pub mod channel;
pub mod ctl;
pub mod discovery;
pub mod lines;
pub mod protocol;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::service::ServerState;
use lines::Line;
use protocol::{error_reply, handle_line, op_err};
pub use protocol::{ErrorCode, MAX_LINE, PROTOCOL_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // A socket file someone still answers on belongs to a running server:
    // refuse instead of stealing it. One nobody answers on is stale.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another volnfs is serving this control socket; stop it or set control_socket to another path",
        )));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let me = nix::unistd::geteuid().as_raw();
    let conns = crate::tasks::Tasks::new();
    loop {
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let uid = crate::sys::peer_uid(&stream);
        let allowed = matches!(uid, Some(0)) || uid == Some(me);
        let state = state.clone();
        conns.spawn(async move {
            if let Err(e) = connection(stream, state, allowed, uid).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
    // An operation in progress on a closing connection is abandoned with
    // its connection (a rollback already holding the gates finishes first:
    // it is not cancelled half way, see `service::rollback`).
    conns.shutdown().await;
}

async fn connection(
    stream: UnixStream,
    state: Arc<ServerState>,
    allowed: bool,
    uid: Option<u32>,
) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        let reply = match lines::read_line(&mut rd, &mut line).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => protocol::line_too_long_reply(),
            Line::Complete if !allowed => {
                tracing::warn!(peer_uid = ?uid, "control socket: peer is not root; refused");
                error_reply(
                    Value::Null,
                    op_err(
                        ErrorCode::PermissionDenied,
                        "only root may use the volnfs control socket",
                    ),
                )
            }
            Line::Complete => handle_line(&state, &line).await,
        };
        lines::write_line(&mut wr, &reply).await?;
        if !allowed {
            return Ok(());
        }
    }
}
