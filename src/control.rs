//! The local control socket VAPI (through the compute node's agent) and
//! `volnfs ctl` use: newline-delimited JSON over a unix stream socket.
//!
//! Request:  `{"v":1,"id":7,"op":"snapshot.create","args":{"name":"daily"}}`
//! Reply:    `{"v":1,"id":7,"ok":true,"result":{...}}` or
//!           `{"v":1,"id":7,"ok":false,"error":{"code":"snapshot_exists","message":"..."}}`
//!
//! The socket is mode 0600 and the peer must be root (or the server's own
//! user when it does not run as root), checked with the kernel's peer
//! credentials. Lines are bounded; a malformed or oversized line gets an
//! error reply, never a crash. Error codes are the stable list in
//! [`ERROR_CODES`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::app::ServerState;

pub const PROTOCOL_VERSION: u64 = 1;
/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// Every error code a reply can carry. Stable: clients match on them.
pub const ERROR_CODES: &[(&str, &str)] = &[
    (
        "bad_request",
        "the line is not a JSON object with v, id, op and args of the right types",
    ),
    ("line_too_long", "the request line exceeds 64 KiB"),
    ("unsupported_version", "the request's v is not 1"),
    ("unknown_op", "op names no operation"),
    (
        "invalid_argument",
        "an argument is missing or invalid (the message names it)",
    ),
    (
        "unsupported",
        "the dataset backend cannot do this (a plain directory has no snapshots or quota)",
    ),
    ("snapshot_exists", "a snapshot of that name exists"),
    ("snapshot_not_found", "no snapshot of that name"),
    (
        "snapshot_limit",
        "the configured number of snapshots is reached",
    ),
    (
        "quota_below_usage",
        "the requested size is below what the volume already uses",
    ),
    (
        "busy",
        "the dataset is busy (another rollback or snapshot operation)",
    ),
    (
        "reload_failed",
        "the config file could not be loaded; the running rules are unchanged",
    ),
    ("io_error", "reading the dataset failed"),
    (
        "zfs_error",
        "a zfs command failed (the message carries its argv and stderr)",
    ),
    (
        "permission_denied",
        "the peer is not allowed to use the control socket",
    ),
    ("internal", "a bug: please report it with the message"),
];

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One failed operation: a stable code and a message for humans.
#[derive(Debug)]
pub struct OpError {
    pub code: &'static str,
    pub message: String,
}

fn op_err(code: &'static str, message: impl Into<String>) -> OpError {
    OpError {
        code,
        message: message.into(),
    }
}

impl From<crate::dataset::DatasetError> for OpError {
    fn from(e: crate::dataset::DatasetError) -> Self {
        op_err(e.code(), crate::error_chain(&e))
    }
}

/// Binds the socket: stale socket files are replaced, the mode is 0600.
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
            _ = shutdown.changed() => return,
        };
        let uid = crate::sys::peer_uid(&stream);
        let allowed = matches!(uid, Some(0)) || uid == Some(me);
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, state, allowed, uid).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
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
        line.clear();
        // Read at most MAX_LINE + 1 bytes of one line.
        let n = (&mut rd)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.len() > MAX_LINE && !line.ends_with(b"\n") {
            // Skip the rest of the line in bounded chunks (never buffering
            // it), answer, and carry on with the next line.
            loop {
                line.clear();
                let n = (&mut rd)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await?;
                if n == 0 || line.ends_with(b"\n") {
                    break;
                }
            }
            error_reply(
                Value::Null,
                op_err(
                    "line_too_long",
                    format!("request lines are limited to {MAX_LINE} bytes"),
                ),
            )
        } else if !allowed {
            tracing::warn!(peer_uid = ?uid, "control socket: peer is not root; refused");
            error_reply(
                Value::Null,
                op_err(
                    "permission_denied",
                    "only root may use the volnfs control socket",
                ),
            )
        } else {
            handle_line(&state, &line).await
        };
        write_line(&mut wr, &reply).await?;
        if !allowed {
            return Ok(());
        }
    }
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) -> std::io::Result<()> {
    let mut s = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    s.push(b'\n');
    wr.write_all(&s).await
}

