//! The control protocol: newline-delimited JSON, version 1.
//!
//! Request:  `{"v":1,"id":7,"op":"snapshot.create","args":{"name":"daily"}}`
//! Reply:    `{"v":1,"id":7,"ok":true,"result":{...}}` or
//!           `{"v":1,"id":7,"ok":false,"error":{"code":"snapshot_exists","message":"..."}}`
//!
//! Parsing and running a line are pure of the socket: `handle_line` takes a
//! line and returns the reply. Error codes are the [`ErrorCode`] enum; the
//! README lists the same set (a test keeps them equal).

use serde_json::{json, Value};

use crate::dataset::DatasetError;
use crate::service::ServerState;

pub const PROTOCOL_VERSION: u64 = 1;
/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;

macro_rules! error_codes {
    ($($variant:ident = $code:literal: $meaning:literal,)*) => {
        /// Every error code a reply can carry. Stable: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// What the code means, for people (README, `volnfs ctl`).
            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }
        }
    };
}

error_codes! {
    BadRequest = "bad_request": "the line is not a JSON object with v, id, op and args of the right types",
    LineTooLong = "line_too_long": "the request line exceeds 64 KiB",
    UnsupportedVersion = "unsupported_version": "the request's v is not 1",
    UnknownOp = "unknown_op": "op names no operation",
    InvalidArgument = "invalid_argument": "an argument is missing or invalid (the message names it)",
    Unsupported = "unsupported": "the dataset backend cannot do this (a plain directory has no snapshots or quota)",
    SnapshotExists = "snapshot_exists": "a snapshot of that name exists",
    SnapshotNotFound = "snapshot_not_found": "no snapshot of that name",
    SnapshotLimit = "snapshot_limit": "the configured number of snapshots is reached",
    SnapshotHasNewer = "snapshot_has_newer": "a rollback would destroy newer snapshots: delete them first",
    RollbackOverQuota = "rollback_over_quota": "the snapshot holds more than the volume's size: grow the volume first",
    QuotaBelowUsage = "quota_below_usage": "the requested size is below what the volume already uses",
    Busy = "busy": "the dataset is busy (another rollback or snapshot operation)",
    ReloadFailed = "reload_failed": "the config file could not be loaded; the running rules are unchanged",
    IoError = "io_error": "reading the dataset failed",
    ZfsError = "zfs_error": "a zfs command failed (the message carries its argv and stderr)",
    PermissionDenied = "permission_denied": "the peer is not allowed to use the control socket",
    DuplicateId = "duplicate_id": "control channel: a request with that id is still running; use ids unique across connections",
    UnknownRequest = "unknown_request": "control channel `result`: no request of that id is running or remembered",
    Internal = "internal": "a bug: please report it with the message",
}

/// One failed operation: a stable code and a message for humans.
#[derive(Debug)]
pub struct OpError {
    pub code: ErrorCode,
    pub message: String,
}

pub fn op_err(code: ErrorCode, message: impl Into<String>) -> OpError {
    OpError {
        code,
        message: message.into(),
    }
}

impl From<DatasetError> for OpError {
    fn from(e: DatasetError) -> Self {
        let code = match &e {
            DatasetError::Unsupported { .. } => ErrorCode::Unsupported,
            DatasetError::Space { .. } => ErrorCode::IoError,
            DatasetError::Zfs { .. } => ErrorCode::ZfsError,
            DatasetError::SnapshotExists { .. } => ErrorCode::SnapshotExists,
            DatasetError::SnapshotNotFound { .. } => ErrorCode::SnapshotNotFound,
            DatasetError::SnapshotLimit { .. } => ErrorCode::SnapshotLimit,
            DatasetError::HasNewerSnapshots { .. } => ErrorCode::SnapshotHasNewer,
            DatasetError::RollbackOverQuota { .. } => ErrorCode::RollbackOverQuota,
            DatasetError::QuotaBelowUsage { .. } => ErrorCode::QuotaBelowUsage,
            DatasetError::Busy { .. } => ErrorCode::Busy,
            DatasetError::Internal(_) => ErrorCode::Internal,
        };
        op_err(code, crate::error_chain(&e))
    }
}

pub fn error_reply(id: Value, e: OpError) -> Value {
    json!({"v": PROTOCOL_VERSION, "id": id, "ok": false, "error": {"code": e.code.as_str(), "message": e.message}})
}

/// One parsed request: what a line asked for, not yet run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The caller's id, echoed in the reply (`null` when the line had none).
    pub id: Value,
    pub op: String,
    pub args: serde_json::Map<String, Value>,
}

/// A line that is not a request: the id it carried (if any) and why.
#[derive(Debug)]
pub struct Rejected {
    pub id: Value,
    pub error: OpError,
}

impl Rejected {
    pub fn reply(self) -> Value {
        error_reply(self.id, self.error)
    }
}