fn error_reply(id: Value, e: OpError) -> Value {
    json!({"v": PROTOCOL_VERSION, "id": id, "ok": false, "error": {"code": e.code, "message": e.message}})
}

/// Parses and runs one request line; always returns a reply.
pub async fn handle_line(state: &ServerState, line: &[u8]) -> Value {
    let req: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return error_reply(Value::Null, op_err("bad_request", format!("not JSON: {e}"))),
    };
    let Some(obj) = req.as_object() else {
        return error_reply(
            Value::Null,
            op_err("bad_request", "the request must be a JSON object"),
        );
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    match obj.get("v").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return error_reply(
                id,
                op_err(
                    "unsupported_version",
                    format!("v {v} is not supported; this server speaks v {PROTOCOL_VERSION}"),
                ),
            )
        }
        None => return error_reply(id, op_err("bad_request", "missing \"v\": 1")),
    }
    let Some(op) = obj.get("op").and_then(Value::as_str) else {
        return error_reply(id, op_err("bad_request", "missing \"op\""));
    };
    let empty = serde_json::Map::new();
    let args = match obj.get("args") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return error_reply(id, op_err("bad_request", "\"args\" must be an object")),
    };
    match run(state, op, args).await {
        Ok(result) => json!({"v": PROTOCOL_VERSION, "id": id, "ok": true, "result": result}),
        Err(e) => {
            tracing::info!(op, code = e.code, message = %e.message, "control operation failed");
            error_reply(id, e)
        }
    }
}

fn arg_str<'a>(args: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, OpError> {
    args.get(key).and_then(Value::as_str).ok_or_else(|| {
        op_err(
            "invalid_argument",
            format!("args.{key} (a string) is required"),
        )
    })
}

async fn run(
    state: &ServerState,
    op: &str,
    args: &serde_json::Map<String, Value>,
) -> Result<Value, OpError> {
    let dataset = state.dataset.as_ref();
    match op {
        "status" => Ok(state.status().await),
        "clients.list" => Ok(json!(state.clients_json())),
        "exports.reload" => {
            let report = state.reload().map_err(|e| op_err("reload_failed", e))?;
            Ok(report)
        }
        "snapshot.list" => Ok(json!(dataset.snapshots().await?)),
        "snapshot.create" | "snapshot.delete" | "snapshot.rollback" => {
            let name = arg_str(args, "name")?;
            crate::dataset::validate_snapshot_name(name).map_err(|m| op_err("invalid_argument", format!("args.name: {m}")))?;
            match op {
                "snapshot.create" => Ok(json!(dataset.snapshot_create(name).await?)),
                "snapshot.delete" => {
                    dataset.snapshot_delete(name).await?;
                    Ok(json!({"deleted": name}))
                }
                _ => {
                    // Quiesce the volume's export: no NFS call runs while the
                    // dataset changes under it. Then forget every cached
                    // descriptor and rebuild the handle index from the
                    // rolled-back tree; handles of objects that no longer
                    // exist turn STALE.
                    let export = state.exports.all().first().cloned();
                    let _quiet = match &export {
                        Some(e) => Some(e.gate.write().await),
                        None => None,
                    };
                    let started = std::time::Instant::now();
                    dataset.snapshot_rollback(name).await?;
                    if let Some(e) = &export {
                        let fs = e.fs.clone();
                        tokio::task::spawn_blocking(move || fs.invalidate_all())
                            .await
                            .map_err(|e| op_err("internal", e.to_string()))?;
                    }
                    Ok(json!({"rolled_back_to": name, "paused_ms": started.elapsed().as_millis() as u64}))
                }
            }
        }
        "quota.get" => Ok(json!({"bytes": dataset.quota().await?})),
        "quota.set" => {
            let bytes = args
                .get("bytes")
                .and_then(Value::as_u64)
                .ok_or_else(|| op_err("invalid_argument", "args.bytes (a whole number of bytes) is required"))?;
            dataset.set_quota(bytes).await?;
            Ok(json!({"bytes": bytes}))
        }
        other => Err(op_err("unknown_op", format!("unknown op {other:?}; known: status, clients.list, exports.reload, snapshot.create, snapshot.list, snapshot.delete, snapshot.rollback, quota.get, quota.set"))),
    }
}