/// Parses one request line (no I/O): the envelope's `v`, `id`, `op` and
/// `args`. Whether `op` names an operation is [`execute`]'s business.
pub fn parse_request(line: &[u8]) -> Result<Request, Rejected> {
    let reject = |id: &Value, code, message: String| Rejected {
        id: id.clone(),
        error: op_err(code, message),
    };
    let req: Value = serde_json::from_slice(line).map_err(|e| {
        reject(
            &Value::Null,
            ErrorCode::BadRequest,
            format!("not JSON: {e}"),
        )
    })?;
    let Some(obj) = req.as_object() else {
        return Err(reject(
            &Value::Null,
            ErrorCode::BadRequest,
            "the request must be a JSON object".into(),
        ));
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    match obj.get("v").and_then(Value::as_u64) {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(reject(
                &id,
                ErrorCode::UnsupportedVersion,
                format!("v {v} is not supported; this server speaks v {PROTOCOL_VERSION}"),
            ))
        }
        None => {
            return Err(reject(
                &id,
                ErrorCode::BadRequest,
                "missing \"v\": 1".into(),
            ))
        }
    }
    let Some(op) = obj.get("op").and_then(Value::as_str) else {
        return Err(reject(&id, ErrorCode::BadRequest, "missing \"op\"".into()));
    };
    let args = match obj.get("args") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(reject(
                &id,
                ErrorCode::BadRequest,
                "\"args\" must be an object".into(),
            ))
        }
    };
    Ok(Request {
        op: op.to_string(),
        id,
        args,
    })
}

/// Runs a parsed request; always returns a reply.
pub async fn execute(state: &ServerState, req: &Request) -> Value {
    match run(state, &req.op, &req.args).await {
        Ok(result) => json!({"v": PROTOCOL_VERSION, "id": req.id, "ok": true, "result": result}),
        Err(e) => {
            tracing::info!(op = %req.op, code = e.code.as_str(), message = %e.message, "control operation failed");
            error_reply(req.id.clone(), e)
        }
    }
}

/// Parses and runs one request line; always returns a reply.
pub async fn handle_line(state: &ServerState, line: &[u8]) -> Value {
    match parse_request(line) {
        Ok(req) => execute(state, &req).await,
        Err(rejected) => rejected.reply(),
    }
}

/// The reply to a line longer than [`MAX_LINE`] (its id is never read).
pub fn line_too_long_reply() -> Value {
    error_reply(
        Value::Null,
        op_err(
            ErrorCode::LineTooLong,
            format!("request lines are limited to {MAX_LINE} bytes"),
        ),
    )
}

fn arg_str<'a>(args: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, OpError> {
    args.get(key).and_then(Value::as_str).ok_or_else(|| {
        op_err(
            ErrorCode::InvalidArgument,
            format!("args.{key} (a string) is required"),
        )
    })
}

/// Whether `op` changes the volume or the server (so a caller that lost
/// the reply needs to learn how it ended; the control channel remembers
/// these replies). Read-only operations can simply be asked again.
pub fn changes_state(op: &str) -> bool {
    matches!(
        op,
        "exports.reload"
            | "snapshot.create"
            | "snapshot.delete"
            | "snapshot.rollback"
            | "quota.set"
    )
}

/// The operations, by name.
pub const OPS: &[&str] = &[
    "status",
    "clients.list",
    "exports.reload",
    "snapshot.create",
    "snapshot.list",
    "snapshot.delete",
    "snapshot.rollback",
    "quota.get",
    "quota.set",
];

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
            let report = state
                .reload()
                .map_err(|e| op_err(ErrorCode::ReloadFailed, crate::error_chain(&e)))?;
            Ok(json!(report))
        }
        "snapshot.list" => Ok(json!(dataset.snapshots().await?)),
        "snapshot.create" | "snapshot.delete" | "snapshot.rollback" => {
            let name = arg_str(args, "name")?;
            crate::dataset::validate_snapshot_name(name)
                .map_err(|m| op_err(ErrorCode::InvalidArgument, format!("args.name: {m}")))?;
            match op {
                "snapshot.create" => Ok(json!(dataset.snapshot_create(name).await?)),
                "snapshot.delete" => {
                    state.delete_snapshot(name).await?;
                    Ok(json!({"deleted": name}))
                }
                _ => Ok(json!(state.rollback(name).await?)),
            }
        }
        "quota.get" => Ok(json!({"bytes": dataset.quota().await?})),
        "quota.set" => {
            let bytes = args.get("bytes").and_then(Value::as_u64).ok_or_else(|| {
                op_err(
                    ErrorCode::InvalidArgument,
                    "args.bytes (a whole number of bytes) is required",
                )
            })?;
            dataset.set_quota(bytes).await?;
            Ok(json!({"bytes": bytes}))
        }
        other => Err(op_err(
            ErrorCode::UnknownOp,
            format!("unknown op {other:?}; known: {}", OPS.join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's "Error codes (stable)" paragraph lists exactly the enum.
    #[test]
    fn the_readme_lists_every_error_code_and_no_other() {
        let readme = include_str!("../../README.md");
        let para = readme
            .split("Error codes (stable):")
            .nth(1)
            .and_then(|r| r.split("\n\n").next())
            .expect("README has an 'Error codes (stable):' paragraph");
        let mut listed: Vec<&str> = para.split('`').skip(1).step_by(2).collect();
        listed.sort();
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        codes.sort();
        assert_eq!(listed, codes);
    }

    #[test]
    fn dataset_errors_map_to_their_codes() {
        let e = DatasetError::HasNewerSnapshots {
            name: "a".into(),
            newer: vec!["b".into()],
        };
        assert_eq!(OpError::from(e).code, ErrorCode::SnapshotHasNewer);
        let e = DatasetError::RollbackOverQuota { name: "a".into() };
        assert_eq!(OpError::from(e).code.as_str(), "rollback_over_quota");
    }
}