/// Turns `volnfs ctl` words into an operation and its arguments.
pub fn request_from_words(words: &[String]) -> Result<(String, Value), String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let usage = "usage: volnfs ctl status | clients list | exports reload | snapshot create|delete|rollback NAME | snapshot list | quota get | quota set BYTES";
    match w.as_slice() {
        ["status"] => Ok(("status".into(), json!({}))),
        ["clients", "list"] | ["clients"] => Ok(("clients.list".into(), json!({}))),
        ["exports", "reload"] | ["reload"] => Ok(("exports.reload".into(), json!({}))),
        ["snapshot", "list"] | ["snapshots"] => Ok(("snapshot.list".into(), json!({}))),
        ["snapshot", op @ ("create" | "delete" | "rollback"), name] => {
            Ok((format!("snapshot.{op}"), json!({"name": name})))
        }
        ["quota", "get"] | ["quota"] => Ok(("quota.get".into(), json!({}))),
        ["quota", "set", bytes] => {
            let b: u64 = bytes
                .parse()
                .map_err(|_| format!("quota set: {bytes:?} is not a whole number of bytes"))?;
            Ok(("quota.set".into(), json!({"bytes": b})))
        }
        // Raw form for scripts: `volnfs ctl OP [JSON-ARGS]`.
        [op] if op.contains('.') => Ok((op.to_string(), json!({}))),
        [op, args] if op.contains('.') => {
            let v: Value = serde_json::from_str(args)
                .map_err(|e| format!("arguments of {op}: not JSON: {e}"))?;
            Ok((op.to_string(), v))
        }
        _ => Err(usage.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "connecting to the control socket {path} (is volnfs running? is this the right --socket?)"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the control socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the control socket {path} answered something that is not a JSON reply: {line}")]
    BadReply { path: PathBuf, line: String },
}

/// Sends one request and returns the whole reply object.
pub async fn call(path: &Path, op: &str, args: Value) -> Result<Value, CtlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| CtlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let io = |source| CtlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut req =
        serde_json::to_vec(&json!({"v": PROTOCOL_VERSION, "id": 1, "op": op, "args": args}))
            .unwrap_or_default();
    req.push(b'\n');
    stream.write_all(&req).await.map_err(io)?;
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    rd.read_line(&mut line).await.map_err(io)?;
    serde_json::from_str(&line).map_err(|_| CtlError::BadReply {
        path: path.to_path_buf(),
        line: line.trim_end().to_string(),
    })
}

/// Renders a result for people: nested objects as indented `key: value` lines.
pub fn render_human(v: &Value) -> String {
    fn walk(v: &Value, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        Value::Object(_) | Value::Array(_) if !is_empty(v) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            walk(v, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                    }
                }
            }
            Value::Array(a) => {
                for item in a {
                    match item {
                        Value::Object(_) | Value::Array(_) => {
                            out.push_str(&format!("{pad}-\n"));
                            walk(item, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    fn is_empty(v: &Value) -> bool {
        matches!(v, Value::Object(m) if m.is_empty())
            || matches!(v, Value::Array(a) if a.is_empty())
    }
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            Value::Array(a) if a.is_empty() => "(none)".into(),
            Value::Object(m) if m.is_empty() => "(none)".into(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn ctl_words_map_to_operations() {
        assert_eq!(
            request_from_words(&words("snapshot create daily")).unwrap(),
            ("snapshot.create".into(), json!({"name": "daily"}))
        );
        assert_eq!(
            request_from_words(&words("quota set 1073741824")).unwrap(),
            ("quota.set".into(), json!({"bytes": 1073741824u64}))
        );
        assert!(request_from_words(&words("quota set lots")).is_err());
        assert!(request_from_words(&words("frobnicate")).is_err());
        assert_eq!(request_from_words(&words("status")).unwrap().0, "status");
    }

    #[test]
    fn human_rendering_is_indented_key_values() {
        let s = render_human(&json!({"a": 1, "b": {"c": "x"}, "d": []}));
        assert_eq!(s, "a: 1\nb:\n  c: x\nd: (none)\n");
    }
}
